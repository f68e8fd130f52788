package pebblestore

import (
	"hash/maphash"
	"sync"
)

// accountLocks serialises the read-modify-write sequences of one account
// with a fixed set of locks chosen by the account id: accounts rarely
// share one, so they seldom wait on each other's fsyncs, and the set never
// grows with the number of accounts.
type accountLocks struct {
	seed maphash.Seed
	mu   [64]sync.Mutex
}

func newAccountLocks() *accountLocks { return &accountLocks{seed: maphash.MakeSeed()} }

// lock takes the lock of account and returns its release.
func (l *accountLocks) lock(account string) (unlock func()) {
	m := &l.mu[maphash.String(l.seed, account)%uint64(len(l.mu))]
	m.Lock()
	return m.Unlock
}

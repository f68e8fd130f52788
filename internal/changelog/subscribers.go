package changelog

import (
	"sync"
	"sync/atomic"
)

// Subscribers is the list of a backend's commit subscribers: it
// implements Source.Subscribe, and Notify calls them all from a commit
// path without taking a lock (the list is replaced on change, never
// changed). The zero value is an empty list.
type Subscribers struct {
	list atomic.Pointer[[]*subscriber]
	mu   sync.Mutex // serialises changes to list
}

type subscriber struct{ fn func(CommitEvent) }

// Subscribe adds fn to the list until cancel is called (Source.Subscribe).
func (s *Subscribers) Subscribe(fn func(CommitEvent)) (cancel func()) {
	sub := &subscriber{fn: fn}
	s.mu.Lock()
	defer s.mu.Unlock()
	var next []*subscriber
	if cur := s.list.Load(); cur != nil {
		next = append(next, *cur...)
	}
	next = append(next, sub)
	s.list.Store(&next)
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		cur := s.list.Load()
		if cur == nil {
			return
		}
		kept := make([]*subscriber, 0, len(*cur))
		for _, x := range *cur {
			if x != sub {
				kept = append(kept, x)
			}
		}
		s.list.Store(&kept)
	}
}

// Notify calls every subscriber with ev, on the calling goroutine.
func (s *Subscribers) Notify(ev CommitEvent) {
	if subs := s.list.Load(); subs != nil {
		for _, sub := range *subs {
			sub.fn(ev)
		}
	}
}

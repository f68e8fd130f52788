package settings

import (
	"errors"
	"fmt"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/stream"
)

// ErrNotEntitled is returned when enabling the stream of an account that
// does not have the data-streaming entitlement.
var ErrNotEntitled = errors.New("account not entitled to data streaming")

// CodeEntitlementRemoved is the code of the problem a stream stopped for
// want of the entitlement shows in its status (stream.State.LastError).
const CodeEntitlementRemoved = "ENTITLEMENT_REMOVED"

// ReasonEntitlementRemoved is the reason recorded on the enabled period a
// stream stopped for want of the entitlement ends.
const ReasonEntitlementRemoved = "the data-streaming entitlement was removed"

// Accounts is what the settings read of accounts: their entitlements
// (accounts.Store).
type Accounts interface {
	// Account returns account id; an error matching
	// accounts.ErrAccountNotFound when there is none.
	Account(id string) (accounts.Account, error)
	// Accounts returns every account.
	Accounts() ([]accounts.Account, error)
}

// Entitlement makes a Service enforce the data-streaming entitlement.
type Entitlement struct {
	Accounts Accounts
	// Stopped, when set, is told of each stream stopped for want of the
	// entitlement, with the record as saved and who noticed: "operator"
	// (the entitlement was removed through the operator API), "exporter"
	// (a gated checkpoint found the account streaming without it).
	Stopped func(rec Record, by string)
}

// RequireEntitlement makes s enforce e: Apply refuses to enable an account
// without the data-streaming entitlement (ErrNotEntitled), read in the
// same update as the save, so an enable racing with the entitlement's
// removal either precedes the removal's StopUnentitled (and is stopped by
// it) or sees the removal. It returns s.
func (s *Service) RequireEntitlement(e Entitlement) *Service {
	s.ent = &e
	return s
}

// entitled reports whether account has the data-streaming entitlement;
// true when s does not enforce it. An account that does not exist has
// none.
func (s *Service) entitled(account string) (bool, error) {
	if s.ent == nil {
		return true, nil
	}
	a, err := s.ent.Accounts.Account(account)
	if errors.Is(err, accounts.ErrAccountNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read the entitlements of %s: %w", account, err)
	}
	return a.Entitled(accounts.EntitlementDataStreaming), nil
}

// notEntitledError is the error of an enable refused for want of the
// entitlement.
func notEntitledError(account string) error {
	return fmt.Errorf("%w: account %q does not have the data-streaming entitlement; ask your JupiterOne operator to add it, then enable streaming again", ErrNotEntitled, account)
}

// errUnchanged ends an update that has nothing to write.
var errUnchanged = errors.New("unchanged")

// StopUnentitled stops the account's stream, as a disable does, when it
// streams without the data-streaming entitlement: the enabled period ends
// at the log's end (end) with ReasonEntitlementRemoved, the status's last
// error says why (CodeEntitlementRemoved), and the settings keep the
// bucket for an enable once the entitlement is back. The entitlement is
// read under the account's update, after any earlier save. It reports
// whether it stopped the stream; by says who asked (Entitlement.Stopped).
// Without RequireEntitlement it does nothing.
func (s *Service) StopUnentitled(account, by string, end func() (uint64, error)) (bool, error) {
	if s.ent == nil {
		return false, nil
	}
	// Read under the account's update, after an enable that read the
	// entitlement before its removal; nothing is written when nothing
	// streams or the account is entitled (an error of fn writes nothing).
	rec, err := s.store.Update(account, func(r *Record) error {
		if !r.Settings.Enabled && !r.Stream.Enabled {
			return errUnchanged
		}
		ok, err := s.entitled(account)
		if err != nil {
			return err
		}
		if ok {
			return errUnchanged
		}
		now := s.now().UTC()
		if err := r.disable(now, end); err != nil {
			return err
		}
		if n := len(r.Periods); n > 0 {
			r.Periods[n-1].EndReason = ReasonEntitlementRemoved
		}
		r.Stream.LastError = &stream.Problem{
			Code:    CodeEntitlementRemoved,
			Message: "streaming stopped: " + ReasonEntitlementRemoved + "; ask your JupiterOne operator to add it again, then enable streaming (changes made meanwhile are not exported)",
			At:      now,
		}
		return nil
	})
	if errors.Is(err, errUnchanged) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if s.ent.Stopped != nil {
		s.ent.Stopped(rec, by)
	}
	return true, nil
}

// disable stops the record's stream at now: a new generation (the running
// exporter can no longer move the cursor) and the last enabled period
// closed at the log's end.
func (r *Record) disable(now time.Time, end func() (uint64, error)) error {
	r.Stream.Generation++
	e, err := end()
	if err != nil {
		return err
	}
	if n := len(r.Periods); n > 0 && r.Periods[n-1].EndAt.IsZero() {
		r.Periods[n-1].EndLSN, r.Periods[n-1].EndAt = e, now
	}
	r.Settings.Enabled, r.Stream.Enabled = false, false
	return nil
}

// EnforcesEntitlement reports whether RequireEntitlement was called.
func (s *Service) EnforcesEntitlement() bool { return s.ent != nil }

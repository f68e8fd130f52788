package settings

import (
	"fmt"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/stream"
)

// Gate returns cp as an exporter must read it when s enforces the
// entitlement (RequireEntitlement): an account that streams without the
// data-streaming entitlement is stopped (StopUnentitled, by "exporter")
// and shown to the exporter as not enabled, wherever the exporter looks:
// the accounts it starts with (Enabled, at start and after a rescan),
// an account it loads (Load) and every new batch before its upload
// (SaveAttempt, which then fails with stream.ErrStale). So a stream whose
// entitlement was removed without the stop that follows (the process died
// in between, or the stop's notice never reached the exporting node)
// resumes neither after a restart nor with the next change. end returns
// the end of an account's log, where the stopped period ends. Without
// RequireEntitlement, Gate returns cp.
func (s *Service) Gate(cp stream.Checkpoint, end func(account string) (uint64, error)) stream.Checkpoint {
	if s.ent == nil {
		return cp
	}
	return &gate{Checkpoint: cp, s: s, end: end}
}

type gate struct {
	stream.Checkpoint
	s   *Service
	end func(account string) (uint64, error)
}

var _ stream.Checkpoint = (*gate)(nil)

// stop stops account when it is not entitled and reports whether it is.
func (g *gate) stop(account string) (entitled bool, err error) {
	ok, err := g.s.entitled(account)
	if err != nil || ok {
		return ok, err
	}
	if _, err := g.s.StopUnentitled(account, "exporter", func() (uint64, error) { return g.end(account) }); err != nil {
		return false, fmt.Errorf("stop the stream of %s, which lacks the data-streaming entitlement: %w", account, err)
	}
	return false, nil
}

// Enabled returns the enabled accounts that have the entitlement, after
// stopping those that do not. The entitlements are read in one list.
func (g *gate) Enabled() ([]stream.State, error) {
	recs, err := g.Checkpoint.Enabled()
	if err != nil || len(recs) == 0 {
		return recs, err
	}
	as, err := g.s.ent.Accounts.Accounts()
	if err != nil {
		return nil, fmt.Errorf("read the accounts' entitlements: %w", err)
	}
	entitled := make(map[string]bool, len(as))
	for _, a := range as {
		if a.Entitled(accounts.EntitlementDataStreaming) {
			entitled[a.ID] = true
		}
	}
	out := recs[:0]
	for _, r := range recs {
		if entitled[r.Account] {
			out = append(out, r)
			continue
		}
		if _, err := g.stop(r.Account); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Load returns the account's state, not enabled when the account lacks
// the entitlement (its stream is stopped first).
func (g *gate) Load(account string) (stream.State, error) {
	st, err := g.Checkpoint.Load(account)
	if err != nil || !st.Enabled {
		return st, err
	}
	ok, err := g.stop(account)
	if err != nil || ok {
		return st, err
	}
	return g.Checkpoint.Load(account)
}

// SaveAttempt fails with stream.ErrStale, before anything is uploaded,
// when the account lacks the entitlement (its stream is stopped first).
func (g *gate) SaveAttempt(account string, gen, after, through uint64, suffix string) error {
	ok, err := g.stop(account)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("save the batch of %s: %w: %s", account, stream.ErrStale, ReasonEntitlementRemoved)
	}
	return g.Checkpoint.SaveAttempt(account, gen, after, through, suffix)
}

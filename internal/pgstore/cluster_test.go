package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/stream"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// TestFencedWriteEndsWhenIdle: a fenced checkpoint write's transaction
// carries an idle timeout, so a node paused inside it loses its session
// instead of holding its locks; a wrong token is refused.
func TestFencedWriteEndsWhenIdle(t *testing.T) {
	_, url := localpg.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	// A new database's groups are free, with token 0.
	if err := pgstore.FenceInTx(ctx, tx, 7, 0); err != nil {
		t.Fatal(err)
	}
	var timeout string
	if err := tx.QueryRow(ctx, "SHOW idle_in_transaction_session_timeout").Scan(&timeout); err != nil {
		t.Fatal(err)
	}
	if timeout != "5s" {
		t.Fatalf("idle_in_transaction_session_timeout in a fenced write is %q, want 5s", timeout)
	}
	if err := pgstore.FenceInTx(ctx, tx, 7, 1); !errors.Is(err, stream.ErrFenced) {
		t.Fatalf("a wrong token passed the fence: %v", err)
	}
}

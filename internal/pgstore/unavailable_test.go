package pgstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/graph"
	"github.com/j1ds/j1ds/internal/pgstore"
	"github.com/j1ds/j1ds/internal/testbed/localpg"
)

// TestUnavailable: with the server stopped, the store's operations fail
// with errors Unavailable recognises; errors the database answers are not
// unavailability; when the server is back, the same store works again.
func TestUnavailable(t *testing.T) {
	srv, url := localpg.Own(t) // its own server, to stop: the shared one stays up
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := pgstore.Open(ctx, url, pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Accounts().CreateAccount("acme", nil); err != nil {
		t.Fatal(err)
	}
	_, err = s.Accounts().CreateAccount("acme", nil)
	if !errors.Is(err, accounts.ErrAccountExists) || pgstore.Unavailable(err) {
		t.Errorf("a second create: %v (unavailable: %v), want ErrAccountExists, not unavailability", err, pgstore.Unavailable(err))
	}
	if _, _, err := s.Get("acme", "no-such-object"); !errors.Is(err, graph.ErrNotFound) || pgstore.Unavailable(err) {
		t.Errorf("a missing object: %v, want ErrNotFound, not unavailability", err)
	}

	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	for name, op := range map[string]func() error{
		"get":     func() error { _, _, err := s.Get("acme", "no-such-object"); return err },
		"end":     func() error { _, err := s.End("acme"); return err },
		"account": func() error { _, err := s.Accounts().Account("acme"); return err },
		"update": func() error {
			_, err := s.Update("acme", func(tx graph.Txn) error { return nil })
			return err
		},
	} {
		// The first call may meet a pooled connection the server closed,
		// the next one a refused connection: both are unavailability.
		for range 2 {
			if err := op(); !pgstore.Unavailable(err) {
				t.Errorf("%s with the server stopped: %v, want an error Unavailable recognises", name, err)
			}
		}
	}

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := s.Accounts().Account("acme")
		if err == nil {
			break
		}
		if !pgstore.Unavailable(err) || time.Now().After(deadline) {
			t.Fatalf("account after the server came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	_, err = pgstore.Open(ctx, srv.URL("no_such_database"), pgstore.Options{})
	if err == nil || pgstore.Unavailable(err) {
		t.Errorf("open a missing database: %v; want an error that is not unavailability", err)
	}
}

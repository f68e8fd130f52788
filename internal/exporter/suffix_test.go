package exporter_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/exporter"
	"github.com/j1ds/j1ds/internal/settings"
)

// TestObjectSuffixFromTheNextObject: the suffix an account chooses names
// its next object, with no new generation. A batch already attempted
// keeps the key it was tried under, on a retry in the same process and
// after a restart, so a late arrival of the first request and the retry
// store one object, never the same changes under two names.
func TestObjectSuffixFromTheNextObject(t *testing.T) {
	e := newEnv(t, exporter.Config{FlushInterval: time.Hour, RetryMin: time.Second, RetryMax: time.Second})
	e.enable("acct1", "bkt")
	on := settings.Settings{Enabled: true, BucketName: "bkt", AWSAccountID: "111122223333", RegionConfirmed: true}
	setFail := func(storeThenFail bool, err error) {
		e.dest.mu.Lock()
		defer e.dest.mu.Unlock()
		e.dest.storeThenFail = storeThenFail
		e.dest.fail = func(string) error { return err }
		if err == nil {
			e.dest.fail = nil
		}
	}
	last := func() string {
		e.dest.mu.Lock()
		defer e.dest.mu.Unlock()
		return e.dest.puts[len(e.dest.puts)-1]
	}
	var want []string

	// The deployment's default (.jsonl) while the account chose none.
	want = append(want, e.write("acct1", 2)...)
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	e.advanceUntil("the first object", func() bool { return e.dest.putCount() == 1 })
	first := last()
	gen := func() uint64 { r, _ := e.st.Get("acct1"); return r.Stream.Generation }
	g := gen()

	// The next batch fails, then the account chooses .jsonl.gz: the retry
	// keeps .jsonl, the batch after it takes .jsonl.gz.
	setFail(false, errors.New("connection reset by peer"))
	want = append(want, e.write("acct1", 3)...)
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	e.advanceUntil("a failed attempt", func() bool { return e.exp.Status("acct1").Failures == 1 })
	gz := on
	gz.ObjectSuffix = settings.SuffixJSONLGz
	e.apply("acct1", gz)
	if gen() != g {
		t.Fatalf("choosing a suffix started generation %d after %d", gen(), g)
	}
	setFail(false, nil)
	e.advanceUntil("the retry", func() bool { return e.dest.putCount() == 2 })
	retried := last()
	want = append(want, e.write("acct1", 1)...)
	e.advanceTo(e.exp.Status("acct1").NextAttempt)
	e.advanceUntil("the object after the choice", func() bool { return e.dest.putCount() == 3 })
	next := last()

	// A batch stored but not acknowledged before a stop is retried after
	// the restart under its own name, although the account chose .jsonl
	// meanwhile.
	setFail(true, errors.New("connection reset by peer"))
	want = append(want, e.write("acct1", 2)...)
	e.stop()
	lost := last()
	if r, _ := e.st.Get("acct1"); r.Stream.Attempt == nil || r.Stream.Attempt.Suffix != ".jsonl.gz" {
		t.Fatalf("the saved attempt %+v, want its suffix .jsonl.gz", r.Stream.Attempt)
	}
	plain := on
	plain.ObjectSuffix = settings.SuffixJSONL
	if _, err := e.st.Apply("acct1", plain, func() (uint64, error) { return e.store.End("acct1") }); err != nil {
		t.Fatal(err)
	}
	setFail(false, nil)
	e.start()
	want = append(want, e.write("acct1", 1)...)
	e.stop()

	e.dest.mu.Lock()
	puts := slices.Clone(e.dest.puts)
	e.dest.mu.Unlock()
	if len(puts) != 6 {
		t.Fatalf("uploads %q, want 6", puts)
	}
	for _, c := range []struct {
		what, key, suffix string
	}{
		{"the first object", first, ".jsonl"},
		{"the retry of the batch tried before the choice", retried, ".jsonl"},
		{"the object after the choice", next, ".jsonl.gz"},
		{"the batch whose answer was lost", lost, ".jsonl.gz"},
		{"its retry after the restart", puts[4], ".jsonl.gz"},
		{"the object after the restart", puts[5], ".jsonl"},
	} {
		name := c.key[strings.LastIndex(c.key, "Z")+1:]
		if name != c.suffix {
			t.Errorf("%s is %s, want the suffix %s", c.what, c.key, c.suffix)
		}
	}
	if puts[4] != lost {
		t.Errorf("the retry after the restart wrote %s, not the key of its first attempt %s", puts[4], lost)
	}
	if got := e.dest.lines(t, "bkt/"); !slices.Equal(got, want) {
		t.Fatalf("records: got %d, want the %d changes once each", len(got), len(want))
	}
}

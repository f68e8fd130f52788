package exporter_test

// ObjectKey never leaves its account's prefix: for every account id that
// accounts.ValidateID accepts and every commit time j1ds can produce
// (years 1970-9999), the key is exactly the documented layout under
// "jupiterone/graph/cdc/accountId=<account>/", without "..", "//" or ':'.
// A property test runs with go test; go test -fuzz FuzzObjectKey explores
// further.

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/accounts"
	"github.com/j1ds/j1ds/internal/exporter"
)

// maxCommitMicros is the last microsecond of year 9999: the layout has a
// four-digit year.
var maxCommitMicros = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()

var keyLayout = regexp.MustCompile(`^jupiterone/graph/cdc/accountId=([A-Za-z0-9][A-Za-z0-9_-]*)/year=([0-9]{4})/month=([0-9]{2})/day=([0-9]{2})/time=([0-9]{2})([0-9]{2})([0-9]{2})\.([0-9]{6})Z(\.jsonl|\.jsonl\.gz)$`)

var suffixes = []string{".jsonl", ".jsonl.gz"}

func checkObjectKey(t *testing.T, account string, micros int64, suffix string) {
	t.Helper()
	if accounts.ValidateID(account) != nil || micros < 0 || micros > maxCommitMicros {
		return
	}
	key := exporter.ObjectKey(account, micros, suffix)
	prefix := exporter.KeyPrefix + "accountId=" + account + "/"
	if !strings.HasPrefix(key, prefix) {
		t.Fatalf("ObjectKey(%q, %d) = %q: not under %q", account, micros, key, prefix)
	}
	for _, bad := range []string{"..", "//", ":", "\\", "\x00", " "} {
		if strings.Contains(key, bad) {
			t.Fatalf("ObjectKey(%q, %d) = %q holds %q", account, micros, key, bad)
		}
	}
	m := keyLayout.FindStringSubmatch(key)
	if m == nil {
		t.Fatalf("ObjectKey(%q, %d) = %q does not match the layout", account, micros, key)
	}
	if m[1] != account {
		t.Fatalf("ObjectKey(%q, %d) = %q names account %q", account, micros, key, m[1])
	}
	ts := time.UnixMicro(micros).UTC()
	want := fmt.Sprintf("%04d %02d %02d %02d%02d%02d %06d", ts.Year(), ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond()/1000)
	if got := fmt.Sprintf("%s %s %s %s%s%s %s", m[2], m[3], m[4], m[5], m[6], m[7], m[8]); got != want {
		t.Fatalf("ObjectKey(%q, %d) = %q: time parts %s, want %s", account, micros, key, got, want)
	}
	// The same account's keys never reach into another account's prefix:
	// "acme" must not be a prefix match for "acme-2".
	if strings.HasPrefix(key, exporter.KeyPrefix+"accountId="+account+"-") || strings.HasPrefix(key, exporter.KeyPrefix+"accountId="+account+"_") {
		t.Fatalf("ObjectKey(%q) = %q", account, key)
	}
}

func TestObjectKeyStaysUnderPrefix(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	const rest = first + "-_"
	for range 20000 {
		n := 1 + rng.IntN(64)
		b := []byte{first[rng.IntN(len(first))]}
		for len(b) < n {
			b = append(b, rest[rng.IntN(len(rest))])
		}
		checkObjectKey(t, string(b), rng.Int64N(maxCommitMicros+1), suffixes[rng.IntN(2)])
	}
	for _, micros := range []int64{0, 1, 999999, maxCommitMicros, time.Date(2025, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()} {
		checkObjectKey(t, "a", micros, ".jsonl")
	}
}

func FuzzObjectKey(f *testing.F) {
	f.Add("acme", int64(1748764800123456), false)
	f.Add("A-b_9", int64(0), true)
	f.Add("../etc", int64(1), false)
	f.Add(strings.Repeat("z", 64), maxCommitMicros, true)
	f.Fuzz(func(t *testing.T, account string, micros int64, gz bool) {
		suffix := ".jsonl"
		if gz {
			suffix = ".jsonl.gz"
		}
		checkObjectKey(t, account, micros, suffix)
	})
}

package settings_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/settings"
)

func TestApplyNeedsARecentPassingTestOfTheSameValues(t *testing.T) {
	db, err := pebble.Open(t.TempDir(), &pebble.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	st := settings.New(db, func() time.Time { return now })
	end := func() (uint64, error) { return 42, nil }
	on := settings.Settings{Enabled: true, BucketName: "bkt-one", AWSAccountID: "111122223333", RegionConfirmed: true}

	if _, err := st.Apply("a", on, end); !errors.Is(err, settings.ErrTestRequired) {
		t.Fatalf("enable without a test: %v", err)
	}
	st.SaveTest("a", settings.ConnectionTest{OK: false, At: now, BucketName: "bkt-one", AWSAccountID: "111122223333"})
	if _, err := st.Apply("a", on, end); !errors.Is(err, settings.ErrTestRequired) {
		t.Fatalf("enable after a failed test: %v", err)
	}
	st.SaveTest("a", settings.ConnectionTest{OK: true, At: now, BucketName: "bkt-other", AWSAccountID: "111122223333"})
	if _, err := st.Apply("a", on, end); !errors.Is(err, settings.ErrTestRequired) || !strings.Contains(err.Error(), "bkt-other") {
		t.Fatalf("enable after a test of another bucket: %v", err)
	}
	st.SaveTest("a", settings.ConnectionTest{OK: true, At: now.Add(-2 * time.Hour), BucketName: "bkt-one", AWSAccountID: "111122223333"})
	if _, err := st.Apply("a", on, end); !errors.Is(err, settings.ErrTestRequired) {
		t.Fatalf("enable after an old test: %v", err)
	}
	noRegion := on
	noRegion.RegionConfirmed = false
	var fe *settings.FieldError
	if _, err := st.Apply("a", noRegion, end); !errors.As(err, &fe) || fe.Field != "regionConfirmed" {
		t.Fatalf("enable without region confirmation: %v", err)
	}
	st.SaveTest("a", settings.ConnectionTest{OK: true, At: now.Add(-time.Minute), BucketName: "bkt-one", AWSAccountID: "111122223333"})
	r, err := st.Apply("a", on, end)
	if err != nil {
		t.Fatal(err)
	}
	if r.Stream.Generation != 1 || r.Stream.Cursor != 42 || r.Stream.EnabledAtLSN != 42 {
		t.Fatalf("enabled stream %+v: starts at the log's end", r.Stream)
	}
	// An upload's batch is saved before it starts, only from the cursor
	// and by the current generation, and the cursor's move clears it.
	if err := st.SaveAttempt("a", 1, 41, 50); err == nil || !strings.Contains(err.Error(), "cursor 42") {
		t.Fatalf("attempt not starting at the cursor: %v", err)
	}
	if err := st.SaveAttempt("a", 2, 42, 50); !errors.Is(err, settings.ErrStale) {
		t.Fatalf("attempt of another generation: %v", err)
	}
	if err := st.SaveAttempt("a", 1, 42, 50); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Get("a"); r.Stream.Attempt == nil || *r.Stream.Attempt != (settings.Attempt{Generation: 1, AfterLSN: 42, ThroughLSN: 50}) {
		t.Fatalf("saved attempt %+v", r.Stream.Attempt)
	}
	if err := st.Advance("a", 1, 50, 3, "k"); err != nil {
		t.Fatal(err)
	}
	if r, _ := st.Get("a"); r.Stream.Attempt != nil {
		t.Fatalf("attempt %+v kept after the cursor moved", r.Stream.Attempt)
	}
	// Disabling needs nothing and stops the generation.
	r, err = st.Apply("a", settings.Settings{}, end)
	if err != nil || r.Settings.Enabled || r.Stream.Generation != 2 {
		t.Fatalf("disable: %+v %v", r, err)
	}
	if err := st.Advance("a", 1, 60, 1, "k2"); !errors.Is(err, settings.ErrStale) {
		t.Fatalf("an exporter of the old generation moved the cursor: %v", err)
	}
	if p := r.Stream.Periods; len(p) != 1 || p[0].StartLSN != 42 || p[0].EndLSN != 42 || p[0].EndAt.IsZero() {
		t.Fatalf("periods after one enable and disable: %+v", p)
	}
}

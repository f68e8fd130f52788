package pebblestore_test

import (
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/j1ds/j1ds/internal/pebblestore"
	"github.com/j1ds/j1ds/internal/settings/settingstest"
)

// TestSettingsUpgrade opens a store whose settings records hold the stream
// state inside them, as stores written before the state had a key of its
// own do: the record reads the same, and the state is the checkpoint's.
func TestSettingsUpgrade(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(dir, pebblestore.PebbleOptions())
	if err != nil {
		t.Fatal(err)
	}
	const old = `{"account":"acme","settings":{"enabled":true,"bucketName":"bkt-one","awsAccountId":"111122223333","regionConfirmed":true},` +
		`"lastConnectionTest":{"ok":true,"at":"2026-01-01T11:59:00Z","bucketName":"bkt-one","awsAccountId":"111122223333"},` +
		`"stream":{"generation":3,"enabledAt":"2026-01-01T12:00:00Z","enabledAtLsn":40,"cursor":57,"objectsExported":4,"eventsExported":90,` +
		`"lastExportAt":"2026-01-01T12:05:00Z","lastExportKey":"k4","gaps":[{"fromLsn":41,"toLsn":44,"at":"2026-01-01T12:01:00Z"}],` +
		`"periods":[{"startLsn":10,"startAt":"2025-12-01T00:00:00Z","endLsn":20,"endAt":"2025-12-02T00:00:00Z"},{"startLsn":40,"startAt":"2026-01-01T12:00:00Z"}],` +
		`"attempt":{"generation":3,"afterLsn":57,"throughLsn":60}}}`
	if err := db.Set([]byte("Dacme"), []byte(old), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	b := openSettings(t, dir)
	r, err := b.Settings.Get("acme")
	if err != nil {
		t.Fatal(err)
	}
	st := r.Stream
	if !r.Settings.Enabled || r.LastTest == nil || len(r.Periods) != 2 || r.Periods[1].StartLSN != 40 ||
		!st.Enabled || st.Target != r.Settings.Target() || st.Generation != 3 || st.Cursor != 57 || st.EventsExported != 90 ||
		len(st.Gaps) != 1 || st.Attempt == nil || st.Attempt.ThroughLSN != 60 {
		t.Fatalf("upgraded record %+v", r)
	}
	all, err := b.Checkpoint.Enabled()
	if err != nil || len(all) != 1 || all[0].Cursor != 57 {
		t.Fatalf("enabled after the upgrade: %+v, %v", all, err)
	}
	// The upgraded record keeps its settings and periods, and no longer the
	// stream state; a second open finds nothing to upgrade.
	b = b.Reopen()
	if again, err := b.Settings.Get("acme"); err != nil || !settingstest.Same(t, again, r) {
		t.Fatalf("after a second open %+v, want %+v (%v)", again, r, err)
	}
	if err := b.Checkpoint.Advance("acme", 3, 60, 1, "k5", r.Stream.LastExportAt, 0); err != nil {
		t.Fatal(err)
	}
	if r, _ := b.Settings.Get("acme"); r.Stream.Cursor != 60 || r.Stream.Attempt != nil || len(r.Periods) != 2 {
		t.Fatalf("after an advance: %+v", r)
	}
}

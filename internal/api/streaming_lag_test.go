package api_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/api"
	"github.com/j1ds/j1ds/internal/exporter"
)

// lagStub is streamStub whose live status says the account's oldest
// change has waited lag (the stub's clock is streamNow).
type lagStub struct {
	*streamStub
	lag time.Duration
}

func (s *lagStub) Status(string) exporter.Live {
	return exporter.Live{Enabled: true, PendingSince: streamNow().Add(-s.lag)}
}

// TestStatusShowsLagging: an account whose oldest unexported change waited
// more than two flush intervals (a minute each here) shows lagging: true
// beside its lagSeconds; one that waited less does not.
func TestStatusShowsLagging(t *testing.T) {
	stub := &lagStub{streamStub: &streamStub{}}
	e := newEnv(t, withStreaming(stub.streamStub, nil), func(c *api.Config) { c.Streaming.Exporter = stub })
	const acct = "acme"
	base := "/api/v1/accounts/" + acct + "/data-streaming"
	admin := e.newAccount(t, acct)
	on := map[string]any{"enabled": true, "bucketName": "acme-bucket", "awsAccountId": "123456789012", "regionConfirmed": true}
	wantStatus(t, e.rest(t, admin, "POST", base+"/test-connection", map[string]any{"bucketName": "acme-bucket", "awsAccountId": "123456789012"}), http.StatusOK)
	wantStatus(t, e.rest(t, admin, "PUT", base, on), http.StatusOK)
	for _, c := range []struct {
		lag     time.Duration
		lagging bool
	}{{30 * time.Second, false}, {2 * time.Minute, false}, {2*time.Minute + time.Second, true}, {time.Hour, true}} {
		stub.lag = c.lag
		r := e.rest(t, admin, "GET", base, nil)
		wantStatus(t, r, http.StatusOK)
		var v struct {
			Status struct {
				LagSeconds float64 `json:"lagSeconds"`
				Lagging    *bool   `json:"lagging"`
			} `json:"status"`
		}
		if err := json.Unmarshal(r.Body, &v); err != nil {
			t.Fatal(err)
		}
		if v.Status.Lagging == nil {
			t.Fatalf("lag %s: the status has no lagging field: %s", c.lag, r.Body)
		}
		if *v.Status.Lagging != c.lagging || v.Status.LagSeconds != c.lag.Seconds() {
			t.Fatalf("lag %s: status lagSeconds %v, lagging %v; want %v and %v", c.lag, v.Status.LagSeconds, *v.Status.Lagging, c.lag.Seconds(), c.lagging)
		}
	}
}

package serve

// Every answer of serve carries X-Content-Type-Options: nosniff: the
// API's, its errors, the settings page, its static files and redirect,
// the OpenAPI document and the metrics (the connection limiter's own
// answers are checked in conns_test.go and bodyrate_test.go).

import (
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestNoSniffEverywhere(t *testing.T) {
	r := startRun(t, pebbleConfig(t), slog.LevelInfo)
	cl := &http.Client{
		Timeout:       time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/healthz", "", http.StatusOK},
		{"GET", "/readyz", "", http.StatusOK},
		{"GET", "/openapi.json", "", http.StatusOK},
		{"GET", "/metrics", "", http.StatusOK},
		{"GET", "/api/v1/accounts/acme/entities", "", http.StatusUnauthorized},
		{"POST", "/persister/synchronization/jobs", "{", http.StatusUnauthorized},
		{"GET", "/no-such-path", "", http.StatusNotFound},
		{"GET", "/api/v1/accounts/a/../b/entities", "", http.StatusNotFound},
		{"DELETE", "/healthz", "", http.StatusNotFound},
		{"GET", "/", "", http.StatusFound},
		{"GET", "/settings/data-streaming", "", http.StatusOK},
		{"GET", "/settings/assets/app.js", "", http.StatusOK},
		{"GET", "/settings/assets/app.css", "", http.StatusOK},
		{"GET", "/settings/assets/missing.js", "", http.StatusNotFound},
	} {
		req, err := http.NewRequest(tc.method, r.url+tc.path, strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		res, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != tc.status || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s %s: HTTP %d (want %d), X-Content-Type-Options %q", tc.method, tc.path, res.StatusCode, tc.status, res.Header.Get("X-Content-Type-Options"))
		}
	}
}

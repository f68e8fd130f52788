package serve

// The API over TLS (--tls-cert, --tls-key): served with the test harness's
// certificates, HTTP/1.1 only; a plain request to the port is refused;
// missing, unreadable, malformed or mismatched files stop serve with an
// error naming the flag and the file.

import (
	"bytes"
	"crypto/tls"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/j1ds/j1ds/internal/testbed/locals3"
)

func testCerts(t *testing.T) locals3.TestCerts {
	t.Helper()
	certs, err := locals3.MakeTestCerts(filepath.Join(t.TempDir(), "certs"))
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func TestServeTLS(t *testing.T) {
	certs := testCerts(t)
	cfg := pebbleConfig(t)
	cfg.TLSCert, cfg.TLSKey = certs.CertFile, certs.KeyFile
	r := startRun(t, cfg, slog.LevelInfo)
	url := strings.Replace(r.url, "http://", "https://", 1)

	cl := &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: certs.CAPool},
		ForceAttemptHTTP2: true,
	}}
	res, err := cl.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.TLS == nil || res.Proto != "HTTP/1.1" || res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("GET /healthz over TLS: HTTP %d %s, %s, TLS %v, headers %v", res.StatusCode, b, res.Proto, res.TLS != nil, res.Header)
	}
	if l := logLines(t, r.logs.String(), "j1ds serving"); len(l) != 1 || l[0]["tls"] != true {
		t.Errorf("the serving log line: %v", l)
	}

	// Plain HTTP to the TLS port gets no API answer.
	res, err = http.Get(r.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), "HTTPS") {
		t.Errorf("plain HTTP to the TLS port: HTTP %d %s", res.StatusCode, b)
	}
}

func TestTLSFlagsRefused(t *testing.T) {
	certs, other := testCerts(t), testCerts(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a PEM file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	for _, tc := range []struct {
		name      string
		cert, key string
		want      []string
	}{
		{"certificate missing", missing, certs.KeyFile, []string{"--tls-cert: cannot read " + missing, "no such file"}},
		{"key missing", certs.CertFile, missing, []string{"--tls-key: cannot read " + missing}},
		{"certificate not PEM", garbage, certs.KeyFile, []string{"--tls-cert " + garbage + " holds no PEM certificate"}},
		{"key not PEM", certs.CertFile, garbage, []string{"--tls-key " + garbage + " holds no PEM private key"}},
		{"key and certificate swapped", certs.KeyFile, certs.CertFile, []string{"--tls-cert " + certs.KeyFile + " holds no PEM certificate"}},
		{"key of another certificate", certs.CertFile, other.KeyFile, []string{"--tls-key " + other.KeyFile + " is not the private key of the certificate in --tls-cert " + certs.CertFile, "give the key the certificate was issued for"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := pebbleConfig(t)
			cfg.TLSCert, cfg.TLSKey = tc.cert, tc.key
			err := runRefused(t, cfg).Error()
			for _, want := range tc.want {
				if !strings.Contains(err, want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if _, err := os.Stat(cfg.Data); err == nil {
				t.Error("the refused start created the data directory")
			}
		})
	}

	for _, set := range []func(c *Config){
		func(c *Config) { c.TLSCert = certs.CertFile },
		func(c *Config) { c.TLSKey = certs.KeyFile },
	} {
		cfg := pebbleConfig(t)
		set(&cfg)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--tls-cert and --tls-key go together") {
			t.Errorf("one of --tls-cert and --tls-key: %v", err)
		}
	}
}

// TestTLSCertificateReadAgain: a renewed certificate written over the
// files of --tls-cert and --tls-key is served from the next look at them
// (a handshake once certCheckEvery has passed), without a restart; files
// that no longer load leave the certificate in use served, and a warning.
func TestTLSCertificateReadAgain(t *testing.T) {
	first, renewed := testCerts(t), testCerts(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	stamp := time.Now()
	put := func(cert, key []byte) {
		t.Helper()
		stamp = stamp.Add(time.Minute) // a modification time of its own
		for f, b := range map[string][]byte{certFile: cert, keyFile: key} {
			if err := os.WriteFile(f, b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f, stamp, stamp); err != nil {
				t.Fatal(err)
			}
		}
	}
	read := func(f string) []byte {
		t.Helper()
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	put(read(first.CertFile), read(first.KeyFile))

	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func() { mu.Lock(); now = now.Add(certCheckEvery); mu.Unlock() }
	var logs syncBuffer
	conf, err := loadTLS(certFile, keyFile, slog.New(slog.NewJSONHandler(&logs, nil)), clock)
	if err != nil {
		t.Fatal(err)
	}
	defaults := DefaultConfig()
	srv, _ := startAPIServer(t, http.NotFoundHandler(), defaults.limits(), conf)
	pool := first.CAPool.Clone()
	pool.AppendCertsFromPEM(read(renewed.CAFile))
	served := func() []byte {
		t.Helper()
		c, err := tls.Dial("tcp", srv.ln.Addr().String(), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Raw
	}
	leaf := func(f string) []byte {
		t.Helper()
		b, _ := pem.Decode(read(f))
		return b.Bytes
	}

	if !bytes.Equal(served(), leaf(first.CertFile)) {
		t.Fatal("the first certificate is not the one served")
	}
	put(read(renewed.CertFile), read(renewed.KeyFile))
	if !bytes.Equal(served(), leaf(first.CertFile)) {
		t.Error("the files were looked at again before certCheckEvery passed")
	}
	advance()
	if !bytes.Equal(served(), leaf(renewed.CertFile)) {
		t.Fatal("the renewed certificate is not served once certCheckEvery passed")
	}
	if !strings.Contains(logs.String(), "TLS certificate read again") {
		t.Errorf("no log line says the certificate was read again: %s", logs.String())
	}

	// A key that is not the certificate's: the renewed pair stays.
	put(read(first.CertFile), read(renewed.KeyFile))
	advance()
	if !bytes.Equal(served(), leaf(renewed.CertFile)) {
		t.Error("a pair that does not load replaced the one in use")
	}
	if !strings.Contains(logs.String(), "do not load: j1ds keeps serving the certificate it had") {
		t.Errorf("no warning names the pair that does not load: %s", logs.String())
	}
}

package serve

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certCheckEvery is how often, at most, a TLS handshake looks whether the
// files of --tls-cert and --tls-key changed.
const certCheckEvery = 10 * time.Second

// loadTLS returns the TLS configuration of the API from --tls-cert and
// --tls-key, or nil when neither is set (Validate refuses one alone).
// Its errors name the flag, the file and what to do.
//
// The files are read again when they change (looked at by a handshake at
// most every certCheckEvery), so a renewed certificate is served without
// a restart; a pair that does not load is logged and the one in use kept.
func loadTLS(certFile, keyFile string, log *slog.Logger, now func() time.Time) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log, now: now}
	pair, stamp, err := r.load()
	if err != nil {
		return nil, err
	}
	r.mu.pair, r.mu.stamp, r.mu.checked = pair, stamp, now()
	return &tls.Config{GetCertificate: r.certificate, MinVersion: tls.VersionTLS12}, nil
}

// certReloader serves the pair of --tls-cert and --tls-key, read again
// when the files change.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu struct {
		sync.Mutex
		pair    *tls.Certificate
		stamp   fileStamp // of the files pair was read from, or last refused
		checked time.Time
	}
}

// fileStamp tells whether the two files changed: their modification times
// and sizes.
type fileStamp struct {
	certMod, keyMod   time.Time
	certSize, keySize int64
}

func (r *certReloader) stamp() (fileStamp, error) {
	c, err := os.Stat(r.certFile)
	if err != nil {
		return fileStamp{}, err
	}
	k, err := os.Stat(r.keyFile)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{c.ModTime(), k.ModTime(), c.Size(), k.Size()}, nil
}

// certificate is the tls.Config's GetCertificate: the pair in use, read
// again first when the files changed since it was read.
func (r *certReloader) certificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if now.Sub(r.mu.checked) < certCheckEvery {
		return r.mu.pair, nil
	}
	r.mu.checked = now
	st, err := r.stamp()
	if err != nil || st == r.mu.stamp {
		// A file being replaced may be missing for a moment: keep the
		// pair in use and look again later.
		return r.mu.pair, nil
	}
	r.mu.stamp = st
	pair, _, err := r.load()
	if err != nil {
		r.log.Warn("the changed files of --tls-cert and --tls-key do not load: j1ds keeps serving the certificate it had; fix them (it looks again when they change)", slog.Any("err", err))
		return r.mu.pair, nil
	}
	r.mu.pair = pair
	r.log.Info("TLS certificate read again from changed files", slog.String("file", r.certFile), slog.Time("not_after", pair.Leaf.NotAfter))
	return pair, nil
}

// load reads and checks the pair, with the files' stamp from before the
// read (a change during the read is then seen at the next look).
func (r *certReloader) load() (*tls.Certificate, fileStamp, error) {
	st, _ := r.stamp()
	certPEM, err := os.ReadFile(r.certFile)
	if err != nil {
		return nil, st, fmt.Errorf("--tls-cert: cannot read %s: %w (give a readable PEM certificate file)", r.certFile, err)
	}
	keyPEM, err := os.ReadFile(r.keyFile)
	if err != nil {
		return nil, st, fmt.Errorf("--tls-key: cannot read %s: %w (give a readable PEM private key file)", r.keyFile, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, st, fmt.Errorf("--tls-cert %s holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the server's certificate, then its chain", r.certFile)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, st, fmt.Errorf("--tls-cert %s: its first certificate does not parse: %w", r.certFile, err)
	}
	if kb, _ := pem.Decode(keyPEM); kb == nil {
		return nil, st, fmt.Errorf("--tls-key %s holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)", r.keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, st, fmt.Errorf("--tls-key %s is not the private key of the certificate in --tls-cert %s (%v): give the key the certificate was issued for", r.keyFile, r.certFile, err)
	}
	if r.now().After(leaf.NotAfter) {
		r.log.Warn("the certificate of --tls-cert has expired: clients refuse it; renew it (j1ds reads the files again when they change)", slog.String("file", r.certFile), slog.Time("not_after", leaf.NotAfter))
	}
	return &pair, st, nil
}

package serve

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// loadTLS returns the TLS configuration of the API from --tls-cert and
// --tls-key, or nil when neither is set (Validate refuses one alone).
// Its errors name the flag, the file and what to do.
func loadTLS(certFile, keyFile string, log *slog.Logger, now time.Time) (*tls.Config, error) {
	if certFile == "" && keyFile == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert: cannot read %s: %w (give a readable PEM certificate file)", certFile, err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-key: cannot read %s: %w (give a readable PEM private key file)", keyFile, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("--tls-cert %s holds no PEM certificate (-----BEGIN CERTIFICATE-----): give the server's certificate, then its chain", certFile)
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s: its first certificate does not parse: %w", certFile, err)
	}
	if kb, _ := pem.Decode(keyPEM); kb == nil {
		return nil, fmt.Errorf("--tls-key %s holds no PEM private key (-----BEGIN ... PRIVATE KEY-----)", keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-key %s is not the private key of the certificate in --tls-cert %s (%v): give the key the certificate was issued for", keyFile, certFile, err)
	}
	if now.After(leaf.NotAfter) {
		log.Warn("the certificate of --tls-cert has expired: clients refuse it; renew it and restart j1ds", slog.String("file", certFile), slog.Time("not_after", leaf.NotAfter))
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

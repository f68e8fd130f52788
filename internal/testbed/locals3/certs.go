package locals3

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certFiles are the absolute paths of the PEM files one Start writes.
type certFiles struct {
	ca, cert, key string
	pool          *x509.CertPool
	pair          tls.Certificate
}

// makeCerts writes a fresh CA and a server certificate it signed, valid for
// 127.0.0.1, ::1 and localhost, into dir (which must be absolute).
func makeCerts(dir string) (certFiles, error) {
	var cf certFiles
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return cf, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cf, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "j1ds locals3 test CA", Organization: []string{"j1ds"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return cf, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return cf, err
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cf, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"j1ds"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return cf, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return cf, err
	}

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	cf.ca = filepath.Join(dir, "ca.pem")
	cf.cert = filepath.Join(dir, "server.pem")
	cf.key = filepath.Join(dir, "server-key.pem")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{cf.ca, caPEM, 0o644}, {cf.cert, certPEM, 0o644}, {cf.key, keyPEM, 0o600}} {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return cf, err
		}
	}
	cf.pool = x509.NewCertPool()
	cf.pool.AddCert(caCert)
	if cf.pair, err = tls.X509KeyPair(certPEM, keyPEM); err != nil {
		return cf, fmt.Errorf("server key pair: %w", err)
	}
	return cf, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return n
}

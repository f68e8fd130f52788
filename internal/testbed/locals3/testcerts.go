package locals3

import "crypto/x509"

// TestCerts are PEM files of a fresh CA and of a server certificate it
// signed for 127.0.0.1, ::1 and localhost: what Start gives versitygw,
// for tests that serve TLS themselves.
type TestCerts struct {
	CAFile, CertFile, KeyFile string
	// CAPool holds the CA, for clients.
	CAPool *x509.CertPool
}

// MakeTestCerts writes TestCerts into dir (absolute; created 0700).
func MakeTestCerts(dir string) (TestCerts, error) {
	cf, err := makeCerts(dir)
	if err != nil {
		return TestCerts{}, err
	}
	return TestCerts{CAFile: cf.ca, CertFile: cf.cert, KeyFile: cf.key, CAPool: cf.pool}, nil
}

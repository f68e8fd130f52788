package serve

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" for valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no data", func(c *Config) { c.Data = "" }, "--data"},
		{"bad listen", func(c *Config) { c.Listen = "8080" }, `--listen "8080"`},
		{"negative retention", func(c *Config) { c.LogRetention = -time.Second }, "--log-retention -1s"},
		{"tiny body", func(c *Config) { c.MaxBody = 10 }, "--max-body 10"},
		{"bad level", func(c *Config) { c.LogLevel = "loud" }, `--log-level "loud"`},
		{"body budget under max body", func(c *Config) { c.MaxBodyMemory = c.MaxBody - 1 }, "--max-body-memory 33554431 must be at least --max-body (33554432)"},
		{"no requests per key", func(c *Config) { c.MaxRequestsPerKey = 0 }, "--max-requests-per-key 0 must be between 1 and 65536"},
		{"no gzip ratio", func(c *Config) { c.MaxGzipRatio = 0 }, "--max-gzip-ratio 0 must be between 1 and 1048576"},
		{"tiny page", func(c *Config) { c.MaxPageBytes = 100 }, "--max-page-bytes 100 must be between 65536 and 1073741824"},
		{"short operator key", func(c *Config) { c.OperatorKey = "abc" }, "--operator-key"},
		{"no connections", func(c *Config) { c.MaxConnections = 0 }, "--max-connections 0 must be between 1 and 1048576"},
		{"negative body rate", func(c *Config) { c.MinBodyRate = -1 }, "--min-body-rate -1 must not be negative"},
		{"no body rate", func(c *Config) { c.MinBodyRate = 0 }, ""},
		{"tls cert alone", func(c *Config) { c.TLSCert = "cert.pem" }, "--tls-cert and --tls-key go together"},
		{"tls key alone", func(c *Config) { c.TLSKey = "key.pem" }, "--tls-cert and --tls-key go together"},
		{"tls", func(c *Config) { c.TLSCert, c.TLSKey = "cert.pem", "key.pem" }, ""},
		{"postgres", func(c *Config) { c.Store = "postgres://j1ds@db.example:5432/j1ds?sslmode=verify-full" }, ""},
		{"postgres without data", func(c *Config) { c.Store, c.Data = "postgresql://j1ds@db.example/j1ds", "" }, ""},
		{"not postgres", func(c *Config) { c.Store = "mysql://j1ds:secret-pw@db.example/j1ds" }, `--store (a connection string that is not a postgres:// URL, not shown): the scheme is "mysql"`},
		{"key=value", func(c *Config) { c.Store = "host=db.example password=secret-pw" }, `the scheme is ""`},
		{"bad port", func(c *Config) { c.Store = "postgres://j1ds:secret-pw@db.example:x/j1ds" }, "--store (a connection string that is not a postgres:// URL, not shown): not a URL: invalid port"},
		{"bad sslmode", func(c *Config) { c.Store = "postgres://j1ds:secret-pw@db.example/j1ds?sslmode=maybe" }, "--store postgres://j1ds:xxxxx@db.example/j1ds?sslmode=maybe: cannot parse"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("error %v, want one containing %q", err, tt.want)
			case err != nil && strings.Contains(err.Error(), "secret-pw"):
				t.Fatalf("error %v shows the password", err)
			}
		})
	}
}

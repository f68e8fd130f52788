//go:build tools

// Package tools pins the versitygw S3 server that internal/testbed/locals3
// builds and starts for tests and for `j1ds demo`. It lives in its own module
// so versitygw's dependencies never enter j1ds's go.mod.
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"

package main

import (
	"os"
	"testing"
)

// TestMain keeps the AWS SDK off the network: no instance metadata
// lookups from a test, ever.
func TestMain(m *testing.M) {
	os.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	os.Exit(m.Run())
}

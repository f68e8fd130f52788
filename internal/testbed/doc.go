// Package testbed holds no code: its subpackages are test and demo support.
//
//   - locals3 runs a real S3 server (versitygw over TLS) on loopback and a
//     recording, fault-injecting proxy in front of it.
//   - synth is a synthetic JupiterOne integration that syncs a slowly
//     changing graph through the synchronization jobs API.
//
// The end-to-end tests, `j1ds demo` and `j1ds bench` use them; `j1ds serve`
// never imports them (go list -deps ./internal/serve shows none).
package testbed

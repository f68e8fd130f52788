// Command j1ds is the j1ds service and its tools, one subcommand per file:
//
//	demo     a local S3 server, j1ds and a synthetic integration: watch objects land (demo.go)
//	serve    the graph store, its transaction log, the exporter and the APIs (serve.go; internal/serve)
//	admin    accounts and API keys through the operator API (admin.go)
//	bench    encode, export, latency, memory, cost, ingest and (with --store) cluster figures (bench.go; internal/bench)
//	policy   the bucket policy customers apply to their bucket (policy.go)
//	verify   check an account's streamed objects (verify.go; internal/verify)
//
// main dispatches to them and maps their error to the exit code: 0 on
// success, 1 for a failure, 2 for a usage error. Every flag can also be set
// with an environment variable J1DS_<FLAG> (env.go).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	// Pebble allocates with C malloc: limit glibc's arenas as the process
	// starts, before any thread allocates.
	_ "github.com/j1ds/j1ds/internal/malloc"
)

const usage = `j1ds streams the changes of a JupiterOne-style graph.

Usage:
  j1ds demo [flags]         a local S3 server, j1ds and a synthetic integration: watch objects land
  j1ds serve [flags]        run the graph store, transaction log and APIs
  j1ds admin <command>      create accounts and API keys through the operator API
  j1ds bench [flags]        measure encode, export, latency, memory, cost, ingest and, with --store, a cluster (--quick, --json)
  j1ds policy --bucket B    print the bucket policy customers apply to their bucket (--account ID,...: scoped to those accounts)
  j1ds verify [flags]       check an account's streamed objects (and --compare them with j1ds)

Run "j1ds <command> -h" for a command's flags. Every flag can also be set
with an environment variable J1DS_<FLAG> (e.g. --data is J1DS_DATA).
`

// errUsage marks a command line error: exit code 2.
var errUsage = errors.New("usage")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "j1ds:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("%w: name a command", errUsage)
	}
	switch args[0] {
	case "serve":
		return runServe(ctx, args[1:])
	case "demo":
		return runDemo(ctx, args[1:])
	case "admin":
		return runAdmin(ctx, args[1:])
	case "bench":
		return runBench(ctx, args[1:])
	case "policy":
		return runPolicy(ctx, args[1:])
	case "verify":
		return runVerify(ctx, args[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
}

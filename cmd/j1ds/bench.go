package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/j1ds/j1ds/internal/bench"
)

// runBench runs j1ds bench (internal/bench).
func runBench(ctx context.Context, args []string) error {
	c, err := benchConfig(args)
	if err != nil {
		return err
	}
	return bench.Run(ctx, c, os.Stdout, os.Stderr)
}

// benchConfig reads the bench's configuration from the command line and
// the environment: --quick shrinks every size the two leave unset.
func benchConfig(args []string) (bench.Config, error) {
	c := bench.DefaultConfig()
	fs := bench.NewFlagSet(&c)
	// The bench creates and drops databases on the server --store names:
	// never on one J1DS_STORE names for j1ds serve.
	if err := envFlags(fs, args, "store"); err != nil {
		return c, err
	}
	if c.Quick {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		keep := func(name string) bool {
			_, env := os.LookupEnv(envName(name))
			return given[name] || env
		}
		if err := bench.ApplyQuick(fs, keep); err != nil {
			return c, err
		}
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %v", errUsage, err)
	}
	return c, nil
}

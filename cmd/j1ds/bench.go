package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/j1ds/j1ds/internal/bench"
)

// runBench runs j1ds bench (internal/bench): --quick shrinks every size
// the command line and the environment leave unset.
func runBench(ctx context.Context, args []string) error {
	c := bench.DefaultConfig()
	fs := bench.NewFlagSet(&c)
	if err := envFlags(fs, args); err != nil {
		return err
	}
	if c.Quick {
		given := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
		keep := func(name string) bool {
			_, env := os.LookupEnv(envName(name))
			return given[name] || env
		}
		if err := bench.ApplyQuick(fs, keep); err != nil {
			return err
		}
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	return bench.Run(ctx, c, os.Stdout, os.Stderr)
}

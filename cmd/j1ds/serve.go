package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/j1ds/j1ds/internal/serve"
)

// runServe runs j1ds serve: the graph store, its transaction log, the
// exporter and the APIs, until ctx ends.
func runServe(ctx context.Context, args []string) error {
	cfg := serve.DefaultConfig()
	if err := envFlags(serve.NewFlagSet(&cfg), args); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	level, _ := serve.ParseLevel(cfg.LogLevel)
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	return serve.Run(ctx, cfg, log, nil)
}

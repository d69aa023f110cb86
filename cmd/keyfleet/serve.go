package main

import (
	"context"
	"io"
	"runtime/debug"

	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/service"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg service.Config
	fs := flagenv.New("serve", "Runs keyfleet: HTTP ingest and API, Kafka normalizer, ClickHouse writer.\n"+
		"With no --kafka-brokers it starts an embedded Kafka-protocol broker.")
	fs.FlagSet().SetOutput(stderr)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	debug.SetGCPercent(cfg.GCPercent)
	if cfg.MemoryLimitMiB > 0 {
		debug.SetMemoryLimit(int64(cfg.MemoryLimitMiB) << 20)
	}
	return service.Run(ctx, cfg, service.Options{Logger: logger, Stdout: stdout})
}

// usageErr passes --help through and marks other parse errors as usage errors.
func usageErr(err error) error {
	if err == nil || err.Error() == "flag: help requested" {
		return err
	}
	return usageError{err}
}

// Command keyfleet is the analytics, anomaly-detection and credential-control
// service for fleets of phone-based door keys. One binary, several
// subcommands; `keyfleet serve` runs the service.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // the detectors' site time zones work on hosts without zoneinfo
)

// command is one subcommand. run gets the arguments after the subcommand name.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the service: ingest, normalize, store, HTTP API", runServe},
		{"normalize", "normalize vendor lock events from stdin to common-schema JSON lines", runNormalize},
		{"simulate", "simulate a lock fleet and its gateways (events, registry, labels)", runSimulate},
		{"audit", "verify the admin audit log (audit verify) and export signed checkpoints of it (audit checkpoint)", runAudit},
		{"drill", "revocation drill against a running keyfleet (drill termination|lost-device|breach --subjects N)", runDrill},
		{"estate", "lock estate through a running keyfleet: migrate (vendor exit), import, export, weak-links", runEstate},
		{"detect", "backtest the detectors: --replay FILE [--rules FILE] [--labels FILE]", runDetect},
		{"token", "create, list, rotate and revoke API tokens (directly in ClickHouse)", runToken},
		{"identity", "import an HR/tenant feed into a running keyfleet (identity import FILE [--dry-run])", runIdentity},
		{"report", "weekly fleet-health report: --week 2026-W47 [--site S] --format html|md|csv|json", runReport},
		{"bench", "benchmark serve end to end on real Kafka and ClickHouse (--quick for a smoke run)", runBench},
	}
}

// usageError marks a command-line mistake (exit status 2).
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		var ue usageError
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "keyfleet %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "keyfleet %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "keyfleet: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: keyfleet <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'keyfleet <command> --help' for a command's flags.")
}

// newLogger returns the process logger (stderr; text or JSON).
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

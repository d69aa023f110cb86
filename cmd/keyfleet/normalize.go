package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
)

// maxLine is the longest input line accepted.
const maxLine = 16 << 20

type normalizeConfig struct {
	vendor       string
	registryFile string
	pseudonymKey string
	receivedMs   int64
}

func runNormalize(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var cfg normalizeConfig
	fs := flagenv.New("normalize", "Normalizes vendor lock events read from standard input, one record per line, into the common\n"+
		"access-event schema: one JSON object per event on standard output, in input order.\n\n"+
		"With --vendor each line is a bare payload of that vendor (a JSON document, or a CSV line for legacy);\n"+
		"without it each line is a raw envelope {\"vendor\",\"received_ms\",\"payload\"} as on lock.events.raw.\n"+
		"Blank lines are skipped. Each rejected line gets one message on standard error naming the line\n"+
		"number and the reason; the lines around it are still normalized. A summary line ends standard error.\n\n"+
		"Exit status: 0 when every line was processed (even if some were rejected: see the summary),\n"+
		"1 when the input could not be read, 2 for a usage error.")
	fs.FlagSet().SetOutput(stderr)
	fs.String(&cfg.vendor, "vendor", "KEYFLEET_NORMALIZE_VENDOR", "",
		"vendor of bare payloads: "+strings.Join(event.Vendors, ", ")+" (empty: lines are envelopes)")
	fs.String(&cfg.registryFile, "registry", "KEYFLEET_REGISTRY", "",
		"lock/credential registry file (JSON) to resolve sites, doors and subjects")
	fs.Secret(&cfg.pseudonymKey, "pseudonym-key", "KEYFLEET_PSEUDONYM_KEY",
		"key of the keyed hashes of vendor user references (required with --registry; the one keyfleet serve uses)")
	fs.Int64(&cfg.receivedMs, "received-ms", "KEYFLEET_NORMALIZE_RECEIVED_MS", 0,
		"received_ms of bare payloads and of envelopes without one, epoch ms (0: now)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if len(fs.Args()) > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q: input is read from standard input", fs.Args())}
	}
	adapters := vendors.Adapters()
	if _, ok := adapters[cfg.vendor]; cfg.vendor != "" && !ok {
		return usageError{fmt.Errorf("--vendor %q: want one of %s", cfg.vendor, strings.Join(sortedKeys(adapters), ", "))}
	}
	if cfg.registryFile != "" && cfg.pseudonymKey == "" {
		return usageError{errors.New("--registry needs --pseudonym-key (KEYFLEET_PSEUDONYM_KEY), the key its user references are hashed with")}
	}
	var reg normalize.Registry
	if cfg.registryFile != "" {
		r, err := registry.Load(cfg.registryFile, []byte(cfg.pseudonymKey))
		if err != nil {
			return usageError{err}
		}
		reg = r
	}
	if cfg.receivedMs == 0 {
		cfg.receivedMs = time.Now().UnixMilli()
	}
	n := normalize.New(adapters, reg, []byte(cfg.pseudonymKey))
	stats, err := normalizeLines(ctx, os.Stdin, stdout, stderr, n, cfg)
	fmt.Fprintf(stderr, "keyfleet normalize: %d lines, %d events, %d rejected\n", stats.lines, stats.events, stats.rejected)
	return err
}

type normalizeStats struct{ lines, events, rejected int }

// normalizeLines normalizes in line by line; it stops early only when ctx
// ends or the input or output fails.
func normalizeLines(ctx context.Context, in io.Reader, stdout, stderr io.Writer, n *normalize.Normalizer, cfg normalizeConfig) (normalizeStats, error) {
	var stats normalizeStats
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	out := bufio.NewWriterSize(stdout, 64<<10)
	var events []event.Access
	var buf []byte
	lineNo := 0
	for sc.Scan() {
		lineNo++
		if lineNo%4096 == 0 && ctx.Err() != nil {
			break
		}
		line := sc.Bytes()
		if len(strings.TrimSpace(string(line))) == 0 {
			continue
		}
		stats.lines++
		vendor, received, payload := cfg.vendor, cfg.receivedMs, line
		if vendor == "" {
			env, err := normalize.DecodeEnvelope(line)
			if err != nil {
				stats.rejected++
				fmt.Fprintf(stderr, "line %d: %v\n", lineNo, err)
				continue
			}
			vendor, payload = env.Vendor, env.Payload
			if env.ReceivedMs > 0 {
				received = env.ReceivedMs
			}
		}
		var err error
		events, err = n.Normalize(events[:0], vendor, received, "stdin:"+itoa(lineNo), payload)
		if err != nil {
			stats.rejected++
			fmt.Fprintf(stderr, "line %d: %v\n", lineNo, err)
			continue
		}
		for i := range events {
			buf = append(events[i].AppendJSON(buf[:0]), '\n')
			if _, err := out.Write(buf); err != nil {
				return stats, fmt.Errorf("write output: %w", err)
			}
		}
		stats.events += len(events)
	}
	if err := sc.Err(); err != nil {
		out.Flush()
		return stats, fmt.Errorf("read input line %d: %w", lineNo+1, err)
	}
	if err := out.Flush(); err != nil {
		return stats, fmt.Errorf("write output: %w", err)
	}
	return stats, ctx.Err()
}

func itoa(i int) string { return fmt.Sprint(i) }

func sortedKeys(m map[string]normalize.Adapter) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

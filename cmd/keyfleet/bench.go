package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/bench"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

const benchAbout = `Benchmarks keyfleet end to end: starts ` + "`keyfleet serve`" + ` (this binary, or --binary) as a
separate process on real Kafka and ClickHouse with its own topic prefix and database
(deleted afterwards), feeds it from the fleet simulator and measures:

  1. ingest throughput: a backlog of simulated raw records drained into ClickHouse with
     normalization and detectors running (events/s sustained, CPU s per million events of
     serve, ClickHouse and Kafka, peak RSS, a CPU profile of serve);
  2. freshness (produced → queryable) and detection latency (produced → alert) at fixed
     offered rates (--rates, plus --max-rate-fraction of the measured throughput);
  3. revocation latency with the simulated lock gateways: total, the gateways' injected
     delays, and keyfleet's own share (queueing, fan-out, ack tracking);
  4. latency of the common analyst queries under ingest and idle.

Prints a table (stdout) and writes the results as JSON (--out). The load generators,
ClickHouse, Kafka and serve share this machine's cores; the results say how busy it was.
Speed goals are reported, never enforced: the exit status is 0 unless the run failed.

  keyfleet bench                   the full run (about 10 minutes on 2 cores)
  keyfleet bench --quick           a ~2 minute smoke run on a small fleet`

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		quick                                     bool
		out, markdown, report, binary, scriptsDir string
		logLevel                                  string
		rates, chPIDs, kafkaPIDs, serveArgs       string
		fleetSizes, storeSizes                    string
		storeAlerts                               int64
		o                                         bench.Options
	)
	// --quick picks the preset the other flags' defaults come from.
	quick, _ = strconv.ParseBool(os.Getenv("KEYFLEET_BENCH_QUICK"))
	for _, a := range args {
		switch a {
		case "-quick", "--quick", "-quick=true", "--quick=true":
			quick = true
		case "-quick=false", "--quick=false":
			quick = false
		}
	}
	def := bench.DefaultOptions()
	if quick {
		def = bench.QuickOptions()
	}
	fs := flagenv.New("bench", benchAbout)
	fs.FlagSet().SetOutput(stderr)
	fs.Bool(&quick, "quick", "KEYFLEET_BENCH_QUICK", quick, "smoke run: small fleet, short phases (~2 minutes); other flags default to its preset")
	fs.String(&out, "out", "KEYFLEET_BENCH_OUT", "bench-results.json", "write the results as JSON here (empty: do not)")
	fs.String(&report, "report", "KEYFLEET_BENCH_REPORT", "", "do not run: print the table (and --markdown) of this results file")
	fs.String(&markdown, "markdown", "KEYFLEET_BENCH_MARKDOWN", "", "also write the results as Markdown tables (for BENCHMARKS.md) here")
	fs.String(&binary, "binary", "KEYFLEET_BIN", "", "keyfleet binary to run as serve (default: this executable)")
	fs.String(&scriptsDir, "scripts", "KEYFLEET_BENCH_SCRIPTS", "scripts",
		"directory of clickhouse.sh and kafka.sh, run (idempotently) when a service does not answer; empty: never")
	fs.List(&o.KafkaBrokers, "kafka-brokers", "KEYFLEET_KAFKA_BROKERS", def.KafkaBrokers, "Kafka bootstrap brokers (a real broker)")
	o.ClickHouse.RegisterFlags(fs)
	fs.String(&o.WorkDir, "work-dir", "KEYFLEET_BENCH_WORK_DIR", "", "directory for the run's files (default: a temporary one, removed afterwards)")
	fs.Bool(&o.Keep, "keep", "KEYFLEET_BENCH_KEEP", false, "keep the run's topics, database and work directory")
	fs.Int(&o.Partitions, "partitions", "KEYFLEET_BENCH_PARTITIONS", def.Partitions, "partitions of the run's topics")
	fs.Int64(&o.ThroughputRecords, "throughput-records", "KEYFLEET_BENCH_THROUGHPUT_RECORDS", def.ThroughputRecords,
		"raw records backfilled for the throughput phase (enough for ≥ 60 s at the expected rate)")
	fs.Duration(&o.MinSustained, "min-sustained", "KEYFLEET_BENCH_MIN_SUSTAINED", def.MinSustained,
		"the throughput window should last this long: a shorter one is measured again with a backlog sized from its rate, time permitting (0: never)")
	fs.Int(&o.ProfileSeconds, "profile-seconds", "KEYFLEET_BENCH_PROFILE_SECONDS", def.ProfileSeconds,
		"seconds of CPU profile of serve taken during the throughput phase (0: none)")
	fs.String(&o.ProfileOut, "profile-out", "KEYFLEET_BENCH_PROFILE_OUT", "", "copy the CPU profile here (and the heap profile beside it, with -heap before the extension; with --fleet-sizes, serve's heap after each size's load as -heap-<subjects>.pb.gz)")
	fs.String(&rates, "rates", "KEYFLEET_BENCH_RATES", joinRates(def.Rates), "fixed offered rates (records/s) of the freshness and detection phases")
	fs.Float(&o.MaxRateFraction, "max-rate-fraction", "KEYFLEET_BENCH_MAX_RATE_FRACTION", def.MaxRateFraction,
		"add a phase at this fraction of the measured throughput (0: none)")
	fs.Duration(&o.RateDuration, "rate-duration", "KEYFLEET_BENCH_RATE_DURATION", def.RateDuration, "length of each fixed-rate phase")
	fs.Float(&o.QueryRate, "query-rate", "KEYFLEET_BENCH_QUERY_RATE", def.QueryRate, "run the analyst queries during the phase at this rate (0: none)")
	fs.Int(&o.Revocations, "revocations", "KEYFLEET_BENCH_REVOCATIONS", def.Revocations, "subjects issued a credential and revoked (0: skip)")
	fs.Duration(&o.RevocationSpread, "revocation-spread", "KEYFLEET_BENCH_REVOCATION_SPREAD", def.RevocationSpread, "spread the revocations over this long")
	fs.String(&o.GatewayProfile, "gateway-profile", "KEYFLEET_BENCH_GATEWAY_PROFILE", def.GatewayProfile,
		"simulated gateway behaviour (see `keyfleet simulate --help`); the default turns off outages and shortens legacy panels' 25 s")
	fs.Int(&o.QueryRounds, "query-rounds", "KEYFLEET_BENCH_QUERY_ROUNDS", def.QueryRounds, "times each analyst query runs idle (0: skip)")
	fs.Int(&o.Sites, "sites", "KEYFLEET_BENCH_SITES", def.Sites, "simulated sites")
	fs.Int(&o.DoorsPerSite, "doors-per-site", "KEYFLEET_BENCH_DOORS_PER_SITE", def.DoorsPerSite, "doors (locks) per site")
	fs.Int(&o.Subjects, "subjects", "KEYFLEET_BENCH_SUBJECTS", def.Subjects, "simulated people")
	fs.String(&o.VendorMix, "vendor-mix", "KEYFLEET_BENCH_VENDOR_MIX", def.VendorMix, "weights of lock vendors")
	fs.Int(&o.Workers, "generators", "KEYFLEET_BENCH_GENERATORS", def.Workers, "simulators generating feeds at once")
	fs.Duration(&o.Timeout, "timeout", "KEYFLEET_BENCH_TIMEOUT", def.Timeout, "stop the run after this long")
	fs.Int(&o.BaselineRounds, "baseline", "KEYFLEET_BENCH_BASELINE", def.BaselineRounds,
		"after the throughput phase, drain the backlog again with the baseline loop (kafka-go → JSON decode → clickhouse-go\n"+
			"        columnar insert, in bench/) and with keyfleet, interleaved, this many times each; report keyfleet/baseline (0: skip)")
	fs.String(&o.ServeHTTPAddr, "serve-http-addr", "KEYFLEET_BENCH_SERVE_HTTP_ADDR", "", "serve's --http-addr (default: a free loopback port)")
	fs.String(&chPIDs, "clickhouse-pid", "KEYFLEET_BENCH_CLICKHOUSE_PID", "",
		"ClickHouse server process(es) whose CPU is counted, comma-separated (default: the one listening on the ClickHouse port)")
	fs.String(&kafkaPIDs, "kafka-pid", "KEYFLEET_BENCH_KAFKA_PID", "",
		"Kafka broker process(es) whose CPU is counted, comma-separated (default: the one listening on the broker's port)")
	fs.String(&fleetSizes, "fleet-sizes", "KEYFLEET_BENCH_FLEET_SIZES", "",
		"instead of the run: the scaling benchmark's fleet sizes (subjects, e.g. 2k,20k,100k): time to ready, idle and loaded\n"+
			"        memory of serve per size (with --store-sizes, both)")
	fs.String(&storeSizes, "store-sizes", "KEYFLEET_BENCH_STORE_SIZES", "",
		"instead of the run: the scaling benchmark's stored events (e.g. 10M,30M,100M): the analyst queries' latency per size")
	fs.Int64(&storeAlerts, "store-alerts", "KEYFLEET_BENCH_STORE_ALERTS", 1_000_000, "alerts stored beside the events of --store-sizes")
	fs.String(&serveArgs, "serve-args", "KEYFLEET_BENCH_SERVE_ARGS", "", "extra flags for keyfleet serve, space-separated (e.g. \"--access-events topic\")")
	fs.String(&logLevel, "log-level", "KEYFLEET_LOG_LEVEL", "info", "progress log level on stderr: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if len(fs.Args()) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Args()[0])}
	}
	if report != "" {
		data, err := os.ReadFile(report)
		if err != nil {
			return fmt.Errorf("--report: %w", err)
		}
		var res bench.Results
		if err := json.Unmarshal(data, &res); err != nil {
			return fmt.Errorf("--report %s: %w", report, err)
		}
		bench.WriteTable(stdout, &res)
		return writeMarkdown(markdown, &res)
	}
	o.Seed, o.Mode = def.Seed, def.Mode
	var err error
	if o.ClickHousePIDs, err = parsePIDs(chPIDs); err != nil {
		return usageError{fmt.Errorf("--clickhouse-pid: %w", err)}
	}
	if o.KafkaPIDs, err = parsePIDs(kafkaPIDs); err != nil {
		return usageError{fmt.Errorf("--kafka-pid: %w", err)}
	}
	o.ServeArgs = strings.Fields(serveArgs)
	if o.Rates, err = bench.ParseRates(rates); err != nil {
		return usageError{fmt.Errorf("--rates: %w", err)}
	}
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find this executable: %w", err)
		}
	}
	o.Binary = binary
	if scriptsDir != "" {
		if st, err := os.Stat(filepath.Join(scriptsDir, "kafka.sh")); err == nil && !st.IsDir() {
			o.ScriptsDir = scriptsDir
		}
	}
	o.Logger = newLogger(stderr, logLevel, "text")
	if err := o.Validate(); err != nil {
		return usageError{err}
	}
	if fleetSizes != "" || storeSizes != "" {
		so := bench.ScaleOptions{Options: o, StoreAlerts: uint64(max(storeAlerts, 0))}
		fsz, err := bench.ParseSizes(fleetSizes)
		if err != nil {
			return usageError{fmt.Errorf("--fleet-sizes: %w", err)}
		}
		for _, n := range fsz {
			so.FleetSizes = append(so.FleetSizes, int(n))
		}
		if so.StoreSizes, err = bench.ParseSizes(storeSizes); err != nil {
			return usageError{fmt.Errorf("--store-sizes: %w", err)}
		}
		sc, err := bench.RunScaling(ctx, so)
		if sc != nil {
			bench.WriteScaling(stdout, sc)
			if out != "" {
				data, merr := json.MarshalIndent(sc, "", "  ")
				if merr == nil {
					merr = os.WriteFile(out, append(data, '\n'), 0o644)
				}
				err = errors.Join(err, merr)
			}
		}
		return err
	}
	res, runErr := bench.Run(ctx, o)
	if res == nil {
		return runErr
	}
	res.Command = "keyfleet bench " + strings.Join(args, " ")
	bench.WriteTable(stdout, res)
	if out != "" {
		data, err := json.MarshalIndent(res, "", "  ")
		if err != nil {
			return errors.Join(runErr, err)
		}
		if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
			return errors.Join(runErr, fmt.Errorf("--out: %w", err))
		}
		fmt.Fprintf(stderr, "results written to %s\n", out)
	}
	return errors.Join(runErr, writeMarkdown(markdown, res))
}

func writeMarkdown(path string, res *bench.Results) error {
	if path == "" {
		return nil
	}
	var b bytes.Buffer
	bench.WriteMarkdown(&b, res)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--markdown: %w", err)
	}
	return nil
}

func parsePIDs(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("%q is not a process id", f)
		}
		out = append(out, pid)
	}
	return out, nil
}

func joinRates(rs []float64) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatFloat(r, 'f', -1, 64)
	}
	return strings.Join(parts, ",")
}

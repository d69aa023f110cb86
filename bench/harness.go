// Package bench measures keyfleet end to end, the way it is deployed: the
// real `keyfleet serve` binary as a separate process on real Kafka and
// ClickHouse, fed by the fleet simulator (sim).
//
// Run is the harness behind `keyfleet bench` and `make bench`. A run has its
// own topic prefix and ClickHouse database (deleted afterwards) and goes
// through these phases:
//
//  1. throughput: the simulator backfills N raw records of a realistic
//     vendor mix into lock.events.raw before serve starts; serve then drains
//     the backlog with normalization and detectors running, and the harness
//     reports the sustained rate of rows stored in ClickHouse, CPU seconds
//     per million events (serve, ClickHouse, Kafka) and peak RSS, and takes
//     a CPU profile of serve;
//  2. fixed offered rates (20k/s, ~85% of the measured maximum, 100k/s):
//     pre-generated records are produced at the rate with received_ms
//     stamped at produce time; freshness is inserted_ms − received_ms of the
//     stored rows, detection latency is detected_ms − source_received_ms of
//     the alerts raised (and the keyfleet_detect_latency_seconds histogram);
//     the analyst queries run during the 20k/s phase ("under ingest");
//  3. revocation: credentials are issued through the API, the simulated lock
//     gateways (sim/locks) acknowledge on lock.acks with their
//     vendors' injected delays, subjects are revoked through the API; total
//     latency, the gateways' injected delays and keyfleet's own share come
//     from the control plane's tables (revocation_requests,
//     revocation_locks, lock_acks);
//  4. the analyst queries again, idle.
//
// Speed targets are reported against the performance goals, never asserted.
// The load generators, ClickHouse, Kafka and serve share the machine's
// cores; the results say how busy the machine was.
package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
)

// Options configure a run. DefaultOptions and QuickOptions give the two
// presets; zero fields of a hand-made Options take the defaults' values
// where noted.
type Options struct {
	// Binary is the keyfleet executable to run as serve (required).
	Binary string
	// KafkaBrokers and ClickHouse say where the services are.
	KafkaBrokers []string
	// ClickHouse is where ClickHouse is; each run uses its own database
	// (kfbench_<id>), not ClickHouse.Database.
	ClickHouse chstorage.Config
	// ScriptsDir, when set, holds clickhouse.sh and kafka.sh: they are run
	// (idempotent) when a service does not answer.
	ScriptsDir string
	// WorkDir holds the run's files (registry, pools, serve log, profile);
	// a temporary directory (removed afterwards) when empty.
	WorkDir string
	// Keep keeps the topics, the database and the work directory.
	Keep bool
	// Partitions of the run's topics (serve's --topic-partitions).
	Partitions int
	// ServeArgs are extra flags for keyfleet serve.
	ServeArgs []string
	// ServeHTTPAddr is serve's --http-addr (default: a free loopback port).
	ServeHTTPAddr string
	// ClickHousePIDs and KafkaPIDs are the server processes whose CPU the
	// results count. Empty: the processes listening on the ClickHouse and
	// Kafka ports the run uses (never every process of that name: another
	// ClickHouse on the machine is not this run's).
	ClickHousePIDs []int
	KafkaPIDs      []int

	// BaselineRounds > 0 measures, after the throughput phase, the baseline
	// loop (bench's minimal kafka-go → JSON decode → clickhouse-go columnar
	// insert, on the same backlog, broker and ClickHouse) and keyfleet
	// again, interleaved (baseline, keyfleet, baseline, …) this many times,
	// and reports keyfleet/baseline ratios of the medians.
	BaselineRounds int

	// The simulated fleet.
	Seed         uint64
	Sites        int
	DoorsPerSite int
	Subjects     int
	VendorMix    string
	// Workers is how many simulators generate at once.
	Workers int

	// ThroughputRecords are backfilled before serve starts; the sustained
	// window should be at least MinSustained (a shorter one is reported).
	ThroughputRecords int64
	MinSustained      time.Duration
	// ProfileSeconds of CPU profile are taken during the throughput phase
	// (0: none); ProfileOut, when set, receives a copy of it.
	ProfileSeconds int
	ProfileOut     string

	// Rates are the fixed offered rates (records/s) of the freshness and
	// detection phases, each for RateDuration; MaxRateFraction > 0 adds a
	// phase at that fraction of the measured throughput.
	Rates           []float64
	MaxRateFraction float64
	RateDuration    time.Duration
	// QueryRate is the offered rate the analyst queries run under (one of
	// Rates; 0: no queries under ingest).
	QueryRate float64

	// Revocations is the number of subjects issued a credential and
	// revoked, spread over RevocationSpread; GatewayProfile overrides the
	// simulated gateways' behaviour (see `keyfleet simulate --help`).
	Revocations      int
	RevocationSpread time.Duration
	GatewayProfile   string

	// QueryRounds is how many times each analyst query runs idle.
	QueryRounds int

	// Timeout bounds the whole run.
	Timeout time.Duration
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
	// Mode names the preset in the results.
	Mode string
}

// DefaultOptions is the full run (about 8-10 minutes on a 2-core machine).
func DefaultOptions() Options {
	return Options{
		KafkaBrokers: []string{"127.0.0.1:19092"}, ClickHouse: chstorage.Config{Addr: chstorage.DefaultAddr, Username: "default"},
		Partitions: 4, Seed: 1, Sites: 20, DoorsPerSite: 80, Subjects: 8000,
		VendorMix: "matter=30,nuki=20,schlage=20,seam=15,legacy=15", Workers: 2,
		ThroughputRecords: 6_000_000, MinSustained: 60 * time.Second, ProfileSeconds: 20,
		Rates: []float64{20_000}, MaxRateFraction: 0.5, RateDuration: 20 * time.Second, QueryRate: 20_000,
		Revocations: 200, RevocationSpread: 20 * time.Second,
		GatewayProfile: "legacy.latency=2s," + noOutages,
		QueryRounds:    20, BaselineRounds: 3, Timeout: 50 * time.Minute, Mode: "default",
	}
}

// QuickOptions is a smoke run of about two minutes: the same phases on a
// small fleet and short feeds (the numbers are not comparable with a full
// run's).
func QuickOptions() Options {
	o := DefaultOptions()
	o.Sites, o.DoorsPerSite, o.Subjects = 4, 40, 600
	o.ThroughputRecords, o.MinSustained, o.ProfileSeconds = 400_000, 0, 5
	o.Rates, o.MaxRateFraction, o.RateDuration, o.QueryRate = []float64{5_000, 20_000}, 0, 10*time.Second, 5_000
	o.Revocations, o.RevocationSpread = 20, 5*time.Second
	o.QueryRounds, o.Timeout, o.Mode = 5, 10*time.Minute, "quick"
	o.BaselineRounds = 1
	return o
}

// noOutages turns off the simulated gateways' offline periods and lost
// commands, so every lock acknowledges within the run.
const noOutages = "matter.offline=0,nuki.offline=0,schlage.offline=0,seam.offline=0,legacy.offline=0,legacy.miss=0"

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Binary == "" {
		errs = append(errs, errors.New("the keyfleet binary is required"))
	}
	if len(o.KafkaBrokers) == 0 || o.ClickHouse.Addr == "" {
		errs = append(errs, errors.New("Kafka brokers and the ClickHouse address are required"))
	}
	if o.ThroughputRecords < 1 {
		errs = append(errs, errors.New("throughput records must be positive"))
	}
	if o.Sites < 1 || o.DoorsPerSite < 1 || o.Subjects < 1 {
		errs = append(errs, errors.New("the fleet needs sites, doors and subjects"))
	}
	for _, r := range o.Rates {
		if r <= 0 {
			errs = append(errs, fmt.Errorf("rate %g must be positive", r))
		}
	}
	if o.MaxRateFraction < 0 || o.MaxRateFraction > 1 {
		errs = append(errs, errors.New("the max-rate fraction is in 0..1"))
	}
	if (len(o.Rates) > 0 || o.MaxRateFraction > 0) && o.RateDuration <= 0 {
		errs = append(errs, errors.New("rate phases need a duration"))
	}
	if o.Revocations < 0 || o.QueryRounds < 0 || o.ProfileSeconds < 0 {
		errs = append(errs, errors.New("revocations, query rounds and profile seconds must not be negative"))
	}
	if o.Timeout <= 0 {
		errs = append(errs, errors.New("a timeout is required (a run stops by itself)"))
	}
	return errors.Join(errs...)
}

// run is the state of one benchmark run.
type run struct {
	o       Options
	logger  *slog.Logger
	res     *Results
	id      string
	dir     string
	bc      bus.Config
	chCfg   chstorage.Config
	conn    driver.Conn
	fleet   *fleet.Fleet
	gen     *generator
	tl      *timeline
	srv     *server
	sampler *sampler
	gw      *locks.Set
	stopGW  func()
	chPIDs  []int
	kPIDs   []int
	// extraDBs are the databases of comparison rounds (dropped at cleanup).
	extraDBs []string
	// ca mints the bench phones' attestations; serve trusts its roots.
	ca *attesttest.CA
}

// pseudonymKey keys the user-reference hashes of the run's serve and
// simulator (they must agree); it is a benchmark constant, not a secret.
const pseudonymKey = "keyfleet-bench-pseudonym-key-v1"

// Run runs the benchmark and returns its results. Partial results are
// returned with the error when a phase fails.
func Run(ctx context.Context, o Options) (*Results, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o.Workers = max(1, o.Workers)
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	r := &run{o: o, logger: logger, id: newID(), res: newResults(o)}
	start := time.Now()
	err := r.run(ctx)
	r.cleanup()
	r.res.Seconds = time.Since(start).Seconds()
	r.res.Machine.LoadAvgEnd = loadAvg()
	r.res.Goals = goals(r.res)
	if err != nil {
		r.res.Error = err.Error()
	}
	return r.res, err
}

func newID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (r *run) run(ctx context.Context) error {
	if err := r.prepare(ctx); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	if err := r.throughput(ctx, r.o.ThroughputRecords, true); err != nil {
		return fmt.Errorf("throughput: %w", err)
	}
	if n, ok := r.secondRound(ctx); ok {
		first := *r.res.Throughput
		r.note("throughput: the first backlog (%s records) was drained at %s events/s in a %.0f s window, shorter than %s: "+
			"measured again with %s records (pass --throughput-records to size it up front)",
			thousands(float64(first.RawRecords)), thousands(first.EventsPerSecond), first.WindowSeconds, r.o.MinSustained, thousands(float64(n)))
		total, feeds := r.rateFeeds()
		r.tl.makeRoom(n+total, (feeds+1)*r.o.Workers)
		if err := r.throughput(ctx, n, false); err != nil {
			return fmt.Errorf("throughput, second round: %w", err)
		}
		if t := r.res.Throughput; t.WindowSeconds < r.o.MinSustained.Seconds() {
			r.note("throughput: the second round's window was still %.0f s", t.WindowSeconds)
		}
	}
	if r.o.BaselineRounds > 0 {
		if err := r.compare(ctx); err != nil {
			return fmt.Errorf("comparison with the baseline loop: %w", err)
		}
	}
	rates := append([]float64(nil), r.o.Rates...)
	if f := r.o.MaxRateFraction; f > 0 && r.res.Throughput != nil && r.res.Throughput.EventsPerSecond > 0 {
		r.res.FractionRate = min(maxRate, roundRate(f*r.res.Throughput.EventsPerSecond))
		rates = insertRate(rates, r.res.FractionRate)
	}
	for _, rate := range rates {
		if err := r.ratePhase(ctx, rate); err != nil {
			return fmt.Errorf("rate %.0f/s: %w", rate, err)
		}
	}
	if r.o.Revocations > 0 {
		if err := r.revocation(ctx); err != nil {
			return fmt.Errorf("revocation: %w", err)
		}
	}
	if r.o.QueryRounds > 0 {
		if err := r.queriesIdle(ctx); err != nil {
			return fmt.Errorf("queries: %w", err)
		}
	}
	return nil
}

// rateFeeds returns the most records the fixed-rate phases may generate
// and the number of phases.
func (r *run) rateFeeds() (int64, int) {
	var total int64
	for _, rate := range r.o.Rates {
		total += rateFeed(rate, r.o.RateDuration)
	}
	feeds := len(r.o.Rates)
	if r.o.MaxRateFraction > 0 {
		total, feeds = total+rateFeed(maxRate, r.o.RateDuration), feeds+1
	}
	return total, feeds
}

// secondRound says whether the throughput window was shorter than
// MinSustained and there is time to measure again with a backlog sized from
// the first round's rate (for about 1.35 × MinSustained), and with how many
// records.
func (r *run) secondRound(ctx context.Context) (int64, bool) {
	t := r.res.Throughput
	if r.o.MinSustained <= 0 || t == nil || t.EventsPerSecond <= 0 || t.WindowSeconds >= r.o.MinSustained.Seconds() {
		return 0, false
	}
	n := int64(t.EventsPerSecond * r.o.MinSustained.Seconds() * 1.35)
	// Generation and production (~100k records/s together), draining,
	// serve's restart; the later phases need about 6 minutes.
	need := time.Duration((float64(n)/100_000+float64(n)/t.EventsPerSecond+30)*float64(time.Second)) + 6*time.Minute
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < need {
		r.note("throughput: the window was %.0f s, shorter than %s, and there is no time left to measure again: "+
			"pass --throughput-records %d (and a longer --timeout)", t.WindowSeconds, r.o.MinSustained, n)
		return 0, false
	}
	return n, true
}

// maxRate caps the max-rate phase (records/s).
const maxRate = 400_000

// ParseRates parses a list of rates (records/s) such as "20000,100k".
func ParseRates(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(f)), "/s")
		if f == "" {
			continue
		}
		mult := 1.0
		if v, ok := strings.CutSuffix(f, "k"); ok {
			f, mult = v, 1000
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%q: want positive numbers of records/s (k for thousands)", f)
		}
		out = append(out, v*mult)
	}
	return out, nil
}

// insertRate adds rate to the sorted list unless one within 15% is there.
func insertRate(rates []float64, rate float64) []float64 {
	for _, x := range rates {
		if rate > 0.85*x && rate < 1.15*x {
			return rates
		}
	}
	out := append(rates, rate)
	for i := len(out) - 1; i > 0 && out[i] < out[i-1]; i-- {
		out[i], out[i-1] = out[i-1], out[i]
	}
	return out
}

// roundRate rounds a rate to two significant digits.
func roundRate(x float64) float64 {
	unit := 1.0
	for x/unit >= 100 {
		unit *= 10
	}
	return float64(int64(x/unit+0.5)) * unit
}

// prepare checks the services, lays out the run (ids, work directory,
// topics), builds the fleet and its registry file.
func (r *run) prepare(ctx context.Context) error {
	o := r.o
	r.bc = bus.Config{Brokers: o.KafkaBrokers, TopicPrefix: "kfbench." + r.id + ".", Partitions: o.Partitions}
	r.chCfg = o.ClickHouse
	r.chCfg.Database = r.baseDB()
	if err := r.ensureServices(ctx); err != nil {
		return err
	}
	r.res.Machine.ClickHouseVersion = r.clickHouseVersion(ctx)
	r.chPIDs, r.kPIDs = o.ClickHousePIDs, o.KafkaPIDs
	if len(r.chPIDs) == 0 {
		r.chPIDs = listenerPIDs(portOf(o.ClickHouse.Addr))
	}
	if len(r.kPIDs) == 0 {
		r.kPIDs = listenerPIDs(portOf(o.KafkaBrokers[0]))
	}
	if len(r.chPIDs) == 0 || len(r.kPIDs) == 0 {
		r.note("no process found listening on ClickHouse's (%v) or Kafka's (%v) port: pass --clickhouse-pid/--kafka-pid; "+
			"their CPU is not counted", r.chPIDs, r.kPIDs)
	}
	r.res.Setup.ClickHousePIDs, r.res.Setup.KafkaPIDs = r.chPIDs, r.kPIDs
	if r.res.Machine.KafkaVersion == "" { // the broker was started just now
		r.res.Machine.KafkaVersion = kafkaVersion()
	}
	r.dir = o.WorkDir
	if r.dir == "" {
		d, err := os.MkdirTemp("", "keyfleet-bench-")
		if err != nil {
			return err
		}
		r.dir = d
	} else if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return err
	}
	r.res.Setup.TopicPrefix, r.res.Setup.Database, r.res.Setup.WorkDir = r.bc.TopicPrefix, r.chCfg.Database, r.dir
	if err := createTopics(ctx, r.bc); err != nil {
		return err
	}

	mix, err := fleet.ParseVendorMix(o.VendorMix)
	if err != nil {
		return err
	}
	start := time.Now()
	r.fleet, err = fleet.Generate(fleet.Options{Seed: o.Seed, Sites: o.Sites, DoorsPerSite: o.DoorsPerSite,
		Subjects: o.Subjects, VendorMix: mix, SpareDevices: 2})
	if err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if err := sim.WriteFleetRegistry(filepath.Join(r.dir, "registry.json"), r.fleet); err != nil {
		return err
	}
	profiles, err := locks.ParseProfiles(locks.DefaultProfiles(), o.GatewayProfile)
	if err != nil {
		return fmt.Errorf("gateway profile: %w", err)
	}
	r.gen = &generator{fleet: r.fleet, key: []byte(pseudonymKey), profiles: profiles, logger: r.logger, workers: o.Workers}
	// About 12 records per subject and simulated day (the simulator's
	// role mix); windows are sized generously from it. The max-rate phase
	// is not known yet: room is made for maxRate.
	total, feeds := r.rateFeeds()
	r.tl = newTimeline(time.Now, 12*float64(o.Subjects), total+o.ThroughputRecords, (feeds+1)*o.Workers)
	st := &r.res.Setup
	st.Sites, st.Locks, st.Subjects, st.VendorMix = len(r.fleet.Sites), len(r.fleet.Locks), len(r.fleet.Subjects), o.VendorMix
	st.Partitions, st.GatewayProfile, st.Workers = o.Partitions, o.GatewayProfile, o.Workers
	r.logger.Info("fleet ready", "sites", st.Sites, "locks", st.Locks, "subjects", st.Subjects,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// ensureServices checks ClickHouse and Kafka answer, starting them with the
// project's scripts when they do not (and scripts are available).
func (r *run) ensureServices(ctx context.Context) error {
	check := func() error {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		conn, err := chstorage.Open(pctx, r.serverConfig())
		if err != nil {
			return err
		}
		conn.Close()
		client := &kafka.Client{Addr: kafka.TCP(r.o.KafkaBrokers...), Timeout: 10 * time.Second}
		if _, err := client.Metadata(pctx, &kafka.MetadataRequest{}); err != nil {
			return fmt.Errorf("kafka at %v: %w", r.o.KafkaBrokers, err)
		}
		return nil
	}
	err := check()
	if err == nil || r.o.ScriptsDir == "" {
		return err
	}
	r.logger.Info("starting services with the project's scripts", "why", err)
	for _, script := range []string{"clickhouse.sh", "kafka.sh"} {
		cmd := exec.CommandContext(ctx, filepath.Join(r.o.ScriptsDir, script), "start")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("%s start: %w: %s", script, err, out)
		}
	}
	return check()
}

var (
	serverVersionSQL = chstorage.Query("bench/server_version")
	dropDatabaseSQL  = chstorage.Query("bench/drop_database")
)

func (r *run) clickHouseVersion(ctx context.Context) string {
	conn, err := chstorage.Open(ctx, r.serverConfig())
	if err != nil {
		return ""
	}
	defer conn.Close()
	var v string
	_ = serverVersionSQL.QueryRow(ctx, conn, nil).Scan(&v)
	return v
}

// startServe starts keyfleet serve, connects to its database and starts
// the resource sampler and the simulated gateways.
func (r *run) startServe(ctx context.Context) error {
	token := "kfbench-" + newID() + newID() + newID() + newID()
	// Credentials are activated with verified attestation: serve trusts a
	// test CA the revocation phase mints App Attest evidence with.
	caDir := filepath.Join(r.dir, "attest")
	ca, err := attesttest.LoadOrNew(caDir, time.Now())
	if err != nil {
		return err
	}
	r.ca = ca
	extra := append([]string{"--attest-apple-roots", filepath.Join(caDir, attesttest.FileAppleRoots),
		"--attest-apple-app-ids", attesttest.AppID}, r.o.ServeArgs...)
	srv, err := startServe(ctx, serveConfig{binary: r.o.Binary, brokers: r.o.KafkaBrokers, prefix: r.bc.TopicPrefix,
		partitions: r.o.Partitions, chAddr: r.o.ClickHouse.Addr, chDatabase: r.chCfg.Database, chUser: r.o.ClickHouse.Username,
		chPassword: r.o.ClickHouse.Password, registry: filepath.Join(r.dir, "registry.json"), dataDir: filepath.Join(r.dir, "serve"),
		logPath: filepath.Join(r.dir, "serve.log"), token: token, key: pseudonymKey, extra: extra,
		httpAddr: r.o.ServeHTTPAddr, readyWait: 3*time.Minute + time.Duration(r.o.Subjects/100_000)*time.Minute})
	if err != nil {
		return err
	}
	r.srv = srv
	r.res.Setup.ServeCommand = "keyfleet serve --kafka-brokers " + strings.Join(r.o.KafkaBrokers, ",") +
		" --topic-prefix " + r.bc.TopicPrefix + " --topic-partitions " + fmt.Sprint(r.o.Partitions) +
		" --clickhouse-database " + r.chCfg.Database + " --registry registry.json --access-log=false --log-level warn " +
		strings.Join(r.o.ServeArgs, " ")
	conn, err := chstorage.Open(ctx, r.chCfg)
	if err != nil {
		return err
	}
	r.conn = conn
	r.sampler = newSampler(srv, r.chPIDs, r.kPIDs)
	go r.sampler.run()

	// The lock gateways of the fleet, acknowledging lock.commands on
	// lock.acks (as `keyfleet simulate gateways` does).
	startMs := time.Now().UnixMilli()
	r.gw = locks.NewSet(locks.SetOptions{Fleet: r.fleet, Profiles: r.gen.profiles, Seed: r.o.Seed, OriginMs: startMs,
		KeepAcks: true})
	runner, err := locks.NewRunner(locks.RunnerOptions{Set: r.gw, Bus: r.bc, Logger: r.logger})
	if err != nil {
		return err
	}
	gctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := runner.Run(gctx); err != nil && gctx.Err() == nil {
			r.logger.Warn("gateway simulators stopped", "err", err)
		}
	}()
	r.stopGW = func() { stop(); <-done }
	return nil
}

// stopServe stops serve (for a restart), its sampler and the gateways.
func (r *run) stopServe() {
	if r.stopGW != nil {
		r.stopGW()
		r.stopGW = nil
	}
	if r.sampler != nil {
		r.sampler.stop()
	}
	if r.srv != nil {
		r.srv.stop()
	}
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
}

// cleanup records serve's totals, stops what the run started and deletes
// its topics, consumer groups, database and work directory (unless Keep).
func (r *run) cleanup() {
	if r.stopGW != nil {
		r.stopGW()
	}
	if r.sampler != nil {
		r.sampler.stop()
	}
	if r.srv != nil && r.srv.alive() {
		cpu, _ := procCPU(r.srv.pid())
		_, hwm, _ := procMem(r.srv.pid())
		r.res.Serve.CPUSeconds, r.res.Serve.PeakRSSBytes = cpu, hwm
		r.res.Serve.PeakRSSMiB = float64(hwm) / (1 << 20)
		r.srv.stop()
		if r.srv.waitErr != nil {
			r.note("keyfleet serve's shutdown (SIGTERM) ended with %v", r.srv.waitErr)
		}
	}
	if r.conn != nil {
		r.conn.Close()
	}
	if r.o.Keep || r.bc.TopicPrefix == "" {
		return
	}
	// Each step gets its own time: dropping a database of millions of rows
	// in several tables can take ClickHouse half a minute or more.
	step := func(d time.Duration, what string, fn func(context.Context) error) {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		if err := fn(ctx); err != nil {
			r.note("cleanup: %s: %v", what, err)
		}
	}
	step(time.Minute, "delete topics", func(ctx context.Context) error { return deleteTopics(ctx, r.bc) })
	step(time.Minute, "delete consumer groups", func(ctx context.Context) error { return deleteGroups(ctx, r.bc) })
	for _, db := range append([]string{r.baseDB()}, r.extraDBs...) {
		step(5*time.Minute, "drop database "+db, func(ctx context.Context) error {
			conn, err := chstorage.Open(ctx, r.serverConfig())
			if err != nil {
				return err
			}
			defer conn.Close()
			return dropDatabaseSQL.Exec(ctx, conn, chstorage.Args{"database": db})
		})
	}
	if r.o.WorkDir == "" && r.dir != "" {
		os.RemoveAll(r.dir)
	}
}

// deleteGroups deletes the run's consumer groups.
func deleteGroups(ctx context.Context, bc bus.Config) error {
	client := &kafka.Client{Addr: kafka.TCP(bc.Brokers...), Timeout: 30 * time.Second}
	resp, err := client.ListGroups(ctx, &kafka.ListGroupsRequest{})
	if err != nil {
		return err
	}
	var ids []string
	for _, g := range resp.Groups {
		if strings.HasPrefix(g.GroupID, bc.TopicPrefix) {
			ids = append(ids, g.GroupID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	_, err = client.DeleteGroups(ctx, &kafka.DeleteGroupsRequest{GroupIDs: ids})
	return err
}

// sample is one reading of serve and the machine.
type sample struct {
	at        time.Time
	serveCPU  float64
	rss       int64
	rows      float64 // keyfleet_clickhouse_rows_inserted_total{table="access_events"}
	consumed  float64 // keyfleet_pipeline_records_consumed_total
	busy      float64 // machine CPU seconds busy
	chCPU     float64
	kafkaCPU  float64
	benchCPU  float64 // this process (the load generators)
	scrapeErr error
}

// sampler reads serve's CPU, RSS and row counters every second.
type sampler struct {
	srv      *server // nil: this process (the baseline loop), rows from rows
	rows     atomic.Int64
	chPids   []int
	kPids    []int
	mu       sync.Mutex
	samples  []sample
	done     chan struct{}
	stopOnce sync.Once
	stopped  chan struct{}
}

func newSampler(srv *server, chPIDs, kPIDs []int) *sampler {
	return &sampler{srv: srv, chPids: chPIDs, kPids: kPIDs,
		done: make(chan struct{}), stopped: make(chan struct{})}
}

func (s *sampler) run() {
	defer close(s.stopped)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		s.take()
		select {
		case <-s.done:
			return
		case <-t.C:
		}
	}
}

func (s *sampler) take() sample {
	sm := sample{at: time.Now()}
	if s.srv == nil { // the baseline loop runs in this process
		sm.serveCPU, _ = procCPU(os.Getpid())
		sm.rss, _, _ = procMem(os.Getpid())
		sm.rows = float64(s.rows.Load())
		sm.busy, _, _ = machineCPU()
		sm.chCPU, sm.kafkaCPU = procsCPU(s.chPids), procsCPU(s.kPids)
		s.mu.Lock()
		s.samples = append(s.samples, sm)
		s.mu.Unlock()
		return sm
	}
	sm.serveCPU, _ = procCPU(s.srv.pid())
	sm.rss, _, _ = procMem(s.srv.pid())
	sm.busy, _, _ = machineCPU()
	sm.chCPU, sm.kafkaCPU = procsCPU(s.chPids), procsCPU(s.kPids)
	sm.benchCPU, _ = procCPU(os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	m, err := s.srv.scrape(ctx)
	cancel()
	if err == nil {
		sm.rows = m.sum("keyfleet_clickhouse_rows_inserted_total", `table="access_events"`)
		sm.consumed = m.sum("keyfleet_pipeline_records_consumed_total")
	}
	sm.scrapeErr = err
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.mu.Unlock()
	return sm
}

func (s *sampler) stop() {
	s.stopOnce.Do(func() {
		close(s.done)
		<-s.stopped
	})
}

// between returns the samples taken in [from, to].
func (s *sampler) between(from, to time.Time) []sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []sample
	for _, sm := range s.samples {
		if !sm.at.Before(from) && !sm.at.After(to) {
			out = append(out, sm)
		}
	}
	return out
}

// last returns the latest sample.
func (s *sampler) last() sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.samples) == 0 {
		return sample{}
	}
	return s.samples[len(s.samples)-1]
}

// consumers are serve's consumer groups and their topics.
// The detect group reads access.events only with --access-events topic (an
// empty topic otherwise: no lag).
var consumers = []bus.Consumer{
	{Group: bus.GroupNormalize, Topic: bus.TopicRaw},
	{Group: bus.GroupDetect, Topic: bus.TopicAccess},
	{Group: bus.GroupAlerts, Topic: bus.TopicAlerts},
}

// lags returns the lag of each consumer (same order as consumers).
func (r *run) lags(ctx context.Context) ([]int64, error) {
	out := make([]int64, len(consumers))
	for i, c := range consumers {
		lag, err := bus.Lag(ctx, r.bc, c)
		if err != nil {
			return nil, err
		}
		out[i] = lag
	}
	return out, nil
}

// waitDrained waits until every consumer has committed everything (or
// limit passes); it returns how long it waited and whether it drained.
func (r *run) waitDrained(ctx context.Context, limit time.Duration) (time.Duration, bool, error) {
	start := time.Now()
	for {
		if !r.srv.alive() {
			return 0, false, fmt.Errorf("%w; log %s:\n%s", errServeDied, r.srv.logPath, tail(r.srv.logPath, 20))
		}
		lags, err := r.lags(ctx)
		if err == nil {
			var total int64
			for _, l := range lags {
				total += l
			}
			if total == 0 {
				return time.Since(start), true, nil
			}
		}
		if time.Since(start) > limit {
			return time.Since(start), false, nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), false, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// note records something in the results and the log.
func (r *run) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.res.Notes = append(r.res.Notes, msg)
	r.logger.Warn(msg)
}

// baseDB is the run's first database (comparison rounds add their own).
func (r *run) baseDB() string { return "kfbench_" + r.id }

// serverConfig is the ClickHouse connection for statements outside the
// run's database.
func (r *run) serverConfig() chstorage.Config {
	c := r.o.ClickHouse
	c.Database = "default"
	return c
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/activity"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
	"github.com/keyfleet/keyfleet/sim/turnover"
	"github.com/keyfleet/keyfleet/sim/wallet"
)

// simDevPseudonymKey is `keyfleet serve`'s built-in development key (used
// when neither side is given one), so simulated credential records resolve
// against a dev server.
const simDevPseudonymKey = "keyfleet-development-pseudonym-key"

// fleetFlags are the knobs of the simulated estate, shared by `simulate`
// and `simulate gateways` (the same knobs give the same fleet).
type fleetFlags struct {
	seed         int64
	sites        int
	doorsPerSite int
	subjects     int
	vendorMix    string
	spareDevices int
	brokers      []string
	topicPrefix  string
	pseudonymKey string
	profiles     string
	logLevel     string
	scenarios    string
}

func (f *fleetFlags) register(fs *flagenv.Set) {
	fs.Int64(&f.seed, "seed", "KEYFLEET_SIM_SEED", 1, "seed of the fleet and its activity: the same seed and knobs give the same fleet and events")
	fs.Int(&f.sites, "sites", "KEYFLEET_SIM_SITES", 10, "number of sites (buildings)")
	fs.Int(&f.doorsPerSite, "doors-per-site", "KEYFLEET_SIM_DOORS_PER_SITE", 80,
		"doors (one lock each) per site: entrances, garages, amenities, service rooms, the rest unit doors")
	fs.Int(&f.subjects, "subjects", "KEYFLEET_SIM_SUBJECTS", 2000,
		"people in the fleet (residents, guests, contractors, maintenance, cleaning, concierge, staff, emergency responders)")
	fs.String(&f.vendorMix, "vendor-mix", "KEYFLEET_SIM_VENDOR_MIX", "matter=30,nuki=20,schlage=20,seam=15,legacy=15",
		"weights of lock vendors")
	fs.Int(&f.spareDevices, "spare-devices", "KEYFLEET_SIM_SPARE_DEVICES", 2,
		"future phones per credential (device upgrades, device-change anomalies)")
	fs.List(&f.brokers, "kafka-brokers", "KEYFLEET_KAFKA_BROKERS", []string{"127.0.0.1:9092"},
		"Kafka bootstrap brokers (default: the embedded broker of `keyfleet serve`)")
	fs.String(&f.topicPrefix, "topic-prefix", "KEYFLEET_TOPIC_PREFIX", "", "prefix of every Kafka topic and consumer group")
	fs.Secret(&f.pseudonymKey, "pseudonym-key", "KEYFLEET_PSEUDONYM_KEY",
		"key of the user reference hashes in credential records; must match the server's (default: serve's development key)")
	fs.String(&f.profiles, "gateway-profile", "KEYFLEET_SIM_GATEWAY_PROFILE", "",
		"gateway behaviour overrides, vendor.field=value,...; fields latency (median), spread (log-normal sigma), offline (fraction), "+
			"offline-mean, miss (lost command rate); e.g. legacy.latency=40s,legacy.miss=0.05,nuki.offline=0.05")
	fs.String(&f.logLevel, "log-level", "KEYFLEET_LOG_LEVEL", "info", "debug, info, warn or error")
	fs.String(&f.scenarios, "scenarios", "KEYFLEET_SIM_SCENARIOS", "",
		"newcomers to the estate, comma-separated: new-crew (a crew of a role the estate never had starts on day 4), "+
			"new-building (a site opens on day 6); each plants labelled bursts (tagged scenario in the labels file)")
}

func (f *fleetFlags) fleet() (*fleet.Fleet, error) {
	mix, err := fleet.ParseVendorMix(f.vendorMix)
	if err != nil {
		return nil, usageError{fmt.Errorf("--vendor-mix: %w", err)}
	}
	sc, err := fleet.ParseScenarios(f.scenarios)
	if err != nil {
		return nil, usageError{fmt.Errorf("--scenarios: %w", err)}
	}
	fl, err := fleet.Generate(fleet.Options{Seed: uint64(f.seed), Sites: f.sites, DoorsPerSite: f.doorsPerSite,
		Subjects: f.subjects, VendorMix: mix, SpareDevices: f.spareDevices, Scenarios: sc})
	if err != nil {
		return nil, usageError{err}
	}
	return fl, nil
}

func (f *fleetFlags) key() []byte {
	if f.pseudonymKey == "" {
		return []byte(simDevPseudonymKey)
	}
	return []byte(f.pseudonymKey)
}

func (f *fleetFlags) bus() (bus.Config, error) {
	c := bus.Config{Brokers: f.brokers, TopicPrefix: f.topicPrefix, Partitions: 4}
	if err := c.Validate(); err != nil {
		return c, usageError{fmt.Errorf("--kafka-brokers: %w", err)}
	}
	return c, nil
}

// walletFlags start the simulated wallet provider (sim/wallet): the
// session-revocation webhook and the phones attesting with the test CA.
type walletFlags struct {
	addr, secret, caDir string
	failRate, forgeRate float64
	latency             time.Duration
}

func (w *walletFlags) register(fs *flagenv.Set) {
	fs.String(&w.caDir, "attest-ca", "KEYFLEET_SIM_ATTEST_CA", "",
		"directory of the test attestation CA (created if missing; its *-roots.pem are what serve's --attest-*-roots trust)")
	fs.String(&w.addr, "wallet-addr", "KEYFLEET_SIM_WALLET_ADDR", "",
		"serve the simulated wallet provider here (loopback): serve's --session-revoke-url is http://ADDR/v1/sessions/revoke, "+
			"the drill's --device-url http://ADDR (needs --attest-ca)")
	fs.Secret(&w.secret, "wallet-secret", "KEYFLEET_SIM_WALLET_SECRET", "HMAC secret of the session webhook (serve's --session-revoke-secret)")
	fs.Float(&w.failRate, "wallet-fail-rate", "KEYFLEET_SIM_WALLET_FAIL_RATE", 0.05,
		"share of session webhook calls the wallet answers 503 (keyfleet retries)")
	fs.Float(&w.forgeRate, "wallet-forge-rate", "KEYFLEET_SIM_WALLET_FORGE_RATE", 0.05,
		"share of phone attestations minted forged (keyfleet must refuse them)")
	fs.Duration(&w.latency, "wallet-latency", "KEYFLEET_SIM_WALLET_LATENCY", 80*time.Millisecond, "median time to revoke a session")
}

// ca loads or makes the test CA (nil without --attest-ca).
func (w *walletFlags) ca() (*attesttest.CA, error) {
	if w.caDir == "" {
		return nil, nil
	}
	ca, err := attesttest.LoadOrNew(w.caDir, time.Now())
	if err != nil {
		return nil, fmt.Errorf("--attest-ca: %w", err)
	}
	return ca, nil
}

// start runs the wallet service in g when --wallet-addr is set.
func (w *walletFlags) start(ctx context.Context, g *errgroup.Group, seed uint64, logger *slog.Logger) error {
	if w.addr == "" {
		return nil
	}
	if err := loopbackAddr(w.addr); err != nil {
		return usageError{fmt.Errorf("--wallet-addr: %w", err)}
	}
	ca, err := w.ca()
	if err != nil {
		return err
	}
	svc, err := wallet.New(wallet.Options{Secret: []byte(w.secret), CA: ca, FailRate: w.failRate, ForgeRate: w.forgeRate,
		Latency: w.latency, Seed: seed, Logger: logger})
	if err != nil {
		return usageError{fmt.Errorf("--wallet-*: %w", err)}
	}
	ln, err := net.Listen("tcp", w.addr)
	if err != nil {
		return fmt.Errorf("--wallet-addr: %w", err)
	}
	g.Go(func() error { return svc.Serve(ctx, ln) })
	return nil
}

func loopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q: the simulated wallet listens on loopback only", addr)
	}
	return nil
}

func (f *fleetFlags) gatewayProfiles() (map[string]locks.Profile, error) {
	p, err := locks.ParseProfiles(locks.DefaultProfiles(), f.profiles)
	if err != nil {
		return nil, usageError{fmt.Errorf("--gateway-profile: %w", err)}
	}
	return p, nil
}

const simulateAbout = `Simulates a mixed lock estate: sites, doors, locks of five vendors, people with
roles and habits, their phone keys, and the lock gateways that hold access lists.

  keyfleet simulate [flags]            play the fleet's activity
  keyfleet simulate gateways [flags]   run only the lock-gateway simulators
  keyfleet simulate score --labels FILE --alerts FILE
                                       precision/recall of alerts per anomaly type
  keyfleet simulate turnover --scim-url URL --scim-token T
                                       staff turnover: joiners, movers and leavers pushed to
                                       keyfleet's SCIM service provider over time

Time: --days N backfills N days of history ending at --end (default now), as
fast as possible or paced by --speedup. Without --days it runs in real time:
at --rate records/s (the fleet's days compressed to that rate, records stamped
with the wall clock) or, with --rate 0, at the fleet's natural pace; it stops
after --duration or --count.

Output: vendor-format raw records to lock.events.raw (keyed by lock id) unless
--no-kafka; credential lifecycle records to credential.events (keyed by
credential_id); --registry-out writes the lock/credential registry file for
'keyfleet serve --registry'; --identities-out the subjects' directory
references and display names for POST /v1/subjects/identities (raw personal
data of the simulated people: keyfleet keeps it only in subject_identities);
--replay-out writes the normalized events and
credential records for 'keyfleet detect --replay'; --labels writes the ground
truth of injected anomalies (JSON lines: type, subject_id, credential_id,
door_id, start_ms, end_ms; types unlock_burst, unattested_device_change,
use_after_revocation, denied_storm, door_forced). A summary (records per
role/day, per vendor, per day) goes to stderr, as JSON to --stats.

Gateways: every attempt is decided by the access list the lock's simulated
gateway holds. With --gateways (real time only) they also consume
lock.commands and acknowledge on lock.acks, so revocations from the control
plane change what locks decide; 'simulate gateways' runs them alone.
Ack.received_ms is when the gateway got the command, Ack.applied_ms when the
lock applied it: applied - received is the simulated delay, received -
issued_ms is keyfleet's share.

Typical: keyfleet simulate --days 14 --subjects 2000 --seed 7 --labels labels.jsonl`

func runSimulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "gateways" {
		return runSimulateGateways(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "score" {
		return runSimulateScore(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "turnover" {
		return runSimulateTurnover(ctx, args[1:], stdout, stderr)
	}
	var (
		ff                                                     fleetFlags
		wf                                                     walletFlags
		days                                                   float64
		end                                                    string
		speedup, rate, anomalyScale                            float64
		duration                                               time.Duration
		count                                                  int64
		noKafka, registryOnly, withGateways                    bool
		registryOut, identitiesOut, replayOut, labelsOut, stat string
		peopleOut                                              string
		rawOut                                                 string
	)
	fs := flagenv.New("simulate", simulateAbout)
	fs.FlagSet().SetOutput(stderr)
	ff.register(fs)
	wf.register(fs)
	fs.Float(&days, "days", "KEYFLEET_SIM_DAYS", 0, "backfill this many days of history ending at --end (0: real time)")
	fs.String(&end, "end", "KEYFLEET_SIM_END", "", "end of a backfill, RFC 3339 (default now); fix it for reproducible output")
	fs.Float(&speedup, "speedup", "KEYFLEET_SIM_SPEEDUP", 0,
		"pace a backfill: simulated time runs this many times faster than the wall clock (0: as fast as possible)")
	fs.Float(&rate, "rate", "KEYFLEET_SIM_RATE", 100, "real time: target records per second (0: the fleet's natural pace)")
	fs.Duration(&duration, "duration", "KEYFLEET_SIM_DURATION", 0, "real time: stop after this long (default 10m without --count)")
	fs.Int64(&count, "count", "KEYFLEET_SIM_COUNT", 0, "stop after this many raw records (any mode)")
	fs.Float(&anomalyScale, "anomaly-scale", "KEYFLEET_SIM_ANOMALY_SCALE", 1, "multiplies the rates of injected anomalies (0 disables them)")
	fs.Bool(&noKafka, "no-kafka", "KEYFLEET_SIM_NO_KAFKA", false, "do not write to Kafka (offline: --replay-out, --labels)")
	fs.Bool(&registryOnly, "registry-only", "KEYFLEET_SIM_REGISTRY_ONLY", false, "write --registry-out and exit")
	fs.Bool(&withGateways, "gateways", "KEYFLEET_SIM_GATEWAYS", false,
		"real time: also run the gateway simulators on lock.commands/lock.acks, sharing the locks' access lists")
	fs.String(&registryOut, "registry-out", "KEYFLEET_SIM_REGISTRY_OUT", "", "write the lock/credential registry file here")
	fs.String(&identitiesOut, "identities-out", "KEYFLEET_SIM_IDENTITIES_OUT", "",
		"write the subjects' identities here (a JSON array for POST /v1/subjects/identities)")
	fs.String(&peopleOut, "people-out", "KEYFLEET_SIM_PEOPLE_OUT", "",
		"write the fleet's people as an HR feed (CSV for 'keyfleet identity import': residents, staff, crews; not guests or\n"+
			"        emergency responders) here; each is linked to its simulated credentials by subject_id")
	fs.String(&replayOut, "replay-out", "KEYFLEET_SIM_REPLAY_OUT", "", "write a detect --replay file (JSON lines) here")
	fs.String(&rawOut, "raw-out", "KEYFLEET_SIM_RAW_OUT", "", "write the raw vendor envelopes (JSON lines, as on lock.events.raw) here")
	fs.String(&labelsOut, "labels", "KEYFLEET_SIM_LABELS", "", "write the anomaly labels (JSON lines) here")
	fs.String(&stat, "stats", "KEYFLEET_SIM_STATS", "", "write the run's statistics (JSON) here")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if len(fs.Args()) > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Args()[0])}
	}
	logger := newLogger(stderr, ff.logLevel, "text")
	fl, err := ff.fleet()
	if err != nil {
		return err
	}
	key := ff.key()
	if identitiesOut != "" {
		if err := sim.WriteIdentities(identitiesOut, fl); err != nil {
			return err
		}
	}
	if peopleOut != "" {
		if err := turnover.WritePeople(peopleOut, turnover.People(fl)); err != nil {
			return err
		}
	}
	if registryOnly {
		if registryOut == "" {
			return usageError{errors.New("--registry-only needs --registry-out")}
		}
		if _, err := wf.ca(); err != nil { // serve's --attest-*-roots must exist before it starts
			return err
		}
		return sim.WriteFleetRegistry(registryOut, fl)
	}
	if wf.addr != "" && days > 0 {
		return usageError{errors.New("--wallet-addr runs in real time; it cannot be combined with --days")}
	}
	profiles, err := ff.gatewayProfiles()
	if err != nil {
		return err
	}
	now := time.Now()
	o := sim.Options{Fleet: fl, Seed: uint64(ff.seed), PseudonymKey: key, Count: count, Profiles: profiles,
		AnomalyScale: anomalyScale, NoAnomalies: anomalyScale == 0, Logger: logger}
	switch {
	case days > 0:
		if withGateways {
			return usageError{errors.New("--gateways runs in real time; it cannot be combined with --days")}
		}
		endT := now
		if end != "" {
			if endT, err = time.Parse(time.RFC3339, end); err != nil {
				return usageError{fmt.Errorf("--end: %w", err)}
			}
		}
		o.Mode, o.EndMs, o.Speedup = sim.ModeBackfill, endT.UnixMilli(), speedup
		o.StartMs = o.EndMs - int64(days*float64(24*time.Hour/time.Millisecond))
	default:
		if duration == 0 && count == 0 {
			duration = 10 * time.Minute
		}
		o.Mode, o.Rate, o.Duration, o.StartMs = sim.ModeRate, rate, duration, now.UnixMilli()
		if rate == 0 {
			o.Mode = sim.ModeNatural
			if duration > 0 {
				o.EndMs = o.StartMs + duration.Milliseconds()
			}
		}
	}
	if days < 0 || rate < 0 || speedup < 0 || anomalyScale < 0 {
		return usageError{errors.New("--days, --rate, --speedup and --anomaly-scale must not be negative")}
	}

	standIn := &sim.StandIn{RegistryPath: registryOut, Fleet: fl}
	var bc bus.Config
	if !noKafka {
		if bc, err = ff.bus(); err != nil {
			return err
		}
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := bus.EnsureTopics(ectx, bc)
		cancel()
		if err != nil {
			return fmt.Errorf("kafka at %v (is `keyfleet serve` running, or pass --no-kafka): %w", bc.Brokers, err)
		}
		raw := sim.NewKafkaRaw(bc, logger)
		o.Sinks = append(o.Sinks, raw)
		records := bus.NewWriter(bc, bus.TopicCredentialEvents)
		defer records.Close()
		standIn.Records = records
	}
	o.Registrar = standIn
	var replay *sim.Replay
	if replayOut != "" {
		out, err := os.Create(replayOut)
		if err != nil {
			return fmt.Errorf("--replay-out: %w", err)
		}
		defer out.Close()
		replay = sim.NewReplay(out, normalize.New(vendors.Adapters(), sim.Resolver(fl, key), key))
		o.Sinks = append(o.Sinks, replay)
	}
	if rawOut != "" {
		out, err := os.Create(rawOut)
		if err != nil {
			return fmt.Errorf("--raw-out: %w", err)
		}
		defer out.Close()
		o.Sinks = append(o.Sinks, sim.NewRawFile(out))
	}
	o.Progress = func(st sim.Stats) {
		logger.Info("simulating", "records", st.Records, "sim_time", time.UnixMilli(st.SimEndMs).UTC().Format(time.RFC3339))
	}

	var runner *locks.Runner
	if withGateways {
		if noKafka {
			return usageError{errors.New("--gateways needs Kafka")}
		}
		gen := activity.New(activity.Options{Fleet: fl, Seed: uint64(ff.seed), StartMs: o.StartMs})
		o.Gateways = locks.NewSet(locks.SetOptions{Fleet: fl, Profiles: profiles, Seed: uint64(ff.seed),
			OriginMs: o.StartMs, KeepAcks: true, Provision: true,
			Skip: func(c int) bool { return !gen.Provisioned(c) }, Validity: gen.ValidUntil})
		if runner, err = locks.NewRunner(locks.RunnerOptions{Set: o.Gateways, Bus: bc, Logger: logger}); err != nil {
			return err
		}
	}
	s, err := sim.New(o)
	if err != nil {
		return usageError{err}
	}
	var (
		stats  sim.Stats
		labels []backtest.Label
	)
	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopGateways := context.WithCancel(gctx)
	defer stopGateways()
	if runner != nil {
		g.Go(func() error { return runner.Run(runCtx) })
	}
	if err := wf.start(runCtx, g, uint64(ff.seed), logger); err != nil {
		stopGateways()
		_ = g.Wait()
		return err
	}
	g.Go(func() error {
		defer stopGateways()
		var err error
		stats, labels, err = s.Run(gctx)
		return err
	})
	if err := g.Wait(); err != nil {
		return err
	}
	if labelsOut != "" {
		if err := writeFile(labelsOut, func(w io.Writer) error { return sim.WriteLabels(w, labels) }); err != nil {
			return fmt.Errorf("--labels: %w", err)
		}
	}
	stats.WriteTable(stderr)
	if replay != nil {
		fmt.Fprintf(stderr, "replay: %d lines; normalizer rejections %v; vendors without an adapter yet %v\n",
			replay.Lines, replay.Errors, replay.NoAdapter)
		if replay.FirstError != nil {
			fmt.Fprintf(stderr, "replay: first rejection: %v\n", replay.FirstError)
		}
	}
	if stat != "" {
		if err := writeFile(stat, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(stats)
		}); err != nil {
			return fmt.Errorf("--stats: %w", err)
		}
	}
	return nil
}

func writeFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runSimulateGateways(ctx context.Context, args []string, _, stderr io.Writer) error {
	var (
		ff       fleetFlags
		wf       walletFlags
		duration time.Duration
		group    string
		stat     string
	)
	fs := flagenv.New("simulate gateways", "Runs only the lock-gateway simulators of the fleet (same knobs, same locks and\n"+
		"access lists as 'keyfleet simulate'): consumes lock.commands (locks.Command JSON)\n"+
		"in a consumer group, applies each command after its vendor's latency (later if the\n"+
		"lock is offline, never if the gateway loses it) and publishes locks.Ack on\n"+
		"lock.acks keyed by lock_id. Ack.applied_ms - Ack.received_ms is the injected delay.\n"+
		"Runs until interrupted or --duration; prints per-vendor delay statistics at the end.")
	fs.FlagSet().SetOutput(stderr)
	ff.register(fs)
	wf.register(fs)
	fs.Duration(&duration, "duration", "KEYFLEET_SIM_DURATION", 0, "stop after this long (0: until interrupted)")
	fs.String(&group, "group", "KEYFLEET_SIM_GATEWAY_GROUP", bus.GroupGatewaySim, "consumer group on lock.commands (prefixed)")
	fs.String(&stat, "stats", "KEYFLEET_SIM_STATS", "", "write per-vendor command statistics (JSON) here at the end")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	logger := newLogger(stderr, ff.logLevel, "text")
	fl, err := ff.fleet()
	if err != nil {
		return err
	}
	profiles, err := ff.gatewayProfiles()
	if err != nil {
		return err
	}
	bc, err := ff.bus()
	if err != nil {
		return err
	}
	ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = bus.EnsureTopics(ectx, bc)
	cancel()
	if err != nil {
		return fmt.Errorf("kafka at %v: %w", bc.Brokers, err)
	}
	start := time.Now().UnixMilli()
	gen := activity.New(activity.Options{Fleet: fl, Seed: uint64(ff.seed), StartMs: start})
	set := locks.NewSet(locks.SetOptions{Fleet: fl, Profiles: profiles, Seed: uint64(ff.seed), OriginMs: start,
		KeepAcks: true, Provision: true, Skip: func(c int) bool { return !gen.Provisioned(c) }, Validity: gen.ValidUntil})
	runner, err := locks.NewRunner(locks.RunnerOptions{Set: set, Bus: bc, Group: group, Logger: logger})
	if err != nil {
		return err
	}
	if duration > 0 {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeout(ctx, duration)
		defer stop()
	}
	logger.Info("gateway simulators running", "locks", len(fl.Locks), "brokers", bc.Brokers)
	g, gctx := errgroup.WithContext(ctx)
	if err := wf.start(gctx, g, uint64(ff.seed), logger); err != nil {
		return err
	}
	g.Go(func() error { return runner.Run(gctx) })
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	summary := set.Summarize()
	if len(summary) == 0 {
		fmt.Fprintln(stderr, "gateway commands: none received")
	}
	for _, g := range summary {
		fmt.Fprintf(stderr, "gateway %-8s commands %d applied %d lost %d failed %d repeated %d injected delay p50 %d ms p95 %d ms max %d ms\n",
			g.Vendor, g.Commands, g.Applied, g.Lost, g.Failed, g.Repeats, g.P50Ms, g.P95Ms, g.MaxMs)
	}
	if stat != "" {
		return writeFile(stat, func(w io.Writer) error { return json.NewEncoder(w).Encode(summary) })
	}
	return nil
}

func runSimulateScore(args []string, stdout, stderr io.Writer) error {
	var (
		labelsPath, alertsPath string
		slack                  time.Duration
		asJSON                 bool
	)
	fs := flagenv.New("simulate score", "Scores detector alerts (JSON lines, as 'keyfleet detect --replay' prints; '-' reads stdin)\n"+
		"against the simulator's labels with the detectors' backtest scorer (detect/backtest): per\n"+
		"detector the labels, alerts, true positives, labels found, precision, recall and F1. An alert\n"+
		"matches a label when its detector is the label's type, its ts_ms is within [start_ms,\n"+
		"end_ms + --slack] and it names the label's subject or credential (or, for door-scoped\n"+
		"detectors, its door).")
	fs.FlagSet().SetOutput(stderr)
	fs.String(&labelsPath, "labels", "KEYFLEET_SIM_LABELS", "", "labels file written by 'keyfleet simulate --labels'")
	fs.String(&alertsPath, "alerts", "KEYFLEET_SIM_ALERTS", "-", "alerts file (JSON lines; - for stdin)")
	fs.Duration(&slack, "slack", "KEYFLEET_SIM_SCORE_SLACK", 15*time.Minute, "how long after a label's end an alert still matches it (the backtest's grace)")
	fs.Bool(&asJSON, "json", "KEYFLEET_SIM_SCORE_JSON", false, "print the results as JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if labelsPath == "" {
		return usageError{errors.New("--labels is required")}
	}
	lf, err := os.Open(labelsPath)
	if err != nil {
		return fmt.Errorf("--labels: %w", err)
	}
	defer lf.Close()
	labels, err := backtest.ReadLabels(lf)
	if err != nil {
		return fmt.Errorf("--labels %s: %w", labelsPath, err)
	}
	var ar io.Reader = os.Stdin
	if alertsPath != "-" {
		af, err := os.Open(alertsPath)
		if err != nil {
			return fmt.Errorf("--alerts: %w", err)
		}
		defer af.Close()
		ar = af
	}
	alerts, err := backtest.ReadAlerts(ar)
	if err != nil {
		return fmt.Errorf("--alerts %s: %w", alertsPath, err)
	}
	results := backtest.Score(alerts, labels, slack)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	backtest.WriteTable(stdout, results, "", nil)
	return nil
}

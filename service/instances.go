package service

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/lease"
)

// Values of --detect-batch.
const (
	// BatchLease runs the batch checks on the instance holding their lease
	// (one per fleet, moved when its holder dies).
	BatchLease = "lease"
	// BatchAlways runs them on this instance regardless of the lease.
	BatchAlways = "true"
	// BatchNever never runs them on this instance.
	BatchNever = "false"
)

// The jobs that run once per fleet, each under its lease (internal/lease).
const (
	jobDetectBatch     = "detect-batch"     // stale_credential, expired_exception batch checks (detect/stream)
	jobExceptionExpiry = "exception-expiry" // exception expiry alerts (exception/stream)
	jobRollup          = "rollup"           // query/rollup
	jobRetention       = "retention"        // query/retention
	jobReports         = "reports"          // the weekly report scheduler
	jobRecert          = "recert-deadlines" // recertification deadlines
	jobIdentitySweep   = "identity-sweep"   // SCIM end_date sweep
	jobRegression      = "regression"       // detect/regression: device and lock slices fleet-wide
)

// fleetJobs lists every leased job.
var fleetJobs = []string{jobDetectBatch, jobExceptionExpiry, jobRollup, jobRetention, jobReports, jobRecert, jobIdentitySweep,
	jobRegression}

// InstanceConfig names this instance among several.
type InstanceConfig struct {
	ID string
}

func (c *InstanceConfig) registerFlags(s *flagenv.Set) {
	s.String(&c.ID, "instance-id", "KEYFLEET_INSTANCE_ID", "",
		"this instance's name among several sharing Kafka and ClickHouse (leases, per-instance figures); empty: host:http-port")
}

func (c *InstanceConfig) validate() error {
	if len(c.ID) > 200 || strings.ContainsAny(c.ID, "\n\r\t") {
		return fmt.Errorf("--instance-id %q: at most 200 characters, no control characters", c.ID)
	}
	return nil
}

// instanceID is the configured id, or host:port of --http-addr (the host
// name when it listens on every address or loopback).
func instanceID(cfg InstanceConfig, httpAddr string) string {
	if cfg.ID != "" {
		return cfg.ID
	}
	host, port, err := net.SplitHostPort(httpAddr)
	if err != nil {
		return httpAddr
	}
	if ip := net.ParseIP(host); host == "" || host == "localhost" || (ip != nil && (ip.IsUnspecified() || ip.IsLoopback())) {
		if h, err := os.Hostname(); err == nil && h != "" {
			host = h
		}
	}
	return net.JoinHostPort(host, port)
}

// guardLoops puts the loops that must run once per fleet under their leases
// (the exception expiry alerts and regression, batch checks, only with
// --detect-batch lease).
func guardLoops(m *lease.Manager, loops []loop, batch string) []loop {
	byName := map[string]string{
		"exception-expiry": jobExceptionExpiry, "rollup": jobRollup, "retention": jobRetention,
		"reports": jobReports, "recert-deadlines": jobRecert, "identity-sweep": jobIdentitySweep,
		"regression": jobRegression,
	}
	out := make([]loop, len(loops))
	for i, l := range loops {
		job, ok := byName[l.name]
		batchJob := job == jobExceptionExpiry || job == jobRegression
		if ok && (!batchJob || batch == BatchLease) {
			l.run = m.Guard(job, l.run)
		}
		out[i] = l
	}
	return out
}

// splitWatch makes a split of the detectors' subjects loud: with
// --access-events inline or publish the detectors are fed in-process by the
// raw group's member, so a second instance in keyfleet-normalize splits every
// subject's events over instances and the per-subject detectors miss alerts
// silently. Every interval it describes the raw group; while more than one
// member holds partitions, readiness fails naming --access-events topic,
// keyfleet_detect_subjects_split is 1 and an error is logged (once per change).
type splitWatch struct {
	bc       bus.Config
	health   *health
	logger   *slog.Logger
	interval time.Duration
	gauge    prometheus.Gauge
	split    bool
}

const checkDetectors = "detectors"

func newSplitWatch(bc bus.Config, h *health, reg prometheus.Registerer, logger *slog.Logger) *splitWatch {
	w := &splitWatch{bc: bc, health: h, logger: logger, interval: 5 * time.Second,
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_detect_subjects_split",
			Help: "1 while the in-process detectors (--access-events inline/publish) share lock.events.raw with other instances, " +
				"so each sees only some of a subject's events (run every instance with --access-events topic), else 0.",
		})}
	reg.MustRegister(w.gauge)
	return w
}

func (w *splitWatch) Run(ctx context.Context) error {
	for bus.Wait(ctx, w.interval) {
		members, err := lease.Members(ctx, w.bc, bus.GroupNormalize)
		if err != nil {
			w.logger.Debug("describe the raw consumer group", "err", err)
			continue
		}
		w.observe(members)
	}
	return nil
}

func (w *splitWatch) observe(members []lease.Member) {
	topic := w.bc.Topic(bus.TopicRaw)
	var owners []string
	for _, m := range members {
		for _, t := range m.Assignments {
			if t.Topic == topic && len(t.Partitions) > 0 {
				owners = append(owners, fmt.Sprintf("%s@%s %v", m.ClientID, m.Host, t.Partitions))
			}
		}
	}
	sort.Strings(owners)
	split := len(owners) > 1
	if split {
		why := fmt.Sprintf("%d instances share %s (%s): with --access-events inline or publish each judges only "+
			"the subjects of its partitions and per-subject detectors miss alerts; run every instance with --access-events topic",
			len(owners), topic, strings.Join(owners, "; "))
		if !w.split {
			w.logger.Error("detectors split across instances: use --access-events topic", "instances", len(owners),
				"owners", owners)
		}
		w.health.Condition(checkDetectors, why)
		w.gauge.Set(1)
	} else {
		if w.split {
			w.logger.Info("detectors no longer split: this instance owns every lock.events.raw partition")
		}
		w.health.Condition(checkDetectors, "")
		w.gauge.Set(0)
	}
	w.split = split
}

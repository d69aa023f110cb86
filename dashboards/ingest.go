package dashboards

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Metrics ingest health reads (names are the pipeline's metric API).
const (
	metricLag          = "keyfleet_kafka_consumer_lag_messages"
	metricConsumed     = "keyfleet_pipeline_records_consumed_total"
	metricDeadLettered = "keyfleet_pipeline_records_dead_lettered_total"
	metricInserted     = "keyfleet_pipeline_events_inserted_total"
	metricLastInsert   = "keyfleet_clickhouse_last_insert_timestamp_seconds"
	metricInsertFails  = "keyfleet_clickhouse_insert_failures_total"
	metricUnacked      = "keyfleet_control_lock_commands_unacknowledged"
)

// rateWindow is the span rates are computed over.
const rateWindow = time.Minute

// sample is one reading of the pipeline metrics.
type sample struct {
	at           time.Time
	lag          map[string]float64 // "group topic" → messages
	lagTotal     float64
	consumed     float64
	deadLettered float64
	deadByReason map[string]float64
	inserted     float64
	insertFails  float64
	lastInsert   float64
	unacked      float64
}

// IngestHealth samples the pipeline metrics of this process and serves
// GET /v1/health/ingest: consumer lag (group-wide, from Kafka), and this
// instance's records, dead letters and inserts per second with a short
// history for the overview's charts. With several instances (Publish), each
// writes its own figures to instance_stats every sample and the fleet's
// figures are the sum of every live instance's latest row.
type IngestHealth struct {
	gatherer prometheus.Gatherer
	every    time.Duration
	now      func() time.Time
	keep     int

	// instance, conn: where Publish writes this instance's figures and
	// the handler reads every instance's (nil conn: this instance only).
	instance string
	conn     driver.Conn
	timeout  time.Duration
	started  time.Time
	logger   *slog.Logger

	mu      sync.Mutex
	samples []sample // oldest first
}

// NewIngestHealth returns a sampler that keeps ten minutes of samples.
func NewIngestHealth(g prometheus.Gatherer, every time.Duration, now func() time.Time) *IngestHealth {
	keep := int(10*time.Minute/every) + 1
	return &IngestHealth{gatherer: g, every: every, now: now, keep: keep}
}

// Fleet makes the sampler write this instance's figures to ClickHouse and
// answer with the fleet's (the sum over live instances) too.
func (h *IngestHealth) Fleet(instance string, conn driver.Conn, timeout time.Duration, logger *slog.Logger) {
	h.instance, h.conn, h.timeout, h.started, h.logger = instance, conn, timeout, h.now(), logger
}

// Run samples until ctx ends (and publishes each sample, see Fleet).
func (h *IngestHealth) Run(ctx context.Context) error {
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		h.Sample()
		if h.conn != nil {
			err := h.Publish(ctx)
			bus.Report(ctx, "write instance figures", err)
			if err != nil && ctx.Err() == nil {
				h.logger.Warn("write instance figures", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample reads the metrics once.
func (h *IngestHealth) Sample() {
	mfs, err := h.gatherer.Gather()
	if err != nil && len(mfs) == 0 {
		return
	}
	s := sample{at: h.now(), lag: map[string]float64{}, deadByReason: map[string]float64{}}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case metricLag:
				v := m.GetGauge().GetValue()
				s.lag[label(m, "group")+" "+label(m, "topic")] = v
				s.lagTotal += v
			case metricConsumed:
				s.consumed += m.GetCounter().GetValue()
			case metricDeadLettered:
				v := m.GetCounter().GetValue()
				s.deadLettered += v
				s.deadByReason[label(m, "reason")] += v
			case metricInserted:
				s.inserted += m.GetCounter().GetValue()
			case metricInsertFails:
				s.insertFails += m.GetCounter().GetValue()
			case metricUnacked:
				s.unacked += m.GetGauge().GetValue()
			case metricLastInsert:
				s.lastInsert = math.Max(s.lastInsert, m.GetGauge().GetValue())
			}
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.samples = append(h.samples, s)
	if len(h.samples) > h.keep {
		h.samples = append(h.samples[:0], h.samples[len(h.samples)-h.keep:]...)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// LagEntry is one consumer group's lag on a topic.
type LagEntry struct {
	Group    string  `json:"group"`
	Topic    string  `json:"topic"`
	Messages float64 `json:"messages"`
}

// HealthPoint is one point of the history.
type HealthPoint struct {
	TsMs           int64   `json:"ts_ms"`
	LagTotal       float64 `json:"lag_total"`
	ConsumedPerS   float64 `json:"consumed_per_s"`
	DeadPerS       float64 `json:"dead_lettered_per_s"`
	InsertedPerS   float64 `json:"inserted_per_s"`
	DLQRate        float64 `json:"dlq_rate"`
	InsertFailures float64 `json:"insert_failures"`
}

// Health is GET /v1/health/ingest.
type Health struct {
	SampledMs int64 `json:"sampled_ms"`
	// WindowS is the span the current rates cover (0 before two samples).
	WindowS        float64            `json:"window_s"`
	Lag            []LagEntry         `json:"lag"`
	LagTotal       float64            `json:"lag_total"`
	ConsumedPerS   float64            `json:"consumed_per_s"`
	DeadPerS       float64            `json:"dead_lettered_per_s"`
	InsertedPerS   float64            `json:"inserted_per_s"`
	DLQRate        float64            `json:"dlq_rate"` // dead letters / records consumed, over the window
	DeadByReason   map[string]float64 `json:"dead_lettered_per_s_by_reason"`
	LastInsertMs   int64              `json:"last_insert_ms"`
	InsertFailures float64            `json:"insert_failures_total"`
	History        []HealthPoint      `json:"history"`
	Scope          string             `json:"scope"`
	// Instance names this instance (whose figures the rates above are).
	Instance string `json:"instance,omitempty"`
	// ConsumedTotal and InsertedTotal count this instance's records and
	// inserted events since it started.
	ConsumedTotal float64 `json:"consumed_total"`
	InsertedTotal float64 `json:"inserted_total"`
	// Fleet sums the latest figures of every live instance (those that
	// wrote within the last liveWithin); nil when they cannot be read.
	Fleet *FleetFigures `json:"fleet,omitempty"`
	// Instances are those figures, one per live instance.
	Instances []InstanceFigures `json:"instances,omitempty"`
}

// InstanceFigures are one instance's latest figures (instance_stats).
type InstanceFigures struct {
	Instance       string  `json:"instance"`
	SampledMs      int64   `json:"sampled_ms"`
	StartedMs      int64   `json:"started_ms"`
	ConsumedPerS   float64 `json:"consumed_per_s"`
	InsertedPerS   float64 `json:"inserted_per_s"`
	DeadPerS       float64 `json:"dead_lettered_per_s"`
	ConsumedTotal  float64 `json:"consumed_total"`
	InsertedTotal  float64 `json:"inserted_total"`
	DeadTotal      float64 `json:"dead_lettered_total"`
	InsertFailures float64 `json:"insert_failures_total"`
	// Unacknowledged is the lock commands the instance's credential owners
	// sent without an applied ack yet.
	Unacknowledged float64 `json:"unacknowledged"`
}

// FleetFigures are InstanceFigures summed over the live instances.
type FleetFigures struct {
	Instances      int     `json:"instances"`
	ConsumedPerS   float64 `json:"consumed_per_s"`
	InsertedPerS   float64 `json:"inserted_per_s"`
	DeadPerS       float64 `json:"dead_lettered_per_s"`
	ConsumedTotal  float64 `json:"consumed_total"`
	InsertedTotal  float64 `json:"inserted_total"`
	DeadTotal      float64 `json:"dead_lettered_total"`
	InsertFailures float64 `json:"insert_failures_total"`
	Unacknowledged float64 `json:"unacknowledged"`
}

// liveWithin is how recent an instance's row must be to count as live.
const liveWithin = 20 * time.Second

var (
	insertInstanceStatsSQL = chstorage.Query("dashboards/insert_instance_stats")
	instanceStatsSQL       = chstorage.Query("dashboards/instance_stats")
)

// Publish writes this instance's current figures to instance_stats.
func (h *IngestHealth) Publish(ctx context.Context) error {
	snap := h.Snapshot()
	h.mu.Lock()
	var cur sample
	if n := len(h.samples); n > 0 {
		cur = h.samples[n-1]
	}
	h.mu.Unlock()
	if cur.at.IsZero() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	return insertInstanceStatsSQL.Insert(ctx, h.conn, []any{h.instance, cur.at.UTC().Truncate(time.Second), cur.at.UnixMilli(),
		h.started.UnixMilli(), snap.ConsumedPerS, snap.InsertedPerS, snap.DeadPerS, cur.consumed, cur.inserted,
		cur.deadLettered, cur.insertFails, cur.unacked})
}

// Instances reads the latest figures of every live instance and their sum.
func (h *IngestHealth) Instances(ctx context.Context) ([]InstanceFigures, FleetFigures, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	since := h.now().Add(-liveWithin)
	rows, err := instanceStatsSQL.Query(ctx, h.conn, chstorage.Args{"since": since.UTC().Truncate(time.Second),
		"since_ms": since.UnixMilli()})
	if err != nil {
		return nil, FleetFigures{}, fmt.Errorf("instance figures: %w", err)
	}
	defer rows.Close()
	var out []InstanceFigures
	var sum FleetFigures
	for rows.Next() {
		var f InstanceFigures
		if err := rows.Scan(&f.Instance, &f.SampledMs, &f.StartedMs, &f.ConsumedPerS, &f.InsertedPerS, &f.DeadPerS,
			&f.ConsumedTotal, &f.InsertedTotal, &f.DeadTotal, &f.InsertFailures, &f.Unacknowledged); err != nil {
			return nil, FleetFigures{}, fmt.Errorf("instance figures: %w", err)
		}
		out = append(out, f)
		sum.Instances++
		sum.ConsumedPerS += f.ConsumedPerS
		sum.InsertedPerS += f.InsertedPerS
		sum.DeadPerS += f.DeadPerS
		sum.ConsumedTotal += f.ConsumedTotal
		sum.InsertedTotal += f.InsertedTotal
		sum.DeadTotal += f.DeadTotal
		sum.InsertFailures += f.InsertFailures
		sum.Unacknowledged += f.Unacknowledged
	}
	if err := rows.Err(); err != nil {
		return nil, FleetFigures{}, fmt.Errorf("instance figures: %w", err)
	}
	return out, sum, nil
}

func rate(a, b, secs float64) float64 {
	if secs <= 0 || b < a {
		return 0
	}
	return (b - a) / secs
}

// point computes the rates between two samples.
func point(a, b *sample) HealthPoint {
	secs := b.at.Sub(a.at).Seconds()
	p := HealthPoint{TsMs: b.at.UnixMilli(), LagTotal: b.lagTotal, ConsumedPerS: rate(a.consumed, b.consumed, secs),
		DeadPerS: rate(a.deadLettered, b.deadLettered, secs), InsertedPerS: rate(a.inserted, b.inserted, secs),
		InsertFailures: math.Max(0, b.insertFails-a.insertFails)}
	if c := b.consumed - a.consumed; c > 0 {
		p.DLQRate = math.Max(0, b.deadLettered-a.deadLettered) / c
	}
	return p
}

// Snapshot returns the current health.
func (h *IngestHealth) Snapshot() Health {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := Health{Lag: []LagEntry{}, History: []HealthPoint{}, DeadByReason: map[string]float64{},
		Scope: "lag is per consumer group (all instances); rates and totals are this instance's (instance); " +
			"fleet sums the latest figures of every live instance (instances)", Instance: h.instance}
	n := len(h.samples)
	if n == 0 {
		return out
	}
	cur := &h.samples[n-1]
	out.SampledMs, out.LagTotal, out.InsertFailures = cur.at.UnixMilli(), cur.lagTotal, cur.insertFails
	out.ConsumedTotal, out.InsertedTotal = cur.consumed, cur.inserted
	if cur.lastInsert > 0 {
		out.LastInsertMs = int64(cur.lastInsert * 1000)
	}
	for k, v := range cur.lag {
		var e LagEntry
		for i := range k {
			if k[i] == ' ' {
				e.Group, e.Topic = k[:i], k[i+1:]
				break
			}
		}
		e.Messages = v
		out.Lag = append(out.Lag, e)
	}
	sort.Slice(out.Lag, func(i, j int) bool {
		if out.Lag[i].Group != out.Lag[j].Group {
			return out.Lag[i].Group < out.Lag[j].Group
		}
		return out.Lag[i].Topic < out.Lag[j].Topic
	})
	// Rates over the last rateWindow: the oldest sample within it.
	base := n - 1
	for base > 0 && cur.at.Sub(h.samples[base-1].at) <= rateWindow {
		base--
	}
	if base < n-1 {
		p := point(&h.samples[base], cur)
		out.WindowS = cur.at.Sub(h.samples[base].at).Seconds()
		out.ConsumedPerS, out.DeadPerS, out.InsertedPerS, out.DLQRate = p.ConsumedPerS, p.DeadPerS, p.InsertedPerS, p.DLQRate
		for reason, v := range cur.deadByReason {
			if r := rate(h.samples[base].deadByReason[reason], v, out.WindowS); r > 0 {
				out.DeadByReason[reason] = r
			}
		}
	}
	for i := 1; i < n; i++ {
		out.History = append(out.History, point(&h.samples[i-1], &h.samples[i]))
	}
	return out
}

func (h *IngestHealth) handle(c *fiber.Ctx) error {
	if len(c.Request().URI().QueryArgs().QueryString()) > 0 {
		return unknownParams(c)
	}
	h.mu.Lock()
	empty := len(h.samples) == 0
	h.mu.Unlock()
	if empty {
		h.Sample()
	}
	out := h.Snapshot()
	if h.conn != nil {
		inst, fleet, err := h.Instances(c.UserContext())
		if err != nil {
			h.logger.Warn("ingest health: fleet figures", "err", err)
		} else {
			out.Instances, out.Fleet = inst, &fleet
		}
	}
	return c.JSON(out)
}

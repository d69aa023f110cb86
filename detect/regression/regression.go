// Package regression runs the regression detector (detect.CheckRegressions)
// on ClickHouse: it reads each configured dimension's hourly access attempts
// and denials from access_events (every partition's events are there, so
// the judgement is fleet-wide), adds evidence to what regressed, and
// produces the alerts on the alerts topic. Every instance may run it: alert
// ids are deterministic per change point and suppression period, and the
// alert index keeps a stored alert from being produced again.
package regression

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/detect"
	detectstream "github.com/keyfleet/keyfleet/detect/stream"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

var (
	hourlySQL           = chstorage.Query("regression/hourly")
	evidenceSQL         = chstorage.Query("regression/evidence")
	revocationHourlySQL = chstorage.Query("regression/revocation_hourly")
)

// AlertIndex says which alerts are stored already (alertstore.Store).
type AlertIndex interface {
	Known(ctx context.Context, ids []string) (map[string]bool, error)
}

// Options configure a Checker.
type Options struct {
	Conn  driver.Conn
	Rules detect.RegressionRules
	// Alerts writes the alerts topic.
	Alerts bus.Writer
	// Known, when set, keeps alerts stored already from being produced again.
	Known AlertIndex
	// Every is how often it checks (default Rules.Every, else 15 minutes).
	Every  time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	if o.Conn == nil || o.Alerts == nil {
		return errors.New("regression: Conn and Alerts are required")
	}
	if o.Every <= 0 {
		o.Every = o.Rules.Every.D()
	}
	if o.Every <= 0 {
		o.Every = 15 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Checker produces regression alerts.
type Checker struct {
	opts     Options
	produced map[string]bool
}

// New returns a checker.
func New(opts Options) (*Checker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Checker{opts: opts, produced: map[string]bool{}}, nil
}

// Run checks at once and then every Every until ctx ends; a failed check
// is logged and retried at the next tick.
func (c *Checker) Run(ctx context.Context) error {
	if !c.opts.Rules.Enabled {
		return nil
	}
	t := time.NewTicker(c.opts.Every)
	defer t.Stop()
	for {
		if _, err := c.Check(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.opts.Logger.Warn("regression check", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check computes the alerts due now and produces those neither stored nor
// produced by this checker before; it returns them.
func (c *Checker) Check(ctx context.Context) ([]detect.Alert, error) {
	now := c.opts.Now()
	alerts, err := Alerts(ctx, c.opts.Conn, &c.opts.Rules, now)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, a := range alerts {
		if !c.produced[a.AlertID] {
			ids = append(ids, a.AlertID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	known := map[string]bool{}
	if c.opts.Known != nil {
		if known, err = c.opts.Known.Known(ctx, ids); err != nil {
			return nil, fmt.Errorf("known alerts: %w", err)
		}
	}
	var out []detect.Alert
	var msgs []kafka.Message
	for _, a := range alerts {
		if c.produced[a.AlertID] || known[a.AlertID] {
			continue
		}
		a.DetectedMs = now.UnixMilli()
		b, err := json.Marshal(&a)
		if err != nil {
			return nil, fmt.Errorf("encode alert: %w", err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(detectstream.AlertKey(&a)), Value: b, Time: now})
		out = append(out, a)
	}
	if len(msgs) == 0 {
		return nil, nil
	}
	if err := c.opts.Alerts.WriteMessages(ctx, msgs...); err != nil {
		return nil, fmt.Errorf("produce regression alerts: %w", err)
	}
	for _, a := range out {
		c.produced[a.AlertID] = true
	}
	return out, nil
}

// maxEvidence bounds the evidence events of one alert.
const maxEvidence = 20

// Alerts is regression at now over access_events: per configured dimension
// the hourly series of the rules' History, judged by
// detect.CheckRegressions, each alert with the newest denied events of its
// slice as evidence and where they were denied most in its explanation.
func Alerts(ctx context.Context, conn driver.Conn, r *detect.RegressionRules, now time.Time) ([]detect.Alert, error) {
	if !r.Enabled {
		return nil, nil
	}
	to := now.UnixMilli()
	from := to - r.History.Ms()
	rangeArgs := func(a chstorage.Args, from, to int64) chstorage.Args {
		a["from_s"], a["to_s"], a["from_ms"], a["to_ms"] = from/1000, (to+999)/1000, from, to
		return a
	}
	type dimSeries struct {
		dim    string
		series []detect.RegressionSeries
	}
	var all []dimSeries
	historyStart := int64(0)
	for _, dim := range r.Dimensions {
		rows, err := hourlySQL.Query(ctx, conn, rangeArgs(chstorage.Args{"dim": dim}, from, to))
		if err != nil {
			return nil, fmt.Errorf("regression %s: %w", dim, err)
		}
		groups, err := groupHours(rows, func(k *string, h *detect.RegressionHour) error {
			return rows.Scan(k, &h.HourMs, &h.Attempts, &h.Denied)
		}, func(h *detect.RegressionHour) int64 { return h.HourMs }, &historyStart)
		if err != nil {
			return nil, fmt.Errorf("regression %s: %w", dim, err)
		}
		ds := dimSeries{dim: dim}
		for _, g := range groups {
			ds.series = append(ds.series, detect.RegressionSeries{Value: g.value, Hours: g.hours})
		}
		all = append(all, ds)
	}
	var out []detect.Alert
	for _, ds := range all {
		alerts, findings := detect.CheckRegressions(r, ds.dim, ds.series, to, historyStart)
		for i := range alerts {
			if err := addEvidence(ctx, conn, &alerts[i], findings[i], rangeArgs); err != nil {
				return nil, err
			}
			out = append(out, alerts[i])
		}
	}
	latency, err := latencyAlerts(ctx, conn, r, from, to)
	if err != nil {
		return nil, err
	}
	return append(out, latency...), nil
}

// latencyAlerts is regression's revocation-latency judgement per lock
// dimension over [from, to).
func latencyAlerts(ctx context.Context, conn driver.Conn, r *detect.RegressionRules, from, to int64) ([]detect.Alert, error) {
	type dimSeries struct {
		dim    string
		series []detect.RegressionLatencySeries
	}
	var all []dimSeries
	historyStart := int64(0)
	for _, dim := range r.LatencyDimensions {
		rows, err := revocationHourlySQL.Query(ctx, conn, chstorage.Args{"dim": dim,
			"from": time.UnixMilli(from).UTC().Truncate(time.Second), "from_ms": from, "to_ms": to})
		if err != nil {
			return nil, fmt.Errorf("regression latency %s: %w", dim, err)
		}
		groups, err := groupHours(rows, func(k *string, h *detect.RegressionLatencyHour) error {
			return rows.Scan(k, &h.HourMs, &h.Locks, &h.SumMs)
		}, func(h *detect.RegressionLatencyHour) int64 { return h.HourMs }, &historyStart)
		if err != nil {
			return nil, fmt.Errorf("regression latency %s: %w", dim, err)
		}
		ds := dimSeries{dim: dim}
		for _, g := range groups {
			ds.series = append(ds.series, detect.RegressionLatencySeries{Value: g.value, Hours: g.hours})
		}
		all = append(all, ds)
	}
	var out []detect.Alert
	for _, ds := range all {
		out = append(out, detect.CheckLatencyRegressions(r, ds.dim, ds.series, to, historyStart)...)
	}
	return out, nil
}

// valueHours is one dimension value's hourly rows.
type valueHours[H any] struct {
	value string
	hours []H
}

// groupHours reads (value, hour, …) rows into one series per value: values
// sorted, each value's hours in time order. start becomes the earliest hour
// read when it is earlier (or still 0). It closes rows.
func groupHours[H any](rows driver.Rows, scan func(value *string, h *H) error, hourMs func(*H) int64,
	start *int64) ([]valueHours[H], error) {
	defer rows.Close()
	index := map[string]int{}
	var out []valueHours[H]
	for rows.Next() {
		var k string
		var h H
		if err := scan(&k, &h); err != nil {
			return nil, err
		}
		i, ok := index[k]
		if !ok {
			i = len(out)
			index[k] = i
			out = append(out, valueHours[H]{value: k})
		}
		out[i].hours = append(out[i].hours, h)
		if t := hourMs(&h); *start == 0 || t < *start {
			*start = t
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].value < out[j].value })
	for _, g := range out {
		sort.Slice(g.hours, func(i, j int) bool { return hourMs(&g.hours[i]) < hourMs(&g.hours[j]) })
	}
	return out, nil
}

// addEvidence adds the newest denied events of the finding's slice since
// its change point, and where they were denied most.
func addEvidence(ctx context.Context, conn driver.Conn, a *detect.Alert, f detect.RegressionFinding,
	rangeArgs func(chstorage.Args, int64, int64) chstorage.Args) error {
	rows, err := evidenceSQL.Query(ctx, conn, rangeArgs(chstorage.Args{"dim": f.Dimension, "value": f.Value, "limit": uint32(4 * maxEvidence)},
		f.ChangeMs, a.WindowEndMs))
	if err != nil {
		return fmt.Errorf("regression evidence: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	where := map[string]int{}
	for rows.Next() {
		var id, other string
		if err := rows.Scan(&id, &other); err != nil {
			return fmt.Errorf("regression evidence: %w", err)
		}
		if seen[id] {
			continue // a re-delivery
		}
		seen[id] = true
		where[other]++
		if len(a.Evidence) < maxEvidence {
			a.Evidence = append(a.Evidence, id)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("regression evidence: %w", err)
	}
	top, n := "", 0
	for k, c := range where {
		if c > n || (c == n && k < top) {
			top, n = k, c
		}
	}
	if top != "" && n > 0 {
		other := "lock firmware"
		if f.Dimension == "lock_model" || f.Dimension == "lock_firmware" {
			other = "OS version"
		}
		a.Explanation += fmt.Sprintf(" Of its %d newest denials, %d were at %s %s.", len(seen), n, other, top)
	}
	return nil
}

package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
)

// ParseDay reads a weekday name (monday ... sunday, or its first three letters).
func ParseDay(s string) (time.Weekday, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := strings.ToLower(d.String())
		if v == name || (len(v) == 3 && strings.HasPrefix(name, v)) {
			return d, nil
		}
	}
	return 0, fmt.Errorf("%q: want a weekday such as monday", s)
}

// ParseClock reads a UTC time of day HH:MM as the offset from midnight.
func ParseClock(s string) (time.Duration, error) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("%q: want HH:MM (UTC)", s)
	}
	return time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute, nil
}

// DueWeek returns the week whose report is due at now for a schedule of
// day at time-of-day (UTC): the latest scheduled instant at or before now
// reports on the ISO week before the one it falls in.
func DueWeek(now time.Time, day time.Weekday, at time.Duration) Week {
	now = now.UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	back := (int(now.Weekday()) - int(day) + 7) % 7
	t := midnight.AddDate(0, 0, -back).Add(at)
	if t.After(now) {
		t = t.AddDate(0, 0, -7)
	}
	return WeekOf(t).Add(-1)
}

// Metrics of report generation.
type Metrics struct {
	generated   *prometheus.CounterVec
	duration    prometheus.Histogram
	lastSuccess prometheus.Gauge
}

// NewMetrics registers the report metrics with reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		generated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_reports_generated_total",
			Help: "Weekly reports generated, by trigger (schedule, api) and result (ok, error).",
		}, []string{"trigger", "result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_reports_generation_duration_seconds",
			Help:    "Time to compute one weekly report.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2, 12),
		}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_reports_last_scheduled_timestamp_seconds",
			Help: "When the scheduler last stored the reports of a due week.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.generated, m.duration, m.lastSuccess)
	}
	return m
}

func (m *Metrics) observe(trigger string, start time.Time, err error) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.generated.WithLabelValues(trigger, result).Inc()
	m.duration.Observe(time.Since(start).Seconds())
}

// SchedulerOptions configure the Scheduler.
type SchedulerOptions struct {
	Conn  driver.Conn
	Store *Store
	// Day and At (offset from midnight UTC) are when the previous week's
	// reports are generated.
	Day time.Weekday
	At  time.Duration
	// Sites get their own report besides the fleet-wide one.
	Sites []string
	// SLA is the revocation SLA of the reports (default control's).
	SLA time.Duration
	// Expired is the detectors' expired_exception rules (zero: their defaults).
	Expired detect.ExpiredRules
	// Estate gives the reports' weak-link section (nil: none).
	Estate EstateSource
	// Interval is how often the scheduler checks for a due week (default 1m).
	Interval time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
	Metrics  *Metrics
}

// Scheduler generates and stores the weekly reports when they are due, and
// catches up after downtime: on start and every Interval it generates each
// report of the due week that is not stored yet. Instances that race store
// the same report id; the newest generation wins.
//
// A report is about stored history: none is generated for a week that ended
// before the history began (a fresh deployment has nothing to report on),
// and one generated while the history covered only part of its week is
// generated again when older events arrive later (a backfill, make run's
// simulated history).
type Scheduler struct {
	opts    SchedulerOptions
	done    Week // the due week whose reports are all stored and final
	waiting Week // the due week the scheduler said it waits for history for
}

// NewScheduler returns a scheduler.
func NewScheduler(opts SchedulerOptions) (*Scheduler, error) {
	if opts.Conn == nil || opts.Store == nil {
		return nil, errors.New("report scheduler: Conn and Store are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.At < 0 || opts.At >= 24*time.Hour {
		return nil, fmt.Errorf("report scheduler: time of day %s is not within a day", opts.At)
	}
	return &Scheduler{opts: opts}, nil
}

// Run generates due reports until ctx ends; a failed tick (ClickHouse
// away) is retried after a backoff.
func (s *Scheduler) Run(ctx context.Context) error {
	return bus.Every(ctx, s.opts.Logger, "weekly report", s.opts.Interval, s.Tick)
}

// Tick generates the due week's missing reports.
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.opts.Now()
	week := DueWeek(now, s.opts.Day, s.opts.At)
	if week == s.done {
		return nil
	}
	history, err := HistoryStart(ctx, s.opts.Conn)
	if err != nil {
		return err
	}
	if history.IsZero() || !history.Before(week.End()) {
		if s.waiting != week {
			s.waiting = week
			s.opts.Logger.Info("no weekly report for a week before the stored history", "week", week.String(),
				"history_from", history)
		}
		return nil
	}
	var errs []error
	for _, site := range append([]string{""}, s.opts.Sites...) {
		id := ID(week, site)
		stored, err := s.opts.Store.Get(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			errs = append(errs, err)
			continue
		case stored.HistoryFromMs > 0 && history.UnixMilli() >= stored.HistoryFromMs:
			continue // stored, and no older history has arrived since
		}
		start := time.Now()
		r, err := Generate(ctx, s.opts.Conn, Query{Week: week, Site: site, Now: now, SLA: s.opts.SLA, Expired: s.opts.Expired, Estate: s.opts.Estate})
		if err == nil {
			err = s.opts.Store.Put(ctx, r, TriggerSchedule)
		}
		s.opts.Metrics.observe(TriggerSchedule, start, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("report %s: %w", id, err))
			continue
		}
		s.opts.Logger.Info("weekly report generated", "report_id", id, "duration_ms", time.Since(start).Milliseconds(),
			"history", r.Current().History)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if s.opts.Metrics != nil {
		s.opts.Metrics.lastSuccess.Set(float64(now.Unix()))
	}
	if !history.After(week.Start()) {
		s.done = week // whole history: final
	}
	return nil
}

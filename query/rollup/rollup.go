// Package rollup keeps keyfleet's exact, dedup-safe summary pre-aggregates
// (migrations 0034 and 0170) up to date.
//
// A SummingMergeTree fed by a materialized view would count a re-delivered
// event once per delivery. Here the materialized view only marks the hours an
// insert touched (access_rollup_dirty, stamped with the server's now()); the
// Job recomputes those hours — and the days holding them — from access_events
// with uniqExact(event_id) into ReplacingMergeTree rollups, then records the
// server time it started from as the watermark. Readers take the rollups for
// units not marked since watermark − Slack and read the events for the rest,
// so summaries are exact whatever the job's lag; the job only decides how
// much is read raw.
package rollup

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Tables of migrations 0034 and 0170. TableHourly (every dimension per
// hour) is no longer written or read since 0170; retention still drops its
// months.
var (
	TableDirty        = chstorage.AccessRollupDirty.Name
	TableHourly       = chstorage.AccessRollupHourly.Name
	TableSiteHourly   = chstorage.AccessRollupSiteHourly.Name
	TableDaily        = chstorage.AccessRollupDaily.Name
	TableSubjectDaily = chstorage.AccessRollupSubjectDaily.Name
	TableState        = chstorage.AccessRollupState.Name
)

// stateName names this job's watermark in access_rollup_state. It is not
// 0034's "access_rollups": an instance of an older version still advances
// that one after filling access_rollup_hourly, which says nothing about the
// tables of 0170.
const stateName = "access_rollups_0170"

// SubjectDailyOutcomes are the outcomes the per-subject daily rollup counts
// (subject rankings of denials and errors; migration 0093).
var SubjectDailyOutcomes = []string{"denied", "error"}

var (
	watermarkSQL        = chstorage.Query("rollup/watermark")
	serverTimeSQL       = chstorage.Query("rollup/server_time")
	dirtyHoursSQL       = chstorage.Query("rollup/dirty_hours")
	recomputeSiteHourly = chstorage.Query("rollup/recompute_site_hourly")
	recomputeDaily      = chstorage.Query("rollup/recompute_daily")
	recomputeSubjectDay = chstorage.Query("rollup/recompute_subject_daily")
	insertState         = chstorage.Query("rollup/insert_state")
)

// Slack covers inserts still being committed when the job read the dirty
// marks (the marks have second resolution and an insert is not atomic across
// the events table and its views): marks this close to the watermark are
// treated as not rolled up.
const Slack = 15 * time.Second

// maxRun bounds the hours one recompute query covers (the first run after the
// migration rolls up everything in week-sized steps).
const maxRun = 7 * 24

const hourMs, dayMs = int64(3_600_000), int64(86_400_000)

// Watermark returns the latest completed run's start (server time); zero when
// the job never completed a run.
func Watermark(ctx context.Context, conn driver.Conn) (time.Time, error) {
	var wm time.Time
	if err := watermarkSQL.QueryRow(ctx, conn, chstorage.Args{"name": stateName}).Scan(&wm); err != nil {
		return time.Time{}, fmt.Errorf("read rollup watermark: %w", err)
	}
	if wm.Unix() <= 0 {
		return time.Time{}, nil
	}
	return wm, nil
}

// Options configure the job.
type Options struct {
	Conn       driver.Conn
	Interval   time.Duration // default 10s
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Job is the rollup job.
type Job struct {
	opts     Options
	runs     *prometheus.CounterVec
	hours    prometheus.Counter
	lag      prometheus.Gauge
	duration prometheus.Histogram
}

// New returns the job.
func New(opts Options) (*Job, error) {
	if opts.Conn == nil {
		return nil, fmt.Errorf("rollup: Conn is required")
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	j := &Job{opts: opts,
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_rollup_runs_total", Help: "Rollup job runs, by result (ok, error).",
		}, []string{"result"}),
		hours: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_rollup_hours_recomputed_total", Help: "Hours recomputed into the summary rollups.",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_rollup_watermark_timestamp_seconds", Help: "Server time up to which the rollups are complete.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "keyfleet_rollup_run_duration_seconds", Help: "Duration of one rollup run.",
			Buckets: prometheus.ExponentialBuckets(0.01, 3, 10),
		}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(j.runs, j.hours, j.lag, j.duration)
	}
	return j, nil
}

// Run rolls up every Interval until ctx ends; a failed run (ClickHouse
// away) is retried after a backoff.
func (j *Job) Run(ctx context.Context) error {
	return bus.Every(ctx, j.opts.Logger, "rollup run", j.opts.Interval, j.RunOnce)
}

// RunOnce recomputes every hour (and day) marked since the last watermark.
func (j *Job) RunOnce(ctx context.Context) error {
	start := time.Now()
	err := j.runOnce(ctx)
	j.duration.Observe(time.Since(start).Seconds())
	if err != nil {
		j.runs.WithLabelValues("error").Inc()
		return err
	}
	j.runs.WithLabelValues("ok").Inc()
	return nil
}

func (j *Job) runOnce(ctx context.Context) error {
	conn := j.opts.Conn
	var now time.Time
	if err := serverTimeSQL.QueryRow(ctx, conn, nil).Scan(&now); err != nil {
		return fmt.Errorf("rollup: server time: %w", err)
	}
	wm, err := Watermark(ctx, conn)
	if err != nil {
		return err
	}
	since := int64(0)
	if !wm.IsZero() {
		since = max(wm.Add(-Slack).Unix(), 0)
	}
	hours, err := dirtyHours(ctx, conn, since)
	if err != nil {
		return err
	}
	for _, run := range runs(hours, hourMs, maxRun) {
		if err := j.recompute(ctx, recomputeSiteHourly, run[0], run[1]); err != nil {
			return err
		}
	}
	days := map[int64]bool{}
	var dayList []int64
	for _, h := range hours {
		d := h / dayMs * dayMs
		if !days[d] {
			days[d] = true
			dayList = append(dayList, d)
		}
	}
	for _, run := range runs(dayList, dayMs, maxRun/24) {
		if err := j.recompute(ctx, recomputeDaily, run[0], run[1]); err != nil {
			return err
		}
		if err := j.recompute(ctx, recomputeSubjectDay, run[0], run[1]); err != nil {
			return err
		}
	}
	if err := insertState.Insert(ctx, conn, []any{stateName, now, time.Now().UnixMilli()}); err != nil {
		return fmt.Errorf("rollup: record watermark: %w", err)
	}
	j.hours.Add(float64(len(hours)))
	j.lag.Set(float64(now.Unix()))
	return nil
}

func dirtyHours(ctx context.Context, conn driver.Conn, since int64) ([]int64, error) {
	rows, err := dirtyHoursSQL.Query(ctx, conn, chstorage.Args{"since_s": since})
	if err != nil {
		return nil, fmt.Errorf("rollup: dirty hours: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var h int64
		if err := rows.Scan(&h); err != nil {
			return nil, fmt.Errorf("rollup: dirty hours: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// runs groups sorted unit starts into [first, last+unit) runs of at most n units.
func runs(units []int64, unit int64, n int) [][2]int64 {
	var out [][2]int64
	for _, u := range units {
		if k := len(out); k > 0 && out[k-1][1] == u && (out[k-1][1]-out[k-1][0])/unit < int64(n) {
			out[k-1][1] = u + unit
			continue
		}
		out = append(out, [2]int64{u, u + unit})
	}
	return out
}

// recompute recomputes one rollup over [from, to) (whole units). The
// version is taken before the read, so a later snapshot always wins.
func (j *Job) recompute(ctx context.Context, stmt *chstorage.Statement, from, to int64) error {
	version := uint64(time.Now().UnixNano())
	args := chstorage.Args{"version": version, "from_s": from / 1000, "to_s": to / 1000, "from_ms": from, "to_ms": to}
	if err := stmt.Exec(ctx, j.opts.Conn, args); err != nil {
		return fmt.Errorf("rollup: %s %d..%d: %w", stmt.Name, from, to, err)
	}
	return nil
}

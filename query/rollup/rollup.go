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
//
// An open unit (its end + Slack after now) with new inserts is recomputed at
// most every OpenHourEvery / OpenDayEvery, a closed one at the next run, so
// the job's cost follows the new data rather than the open units' size ×
// runs. Hours and days have a watermark each; a run that leaves a unit with
// new inserts for later does not advance its kind's watermark, so readers
// keep reading that unit (and any marked since) raw. Which units a run
// recomputed is remembered in memory only: a restarted job (or the instance
// taking over the lease) recomputes every unit marked since the watermark
// once.
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

// The job's watermarks in access_rollup_state. stateAll ("every rollup
// table of 0170 is complete up to it") is what versions before 0171 write
// and read; an older instance still filling access_rollup_hourly advances
// 0034's "access_rollups", which says nothing about the tables of 0170.
// Since 0171 the hours (access_rollup_site_hourly) and the days
// (access_rollup_daily, access_rollup_subject_daily) have a watermark each,
// because an open day is recomputed less often than an open hour; a run that
// advances both also advances stateAll, for readers of older versions.
const (
	stateAll   = "access_rollups_0170"
	stateHours = "access_rollups_0171_hours"
	stateDays  = "access_rollups_0171_days"
)

// Defaults of Options.OpenHourEvery and OpenDayEvery. Under steady ingest
// every recompute of an open unit re-reads its events so far, so each event
// is read about unit/(2·every) times: 6 for hours, 12 for days with these
// (0.31 and 0.33 µs of ClickHouse CPU per event read on the bench's data:
// about 6 µs per event in all; every 10 s it was about 1,500 µs). While
// ingest continues, readers read the open units raw whatever the job does;
// after it stops they do so for up to these durations.
const (
	DefaultOpenHourEvery = 5 * time.Minute
	DefaultOpenDayEvery  = time.Hour
)

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

// Watermark returns the server time up to which every rollup table is
// complete: no hour marked before it minus Slack has inserts its rollups miss.
// Zero when the job never completed a run.
func Watermark(ctx context.Context, conn driver.Conn) (time.Time, error) {
	h, err := WatermarkOf(ctx, conn, hourMs)
	if err != nil {
		return time.Time{}, err
	}
	d, err := WatermarkOf(ctx, conn, dayMs)
	if err != nil {
		return time.Time{}, err
	}
	if d.Before(h) {
		return d, nil
	}
	return h, nil
}

// WatermarkOf returns the watermark of the rollups of one unit: hourMs for
// access_rollup_site_hourly, dayMs for the daily ones. A unit with no mark
// since it minus Slack is complete in those rollups. Zero when no run
// completed.
func WatermarkOf(ctx context.Context, conn driver.Conn, unit int64) (time.Time, error) {
	name := stateHours
	if unit >= dayMs {
		name = stateDays
	}
	var wm time.Time
	if err := watermarkSQL.QueryRow(ctx, conn, chstorage.Args{"name": name, "also": stateAll}).Scan(&wm); err != nil {
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
	// OpenHourEvery and OpenDayEvery are how often an open hour or day
	// (its end plus Slack after now) with new inserts is recomputed;
	// closed ones are recomputed at the next run. Defaults
	// DefaultOpenHourEvery and DefaultOpenDayEvery.
	OpenHourEvery, OpenDayEvery time.Duration
	// Now is the clock that decides whether a unit is open and due (tests);
	// nil: the server's clock.
	Now func() time.Time
}

// Job is the rollup job.
type Job struct {
	opts Options
	// done holds, per unit (hours and days apart), the run that last
	// recomputed it: only this process's runs, lost on restart (then every
	// unit marked since the watermark is recomputed once).
	doneHours, doneDays map[int64]done
	deferred            prometheus.Counter
	runs                *prometheus.CounterVec
	hours               prometheus.Counter
	lag                 prometheus.Gauge
	duration            prometheus.Histogram
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
	if opts.OpenHourEvery <= 0 {
		opts.OpenHourEvery = DefaultOpenHourEvery
	}
	if opts.OpenDayEvery <= 0 {
		opts.OpenDayEvery = DefaultOpenDayEvery
	}
	j := &Job{opts: opts, doneHours: map[int64]done{}, doneDays: map[int64]done{},
		deferred: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_rollup_units_deferred_total", Help: "Open hours and days with new inserts left to a later run (by default an open hour is recomputed at most every 5 minutes, an open day every hour).",
		}),
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
		opts.Registerer.MustRegister(j.runs, j.hours, j.lag, j.duration, j.deferred)
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

// done is one unit's latest recompute: the server time its run started
// (marks before it minus Slack are included) and the decision clock's time.
type done struct{ server, at time.Time }

// mark is an hour with inserts and the server time of its latest mark.
type mark struct {
	hour int64
	last time.Time
}

// plan picks, of units with their latest marks, those to recompute now: a
// unit whose latest mark is before its kind's watermark or its own last
// recompute (minus Slack) has nothing new; a closed one is due at once; an
// open one (its end plus Slack after now) once every `every`. deferred says
// whether a unit with new inserts was left for a later run (then the kind's
// watermark must not advance).
func plan(marks []mark, unit int64, wm time.Time, doneOf map[int64]done, now time.Time, every time.Duration) (due []int64, deferred int) {
	for _, m := range marks {
		if !wm.IsZero() && m.last.Before(wm.Add(-Slack)) {
			continue
		}
		d, ok := doneOf[m.hour]
		if ok && m.last.Before(d.server.Add(-Slack)) {
			continue
		}
		open := time.UnixMilli(m.hour + unit).Add(Slack).After(now)
		if open && ok && now.Sub(d.at) < every {
			deferred++
			continue
		}
		due = append(due, m.hour)
	}
	return due, deferred
}

// byDay groups hour marks into day marks (the latest of the day's hours).
func byDay(marks []mark) []mark {
	var out []mark
	for _, m := range marks {
		d := m.hour / dayMs * dayMs
		if n := len(out); n > 0 && out[n-1].hour == d {
			if m.last.After(out[n-1].last) {
				out[n-1].last = m.last
			}
			continue
		}
		out = append(out, mark{d, m.last})
	}
	return out
}

func (j *Job) runOnce(ctx context.Context) error {
	conn := j.opts.Conn
	var now time.Time
	if err := serverTimeSQL.QueryRow(ctx, conn, nil).Scan(&now); err != nil {
		return fmt.Errorf("rollup: server time: %w", err)
	}
	clock := now
	if j.opts.Now != nil {
		clock = j.opts.Now()
	}
	wmHours, err := WatermarkOf(ctx, conn, hourMs)
	if err != nil {
		return err
	}
	wmDays, err := WatermarkOf(ctx, conn, dayMs)
	if err != nil {
		return err
	}
	since := int64(0)
	if !wmHours.IsZero() && !wmDays.IsZero() {
		since = max(earlier(wmHours, wmDays).Add(-Slack).Unix(), 0)
	}
	marks, err := dirtyMarks(ctx, conn, since)
	if err != nil {
		return err
	}
	hours, deferredHours := plan(marks, hourMs, wmHours, j.doneHours, clock, j.opts.OpenHourEvery)
	days, deferredDays := plan(byDay(marks), dayMs, wmDays, j.doneDays, clock, j.opts.OpenDayEvery)
	for _, run := range runs(hours, hourMs, maxRun) {
		if err := j.recompute(ctx, recomputeSiteHourly, run[0], run[1]); err != nil {
			return err
		}
	}
	for _, run := range runs(days, dayMs, maxRun/24) {
		if err := j.recompute(ctx, recomputeDaily, run[0], run[1]); err != nil {
			return err
		}
		if err := j.recompute(ctx, recomputeSubjectDay, run[0], run[1]); err != nil {
			return err
		}
	}
	d := done{server: now, at: clock}
	for _, h := range hours {
		j.doneHours[h] = d
	}
	for _, day := range days {
		j.doneDays[day] = d
	}
	var state [][]any
	updated := time.Now().UnixMilli()
	if deferredHours == 0 {
		state = append(state, []any{stateHours, now, updated})
		wmHours = now
	}
	if deferredDays == 0 {
		state = append(state, []any{stateDays, now, updated})
		wmDays = now
	}
	if deferredHours == 0 && deferredDays == 0 {
		state = append(state, []any{stateAll, now, updated})
	}
	if len(state) > 0 {
		if err := insertState.Insert(ctx, conn, state...); err != nil {
			return fmt.Errorf("rollup: record watermark: %w", err)
		}
	}
	forget(j.doneHours, hourMs, wmHours, clock)
	forget(j.doneDays, dayMs, wmDays, clock)
	j.hours.Add(float64(len(hours)))
	j.deferred.Add(float64(deferredHours + deferredDays))
	j.lag.Set(float64(min(wmHours.Unix(), wmDays.Unix())))
	if deferredHours+deferredDays > 0 {
		j.opts.Logger.Debug("rollup run deferred open units", "hours", len(hours), "days", len(days),
			"deferred_hours", deferredHours, "deferred_days", deferredDays)
	}
	return nil
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// forget drops the recomputes of closed units that a watermark covers: a
// mark that passes the watermark's check is never before such a run's start
// minus Slack. Open units keep theirs: it says when they are due again.
func forget(doneOf map[int64]done, unit int64, wm, now time.Time) {
	for u, d := range doneOf {
		if !d.server.After(wm) && !time.UnixMilli(u+unit).Add(Slack).After(now) {
			delete(doneOf, u)
		}
	}
}

func dirtyMarks(ctx context.Context, conn driver.Conn, since int64) ([]mark, error) {
	rows, err := dirtyHoursSQL.Query(ctx, conn, chstorage.Args{"since_s": since})
	if err != nil {
		return nil, fmt.Errorf("rollup: dirty hours: %w", err)
	}
	defer rows.Close()
	var out []mark
	for rows.Next() {
		var m mark
		if err := rows.Scan(&m.hour, &m.last); err != nil {
			return nil, fmt.Errorf("rollup: dirty hours: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("rollup: dirty hours: %w", err)
	}
	return out, nil
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

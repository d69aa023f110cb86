// Package retention enforces per-table retention by dropping whole expired
// monthly partitions (ALTER TABLE ... DROP PARTITION ID, portable to
// ClickHouse 18.16; partition ids come from system.parts) and writes every
// drop to the audit log before it happens.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/query/rollup"
)

// Derived lists the tables whose rows come from another table's: they follow
// its policy (a drop of access_events' 202401 also drops theirs).
var Derived = map[string][]string{
	chstorage.AccessEvents.Name: {chstorage.AccessEventsBySubject.Name,
		chstorage.AccessLocations.Name, chstorage.AccessIdentities.Name, rollup.TableHourly,
		rollup.TableSiteHourly, rollup.TableDaily, rollup.TableSubjectDaily},
	chstorage.Alerts.Name: {chstorage.AlertIndex.Name, chstorage.AlertsOpen.Name},
}

// Tables are the tables a policy may name: monthly-partitioned, holding
// events or records that age out. The audit log is never among them.
var Tables = []string{chstorage.AccessEvents.Name, chstorage.DeadLetters.Name, chstorage.CredentialEvents.Name,
	chstorage.Alerts.Name, rollup.TableDirty}

var (
	tableExistsSQL   = chstorage.Query("retention/table_exists")
	partitionsSQL    = chstorage.Query("retention/partitions")
	dropPartitionSQL = chstorage.Query("retention/drop_partition")
)

// DefaultPolicy is used for tables the configuration does not name.
var DefaultPolicy = []string{"access_events=400d", "dead_letters=90d", rollup.TableDirty + "=62d"}

// Policy keeps a table's rows for Keep.
type Policy struct {
	Table string        `json:"table"`
	Keep  time.Duration `json:"-"`
}

// ParsePolicies reads "table=duration" items (durations like 400d, 36h),
// on top of DefaultPolicy.
func ParsePolicies(items []string) ([]Policy, error) {
	byTable := map[string]time.Duration{}
	for _, list := range [][]string{DefaultPolicy, items} {
		for _, it := range list {
			table, keep, ok := strings.Cut(strings.TrimSpace(it), "=")
			if !ok {
				return nil, fmt.Errorf("%q: want table=duration, e.g. access_events=400d", it)
			}
			if !slices.Contains(Tables, table) {
				return nil, fmt.Errorf("%q: retention applies to %s", table, strings.Join(Tables, ", "))
			}
			d, err := openapi.ParseDuration(keep)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", table, err)
			}
			if d < 31*24*time.Hour {
				return nil, fmt.Errorf("%s=%s: keep at least 31d (partitions are monthly)", table, keep)
			}
			byTable[table] = d
		}
	}
	var out []Policy
	for _, t := range Tables {
		if d, ok := byTable[t]; ok {
			out = append(out, Policy{Table: t, Keep: d})
		}
	}
	return out, nil
}

// Options configure the job.
type Options struct {
	Conn       driver.Conn
	Audit      audit.Appender
	Policies   []Policy
	Interval   time.Duration // default 1h
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Job drops expired partitions.
type Job struct {
	opts    Options
	dropped *prometheus.CounterVec
	rows    *prometheus.CounterVec
	runs    *prometheus.CounterVec

	mu      sync.Mutex
	lastRun time.Time
	lastErr string
	last    []Drop
}

// Drop is one dropped partition.
type Drop struct {
	Table     string `json:"table"`
	Partition string `json:"partition"`
	Rows      uint64 `json:"rows"`
	Bytes     uint64 `json:"bytes"`
	AtMs      int64  `json:"at_ms"`
}

// New returns the job.
func New(opts Options) (*Job, error) {
	if opts.Conn == nil || opts.Audit == nil {
		return nil, errors.New("retention: Conn and Audit are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = time.Hour
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	j := &Job{opts: opts,
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_retention_partitions_dropped_total", Help: "Expired partitions dropped, by table.",
		}, []string{"table"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_retention_rows_dropped_total", Help: "Rows in dropped partitions, by table.",
		}, []string{"table"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_retention_runs_total", Help: "Retention runs, by result (ok, error).",
		}, []string{"result"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(j.dropped, j.rows, j.runs)
	}
	return j, nil
}

// Run enforces the policies every Interval until ctx ends; a failed run
// (ClickHouse away) is retried after a backoff, not an Interval later.
func (j *Job) Run(ctx context.Context) error {
	return bus.Every(ctx, j.opts.Logger, "retention run", j.opts.Interval, func(ctx context.Context) error {
		_, err := j.RunOnce(ctx)
		return err
	})
}

// Partition is one monthly partition of a table.
type Partition struct {
	ID        string `json:"partition"`
	Rows      uint64 `json:"rows"`
	Bytes     uint64 `json:"bytes"`
	ExpiresMs int64  `json:"expires_ms"` // when its whole month is older than the policy
}

var partitionIDRE = regexp.MustCompile(`^[0-9]{6}$`)

// monthEnd returns the start of the month after partition id YYYYMM, plus a
// day, so a server time zone ahead of or behind UTC never makes a month look
// over early.
func monthEnd(id string) (time.Time, bool) {
	if !partitionIDRE.MatchString(id) {
		return time.Time{}, false
	}
	y, _ := strconv.Atoi(id[:4])
	m, _ := strconv.Atoi(id[4:])
	if m < 1 || m > 12 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(m)+1, 1, 0, 0, 0, 0, time.UTC).Add(24 * time.Hour), true
}

// partitions lists a table's active monthly partitions, oldest first; exists
// is false when the table does not exist.
func (j *Job) partitions(ctx context.Context, table string, keep time.Duration) ([]Partition, bool, error) {
	var n uint64
	if err := tableExistsSQL.QueryRow(ctx, j.opts.Conn, chstorage.Args{"table": table}).Scan(&n); err != nil {
		return nil, false, fmt.Errorf("retention: table %s: %w", table, err)
	}
	if n == 0 {
		return nil, false, nil
	}
	rows, err := partitionsSQL.Query(ctx, j.opts.Conn, chstorage.Args{"table": table})
	if err != nil {
		return nil, true, fmt.Errorf("retention: partitions of %s: %w", table, err)
	}
	defer rows.Close()
	var out []Partition
	for rows.Next() {
		var p Partition
		if err := rows.Scan(&p.ID, &p.Rows, &p.Bytes); err != nil {
			return nil, true, fmt.Errorf("retention: partitions of %s: %w", table, err)
		}
		end, ok := monthEnd(p.ID)
		if !ok {
			continue // not a monthly partition: never dropped
		}
		p.ExpiresMs = end.Add(keep).UnixMilli()
		out = append(out, p)
	}
	return out, true, rows.Err()
}

// RunOnce drops every expired partition and returns the drops.
func (j *Job) RunOnce(ctx context.Context) ([]Drop, error) {
	now := j.opts.Now()
	var drops []Drop
	var errs []error
	for _, p := range j.opts.Policies {
		tables := append([]string{p.Table}, Derived[p.Table]...)
		for _, table := range tables {
			d, err := j.enforce(ctx, table, p, now)
			drops = append(drops, d...)
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	err := errors.Join(errs...)
	j.mu.Lock()
	j.lastRun, j.last = now, drops
	j.lastErr = ""
	if err != nil {
		j.lastErr = err.Error()
	}
	j.mu.Unlock()
	if err != nil {
		j.runs.WithLabelValues("error").Inc()
	} else {
		j.runs.WithLabelValues("ok").Inc()
	}
	return drops, err
}

func (j *Job) enforce(ctx context.Context, table string, p Policy, now time.Time) ([]Drop, error) {
	parts, exists, err := j.partitions(ctx, table, p.Keep)
	if err != nil || !exists {
		return nil, err
	}
	guard := now
	if table == rollup.TableDirty {
		// Marks the rollup job has not consumed yet must stay.
		wm, err := rollup.Watermark(ctx, j.opts.Conn)
		if err != nil {
			return nil, err
		}
		if wm.Add(-rollup.Slack).Before(guard) {
			guard = wm.Add(-rollup.Slack)
		}
	}
	var drops []Drop
	for _, part := range parts {
		end, _ := monthEnd(part.ID)
		if part.ExpiresMs > now.UnixMilli() || end.After(guard) {
			continue
		}
		details := map[string]string{
			"policy": p.Table, "keep": formatKeep(p.Keep), "rows": strconv.FormatUint(part.Rows, 10),
			"bytes": strconv.FormatUint(part.Bytes, 10), "cutoff_ms": strconv.FormatInt(now.Add(-p.Keep).UnixMilli(), 10),
		}
		target := table + "/" + part.ID
		// The entry is written first: a drop is never unaudited. A failed
		// drop gets a second entry saying so.
		if err := j.opts.Audit.Append(ctx, audit.Entry{Actor: "system:retention", Action: "retention.drop",
			Target: target, Details: details, TsMs: now.UnixMilli()}); err != nil {
			return drops, fmt.Errorf("retention: audit drop of %s: %w", target, err)
		}
		if err := dropPartitionSQL.Exec(ctx, j.opts.Conn, chstorage.Args{"table": table, "partition": part.ID}); err != nil {
			_ = j.opts.Audit.Append(ctx, audit.Entry{Actor: "system:retention", Action: "retention.drop_failed",
				Target: target, Details: map[string]string{"error": err.Error()}, TsMs: now.UnixMilli()})
			return drops, fmt.Errorf("retention: drop %s: %w", target, err)
		}
		j.opts.Logger.Info("retention dropped partition", "table", table, "partition", part.ID, "rows", part.Rows)
		j.dropped.WithLabelValues(table).Inc()
		j.rows.WithLabelValues(table).Add(float64(part.Rows))
		drops = append(drops, Drop{Table: table, Partition: part.ID, Rows: part.Rows, Bytes: part.Bytes, AtMs: now.UnixMilli()})
	}
	return drops, nil
}

func formatKeep(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}

// TableStatus is one table's retention state.
type TableStatus struct {
	Table      string      `json:"table"`
	Keep       string      `json:"keep"`
	Policy     string      `json:"policy"` // the table whose policy applies
	Exists     bool        `json:"exists"`
	Partitions []Partition `json:"partitions"`
	NextDrop   *Partition  `json:"next_drop,omitempty"`
}

// Status is what GET /v1/retention shows.
type Status struct {
	IntervalS float64       `json:"interval_s"`
	LastRunMs int64         `json:"last_run_ms,omitempty"`
	LastError string        `json:"last_error,omitempty"`
	LastDrops []Drop        `json:"last_drops"`
	Tables    []TableStatus `json:"tables"`
}

// Status reports the policies, each table's partitions with when they
// expire, and the next drop.
func (j *Job) Status(ctx context.Context) (Status, error) {
	j.mu.Lock()
	st := Status{IntervalS: j.opts.Interval.Seconds(), LastError: j.lastErr, LastDrops: append([]Drop{}, j.last...)}
	if !j.lastRun.IsZero() {
		st.LastRunMs = j.lastRun.UnixMilli()
	}
	j.mu.Unlock()
	for _, p := range j.opts.Policies {
		for _, table := range append([]string{p.Table}, Derived[p.Table]...) {
			parts, exists, err := j.partitions(ctx, table, p.Keep)
			if err != nil {
				return st, err
			}
			ts := TableStatus{Table: table, Keep: formatKeep(p.Keep), Policy: p.Table, Exists: exists, Partitions: parts}
			if ts.Partitions == nil {
				ts.Partitions = []Partition{}
			}
			sort.Slice(parts, func(a, b int) bool { return parts[a].ExpiresMs < parts[b].ExpiresMs })
			if len(parts) > 0 {
				next := parts[0]
				ts.NextDrop = &next
			}
			st.Tables = append(st.Tables, ts)
		}
	}
	return st, nil
}

// PathRetention is the status route.
const PathRetention = "/v1/retention"

// Routes returns GET /v1/retention (admin only).
func (j *Job) Routes() []httpapi.Route {
	return []httpapi.Route{{Method: fiber.MethodGet, Path: PathRetention,
		Summary: "Retention policies, partitions with their expiry, the next and the last drops.",
		Roles:   httpapi.AdminOnly, Handler: j.handleStatus}}
}

// Operations describes the routes for the OpenAPI document.
func (j *Job) Operations() map[string]openapi.Operation {
	return map[string]openapi.Operation{openapi.Key(fiber.MethodGet, PathRetention): {
		Description: "Each policy's tables (a table's derived copies follow its policy), their monthly " +
			"partitions with rows, bytes and the time each expires (its whole month older than the policy), " +
			"and the job's last run. Every drop is written to the audit log before it happens.",
		Responses: map[int]openapi.Response{200: {Description: "retention status",
			Content: openapi.JSON(openapi.ResponseSchema(Status{}, nil))}},
	}}
}

func (j *Job) handleStatus(c *fiber.Ctx) error {
	if _, err := openapi.Parse(nil, openapi.Args(c), j.opts.Now()); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	st, err := j.Status(ctx)
	if err != nil {
		return err
	}
	return c.JSON(st)
}

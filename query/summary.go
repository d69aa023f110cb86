package query

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/query/rollup"
)

// Bucket widths in milliseconds; "all" is one bucket over the whole range.
var bucketWidths = map[string]int64{
	"minute": 60_000, "5m": 300_000, "hour": 3_600_000, "day": 86_400_000, "all": 0,
}

const (
	maxBuckets = 10_000
	hourMs     = 3_600_000
	dayMs      = 86_400_000
	// maxDirty bounds the units a summary reads raw because the rollup job
	// has not caught up with them; past it the whole summary is read raw.
	maxDirty = 2000
)

// lowCardinality dimensions are grouped in one query; the others (ids) first
// pick their top keys.
var lowCardinality = []string{"site", "vendor", "action", "outcome", "method", "reason", "attested"}

// siteHourlyDims are the dimensions of access_rollup_site_hourly, dailyDims
// those of access_rollup_daily, subjectDailyDims those of
// access_rollup_subject_daily.
var (
	siteHourlyDims   = []string{"site", "vendor", "action", "outcome"}
	dailyDims        = []string{"site", "vendor", "action", "outcome", "method", "reason"}
	subjectDailyDims = []string{"site", "outcome", "action", "subject"}
)

func dimNames() []string {
	out := make([]string, len(filters))
	for i, f := range filters {
		out[i] = f.param
	}
	return out
}

func columnOf(param string) string {
	for _, f := range filters {
		if f.param == param {
			return f.column
		}
	}
	return ""
}

var summaryOp = openapi.Operation{
	Description: "Counts of distinct events (dedup-safe) per time bucket, optionally split by a dimension " +
		"(the top N keys by total). Buckets are UTC-aligned; empty buckets are omitted. Hour and day " +
		"buckets over site/vendor/action/outcome, day buckets over site/vendor/action/outcome/method/reason (and day buckets of subjects by " +
		"site/outcome/action, for denied and error outcomes) are served from exact pre-aggregates plus the not-yet-rolled-up tail.",
	Params: append(append(rangeParams("now-24h"), filterParams()...),
		openapi.Param{Name: "bucket", Enum: []string{"minute", "5m", "hour", "day", "all"}, Default: "hour",
			Description: "time bucket width; all: one bucket over the range"},
		openapi.Param{Name: "by", Enum: dimNames(), Description: "split the counts by this dimension"},
		openapi.Param{Name: "top", Type: openapi.TypeInteger, Min: 1, Max: 1000, Default: "20",
			Description: "with by: keep the top N keys by total count"},
	),
	Responses: map[int]openapi.Response{200: {Description: "the summary",
		Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
			"bucket": map[string]any{"type": "string"}, "by": map[string]any{"type": "string"},
			"source":    map[string]any{"type": "string", "enum": []string{"rollup", "raw", "mixed"}},
			"truncated": map[string]any{"type": "boolean"},
			"series": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
				"key": map[string]any{"type": "string"}, "total": map[string]any{"type": "integer"},
				"points": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
					"ts_ms": map[string]any{"type": "integer"}, "count": map[string]any{"type": "integer"}}}},
			}}},
		}}}}},
}

type point struct {
	TsMs  int64  `json:"ts_ms"`
	Count uint64 `json:"count"`
}

type series struct {
	Key    string  `json:"key"`
	Total  uint64  `json:"total"`
	Points []point `json:"points"`
}

type summaryResult struct {
	FromMs    int64    `json:"from_ms"`
	ToMs      int64    `json:"to_ms"`
	Bucket    string   `json:"bucket"`
	By        string   `json:"by,omitempty"`
	Source    string   `json:"source"`
	Truncated bool     `json:"truncated"`
	Series    []series `json:"series"`
}

// countKey is one (bucket start, dimension value) cell.
type countKey struct {
	bucket int64
	key    string
}

type counts map[countKey]uint64

// summaryQuery is a validated summary request.
type summaryQuery struct {
	r      timeRange
	sel    selection
	bucket string
	width  int64
	by     string
	top    int
}

func (s *Service) handleSummary(c *fiber.Ctx) error {
	v, err := s.parse(c, summaryOp)
	if err != nil {
		return err
	}
	r, err := s.timeRange(v)
	if err != nil {
		return err
	}
	sel, err := scoped(c, selectionOf(v))
	if err != nil {
		return err
	}
	q := summaryQuery{r: r, sel: sel, bucket: v.String("bucket"), by: v.String("by"), top: int(v.Int("top"))}
	q.width = bucketWidths[q.bucket]
	// Buckets are whole: the range is widened to bucket boundaries (whole
	// hours for bucket=all), so no bucket is a partial count and whole
	// hours and days can come from the rollups.
	unit := q.width
	if unit == 0 {
		unit = hourMs
	}
	q.r = timeRange{from: q.r.from / unit * unit, to: ceilDiv(q.r.to, unit) * unit}
	if q.width > 0 && (r.to-r.from)/q.width > maxBuckets {
		return httpapi.BadRequest("bucket", fmt.Sprintf("%s buckets over this range are more than %d; use a wider bucket", q.bucket, maxBuckets))
	}
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	res, err := s.summarize(ctx, q)
	if err != nil {
		return s.queryError(PathSummary, err)
	}
	s.metrics.summaries.WithLabelValues(res.Source).Inc()
	return c.JSON(res)
}

// onlyOutcomes reports whether the selection asks for some of these
// outcomes and no other.
func onlyOutcomes(sel selection, outcomes []string) bool {
	if len(sel["outcome"]) == 0 {
		return false
	}
	for _, o := range sel["outcome"] {
		if !slices.Contains(outcomes, o) {
			return false
		}
	}
	return true
}

func subset(sel selection, allowed []string) bool {
	for k := range sel {
		if !slices.Contains(allowed, k) {
			return false
		}
	}
	return true
}

// part is one subquery yielding (b Int64, k String, c UInt64) rows: counts of
// distinct events per bucket and key over a disjoint share of the range.
type part = chstorage.Fragment

// summarize chooses the data sources and merges their counts.
func (s *Service) summarize(ctx context.Context, q summaryQuery) (summaryResult, error) {
	res := summaryResult{FromMs: q.r.from, ToMs: q.r.to, Bucket: q.bucket, By: q.by}
	build, source, err := s.sources(ctx, q)
	if err != nil {
		return res, err
	}
	res.Source = source
	all := counts{}
	if q.by != "" && !slices.Contains(lowCardinality, q.by) {
		// An id dimension: rank the keys by their total over every part in
		// one query (one bucket, so grouping is by key alone), then fetch
		// buckets for the top keys only.
		rank := q
		rank.width = 0
		parts, err := build(rank, nil)
		if err != nil {
			return res, err
		}
		totals, err := s.topTotals(ctx, parts, q.top+1)
		if err != nil {
			return res, err
		}
		if q.width == 0 || len(totals) == 0 {
			for _, t := range totals {
				all[countKey{bucket: q.r.from, key: t.key}] = t.n
			}
			res.Series, res.Truncated = toSeries(all, q.top, true)
			return res, nil
		}
		keys := make([]string, len(totals))
		for i, t := range totals {
			keys[i] = t.key
		}
		if parts, err = build(q, keys); err != nil {
			return res, err
		}
		if err := s.cells(ctx, parts, all); err != nil {
			return res, err
		}
		res.Series, res.Truncated = toSeries(all, q.top, true)
		return res, nil
	}
	parts, err := build(q, nil)
	if err != nil {
		return res, err
	}
	if err := s.cells(ctx, parts, all); err != nil {
		return res, err
	}
	res.Series, res.Truncated = toSeries(all, q.top, q.by != "")
	return res, nil
}

// sources returns a builder of the summary's parts (restricted to keys when
// given) and the source label. Whole hours (days for subject rankings) the
// rollup job has finished come from the rollup tables; everything else —
// units with inserts the job has not rolled up yet, partial units, queries
// the rollups cannot answer — from the events, so sums are exact whatever
// the job's lag.
func (s *Service) sources(ctx context.Context, q summaryQuery) (func(q summaryQuery, keys []string) ([]part, error), string, error) {
	rawOnly := func(q summaryQuery, keys []string) ([]part, error) {
		p, err := s.rawPart(ctx, q, []timeRange{q.r}, keys)
		return []part{p}, err
	}
	dayBuckets := q.bucket == "day" || q.bucket == "all"
	hourly := (q.width == 0 || q.width >= hourMs) && (q.by == "" || slices.Contains(siteHourlyDims, q.by)) && subset(q.sel, siteHourlyDims)
	daily := dayBuckets && (q.by == "" || slices.Contains(dailyDims, q.by)) && subset(q.sel, dailyDims)
	subjectDaily := dayBuckets && q.by == "subject" && subset(q.sel, subjectDailyDims) &&
		len(q.sel["subject"]) == 0 && onlyOutcomes(q.sel, rollup.SubjectDailyOutcomes)
	unit, table := int64(hourMs), rollup.TableSiteHourly
	switch {
	case daily && (q.bucket == "day" || !hourly):
		// Day buckets: the range is whole days, and a day is ~24× fewer
		// rows than its hours. Whole-range buckets over site, vendor,
		// action and outcome take hours (their partial edges are hours,
		// not days, of events).
		unit, table = dayMs, rollup.TableDaily
	case hourly:
	case subjectDaily:
		unit, table = dayMs, rollup.TableSubjectDaily
	default:
		return rawOnly, "raw", nil
	}
	a := ceilDiv(q.r.from, unit) * unit
	b := q.r.to / unit * unit
	if a >= b {
		return rawOnly, "raw", nil
	}
	dirty, ok, err := s.dirtyUnits(ctx, a, b, unit)
	if err != nil {
		return nil, "", err
	}
	if !ok {
		return rawOnly, "raw", nil
	}
	var raw []timeRange
	if q.r.from < a {
		raw = append(raw, timeRange{q.r.from, a})
	}
	for _, d := range dirty {
		raw = append(raw, timeRange{d, d + unit})
	}
	if b < q.r.to {
		raw = append(raw, timeRange{b, q.r.to})
	}
	raw = mergeRanges(raw)
	source := "rollup"
	if len(raw) > 0 {
		source = "mixed"
	}
	return func(q summaryQuery, keys []string) ([]part, error) {
		p, err := s.rollupPart(q, table, a, b, dirty, keys)
		if err != nil {
			return nil, err
		}
		parts := []part{p}
		if len(raw) > 0 {
			p, err := s.rawPart(ctx, q, raw, keys)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
		return parts, nil
	}, source, nil
}

func mergeRanges(rs []timeRange) []timeRange {
	sort.Slice(rs, func(i, j int) bool { return rs[i].from < rs[j].from })
	var out []timeRange
	for _, r := range rs {
		if n := len(out); n > 0 && out[n-1].to >= r.from {
			out[n-1].to = max(out[n-1].to, r.to)
			continue
		}
		out = append(out, r)
	}
	return out
}

// dirtyUnits returns the units in [a, b) with inserts the rollup job may not
// have rolled up yet. ok is false when there is no usable rollup (the job
// never ran, or too much is pending).
func (s *Service) dirtyUnits(ctx context.Context, a, b, unit int64) ([]int64, bool, error) {
	wm, err := rollup.WatermarkOf(ctx, s.opts.Conn, unit)
	if err != nil {
		return nil, false, err
	}
	if wm.IsZero() {
		return nil, false, nil
	}
	since := wm.Add(-rollup.Slack).Unix()
	rows, err := dirtyUnitsSQL.Query(ctx, s.opts.Conn, chstorage.Args{"unit": unit, "since_s": max(since, 0),
		"from_ms": a, "to_ms": b, "limit": maxDirty + 1})
	if err != nil {
		return nil, false, fmt.Errorf("read dirty units: %w", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var u int64
		if err := rows.Scan(&u); err != nil {
			return nil, false, fmt.Errorf("read dirty units: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read dirty units: %w", err)
	}
	if len(out) > maxDirty {
		return nil, false, nil
	}
	slices.Sort(out)
	return out, true, nil
}

// partArgs are a part's bucket and key parameters: buckets of width from
// the range's start (one bucket without width), keys of the by column (one empty key without).
func (q summaryQuery) partArgs() chstorage.Args {
	return chstorage.Args{"width": q.width, "bucket_from_ms": q.r.from, "by": columnOf(q.by)}
}

var (
	dirtyUnitsSQL         = chstorage.Query("query/dirty_units")
	rawPartSQL            = chstorage.Query("query/summary_raw_part")
	rollupSiteHourlySQL   = chstorage.Query("query/summary_rollup_site_hourly")
	rollupDailySQL        = chstorage.Query("query/summary_rollup_daily")
	rollupSubjectDailySQL = chstorage.Query("query/summary_rollup_subject_daily")
	topKeysSQL            = chstorage.Query("query/summary_top_keys")
	cellsSQL              = chstorage.Query("query/summary_cells")
)

// rawPart counts distinct events per (bucket, key) over ranges of the events.
func (s *Service) rawPart(ctx context.Context, q summaryQuery, ranges []timeRange, keys []string) (part, error) {
	src, err := s.plan(ctx, q.sel)
	if err != nil {
		return part{}, err
	}
	if len(ranges) == 1 {
		src.w.timeRange(ranges[0])
	} else {
		src.w.ranges(ranges)
	}
	if q.by == "subject" {
		// Events without a subject (door sensors) are not a subject; the
		// subject rollup leaves them out too.
		src.w.add("subject_id != ''")
	}
	if keys != nil {
		src.w.in(columnOf(q.by), keys)
	}
	args := q.partArgs()
	args["table"], args["where"] = src.table, chstorage.Fragment{SQL: src.w.sql(), Args: src.w.args}
	return rawPartSQL.Fragment(args)
}

// rollupPart reads whole units [a, b) minus dirty from a rollup table.
// Each job run recomputes whole units and writes all of a unit's keys with
// one version, and recomputed rows are replaced only at merge time; so a
// unit's rows are those with the unit's highest version.
func (s *Service) rollupPart(q summaryQuery, table string, a, b int64, dirty []int64, keys []string) (part, error) {
	stmt, unitCol := rollupSiteHourlySQL, "hour_ms"
	switch table {
	case rollup.TableDaily:
		stmt, unitCol = rollupDailySQL, "day_ms"
	case rollup.TableSubjectDaily:
		stmt, unitCol = rollupSubjectDailySQL, "day_ms"
	}
	var w where
	if len(dirty) > 0 {
		ph := make([]any, len(dirty))
		for i, d := range dirty {
			ph[i] = d
		}
		w.add(unitCol+" NOT IN ("+placeholders(len(dirty))+")", ph...)
	}
	for _, f := range filters {
		if vals := q.sel[f.param]; len(vals) > 0 {
			w.in(f.column, vals)
		}
	}
	if keys != nil {
		w.in(columnOf(q.by), keys)
	}
	args := q.partArgs()
	args["from_s"], args["to_s"], args["from_ms"], args["to_ms"], args["where"] = a/1000, b/1000, a, b, w.fragment()
	return stmt.Fragment(args)
}

// union is the parts as one UNION ALL.
func union(parts []part) chstorage.Fragment {
	var u chstorage.Fragment
	for i, p := range parts {
		if i > 0 {
			u.SQL += " UNION ALL "
		}
		u.SQL += p.SQL
		u.Args = append(u.Args, p.Args...)
	}
	return u
}

type keyTotal struct {
	key string
	n   uint64
}

// topTotals returns the n keys with the most events over all parts.
func (s *Service) topTotals(ctx context.Context, parts []part, n int) ([]keyTotal, error) {
	rows, err := topKeysSQL.Query(ctx, s.opts.Conn, chstorage.Args{"parts": union(parts), "limit": n})
	if err != nil {
		return nil, fmt.Errorf("summary top keys: %w", err)
	}
	defer rows.Close()
	var out []keyTotal
	for rows.Next() {
		var t keyTotal
		if err := rows.Scan(&t.key, &t.n); err != nil {
			return nil, fmt.Errorf("summary top keys: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// cells reads the counts of every (bucket, key) over all parts.
func (s *Service) cells(ctx context.Context, parts []part, out counts) error {
	var rows driver.Rows
	var err error
	if len(parts) == 1 {
		rows, err = s.opts.Conn.Query(ctx, parts[0].SQL, parts[0].Args...)
	} else {
		rows, err = cellsSQL.Query(ctx, s.opts.Conn, chstorage.Args{"parts": union(parts)})
	}
	if err != nil {
		return fmt.Errorf("summary: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k countKey
		var n uint64
		if err := rows.Scan(&k.bucket, &k.key, &n); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		out[k] += n
	}
	return rows.Err()
}

// toSeries turns cells into series, the top keys by total first (ties by
// key), points in time order.
func toSeries(all counts, top int, split bool) ([]series, bool) {
	byKey := map[string]*series{}
	for k, n := range all {
		s := byKey[k.key]
		if s == nil {
			s = &series{Key: k.key}
			byKey[k.key] = s
		}
		s.Total += n
		s.Points = append(s.Points, point{TsMs: k.bucket, Count: n})
	}
	out := make([]series, 0, len(byKey))
	for _, s := range byKey {
		sort.Slice(s.Points, func(i, j int) bool { return s.Points[i].TsMs < s.Points[j].TsMs })
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Total != out[j].Total {
			return out[i].Total > out[j].Total
		}
		return out[i].Key < out[j].Key
	})
	truncated := false
	if split && len(out) > top {
		out, truncated = out[:top], true
	}
	if out == nil {
		out = []series{}
	}
	return out, truncated
}

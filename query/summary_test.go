package query_test

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/query/querytest"
	"github.com/keyfleet/keyfleet/query/rollup"
)

type summaryResp struct {
	FromMs    int64  `json:"from_ms"`
	ToMs      int64  `json:"to_ms"`
	Bucket    string `json:"bucket"`
	By        string `json:"by"`
	Source    string `json:"source"`
	Truncated bool   `json:"truncated"`
	Series    []struct {
		Key    string `json:"key"`
		Total  uint64 `json:"total"`
		Points []struct {
			TsMs  int64  `json:"ts_ms"`
			Count uint64 `json:"count"`
		} `json:"points"`
	} `json:"series"`
}

var widths = map[string]int64{"minute": 60_000, "5m": 300_000, "hour": 3_600_000, "day": 86_400_000}

func dimOf(a event.Access, by string) string {
	return map[string]string{"": "", "site": a.SiteID, "zone": a.ZoneID, "door": a.DoorID, "lock": a.LockID,
		"vendor": a.Vendor, "subject": a.SubjectID, "credential": a.CredentialID, "device": a.DeviceID,
		"action": a.Action, "outcome": a.Outcome, "method": a.Method, "reason": a.Reason, "attested": a.Attested}[by]
}

// expectSummary computes the reference: key → bucket → count, and the keys
// in the order the API ranks them.
func expectSummary(truth []event.Access, filters map[string]string, from, to int64, bucket, by string) (map[string]map[int64]uint64, []string) {
	cells := map[string]map[int64]uint64{}
	totals := map[string]uint64{}
	for _, a := range truth {
		if !matches(a, filters, from, to) {
			continue
		}
		k := dimOf(a, by)
		if by == "subject" && k == "" {
			continue
		}
		b := from
		if w := widths[bucket]; w > 0 {
			b = a.TsMs / w * w
		}
		if cells[k] == nil {
			cells[k] = map[int64]uint64{}
		}
		cells[k][b]++
		totals[k]++
	}
	keys := make([]string, 0, len(totals))
	for k := range totals {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if totals[keys[i]] != totals[keys[j]] {
			return totals[keys[i]] > totals[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return cells, keys
}

func (e *env) checkSummary(t *testing.T, truth []event.Access, filters map[string]string, from, to time.Time, bucket, by string, top int) summaryResp {
	t.Helper()
	params := url.Values{"from": {ms(from)}, "to": {ms(to)}, "bucket": {bucket}}
	if by != "" {
		params.Set("by", by)
		params.Set("top", strconv.Itoa(top))
	}
	for k, v := range filters {
		params.Set(k, v)
	}
	r := e.get("/v1/events/summary", params)
	require.Equal(t, 200, r.status, string(r.body))
	var got summaryResp
	r.json(t, &got)
	// The range is widened to whole buckets (whole hours for all).
	unit := widths[bucket]
	if unit == 0 {
		unit = 3_600_000
	}
	require.Equal(t, from.UnixMilli()/unit*unit, got.FromMs)
	require.Equal(t, (to.UnixMilli()+unit-1)/unit*unit, got.ToMs)
	cells, keys := expectSummary(truth, filters, got.FromMs, got.ToMs, bucket, by)
	if by != "" && len(keys) > top {
		keys = keys[:top]
		assert.True(t, got.Truncated)
	}
	require.Len(t, got.Series, len(keys), "series of %v", params)
	for i, s := range got.Series {
		require.Equal(t, keys[i], s.Key, "rank %d of %v", i, params)
		want := cells[s.Key]
		require.Len(t, s.Points, len(want), "points of %q in %v", s.Key, params)
		var total uint64
		for _, p := range s.Points {
			require.Equal(t, want[p.TsMs], p.Count, "%q at %d in %v (source %s)", s.Key, p.TsMs, params, got.Source)
			total += p.Count
		}
		require.Equal(t, total, s.Total)
	}
	return got
}

type summaryCase struct {
	filters map[string]string
	bucket  string
	by      string
	top     int
}

var summaryCases = []summaryCase{
	{nil, "hour", "outcome", 20},
	{nil, "day", "site", 20},
	{nil, "all", "", 20},
	{map[string]string{"site": "site-2"}, "hour", "action", 20},
	{map[string]string{"outcome": "denied"}, "all", "subject", 10},
	{map[string]string{"outcome": "denied"}, "day", "subject", 5},
	{map[string]string{"outcome": "granted", "site": "site-1,site-3"}, "all", "subject", 7},
	{map[string]string{"vendor": "nuki", "method": "aliro,pin"}, "day", "reason", 20},
	{nil, "5m", "vendor", 20},
	{map[string]string{"site": "site-4"}, "minute", "", 20},
	{nil, "hour", "door", 3},
	{map[string]string{"subject": "subj-10"}, "day", "door", 20},
	{map[string]string{"attested": "unattested"}, "hour", "method", 20},
}

// Summaries are exact: from raw events before the rollup job ran, from the
// rollups after it ran, and from both while re-deliveries and new events
// have not been rolled up yet.
func TestSummaryIsExactAcrossRollupStates(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(20000, 0)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 5))
	from, to := e.now.Add(-3*24*time.Hour-17*time.Minute), e.now.Add(-5*time.Minute)
	run := func(stage string, wantSources ...string) {
		truth := e.truth()
		for _, c := range summaryCases {
			f, tt := from, to
			if c.bucket == "minute" {
				f = to.Add(-6 * time.Hour)
			}
			got := e.checkSummary(t, truth, c.filters, f, tt, c.bucket, c.by, c.top)
			t.Logf("%s: bucket=%s by=%s filters=%v: source %s, %d series", stage, c.bucket, c.by, c.filters, got.Source, len(got.Series))
			if len(wantSources) > 0 && c.bucket != "minute" && c.bucket != "5m" && c.filters["subject"] == "" &&
				c.filters["attested"] == "" && c.by != "door" &&
				// subject rankings come from the rollup for denials and errors only
				!(c.by == "subject" && c.filters["outcome"] != "denied") {
				assert.Contains(t, wantSources, got.Source, "%s: %+v", stage, c)
			}
		}
	}
	run("before the rollup job", "raw")
	require.NoError(t, e.roll.RunOnce(ctx))
	run("right after the rollup job (marks within the slack)", "mixed")
	// Once the marks are older than the watermark's slack, whole hours and
	// days come from the rollups and only the partial edges from the events.
	time.Sleep(rollup.Slack + time.Second)
	require.NoError(t, e.roll.RunOnce(ctx))
	run("after the rollup job", "mixed", "rollup")
	// More events and re-deliveries: not rolled up yet, still exact.
	require.NoError(t, querytest.Load(ctx, e.conn, querytest.Fleet{Events: 3000, Offset: 500_000,
		Start: e.now.Add(-7 * 24 * time.Hour), Span: 7 * 24 * time.Hour, Subjects: 300, Sites: 6, Doors: 8}))
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 3))
	run("with inserts pending", "mixed")
	require.NoError(t, e.roll.RunOnce(ctx))
	run("after the second run", "mixed", "rollup")
}

func TestSummaryFromRollupAlone(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(5000, 0)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 4))
	require.NoError(t, e.roll.RunOnce(ctx))
	time.Sleep(rollup.Slack + time.Second)
	require.NoError(t, e.roll.RunOnce(ctx))
	truth := e.truth()
	day := e.now.Truncate(24 * time.Hour)
	from, to := day.Add(-72*time.Hour), day.Add(-24*time.Hour)
	for _, c := range []summaryCase{{nil, "hour", "outcome", 20}, {nil, "day", "site", 20}, {nil, "all", "action", 20},
		{map[string]string{"outcome": "denied"}, "all", "subject", 10}, {map[string]string{"site": "site-1", "outcome": "denied,error"}, "day", "subject", 5}} {
		got := e.checkSummary(t, truth, c.filters, from, to, c.bucket, c.by, c.top)
		assert.Equal(t, "rollup", got.Source, "%+v", c)
	}
}

// The rollups of migration 0170 answer what access_rollup_hourly answered,
// with fewer rows: hours by site, vendor, action and outcome, days by every
// dimension. Splits by method or reason per hour come from the events.
func TestSummaryCoarserRollups(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(20000, 0)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 5))
	require.NoError(t, e.roll.RunOnce(ctx))
	time.Sleep(rollup.Slack + time.Second)
	require.NoError(t, e.roll.RunOnce(ctx))
	truth := e.truth()
	from, to := e.now.Add(-3*24*time.Hour-17*time.Minute), e.now.Add(-5*time.Minute)
	for _, c := range []struct {
		summaryCase
		sources []string
	}{
		{summaryCase{map[string]string{"site": "site-2"}, "hour", "outcome", 20}, []string{"rollup", "mixed"}},
		{summaryCase{map[string]string{"outcome": "denied,error"}, "all", "vendor", 20}, []string{"rollup", "mixed"}},
		{summaryCase{nil, "day", "method", 20}, []string{"rollup", "mixed"}},
		{summaryCase{map[string]string{"reason": "revoked,expired", "site": "site-1"}, "all", "site", 20}, []string{"rollup", "mixed"}},
		{summaryCase{map[string]string{"method": "pin"}, "day", "", 20}, []string{"rollup", "mixed"}},
		{summaryCase{nil, "hour", "method", 20}, []string{"raw"}},
		{summaryCase{map[string]string{"reason": "revoked"}, "hour", "", 20}, []string{"raw"}},
	} {
		got := e.checkSummary(t, truth, c.filters, from, to, c.bucket, c.by, c.top)
		assert.Contains(t, c.sources, got.Source, "%+v", c.summaryCase)
	}

	// Merged, the two tables together hold fewer rows than the old hourly
	// key (site, vendor, action, outcome, method, reason per hour) has
	// distinct values in the events.
	for _, table := range []string{rollup.TableSiteHourly, rollup.TableDaily} {
		require.NoError(t, e.conn.Exec(ctx, "OPTIMIZE TABLE "+table+" FINAL"))
	}
	var coarse, old uint64
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT (SELECT count() FROM access_rollup_site_hourly) + (SELECT count() FROM access_rollup_daily)").Scan(&coarse))
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT uniqExact(intDiv(ts_ms, 3600000), site_id, vendor, action, outcome, method, reason) FROM access_events").Scan(&old))
	t.Logf("rollup rows: %d (site hourly + daily) against %d keys of the old hourly rollup", coarse, old)
	assert.Less(t, coarse, old)
}

// Under continuous ingest the open hour and day have new marks on every run.
// The job recomputes an open unit at most every OpenHourEvery / OpenDayEvery
// and a closed one at once; summaries stay exact in between (the watermark
// of a kind with a deferred unit does not advance, so its marks read raw).
func TestRollupDefersOpenUnits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	base := e.now
	hour := base // 12:00, open on the job's clock (e.now) below
	day := base.Truncate(24 * time.Hour)
	closedHour := base.Add(-2 * time.Hour)              // same (open) day
	closedDay := day.Add(-2*24*time.Hour + 5*time.Hour) // two days ago
	load := func(n, offset uint64, start time.Time, span time.Duration) {
		t.Helper()
		require.NoError(t, querytest.Load(ctx, e.conn, querytest.Fleet{Events: n, Offset: offset, Start: start, Span: span,
			Subjects: 300, Sites: 6, Doors: 8}))
	}
	e.load(5000, 0)
	load(500, 100_000, hour, 20*time.Minute)

	e.now = base.Add(30 * time.Minute) // the job's and the API's clock
	job, err := rollup.New(rollup.Options{Conn: e.conn, Logger: testenv.Logger(t), Now: func() time.Time { return e.now },
		OpenHourEvery: time.Minute, OpenDayEvery: 10 * time.Minute})
	require.NoError(t, err)
	version := func(table, col string, unit time.Time) uint64 {
		t.Helper()
		var v uint64
		require.NoError(t, e.conn.QueryRow(ctx, fmt.Sprintf("SELECT max(version) FROM %s WHERE %s = %d", table, col, unit.UnixMilli())).Scan(&v))
		return v
	}
	versions := func() map[string]uint64 {
		return map[string]uint64{
			"open hour":   version(rollup.TableSiteHourly, "hour_ms", hour),
			"closed hour": version(rollup.TableSiteHourly, "hour_ms", closedHour),
			"open day":    version(rollup.TableDaily, "day_ms", day),
			"closed day":  version(rollup.TableDaily, "day_ms", closedDay.Truncate(24*time.Hour)),
		}
	}
	watermarks := func() (time.Time, time.Time) {
		t.Helper()
		h, err := rollup.WatermarkOf(ctx, e.conn, 3_600_000)
		require.NoError(t, err)
		d, err := rollup.WatermarkOf(ctx, e.conn, 86_400_000)
		require.NoError(t, err)
		return h, d
	}
	exact := func(stage string) {
		t.Helper()
		truth := e.truth()
		for _, c := range []summaryCase{{nil, "hour", "outcome", 20}, {nil, "day", "site", 20}, {nil, "all", "action", 20},
			{map[string]string{"outcome": "denied"}, "day", "subject", 10}, {map[string]string{"site": "site-2"}, "hour", "vendor", 20}} {
			got := e.checkSummary(t, truth, c.filters, base.Add(-3*24*time.Hour), e.now, c.bucket, c.by, c.top)
			t.Logf("%s: %+v: source %s", stage, c, got.Source)
		}
	}

	// First run: nothing recomputed yet, so everything is due.
	require.NoError(t, job.RunOnce(ctx))
	v1 := versions()
	for k, v := range v1 {
		require.NotZero(t, v, k)
	}
	wh1, wd1 := watermarks()
	require.False(t, wh1.IsZero())
	require.False(t, wd1.IsZero())

	// New inserts in the open hour (and day), a closed hour of the open day
	// and a closed day, with re-deliveries.
	load(300, 200_000, hour, 20*time.Minute)
	load(200, 300_000, closedHour, time.Hour)
	load(200, 400_000, closedDay, 2*time.Hour)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 7))
	e.now = e.now.Add(20 * time.Second)
	require.NoError(t, job.RunOnce(ctx))
	v2 := versions()
	assert.Equal(t, v1["open hour"], v2["open hour"], "open hour recomputed again within a minute")
	assert.Equal(t, v1["open day"], v2["open day"], "open day recomputed again within 10 minutes")
	assert.Greater(t, v2["closed hour"], v1["closed hour"], "closed hour not recomputed at once")
	assert.Greater(t, v2["closed day"], v1["closed day"], "closed day not recomputed at once")
	wh2, wd2 := watermarks()
	assert.Equal(t, wh1, wh2, "hours watermark advanced past a deferred hour")
	assert.Equal(t, wd1, wd2, "days watermark advanced past a deferred day")
	exact("open units deferred")

	// Once the marks are older than the slack, a run that still defers the
	// open units keeps them raw; the summary stays exact. The closed units
	// are recomputed once more if their marks were within the slack of the
	// last run's start (inserts that may still have been committing), which
	// depends on how long the loads took: not asserted.
	time.Sleep(rollup.Slack + time.Second)
	e.now = e.now.Add(20 * time.Second)
	require.NoError(t, job.RunOnce(ctx))
	v3 := versions()
	assert.Equal(t, v2["open hour"], v3["open hour"], "open hour recomputed again within a minute")
	assert.Equal(t, v2["open day"], v3["open day"], "open day recomputed again within 10 minutes")
	exact("marks older than the slack, open units still deferred")

	// A minute after its last recompute the open hour is due; the open day
	// is not, so only the hours' watermark advances.
	e.now = e.now.Add(time.Minute)
	require.NoError(t, job.RunOnce(ctx))
	v4 := versions()
	assert.Greater(t, v4["open hour"], v2["open hour"])
	assert.Equal(t, v2["open day"], v4["open day"])
	assert.Equal(t, v3["closed hour"], v4["closed hour"], "closed hour recomputed without new inserts")
	assert.Equal(t, v3["closed day"], v4["closed day"], "closed day recomputed without new inserts")
	wh4, wd4 := watermarks()
	assert.True(t, wh4.After(wh2), "hours watermark did not advance")
	assert.Equal(t, wd1, wd4)
	exact("open hour recomputed, open day deferred")
	got := e.checkSummary(t, e.truth(), nil, base.Add(-3*24*time.Hour-17*time.Minute), base.Add(-5*time.Minute), "hour", "outcome", 20)
	assert.Equal(t, "rollup", got.Source, "closed hours not read from the rollup")

	// More inserts into the open hour right after its recompute: deferred
	// again, read raw.
	load(100, 500_000, hour, 20*time.Minute)
	e.now = e.now.Add(10 * time.Second)
	require.NoError(t, job.RunOnce(ctx))
	assert.Equal(t, v4["open hour"], versions()["open hour"])
	wh5, _ := watermarks()
	assert.Equal(t, wh4, wh5)
	exact("new inserts in the open hour deferred")

	// Ten minutes on, both are due; both watermarks advance. A watermark is
	// the server's now() in whole seconds: wait until the server's clock is
	// past the last ones, so "advanced" does not depend on how fast the
	// steps above ran.
	require.Eventually(t, func() bool {
		var now time.Time
		return e.conn.QueryRow(ctx, "SELECT now()").Scan(&now) == nil && now.After(wh5) && now.After(wd4)
	}, 10*time.Second, 50*time.Millisecond)
	e.now = e.now.Add(10 * time.Minute)
	require.NoError(t, job.RunOnce(ctx))
	v6 := versions()
	assert.Greater(t, v6["open hour"], v4["open hour"])
	assert.Greater(t, v6["open day"], v4["open day"])
	wh6, wd6 := watermarks()
	assert.True(t, wh6.After(wh5))
	assert.True(t, wd6.After(wd4))
	exact("all recomputed")
}

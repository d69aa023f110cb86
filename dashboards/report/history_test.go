package report

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// shortHistory is what `make run` leaves: credentials issued months ago,
// but access events of two days only (W47's Friday and Saturday), some
// credentials used and most not.
func shortHistory(t *testing.T, conn driver.Conn) {
	t.Helper()
	f := &fixture{}
	july := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	fri := fixtureWeek.Start().Add(4 * 24 * time.Hour)
	for i := 0; i < 40; i++ {
		id := fmt.Sprintf("cred-%02d", i)
		f.cred(id, 1, july, "activate", "active", fmt.Sprintf("subj-%d", i), "resident", "site-a", 0, 0, 0, july.UnixMilli(), july.UnixMilli())
		if i%4 == 0 {
			f.event(fri.Add(time.Duration(i)*time.Hour), "matter", "site-a", "site-a-door-0", fmt.Sprintf("subj-%d", i), id,
				"unlock", "granted", false)
		}
	}
	for i := 0; i < 300; i++ {
		f.event(fri.Add(time.Duration(i)*7*time.Minute), "nuki", "site-a", "site-a-door-1", "subj-0", "", "access_denied", "denied", false)
	}
	ctx := context.Background()
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", accessCols, f.access...))
	require.NoError(t, chstorage.InsertRows(ctx, conn, "credential_events", credCols, f.creds...))
}

// Two days of history: earlier weeks have no data, nothing is compared,
// no credential is stale for lack of uses before the history began, and
// the default week is the one in progress.
func TestReportShortHistory(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	week, err := DefaultWeek(ctx, conn, fixtureNow)
	require.NoError(t, err)
	assert.Equal(t, "2026-W47", week.String(), "no history at all: the last complete week")

	shortHistory(t, conn)
	now := fixtureWeek.Start().Add(6*24*time.Hour + 12*time.Hour) // Sunday noon, W47
	week, err = DefaultWeek(ctx, conn, now)
	require.NoError(t, err)
	assert.Equal(t, "2026-W47", week.String(), "the history began after W46: the week in progress")
	week, err = DefaultWeek(ctx, conn, fixtureNow)
	require.NoError(t, err)
	assert.Equal(t, "2026-W47", week.String(), "W47 is complete and has history")

	r, err := Generate(ctx, conn, Query{Week: fixtureWeek, Now: now})
	require.NoError(t, err)
	assert.Equal(t, fixtureWeek.Start().Add(4*24*time.Hour).UnixMilli(), r.HistoryFromMs)
	for i, w := range r.Weeks {
		want := HistoryNone
		if i == len(r.Weeks)-1 {
			want = HistoryPartial
		}
		assert.Equal(t, want, w.History, w.Week)
		assert.Zero(t, w.StaleCredentials, "%s: two days of history make nothing stale", w.Week)
	}
	assert.Equal(t, 0, r.Stale.Total)

	var md bytes.Buffer
	require.NoError(t, Render(&md, r, "md"))
	out := md.String()
	assert.Contains(t, out, "| 2026-W43 | 2026-W44 | 2026-W45 | 2026-W46 | 2026-W47 (partial) |")
	assert.Contains(t, out, "not enough history")
	assert.Contains(t, out, "The stored history begins 2026-11-20 00:00 UTC")
	assert.NotContains(t, out, "(better)")
	assert.NotContains(t, out, "(worse)")
	assert.Contains(t, out, "\n| Access events | no data | no data | no data | no data | 310 | — | not enough history |\n")
	assert.Contains(t, out, "\n| Stale credentials | no data | no data | no data | no data | 0 | — | not enough history |\n")
	var csv bytes.Buffer
	require.NoError(t, Render(&csv, r, "csv"))
	assert.Contains(t, csv.String(), "history,2026-W43,coverage,,none\n")
	assert.Contains(t, csv.String(), "kpi,2026-W43,events,,\n")
	assert.Contains(t, csv.String(), "kpi,2026-W47,events,,310\n")
}

// Comparisons: integers stay integers; only weeks with their whole history
// are averaged; a week in progress does not compare its running counts.
func TestReportComparisons(t *testing.T) {
	r := &Report{Week: "2026-W47", FromMs: fixtureWeek.Start().UnixMilli(), ToMs: fixtureWeek.End().UnixMilli(),
		GeneratedMs: fixtureNow.UnixMilli(), HistoryFromMs: fixtureWeek.Add(-3).Start().Add(time.Hour).UnixMilli()}
	for i, n := range []uint64{0, 5, 40000, 42000, 78783} {
		w := WeekKPI{Week: fixtureWeek.Add(i - 4).String(), Events: n, StaleCredentials: int(n / 100), History: HistoryFull}
		switch i {
		case 0:
			w.History = HistoryNone
		case 1:
			w.History = HistoryPartial
		}
		r.Weeks = append(r.Weeks, w)
	}
	lines := map[string]kpiLine{}
	for _, l := range kpiLines(r) {
		lines[l.Key] = l
	}
	ev := lines["events"]
	assert.Equal(t, []string{"no data", "5", "40000", "42000", "78783"}, ev.Cells)
	assert.Equal(t, "41000", ev.Avg, "W46 and W45 only")
	assert.Equal(t, "+37783", ev.Change)
	st := lines["stale_credentials"]
	assert.Equal(t, "410", st.Avg)
	assert.Equal(t, "+377", st.Change)
	assert.Equal(t, "worse", st.Verdict)

	r.GeneratedMs = fixtureWeek.Start().Add(50 * time.Hour).UnixMilli() // mid-week
	for _, l := range kpiLines(r) {
		lines[l.Key] = l
	}
	assert.Equal(t, inProgress, lines["events"].Change)
	assert.Equal(t, "+377", lines["stale_credentials"].Change, "a state at the time, not a running count")
}

// Mid-week, an exception that ends later in the week is not past its end;
// the report agrees with the detector about what is.
func TestReportExpiredMidWeek(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	now := fixtureWeek.Start().Add(3 * 24 * time.Hour)
	r, err := Generate(context.Background(), conn, Query{Week: fixtureWeek, Now: now})
	require.NoError(t, err)
	var ids []string
	for _, c := range r.Expired.Credentials {
		ids = append(ids, c.CredentialID)
		assert.Positive(t, c.Days, c.CredentialID)
	}
	assert.Equal(t, []string{"cred-x4", "cred-x1", "cred-x2"}, ids, "cred-x5 ends on Saturday")
	assert.Equal(t, 3, r.Expired.Total)
	assert.Equal(t, now.UnixMilli(), r.ExpiredAsOfMs)
}

// The scheduler stores no report for a week before the history, and
// generates one again when older history arrives after it was stored.
func TestScheduleWaitsForHistory(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	store := NewStore(conn)
	now := fixtureNow // W47's report is due
	s, err := NewScheduler(SchedulerOptions{Conn: conn, Store: store, Day: time.Monday, At: 6 * time.Hour,
		Now: func() time.Time { return now }, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	require.NoError(t, s.Tick(ctx))
	list, err := store.List(ctx, "", 10)
	require.NoError(t, err)
	assert.Empty(t, list, "no history at all")

	// History that begins after W47: still nothing to report on.
	later := &fixture{}
	later.event(fixtureWeek.End().Add(2*time.Hour), "matter", "site-a", "site-a-door-0", "subj-1", "cred-01", "unlock", "granted", false)
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", accessCols, later.access...))
	require.NoError(t, s.Tick(ctx))
	list, err = store.List(ctx, "", 10)
	require.NoError(t, err)
	assert.Empty(t, list, "the history begins after the due week")

	// Two days of W47 (make run's start-up, then its backfill).
	shortHistory(t, conn)
	require.NoError(t, s.Tick(ctx))
	first, err := store.Get(ctx, "2026-W47")
	require.NoError(t, err)
	assert.Equal(t, HistoryPartial, first.Current().History)
	require.NoError(t, s.Tick(ctx))
	again, err := store.Get(ctx, "2026-W47")
	require.NoError(t, err)
	assert.Equal(t, first.GeneratedMs, again.GeneratedMs, "not generated again without older history")

	// Older events arrive: the report is generated again and now final.
	older := &fixture{}
	older.event(fixtureWeek.Add(-6).Start(), "matter", "site-a", "site-a-door-0", "", "", "online", "info", false)
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", accessCols, older.access...))
	now = now.Add(time.Minute)
	require.NoError(t, s.Tick(ctx))
	final, err := store.Get(ctx, "2026-W47")
	require.NoError(t, err)
	assert.Equal(t, HistoryFull, final.Current().History)
	assert.Equal(t, now.UnixMilli(), final.GeneratedMs)
	assert.Equal(t, fixtureWeek, s.done)
}

// Slicers add per-dimension KPI tables (the hook per-site and per-vendor
// KPIs plug into) to every format.
func TestReportSlices(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	bySite := func(ctx context.Context, conn driver.Conn, q Query) (Slices, error) {
		out := Slices{Dimension: "site", Columns: []string{"events", "denial_rate"}, Labels: []string{"access events", "denial rate"}}
		rows, err := conn.Query(ctx, `SELECT site_id, uniqExact(event_id), uniqExactIf(event_id, outcome = 'denied') / uniqExact(event_id)
			FROM access_events WHERE ts_ms >= ? AND ts_ms < ? GROUP BY site_id ORDER BY site_id`,
			q.Week.Start().UnixMilli(), q.Week.End().UnixMilli())
		if err != nil {
			return out, err
		}
		defer rows.Close()
		for rows.Next() {
			var site string
			var n uint64
			var rate float64
			if err := rows.Scan(&site, &n, &rate); err != nil {
				return out, err
			}
			events := float64(n)
			out.Rows = append(out.Rows, SliceRow{Key: site, Values: []*float64{&events, &rate}})
		}
		out.Rows = append(out.Rows, SliceRow{Key: "site-z", Values: []*float64{nil, nil}})
		return out, rows.Err()
	}
	r, err := Generate(context.Background(), conn, Query{Week: fixtureWeek, Now: fixtureNow, Slicers: []Slicer{bySite}})
	require.NoError(t, err)
	require.Len(t, r.Slices, 1)
	var md, csv, html bytes.Buffer
	require.NoError(t, Render(&md, r, "md"))
	require.NoError(t, Render(&csv, r, "csv"))
	require.NoError(t, Render(&html, r, "html"))
	assert.Contains(t, md.String(), "## KPIs by site\n\n| site | access events | denial rate |\n|---|---|---|\n| site-a | 53 | 0.113 |\n")
	assert.Contains(t, md.String(), "| site-z | — | — |\n")
	assert.Contains(t, csv.String(), "by_site,2026-W47,site-a,events,53\n")
	assert.Contains(t, csv.String(), "by_site,2026-W47,site-z,events,\n")
	assert.Contains(t, html.String(), "<h2>KPIs by site</h2>")
}

package query_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/query/querytest"
)

// With data around the real clock, fleet-wide reads of recent windows go to
// the time-ordered copy, with the same answers.
func TestRecentCopyServesTheLiveTail(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.now = time.Now().UTC()
	e.load(15000, 0)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 5))
	truth := e.truth()
	from := e.now.Add(-2 * 24 * time.Hour)
	params := url.Values{"from": {ms(from)}, "limit": {"1000"}, "outcome": {"denied"}}
	r := e.get("/v1/events", params)
	require.Equal(t, 200, r.status, string(r.body))
	assert.Equal(t, "access_events_recent", r.header.Get("X-Query-Table"))
	got := e.walk(params, nil)
	var want []string
	for _, a := range truth {
		if matches(a, map[string]string{"outcome": "denied"}, from.UnixMilli(), e.now.UnixMilli()) {
			want = append(want, a.EventID)
		}
	}
	assert.ElementsMatch(t, want, ids(got))
	// Older than the copy's window: the main table.
	r = e.get("/v1/events", url.Values{"from": {"now-9d"}})
	assert.Equal(t, "access_events", r.header.Get("X-Query-Table"))

	for _, stage := range []string{"raw", "rolled up"} {
		if stage == "rolled up" {
			require.NoError(t, e.roll.RunOnce(ctx))
		}
		for _, c := range []summaryCase{{nil, "hour", "outcome", 20}, {nil, "all", "subject", 10},
			{map[string]string{"outcome": "denied"}, "day", "subject", 10}, {nil, "5m", "action", 20}} {
			f := e.now.Add(-36 * time.Hour)
			if c.bucket == "5m" {
				f = e.now.Add(-3 * time.Hour)
			}
			e.checkSummary(t, truth, c.filters, f, e.now.Add(time.Hour), c.bucket, c.by, c.top)
		}
	}

	// The job trims the copy to its window.
	old := e.now.Add(-20 * 24 * time.Hour)
	require.NoError(t, e.conn.Exec(ctx, `INSERT INTO access_events_recent (event_id, ts, ts_ms, site_id)
		SELECT generateUUIDv4(), toDateTime(?), ?, 'site-old'`, old.Unix(), old.UnixMilli()))
	var n uint64
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT count() FROM access_events_recent WHERE site_id = 'site-old'").Scan(&n))
	require.EqualValues(t, 1, n)
	require.NoError(t, e.roll.RunOnce(ctx))
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT count() FROM access_events_recent WHERE site_id = 'site-old'").Scan(&n))
	require.Zero(t, n)
}

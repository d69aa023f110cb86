package query_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/query/querytest"
	"github.com/keyfleet/keyfleet/query/retention"
	"github.com/keyfleet/keyfleet/query/rollup"
)

func partitionIDs(t *testing.T, e *env, table string) []string {
	t.Helper()
	rows, err := e.conn.Query(context.Background(), "SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() AND table = ? AND active ORDER BY partition_id", table)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		require.NoError(t, rows.Scan(&id))
		out = append(out, id)
	}
	return out
}

func TestRetentionDropsWholeExpiredMonthsAndAuditsThem(t *testing.T) {
	e := newEnv(t) // now 2026-03-20; access_events keeps 62d → cutoff 2026-01-17
	ctx := context.Background()
	start := time.Date(2025, 10, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, querytest.Load(ctx, e.conn, querytest.Fleet{Events: 12000, Start: start, Span: e.now.Sub(start),
		Subjects: 100, Sites: 3, Doors: 4}))
	require.NoError(t, e.roll.RunOnce(ctx))
	// Every derived table but access_rollup_hourly, which 0170 stopped
	// writing (retention still drops the months it kept).
	var derived []string
	for _, table := range retention.Derived["access_events"] {
		if table != rollup.TableHourly {
			derived = append(derived, table)
		}
	}
	require.Len(t, derived, len(retention.Derived["access_events"])-1)
	for _, table := range append([]string{"access_events"}, derived...) {
		require.Equal(t, []string{"202510", "202511", "202512", "202601", "202602", "202603"}, partitionIDs(t, e, table), table)
	}
	var before uint64
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT count() FROM access_events WHERE ts < toDateTime('2026-01-01 00:00:00')").Scan(&before))
	require.NotZero(t, before)

	drops, err := e.ret.RunOnce(ctx)
	require.NoError(t, err)
	require.Len(t, drops, 3*(1+len(derived)), "three months of every table: %+v", drops)
	for _, table := range append([]string{"access_events"}, derived...) {
		require.Equal(t, []string{"202601", "202602", "202603"}, partitionIDs(t, e, table), table)
	}
	var left uint64
	require.NoError(t, e.conn.QueryRow(ctx, "SELECT count() FROM access_events WHERE ts < toDateTime('2026-01-01 00:00:00')").Scan(&left))
	require.Zero(t, left)

	entries := e.audit.entries(t, "retention.drop")
	require.Len(t, entries, len(drops))
	var targets []string
	for _, en := range entries {
		targets = append(targets, en.Target)
		assert.Equal(t, "system:retention", en.Actor)
		assert.Equal(t, "62d", en.Details["keep"])
	}
	assert.Contains(t, targets, "access_events/202510")
	assert.Contains(t, targets, "access_events_by_subject/202512")
	assert.True(t, slices.Contains(targets, "access_rollup_site_hourly/202511"))
	assert.True(t, slices.Contains(targets, "access_rollup_daily/202511"))

	// Nothing more to drop until 202601 expires.
	drops, err = e.ret.RunOnce(ctx)
	require.NoError(t, err)
	require.Empty(t, drops)

	var st retention.Status
	r := e.do("GET", "/v1/retention", httpapi.RoleAdmin, "")
	require.Equal(t, 200, r.status, string(r.body))
	r.json(t, &st)
	require.NotEmpty(t, st.Tables)
	assert.Equal(t, "access_events", st.Tables[0].Table)
	assert.Equal(t, "62d", st.Tables[0].Keep)
	require.NotNil(t, st.Tables[0].NextDrop)
	assert.Equal(t, "202601", st.Tables[0].NextDrop.ID)
	// February 1st + one day of time-zone margin + 62 days.
	assert.Equal(t, time.Date(2026, 2, 2, 0, 0, 0, 0, time.UTC).Add(62*24*time.Hour).UnixMilli(), st.Tables[0].NextDrop.ExpiresMs)
	require.Equal(t, 403, e.do("GET", "/v1/retention", httpapi.RoleManager, "").status)
}

func TestRetentionPolicyParsing(t *testing.T) {
	f := func(items []string, wantErr string) {
		t.Helper()
		_, err := retention.ParsePolicies(items)
		if wantErr == "" {
			require.NoError(t, err)
			return
		}
		require.ErrorContains(t, err, wantErr)
	}
	f(nil, "")
	f([]string{"access_events=400d", "dead_letters=2160h"}, "")
	f([]string{"audit_log=30d"}, "retention applies to")
	f([]string{"access_events"}, "want table=duration")
	f([]string{"access_events=10d"}, "keep at least 31d")
	f([]string{"access_events=forever"}, "access_events")
	p, err := retention.ParsePolicies([]string{"access_events=100d"})
	require.NoError(t, err)
	require.Equal(t, 100*24*time.Hour, p[0].Keep)
}

package chstorage_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// Migration 0090 re-keys access_events and access_rollup_hourly by copying
// their rows: a database migrated up to 0040 with events keeps every row
// and value, also when the migration's statements run a second time (a
// retry after a failure part-way).
func TestMigration0090KeepsRows(t *testing.T) {
	conn := checkDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logger := testenv.Logger(t)
	require.NoError(t, chstorage.MigrateTo(ctx, conn, logger, 40))
	const events = `INSERT INTO access_events (event_id, ts, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id,
	    subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref, inserted_ms)
	SELECT toUUID(concat('6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b', toString(10 + number))), toDateTime(1709510400 + number * 3600),
	    (1709510400 + number * 3600) * 1000 + 7, 1709510400000, 'nuki', concat('s', toString(number % 3)), 'z', 'd', 'l',
	    if(number % 2 = 0, concat('sub', toString(number)), ''), 'c', 'dv', 'unknown', 'unlock', 'granted', 'app_remote', '',
	    'code', 0, 'raw', 1709510400000 FROM numbers(40)`
	require.NoError(t, conn.Exec(ctx, events))
	require.NoError(t, conn.Exec(ctx, `INSERT INTO access_rollup_hourly (ts, hour_ms, key_hash, site_id, vendor, action, outcome,
	    method, reason, events, version) SELECT toDateTime(1709510400), 1709510400000, 1, 's0', 'nuki', 'unlock', 'granted', 'app_remote', '', 3, 1`))
	snapshot := func() (string, string, uint64) {
		var ev, roll string
		var bySubject uint64
		require.NoError(t, conn.QueryRow(ctx, `SELECT toString(groupArray(tuple(*))) FROM (SELECT * FROM access_events FINAL ORDER BY event_id)`).Scan(&ev))
		require.NoError(t, conn.QueryRow(ctx, `SELECT toString(groupArray(tuple(*))) FROM (SELECT * FROM access_rollup_hourly FINAL ORDER BY hour_ms)`).Scan(&roll))
		require.NoError(t, conn.QueryRow(ctx, `SELECT uniqExact(event_id) FROM access_events_by_subject`).Scan(&bySubject))
		return ev, roll, bySubject
	}
	ev0, roll0, subj0 := snapshot()
	require.Equal(t, uint64(20), subj0, "filled by the view before 0090")

	require.NoError(t, chstorage.MigrateTo(ctx, conn, logger, 109))
	ev1, roll1, subj1 := snapshot()
	assert.Equal(t, ev0, ev1)
	assert.Equal(t, roll0, roll1)
	assert.Equal(t, subj0, subj1)
	var key string
	require.NoError(t, conn.QueryRow(ctx, `SELECT sorting_key FROM system.tables WHERE database = currentDatabase() AND name = 'access_events'`).Scan(&key))
	assert.Equal(t, "site_id, ts, event_id", key)
	var views uint64
	require.NoError(t, conn.QueryRow(ctx, `SELECT count() FROM system.tables WHERE database = currentDatabase() AND engine = 'MaterializedView' AND name LIKE 'access%'`).Scan(&views))
	assert.Zero(t, views, "no view on access_events")

	// A second run of 0090's statements (as after a failure before it was
	// recorded) changes nothing.
	ms, err := chstorage.Migrations()
	require.NoError(t, err)
	for _, m := range ms {
		if m.Version != 90 {
			continue
		}
		for _, stmt := range m.Statements {
			require.NoError(t, conn.Exec(ctx, stmt))
		}
	}
	ev2, roll2, _ := snapshot()
	assert.Equal(t, ev0, ev2)
	assert.Equal(t, roll0, roll2)
}

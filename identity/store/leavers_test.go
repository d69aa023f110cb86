package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// TestLeaverKPI: three leavers on fixed rows — one confirmed by both of its
// locks, one with a lock still pending, one whose credential no lock held —
// plus a resync (left out) and a duplicate leaver row (counted once).
func TestLeaverKPI(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ms := func(d time.Duration) int64 { return base.Add(d).UnixMilli() }
	ts := base.Truncate(time.Second)
	for _, l := range []identity.Leaver{
		{SubjectID: "s1", ChangeMs: ms(0), Reason: "deactivated", RevocationID: "rv1", Credentials: 2, RequestedMs: ms(time.Second)},
		{SubjectID: "s1", ChangeMs: ms(0), Reason: "deactivated", RevocationID: "rv1", Credentials: 2, RequestedMs: ms(time.Second)},
		{SubjectID: "s2", ChangeMs: ms(time.Minute), Reason: "end_date", RevocationID: "rv2", Credentials: 1, RequestedMs: ms(2 * time.Minute)},
		{SubjectID: "s3", ChangeMs: ms(2 * time.Minute), Reason: "deleted", RevocationID: "rv3", Credentials: 1, RequestedMs: ms(2 * time.Minute)},
		{SubjectID: "s4", ChangeMs: ms(3 * time.Minute), Reason: "resync", RevocationID: "rv4", Credentials: 1, RequestedMs: ms(3 * time.Minute)},
	} {
		require.NoError(t, RecordLeaver(ctx, conn, l))
	}
	revCols := []string{"revocation_id", "credential_id", "subject_id", "scope", "ts", "requested_ms", "disabled_ms",
		"session_revoked_ms", "device_id", "locks_total"}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "revocations", revCols,
		[]any{"rv1", "c1", "s1", "subject", ts, ms(time.Second), ms(1100 * time.Millisecond), int64(0), "", uint32(2)},
		[]any{"rv1", "c2", "s1", "subject", ts, ms(time.Second), ms(1100 * time.Millisecond), int64(0), "", uint32(0)},
		[]any{"rv2", "c3", "s2", "subject", ts, ms(2 * time.Minute), ms(2*time.Minute + 100*time.Millisecond), int64(0), "", uint32(1)},
		[]any{"rv3", "c4", "s3", "subject", ts, ms(2 * time.Minute), ms(2*time.Minute + 300*time.Millisecond), int64(0), "", uint32(0)},
		[]any{"rv4", "c5", "s4", "subject", ts, ms(3 * time.Minute), ms(3*time.Minute + 300*time.Millisecond), int64(0), "", uint32(0)},
	))
	ackCols := []string{"command_id", "revocation_id", "type", "vendor", "lock_id", "credential_id", "status", "error", "ts",
		"received_ms", "applied_ms", "acked_ms"}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "lock_acks", ackCols,
		[]any{"k1", "rv1", "revoke", "nuki", "L1", "c1", "applied", "", ts, ms(1200 * time.Millisecond), ms(2 * time.Second), ms(2 * time.Second)},
		[]any{"k2", "rv1", "revoke", "matter", "L2", "c1", "applied", "", ts, ms(1200 * time.Millisecond), ms(4 * time.Second), ms(4 * time.Second)},
		[]any{"k2", "rv1", "revoke", "matter", "L2", "c1", "applied", "", ts, ms(1200 * time.Millisecond), ms(4 * time.Second), ms(4 * time.Second)},
	))
	k, err := LeaverKPI(ctx, conn, base.Add(-time.Hour), base.Add(time.Hour))
	require.NoError(t, err)
	// s1: the last of its locks at 4 s; s3: disabled 0.3 s after its change
	// (quantilesExact picks a sample); s2 waits for its lock.
	assert.Equal(t, identity.LeaverLatency{Count: 3, Confirmed: 2, P50: 4, P95: 4, P99: 4}, roundKPI(k))
	k, err = LeaverKPI(ctx, conn, base.Add(90*time.Second), base.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, identity.LeaverLatency{Count: 1, Confirmed: 1, P50: 0.3, P95: 0.3, P99: 0.3}, roundKPI(k))
}

func roundKPI(k identity.LeaverLatency) identity.LeaverLatency {
	r := func(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
	k.P50, k.P95, k.P99 = r(k.P50), r(k.P95), r(k.P99)
	return k
}

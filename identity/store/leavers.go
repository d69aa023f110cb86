package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// RecordLeaver stores a leaver and the revocation identity sync made for it.
func RecordLeaver(ctx context.Context, conn driver.Conn, l identity.Leaver) error {
	if err := chstorage.InsertRows(ctx, conn, "identity_leavers", []string{"subject_id", "change_ms", "reason",
		"revocation_id", "credentials", "ts", "requested_ms"},
		[]any{l.SubjectID, l.ChangeMs, l.Reason, l.RevocationID, uint32(max(l.Credentials, 0)),
			time.UnixMilli(l.ChangeMs).UTC().Truncate(time.Second), l.RequestedMs}); err != nil {
		return fmt.Errorf("record leaver: %w", err)
	}
	return nil
}

// LeaverKPI computes the leaver latency over leavers whose identity change
// is in [from, to): per leaver, from the change to the last lock
// confirming the revocation of its credentials (the last entitlement
// record for a credential no lock held), as control's revocation latency
// counts a credential's. A leaver is confirmed once every credential of
// its revocation(s) is; quantiles are over the confirmed ones. Resyncs are
// not leaver events and are left out.
func LeaverKPI(ctx context.Context, conn driver.Conn, from, to time.Time) (identity.LeaverLatency, error) {
	fromTs := from.UTC().Add(-24 * time.Hour).Truncate(time.Second) // partitions by change time; revocations follow it
	var n, confirmed uint64
	var qs []float64
	if err := conn.QueryRow(ctx, `SELECT count(), countIf(done), quantilesExactIf(0.5, 0.95, 0.99)(latency_ms, done)
		FROM (
			SELECT subject_id, change_ms, min(rv_done) AS done, toFloat64(max(rv_last) - change_ms) AS latency_ms
			FROM (
				SELECT subject_id, change_ms, revocation_id FROM identity_leavers
				WHERE ts >= ? AND change_ms >= ? AND change_ms < ? AND reason != 'resync' AND revocation_id != ''
				GROUP BY subject_id, change_ms, revocation_id
			) AS l ANY LEFT JOIN (
				SELECT revocation_id, min(done) AS rv_done, max(last_ms) AS rv_last
				FROM (
					SELECT revocation_id, (n_locks = 0 AND dis_ms > 0) OR (n_locks > 0 AND acked >= n_locks) AS done,
						if(n_locks = 0, dis_ms, greatest(last_applied, dis_ms)) AS last_ms
					FROM (
						SELECT revocation_id, credential_id, max(locks_total) AS n_locks, max(disabled_ms) AS dis_ms
						FROM revocations WHERE ts >= ?
						GROUP BY revocation_id, credential_id
					) AS r ANY LEFT JOIN (
						SELECT revocation_id, credential_id, uniqExact(vendor, lock_id) AS acked, max(applied_ms) AS last_applied
						FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= ?
						GROUP BY revocation_id, credential_id
					) AS a USING (revocation_id, credential_id)
				)
				GROUP BY revocation_id
			) AS rv USING (revocation_id)
			GROUP BY subject_id, change_ms
		)`, fromTs, from.UnixMilli(), to.UnixMilli(), fromTs, fromTs).Scan(&n, &confirmed, &qs); err != nil {
		return identity.LeaverLatency{}, fmt.Errorf("leaver kpi: %w", err)
	}
	out := identity.LeaverLatency{Count: int(n), Confirmed: int(confirmed)}
	if len(qs) == 3 && confirmed > 0 {
		out.P50, out.P95, out.P99 = qs[0]/1000, qs[1]/1000, qs[2]/1000
	}
	return out, nil
}

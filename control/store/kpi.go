package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// The statements of the revocation layers' KPIs
// (internal/chstorage/queries/control).
var (
	kpiEscalationsSQL = chstorage.Query("control/kpi_escalations")
	kpiACLDriftSQL    = chstorage.Query("control/kpi_acl_drift")
)

// KPIs computes the fleet KPIs over [from, to) with the default SLA.
func KPIs(ctx context.Context, conn driver.Conn, from, to time.Time) (*control.FleetKPIs, error) {
	return ComputeKPIs(ctx, conn, control.KPIQuery{From: from, To: to})
}

// ComputeKPIs computes the fleet KPIs.
func ComputeKPIs(ctx context.Context, conn driver.Conn, q control.KPIQuery) (*control.FleetKPIs, error) {
	if q.SLA <= 0 {
		q.SLA = control.DefaultPendingSLA
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	if !q.To.After(q.From) {
		return nil, fmt.Errorf("kpis: to %s is not after from %s", q.To, q.From)
	}
	from, to := q.From.UnixMilli(), q.To.UnixMilli()
	fromTs := q.From.UTC().Truncate(time.Second)
	k := &control.FleetKPIs{From: q.From.UTC(), To: q.To.UTC()}

	var n, confirmed uint64
	var qs []float64
	if err := conn.QueryRow(ctx, `SELECT count(), countIf(done), quantilesExactIf(0.5, 0.95, 0.99)(latency_ms, done)
		FROM (
			SELECT (n_locks = 0 AND dis_ms > 0) OR (n_locks > 0 AND acked >= n_locks) AS done,
				toFloat64(if(n_locks = 0, dis_ms, greatest(last_applied, dis_ms)) - req_ms) AS latency_ms
			FROM (
				SELECT revocation_id, credential_id, min(requested_ms) AS req_ms, max(locks_total) AS n_locks,
					max(disabled_ms) AS dis_ms
				FROM revocations WHERE ts >= ? AND requested_ms >= ? AND requested_ms < ?
				GROUP BY revocation_id, credential_id
			) AS revs ANY LEFT JOIN (
				SELECT revocation_id, credential_id, uniqExact(vendor, lock_id) AS acked, max(applied_ms) AS last_applied
				FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= ?
				GROUP BY revocation_id, credential_id
			) AS acks USING (revocation_id, credential_id)
		)`, fromTs, from, to, fromTs).Scan(&n, &confirmed, &qs); err != nil {
		return nil, fmt.Errorf("kpi revocation latency: %w", err)
	}
	k.RevocationLatency = quantiles(n, qs)
	k.RevocationLatency.Confirmed = int(confirmed)

	if err := conn.QueryRow(ctx, `SELECT count(), quantilesExact(0.5, 0.95, 0.99)(toFloat64(iss_ms - req_ms))
		FROM (
			SELECT credential_id, min(issued_ms) AS iss_ms, min(requested_ms) AS req_ms
			FROM credential_events WHERE op = 'issue' AND ts >= ? AND ts_ms >= ? AND ts_ms < ? AND requested_ms > 0
			GROUP BY credential_id
		)`, fromTs, from, to).Scan(&n, &qs); err != nil {
		return nil, fmt.Errorf("kpi time to issue: %w", err)
	}
	k.TimeToIssue = quantiles(n, qs)

	var issued, activated uint64
	if err := conn.QueryRow(ctx, `SELECT count(), countIf(activated) FROM (
			SELECT credential_id, max(op = 'issue' AND ts_ms >= ? AND ts_ms < ?) AS issued_in,
				max(op = 'activate' AND attested = 1) AS activated
			FROM credential_events WHERE ts >= ? GROUP BY credential_id
		) WHERE issued_in`, from, to, fromTs).Scan(&issued, &activated); err != nil {
		return nil, fmt.Errorf("kpi activation: %w", err)
	}
	k.Activation = control.Activation{Issued: int(issued), Activated: int(activated)}
	if issued > 0 {
		k.Activation.SuccessRate = float64(activated) / float64(issued)
	}

	live := "'" + strings.Join(lifecycle.Live, "','") + "'"
	var liveN, liveExc, newN, newExc uint64
	if err := conn.QueryRow(ctx, `SELECT countIf(cur_state IN (`+live+`)), countIf(cur_state IN (`+live+`) AND exc),
			countIf(requested_in), countIf(requested_in AND exc)
		FROM (
			SELECT credential_id, argMax(state, seq) AS cur_state, argMax(exception, seq) = 1 OR argMax(break_glass, seq) = 1 AS exc,
				max(op = 'request' AND ts_ms >= ?) AS requested_in
			FROM credential_events WHERE ts_ms < ? GROUP BY credential_id
		)`, from, to).Scan(&liveN, &liveExc, &newN, &newExc); err != nil {
		return nil, fmt.Errorf("kpi exceptions: %w", err)
	}
	k.Exceptions = control.Exceptions{Live: int(liveN), LiveExceptions: int(liveExc), New: int(newN), NewExceptions: int(newExc)}
	if liveN > 0 {
		k.Exceptions.PerThousand = 1000 * float64(liveExc) / float64(liveN)
	}
	if newN > 0 {
		k.Exceptions.NewPerThousand = 1000 * float64(newExc) / float64(newN)
	}

	deadline := q.Now.Add(-q.SLA).UnixMilli()
	rows, err := conn.Query(ctx, `SELECT vendor, lock_id, count(), min(first_ms) FROM (
			SELECT revocation_id, credential_id, vendor, lock_id, min(issued_ms) AS first_ms
			FROM revocation_locks WHERE ts >= ? AND issued_ms >= ? AND issued_ms < ?
			GROUP BY revocation_id, credential_id, vendor, lock_id
		) WHERE first_ms < ? AND (revocation_id, credential_id, vendor, lock_id) NOT IN (
			SELECT revocation_id, credential_id, vendor, lock_id FROM lock_acks
			WHERE status = 'applied' AND revocation_id != '' AND ts >= ?)
		GROUP BY vendor, lock_id ORDER BY count() DESC, vendor, lock_id`, fromTs, from, to, deadline, fromTs)
	if err != nil {
		return nil, fmt.Errorf("kpi pending locks: %w", err)
	}
	defer rows.Close()
	k.PendingLocks = control.PendingLocks{SLASeconds: q.SLA.Seconds(), Locks: []control.PendingLock{}}
	for rows.Next() {
		var l control.PendingLock
		var c uint64
		if err := rows.Scan(&l.Vendor, &l.LockID, &c, &l.OldestMs); err != nil {
			return nil, fmt.Errorf("scan pending lock: %w", err)
		}
		l.Revocations = int(c)
		k.PendingLocks.Count += int(c)
		if len(k.PendingLocks.Locks) < 100 {
			k.PendingLocks.Locks = append(k.PendingLocks.Locks, l)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kpi pending locks: %w", err)
	}
	rows.Close()

	// Escalations: revocations requested in the range and escalated past
	// the SLA; unconfirmed ones still have a lock without an applied ack.
	rangeArgs := chstorage.Args{"from": fromTs, "from_ms": from, "to_ms": to}
	rows, err = kpiEscalationsSQL.Query(ctx, conn, rangeArgs)
	if err != nil {
		return nil, fmt.Errorf("kpi escalations: %w", err)
	}
	k.Escalations.Revocations = []string{}
	for rows.Next() {
		var id string
		var at int64
		var open uint8
		if err := rows.Scan(&id, &at, &open); err != nil {
			return nil, fmt.Errorf("scan escalation: %w", err)
		}
		k.Escalations.Count++
		if open == 1 {
			k.Escalations.Unconfirmed++
		}
		if len(k.Escalations.Revocations) < 100 {
			k.Escalations.Revocations = append(k.Escalations.Revocations, id)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kpi escalations: %w", err)
	}

	var resyncs, reconnects, drifts, drifted uint64
	if err := kpiACLDriftSQL.QueryRow(ctx, conn, rangeArgs).Scan(&resyncs, &reconnects, &drifts, &drifted); err != nil {
		return nil, fmt.Errorf("kpi acl drift: %w", err)
	}
	k.ACLDrift = control.ACLDrift{Resyncs: int(resyncs), Reconnects: int(reconnects), Drifts: int(drifts), DriftedLocks: int(drifted)}
	return k, nil
}

func quantiles(n uint64, qs []float64) control.Quantiles {
	q := control.Quantiles{Count: int(n)}
	if len(qs) == 3 {
		q.P50, q.P95, q.P99 = qs[0]/1000, qs[1]/1000, qs[2]/1000
	}
	return q
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// The statements of the fleet KPIs (internal/chstorage/queries/control).
var (
	kpiRevocationLatencySQL = chstorage.Query("control/kpi_revocation_latency")
	kpiTimeToIssueSQL       = chstorage.Query("control/kpi_time_to_issue")
	kpiActivationSQL        = chstorage.Query("control/kpi_activation")
	kpiExceptionsSQL        = chstorage.Query("control/kpi_exceptions")
	kpiPendingLocksSQL      = chstorage.Query("control/kpi_pending_locks")
	kpiEscalationsSQL       = chstorage.Query("control/kpi_escalations")
	kpiACLDriftSQL          = chstorage.Query("control/kpi_acl_drift")
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
	rangeArgs := chstorage.Args{"from": fromTs, "from_ms": from, "to_ms": to}
	if err := kpiRevocationLatencySQL.QueryRow(ctx, conn, rangeArgs).Scan(&n, &confirmed, &qs); err != nil {
		return nil, fmt.Errorf("kpi revocation latency: %w", err)
	}
	k.RevocationLatency = quantiles(n, qs)
	k.RevocationLatency.Confirmed = int(confirmed)

	if err := kpiTimeToIssueSQL.QueryRow(ctx, conn, rangeArgs).Scan(&n, &qs); err != nil {
		return nil, fmt.Errorf("kpi time to issue: %w", err)
	}
	k.TimeToIssue = quantiles(n, qs)

	var issued, activated uint64
	if err := kpiActivationSQL.QueryRow(ctx, conn, rangeArgs).Scan(&issued, &activated); err != nil {
		return nil, fmt.Errorf("kpi activation: %w", err)
	}
	k.Activation = control.Activation{Issued: int(issued), Activated: int(activated)}
	if issued > 0 {
		k.Activation.SuccessRate = float64(activated) / float64(issued)
	}

	var liveN, liveExc, newN, newExc uint64
	if err := kpiExceptionsSQL.QueryRow(ctx, conn, chstorage.Args{"live": lifecycle.Live, "from_ms": from, "to_ms": to}).Scan(
		&liveN, &liveExc, &newN, &newExc); err != nil {
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
	rows, err := kpiPendingLocksSQL.Query(ctx, conn, chstorage.Args{"from": fromTs, "from_ms": from, "to_ms": to,
		"deadline_ms": deadline})
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

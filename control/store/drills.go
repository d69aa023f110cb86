package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

var (
	insertDrillSQL = chstorage.Query("control/insert_drill")
	drillsSQL      = chstorage.Query("control/drills")
)

// InsertDrill stores a drill run (drill_runs); storing a run id again
// replaces it.
func InsertDrill(ctx context.Context, conn driver.Conn, r control.DrillRun) error {
	return insertDrillSQL.Insert(ctx, conn,
		[]any{r.RunID, r.Scenario, r.StartedMs, r.FinishedMs, time.UnixMilli(r.StartedMs).UTC(), r.Actor,
			uint32(r.Subjects), uint32(r.Credentials), uint32(r.Revocations), uint32(r.Locks), uint32(r.Confirmed),
			uint32(r.Stragglers), r.DisableP50Ms, r.DisableP99Ms, r.ConfirmP50Ms, r.ConfirmP99Ms, r.SessionState,
			r.TicketCloseMs, string(r.Report)})
}

// DrillQuery selects drill runs: started in [From, To), of Scenario (all
// when empty), newest first, at most Limit; WithReport includes each run's
// full report.
type DrillQuery struct {
	From, To   time.Time
	Scenario   string
	RunID      string
	Limit      int
	WithReport bool
}

// Drills reads drill runs.
func Drills(ctx context.Context, conn driver.Conn, q DrillQuery) ([]control.DrillRun, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	rows, err := drillsSQL.Query(ctx, conn, chstorage.Args{"from": q.From.UTC().Truncate(time.Second),
		"from_ms": q.From.UnixMilli(), "to_ms": q.To.UnixMilli(), "scenario": q.Scenario, "run_id": q.RunID,
		"with_report": q.WithReport, "limit": uint32(q.Limit)})
	if err != nil {
		return nil, fmt.Errorf("read drills: %w", err)
	}
	defer rows.Close()
	out := []control.DrillRun{}
	for rows.Next() {
		var r control.DrillRun
		var subjects, creds, revs, locks, confirmed, stragglers uint32
		var doc string
		if err := rows.Scan(&r.RunID, &r.Scenario, &r.StartedMs, &r.FinishedMs, &r.Actor, &subjects, &creds, &revs, &locks,
			&confirmed, &stragglers, &r.DisableP50Ms, &r.DisableP99Ms, &r.ConfirmP50Ms, &r.ConfirmP99Ms, &r.SessionState,
			&r.TicketCloseMs, &doc); err != nil {
			return nil, fmt.Errorf("scan drill: %w", err)
		}
		r.Subjects, r.Credentials, r.Revocations, r.Locks = int(subjects), int(creds), int(revs), int(locks)
		r.Confirmed, r.Stragglers = int(confirmed), int(stragglers)
		if doc != "" {
			r.Report = []byte(doc)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// InsertDrill stores a drill run (drill_runs); storing a run id again
// replaces it.
func InsertDrill(ctx context.Context, conn driver.Conn, r control.DrillRun) error {
	return chstorage.InsertRows(ctx, conn, "drill_runs", []string{"run_id", "scenario", "started_ms", "finished_ms", "ts",
		"actor", "subjects", "credentials", "revocations", "locks", "confirmed", "stragglers", "disable_p50_ms",
		"disable_p99_ms", "confirm_p50_ms", "confirm_p99_ms", "session_state", "ticket_close_ms", "report"},
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
	report := "''"
	if q.WithReport {
		report = "argMax(report, finished_ms)"
	}
	where := `ts >= ? AND started_ms >= ? AND started_ms < ?`
	args := []any{q.From.UTC().Truncate(time.Second), q.From.UnixMilli(), q.To.UnixMilli()}
	if q.Scenario != "" {
		where += ` AND scenario = ?`
		args = append(args, q.Scenario)
	}
	if q.RunID != "" {
		where += ` AND run_id = ?`
		args = append(args, q.RunID)
	}
	rows, err := conn.Query(ctx, `SELECT run_id, argMax(scenario, finished_ms), min(started_ms), max(finished_ms),
			argMax(actor, finished_ms), argMax(subjects, finished_ms), argMax(credentials, finished_ms),
			argMax(revocations, finished_ms), argMax(locks, finished_ms), argMax(confirmed, finished_ms),
			argMax(stragglers, finished_ms), argMax(disable_p50_ms, finished_ms), argMax(disable_p99_ms, finished_ms),
			argMax(confirm_p50_ms, finished_ms), argMax(confirm_p99_ms, finished_ms), argMax(session_state, finished_ms),
			argMax(ticket_close_ms, finished_ms), `+report+`
		FROM drill_runs WHERE `+where+` GROUP BY run_id ORDER BY min(started_ms) DESC, run_id LIMIT ?`,
		append(args, q.Limit)...)
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

package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// SessionRow is one state of a session revocation (revocation_sessions).
type SessionRow struct {
	control.Session
	Status    string // a control.Layer* state
	Error     string
	Attempts  int
	DoneMs    int64
	UpdatedMs int64
}

var (
	insertSessionsSQL  = chstorage.Query("control/insert_sessions")
	pendingSessionsSQL = chstorage.Query("control/pending_sessions")
)

// InsertSessions stores session states. An outcome outranks pending
// whatever the writers' clocks say (a re-delivered revocation writes
// pending again); among equals the later write wins.
func InsertSessions(ctx context.Context, conn driver.Conn, ss []SessionRow) error {
	if len(ss) == 0 {
		return nil
	}
	rows := make([][]any, len(ss))
	for i, s := range ss {
		rank := uint64(2)
		if s.Status == control.LayerPending {
			rank = 1
		}
		rows[i] = []any{s.Key, s.RevocationID, s.CredentialID, s.SubjectID, s.DeviceID, s.Scope, s.Reason, s.RequestedMs,
			s.Status, s.Error, uint32(s.Attempts), s.DoneMs, s.UpdatedMs, time.UnixMilli(s.RequestedMs).UTC(),
			rank<<48 | uint64(s.UpdatedMs)}
	}
	return insertSessionsSQL.Insert(ctx, conn, rows...)
}

// PendingSessions reads the session revocations requested since from that
// are still pending (an owner stopped before calling the provider).
func PendingSessions(ctx context.Context, conn driver.Conn, from time.Time) ([]SessionRow, error) {
	rows, err := pendingSessionsSQL.Query(ctx, conn, chstorage.Args{"from": from.UTC().Truncate(time.Second)})
	if err != nil {
		return nil, fmt.Errorf("load pending sessions: %w", err)
	}
	defer rows.Close()
	var out []SessionRow
	for rows.Next() {
		var s SessionRow
		var attempts uint32
		if err := rows.Scan(&s.Key, &s.RevocationID, &s.CredentialID, &s.SubjectID, &s.DeviceID, &s.Scope, &s.Reason,
			&s.RequestedMs, &s.Status, &attempts); err != nil {
			return nil, fmt.Errorf("scan pending session: %w", err)
		}
		s.Attempts = int(attempts)
		out = append(out, s)
	}
	return out, rows.Err()
}

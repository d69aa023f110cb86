package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate/migrate"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// InsertMigration stores a migration's request with its plan (JSON).
func InsertMigration(ctx context.Context, conn driver.Conn, h migrate.Head, plan migrate.Plan) error {
	doc, err := json.Marshal(plan)
	if err != nil {
		return fmt.Errorf("encode migration plan: %w", err)
	}
	return insertMigrationSQL.Insert(ctx, conn, []any{h.MigrationID, h.FromVendor, h.ToVendor, time.UnixMilli(h.RequestedMs).UTC(),
		h.RequestedMs, h.Actor, h.Reason, uint32(h.Locks), uint32(h.Credentials), string(doc)})
}

// InsertMoves stores the credentials a migration moves.
func InsertMoves(ctx context.Context, conn driver.Conn, h migrate.Head, moves []migrate.Move) error {
	if len(moves) == 0 {
		return nil
	}
	ts := time.UnixMilli(h.RequestedMs).UTC()
	rows := make([][]any, len(moves))
	for i, m := range moves {
		rows[i] = []any{h.MigrationID, m.CredentialID, m.From.Vendor, m.From.LockID, m.To.Vendor, m.To.LockID, m.State, ts, h.RequestedMs}
	}
	return insertMovesSQL.Insert(ctx, conn, rows...)
}

// Migrations lists the newest migrations (at most limit).
func Migrations(ctx context.Context, conn driver.Conn, limit int) ([]migrate.Head, error) {
	return heads(ctx, conn, "", limit)
}

func heads(ctx context.Context, conn driver.Conn, id string, limit int) ([]migrate.Head, error) {
	rows, err := migrationsSQL.Query(ctx, conn, chstorage.Args{"migration_id": id, "limit": uint64(limit)})
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	defer rows.Close()
	out := []migrate.Head{}
	for rows.Next() {
		var h migrate.Head
		var locks, creds uint32
		if err := rows.Scan(&h.MigrationID, &h.FromVendor, &h.ToVendor, &h.RequestedMs, &h.Actor, &h.Reason, &locks, &creds); err != nil {
			return nil, fmt.Errorf("scan migration: %w", err)
		}
		h.Locks, h.Credentials = int(locks), int(creds)
		out = append(out, h)
	}
	return out, rows.Err()
}

// Migration reads a migration, its moves and the acks of its locks since
// it was requested; ok is false when it is unknown.
func Migration(ctx context.Context, conn driver.Conn, id string) (h migrate.Head, moves []migrate.Move, acks []migrate.Ack, ok bool, err error) {
	hs, err := heads(ctx, conn, id, 1)
	if err != nil || len(hs) == 0 {
		return h, nil, nil, false, err
	}
	h = hs[0]
	rows, err := migrationMovesSQL.Query(ctx, conn, chstorage.Args{"migration_id": id,
		"from": time.UnixMilli(h.RequestedMs).UTC().Truncate(time.Second)})
	if err != nil {
		return h, nil, nil, false, fmt.Errorf("migration moves: %w", err)
	}
	defer rows.Close()
	locks := map[string]bool{}
	for rows.Next() {
		var m migrate.Move
		if err := rows.Scan(&m.CredentialID, &m.State, &m.From.Vendor, &m.From.LockID, &m.To.Vendor, &m.To.LockID); err != nil {
			return h, nil, nil, false, fmt.Errorf("scan migration move: %w", err)
		}
		moves = append(moves, m)
		locks[m.From.LockID], locks[m.To.LockID] = true, true
	}
	if err := rows.Err(); err != nil {
		return h, nil, nil, false, err
	}
	ids := make([]string, 0, len(locks))
	for l := range locks {
		ids = append(ids, l)
	}
	acks, err = migrationAcks(ctx, conn, h, ids)
	return h, moves, acks, true, err
}

// migrationAcks reads the first applied grant and revoke ack per
// credential and lock of the migration's vendors and locks stored since it
// was requested (with an hour's slack on ts, the gateway's clock).
func migrationAcks(ctx context.Context, conn driver.Conn, h migrate.Head, lockIDs []string) ([]migrate.Ack, error) {
	if len(lockIDs) == 0 {
		return nil, nil
	}
	rows, err := migrationAcksSQL.Query(ctx, conn, chstorage.Args{
		"from": time.UnixMilli(h.RequestedMs).Add(-time.Hour).UTC().Truncate(time.Second), "requested_ms": h.RequestedMs,
		"from_vendor": h.FromVendor, "to_vendor": h.ToVendor, "locks": lockIDs})
	if err != nil {
		return nil, fmt.Errorf("migration acks: %w", err)
	}
	defer rows.Close()
	var out []migrate.Ack
	for rows.Next() {
		var a migrate.Ack
		var l control.LockRef
		if err := rows.Scan(&a.CredentialID, &l.Vendor, &l.LockID, &a.Type, &a.AppliedMs); err != nil {
			return nil, fmt.Errorf("scan migration ack: %w", err)
		}
		a.Lock = l
		out = append(out, a)
	}
	return out, rows.Err()
}

// Package store holds every ClickHouse statement of the lock estate: the
// lock registry's history (lock_registry, written from lock.registry by a
// consumer group), the traffic per door the weak-link report ranks by, and
// the vendor migrations with their acknowledgements. Functions take ctx and
// a connection; estate/stream and estate/api call them.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/pipeline"
)

// HistoryRows turns lock.registry records into lock_registry rows (the
// Rows of the history writer estate/stream runs).
type HistoryRows struct {
	rows []registry.Record
	raw  []string
	now  func() time.Time
}

var _ pipeline.Rows = (*HistoryRows)(nil)

// NewHistoryRows returns an empty batch.
func NewHistoryRows() *HistoryRows { return &HistoryRows{now: time.Now} }

func (h *HistoryRows) Table() string     { return chstorage.LockRegistry.Name }
func (h *HistoryRows) Columns() []string { return chstorage.LockRegistry.ColumnNames() }
func (h *HistoryRows) Len() int          { return len(h.rows) }
func (h *HistoryRows) Stored()           {}
func (h *HistoryRows) Reset()            { h.rows, h.raw = h.rows[:0], h.raw[:0] }

// Append decodes one record.
func (h *HistoryRows) Append(m kafka.Message) error {
	rec, err := registry.DecodeRecord(m.Value)
	if err != nil {
		return err
	}
	if rec.TsMs <= 0 {
		return fmt.Errorf("lock record %s/%s: ts_ms %d", rec.Vendor, rec.LockID, rec.TsMs)
	}
	h.rows = append(h.rows, rec)
	h.raw = append(h.raw, string(m.Value))
	return nil
}

// Data returns the columns; inserted_ms is stamped now.
func (h *HistoryRows) Data() []any {
	n := len(h.rows)
	vendor, lockID, op, actor, reason := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	site, zone, door, model, fw := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	version, ts, tsMs, retired := make([]uint64, n), make([]time.Time, n), make([]int64, n), make([]uint8, n)
	groups, tier, ins := make([][]string, n), make([]uint8, n), make([]int64, n)
	now := h.now().UnixMilli()
	for i, r := range h.rows {
		vendor[i], lockID[i], version[i] = r.Vendor, r.LockID, r.Version
		ts[i], tsMs[i], op[i], actor[i], reason[i] = time.UnixMilli(r.TsMs).UTC(), r.TsMs, r.Op, r.Actor, r.Reason
		if r.Retired {
			retired[i] = 1
		}
		site[i], zone[i], door[i], model[i], fw[i] = r.SiteID, r.ZoneID, r.DoorID, r.Model, r.Firmware
		groups[i] = r.Groups
		if groups[i] == nil {
			groups[i] = []string{}
		}
		tier[i] = uint8(r.Tier)
		ins[i] = now
	}
	return []any{vendor, lockID, version, ts, tsMs, op, actor, reason, retired, site, zone, door, groups, model, fw, tier,
		append([]string(nil), h.raw...), ins}
}

// The estate's statements (internal/chstorage/queries/estate).
var (
	historySQL         = chstorage.Query("estate/history")
	doorUsesSQL        = chstorage.Query("estate/door_uses")
	insertMigrationSQL = chstorage.Query("estate/insert_migration")
	insertMovesSQL     = chstorage.Query("estate/insert_migration_moves")
	migrationsSQL      = chstorage.Query("estate/migrations")
	migrationMovesSQL  = chstorage.Query("estate/migration_moves")
	migrationAcksSQL   = chstorage.Query("estate/migration_acks")
)

// History returns a lock's records, newest first (at most limit).
func History(ctx context.Context, conn driver.Conn, vendor, lockID string, limit int) ([]registry.Record, error) {
	rows, err := historySQL.Query(ctx, conn, chstorage.Args{"vendor": vendor, "lock_id": lockID, "limit": uint64(limit)})
	if err != nil {
		return nil, fmt.Errorf("lock history: %w", err)
	}
	defer rows.Close()
	out := []registry.Record{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("scan lock history: %w", err)
		}
		var rec registry.Record
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, fmt.Errorf("decode lock history: %w", err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

// UseActions are the access events a door's traffic counts: a credential
// presented at the door, opened or refused.
var UseActions = []string{"unlock", "unlatch", "access_denied"}

// DoorUses counts the distinct access events of UseActions per door in
// [from, to) (one site, or every site when site is empty), read from
// access_events, whose sort key (site_id, ts, event_id) bounds the scan by
// the range within each site.
func DoorUses(ctx context.Context, conn driver.Conn, from, to time.Time, site string) (map[estate.Door]int, error) {
	rows, err := doorUsesSQL.Query(ctx, conn, chstorage.Args{"from": from.UTC().Truncate(time.Second), "to": to.UTC().Truncate(time.Second),
		"from_ms": from.UnixMilli(), "to_ms": to.UnixMilli(), "actions": UseActions, "site": site})
	if err != nil {
		return nil, fmt.Errorf("door uses: %w", err)
	}
	defer rows.Close()
	out := map[estate.Door]int{}
	for rows.Next() {
		var d estate.Door
		var n uint64
		if err := rows.Scan(&d.SiteID, &d.DoorID, &n); err != nil {
			return nil, fmt.Errorf("scan door uses: %w", err)
		}
		out[d] = int(n)
	}
	return out, rows.Err()
}

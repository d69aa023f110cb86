// Package store holds the exception register's ClickHouse statements: its
// history (exceptions, written from exception.register by a consumer
// group) and the current register as the history has it (the weekly
// report reads it; the API answers from the in-memory register).
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/pipeline"
)

// HistoryRows turns exception.register records into exceptions rows (the
// Rows of the history writer exception/stream runs).
type HistoryRows struct {
	rows []exception.Record
	raw  []string
	now  func() time.Time
}

var _ pipeline.Rows = (*HistoryRows)(nil)

// NewHistoryRows returns an empty batch.
func NewHistoryRows() *HistoryRows { return &HistoryRows{now: time.Now} }

func (h *HistoryRows) Table() string     { return chstorage.Exceptions.Name }
func (h *HistoryRows) Columns() []string { return chstorage.Exceptions.ColumnNames() }
func (h *HistoryRows) Len() int          { return len(h.rows) }
func (h *HistoryRows) Stored()           {}
func (h *HistoryRows) Reset()            { h.rows, h.raw = h.rows[:0], h.raw[:0] }

// Append decodes one record.
func (h *HistoryRows) Append(m kafka.Message) error {
	rec, err := exception.DecodeRecord(m.Value)
	if err != nil {
		return err
	}
	if rec.TsMs <= 0 {
		return fmt.Errorf("exception record %s: ts_ms %d", rec.ID, rec.TsMs)
	}
	h.rows = append(h.rows, rec)
	h.raw = append(h.raw, string(m.Value))
	return nil
}

// Data returns the columns; inserted_ms is stamped now.
func (h *HistoryRows) Data() []any {
	n := len(h.rows)
	id, op, actor, kind, reason, status, site := make([]string, n), make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	version, ts := make([]uint64, n), make([]time.Time, n)
	tsMs, start, expiry, review, ins := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	now := h.now().UnixMilli()
	for i, r := range h.rows {
		id[i], version[i], ts[i], tsMs[i] = r.ID, r.Version, time.UnixMilli(r.TsMs).UTC(), r.TsMs
		op[i], actor[i], kind[i], reason[i], status[i], site[i] = r.Op, r.Actor, string(r.Kind), r.Reason, string(r.Status), r.Scope.SiteID
		start[i], expiry[i], review[i], ins[i] = r.StartMs, r.ExpiryMs, r.ReviewMs, now
	}
	return []any{id, version, ts, tsMs, op, actor, kind, reason, status, site, start, expiry, review,
		append([]string(nil), h.raw...), ins}
}

// The register's statements (internal/chstorage/queries/exception).
var (
	historySQL = chstorage.Query("exception/history")
	currentSQL = chstorage.Query("exception/current")
)

// History returns an exception's records, newest first (at most limit).
func History(ctx context.Context, conn driver.Conn, id string, limit int) ([]exception.Record, error) {
	rows, err := historySQL.Query(ctx, conn, chstorage.Args{"id": id, "limit": uint64(limit)})
	if err != nil {
		return nil, fmt.Errorf("exception history: %w", err)
	}
	return scan(rows, "exception history")
}

// Current returns the newest record of every exception in the history (of
// one site, or of all when site is empty), by id.
func Current(ctx context.Context, conn driver.Conn, site string) ([]exception.Record, error) {
	rows, err := currentSQL.Query(ctx, conn, chstorage.Args{"site": site})
	if err != nil {
		return nil, fmt.Errorf("exception register: %w", err)
	}
	return scan(rows, "exception register")
}

func scan(rows driver.Rows, what string) ([]exception.Record, error) {
	defer rows.Close()
	out := []exception.Record{}
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("scan %s: %w", what, err)
		}
		rec, err := exception.DecodeRecord([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		out = append(out, rec)
	}
	return out, rows.Err()
}

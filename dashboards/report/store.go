package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Triggers of a stored report.
const (
	TriggerSchedule = "schedule"
	TriggerAPI      = "api"
	TriggerCLI      = "cli"
)

// ErrNotFound is returned for an unknown report id.
var ErrNotFound = errors.New("report not found")

// Stored describes a stored report (GET /v1/reports).
type Stored struct {
	ID          string `json:"report_id"`
	Week        string `json:"week"`
	Site        string `json:"site,omitempty"`
	FromMs      int64  `json:"from_ms"`
	ToMs        int64  `json:"to_ms"`
	GeneratedMs int64  `json:"generated_ms"`
	Trigger     string `json:"trigger"`
}

// Store keeps generated reports in the reports table.
type Store struct {
	conn driver.Conn
}

// NewStore returns a store on conn.
func NewStore(conn driver.Conn) *Store { return &Store{conn: conn} }

var (
	insertReport      = chstorage.Query("report/insert_report")
	reportsSQL        = chstorage.Query("report/reports")
	reportDocumentSQL = chstorage.Query("report/report_document")
	reportExistsSQL   = chstorage.Query("report/report_exists")
)

// Put stores r; a report of the same id generated later replaces it.
func (s *Store) Put(ctx context.Context, r *Report, trigger string) error {
	doc, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	version := uint64(time.Now().UnixMicro())
	return insertReport.Insert(ctx, s.conn, []any{
		r.ID, r.Week, r.Site, time.UnixMilli(r.GeneratedMs).UTC().Truncate(time.Second), r.GeneratedMs,
		r.FromMs, r.ToMs, trigger, string(doc), version,
	})
}

// List returns stored reports, newest week first (limit at most 1000).
func (s *Store) List(ctx context.Context, site string, limit int) ([]Stored, error) {
	rows, err := reportsSQL.Query(ctx, s.conn, chstorage.Args{"site": site, "limit": limit})
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	defer rows.Close()
	out := []Stored{}
	for rows.Next() {
		var st Stored
		if err := rows.Scan(&st.ID, &st.Week, &st.Site, &st.FromMs, &st.ToMs, &st.GeneratedMs, &st.Trigger); err != nil {
			return nil, fmt.Errorf("list reports: %w", err)
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// Get returns a stored report.
func (s *Store) Get(ctx context.Context, id string) (*Report, error) {
	rows, err := reportDocumentSQL.Query(ctx, s.conn, chstorage.Args{"report_id": id})
	if err != nil {
		return nil, fmt.Errorf("get report: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("get report: %w", err)
		}
		return nil, ErrNotFound
	}
	var doc string
	if err := rows.Scan(&doc); err != nil {
		return nil, fmt.Errorf("get report: %w", err)
	}
	var r Report
	if err := json.Unmarshal([]byte(doc), &r); err != nil {
		return nil, fmt.Errorf("decode report %s: %w", id, err)
	}
	return &r, nil
}

// Has reports whether a report with this id is stored.
func (s *Store) Has(ctx context.Context, id string) (bool, error) {
	var n uint64
	if err := reportExistsSQL.QueryRow(ctx, s.conn, chstorage.Args{"report_id": id}).Scan(&n); err != nil {
		return false, fmt.Errorf("find report: %w", err)
	}
	return n > 0, nil
}

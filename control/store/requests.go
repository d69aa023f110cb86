package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// RequestDoc is a stored provisioning request (control_requests): what a
// retry with the same Idempotency-Key is answered from.
type RequestDoc struct {
	RequestID string
	Kind      string
	KeyHash   string
	BodySHA   string
	Caller    string
	CreatedMs int64
	Total     int
	Rejected  int
	Response  []byte
}

// FindRequest reads a stored request; nil when there is none.
func FindRequest(ctx context.Context, conn driver.Conn, id string) (*RequestDoc, error) {
	rows, err := conn.Query(ctx, `SELECT request_id, kind, idempotency_key, body_sha256, caller, created_ms,
		total, rejected, response FROM control_requests WHERE request_id = ? LIMIT 1`, id)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d RequestDoc
		var total, rejected uint32
		var resp string
		if err := rows.Scan(&d.RequestID, &d.Kind, &d.KeyHash, &d.BodySHA, &d.Caller, &d.CreatedMs, &total, &rejected, &resp); err != nil {
			return nil, fmt.Errorf("scan request: %w", err)
		}
		d.Total, d.Rejected, d.Response = int(total), int(rejected), []byte(resp)
		return &d, nil
	}
	return nil, rows.Err()
}

// SaveRequest stores a request.
func SaveRequest(ctx context.Context, conn driver.Conn, d *RequestDoc) error {
	return chstorage.InsertRows(ctx, conn, "control_requests", []string{"request_id", "kind",
		"idempotency_key", "body_sha256", "caller", "ts", "created_ms", "total", "rejected", "response"},
		[]any{d.RequestID, d.Kind, d.KeyHash, d.BodySHA, d.Caller, time.UnixMilli(d.CreatedMs).UTC(), d.CreatedMs,
			uint32(d.Total), uint32(d.Rejected), string(d.Response)})
}

// Items reads a request's item statuses (one item when item >= 0).
func Items(ctx context.Context, conn driver.Conn, requestID string, item int) ([]control.ItemStatus, error) {
	q := `SELECT item, argMax(credential_id, version), argMax(status, version), argMax(error, version),
		argMax(detail, version) FROM control_request_items WHERE request_id = ?`
	args := []any{requestID}
	if item >= 0 {
		q += ` AND item = ?`
		args = append(args, uint32(item))
	}
	rows, err := conn.Query(ctx, q+` GROUP BY item ORDER BY item`, args...)
	if err != nil {
		return nil, fmt.Errorf("read request items: %w", err)
	}
	defer rows.Close()
	var out []control.ItemStatus
	for rows.Next() {
		var it control.ItemStatus
		var idx uint32
		if err := rows.Scan(&idx, &it.CredentialID, &it.Status, &it.Error, &it.Detail); err != nil {
			return nil, fmt.Errorf("scan request item: %w", err)
		}
		it.Item = int(idx)
		out = append(out, it)
	}
	return out, rows.Err()
}

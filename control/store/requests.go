package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// The statements of provisioning requests (internal/chstorage/queries/control).
var (
	requestSQL       = chstorage.Query("control/request")
	insertRequestSQL = chstorage.Query("control/insert_request")
	requestItemsSQL  = chstorage.Query("control/request_items")
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
	rows, err := requestSQL.Query(ctx, conn, chstorage.Args{"request_id": id})
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
	return insertRequestSQL.Insert(ctx, conn,
		[]any{d.RequestID, d.Kind, d.KeyHash, d.BodySHA, d.Caller, time.UnixMilli(d.CreatedMs).UTC(), d.CreatedMs,
			uint32(d.Total), uint32(d.Rejected), string(d.Response)})
}

// Items reads a request's item statuses (one item when item >= 0).
func Items(ctx context.Context, conn driver.Conn, requestID string, item int) ([]control.ItemStatus, error) {
	rows, err := requestItemsSQL.Query(ctx, conn, chstorage.Args{"request_id": requestID, "one_item": item >= 0,
		"item": uint32(max(item, 0))})
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

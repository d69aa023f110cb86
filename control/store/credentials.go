package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// The statements of credentials, reviews and templates
// (internal/chstorage/queries/control).
var (
	historySQL        = chstorage.Query("control/credential_history")
	accessEventsSQL   = chstorage.Query("control/credential_access_events")
	reviewsSQL        = chstorage.Query("control/reviews")
	insertReviewSQL   = chstorage.Query("control/insert_review")
	templatesSQL      = chstorage.Query("control/templates")
	insertTemplateSQL = chstorage.Query("control/insert_template")
)

// History reads a credential's records from ClickHouse, oldest first.
func History(ctx context.Context, conn driver.Conn, id string) ([]*control.Record, error) {
	rows, err := historySQL.Query(ctx, conn, chstorage.Args{"credential_id": id})
	if err != nil {
		return nil, fmt.Errorf("read credential history: %w", err)
	}
	defer rows.Close()
	var out []*control.Record
	for rows.Next() {
		var seq uint64
		var doc string
		if err := rows.Scan(&seq, &doc); err != nil {
			return nil, fmt.Errorf("scan credential history: %w", err)
		}
		r, err := control.DecodeRecord([]byte(doc))
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// AccessEvents returns the access events made with a credential (at most
// 10,000, oldest first).
func AccessEvents(ctx context.Context, conn driver.Conn, r *control.Record) ([]control.AccessEvent, error) {
	from := r.RequestedMs
	if from == 0 {
		from = r.TsMs
	}
	rows, err := accessEventsSQL.Query(ctx, conn, chstorage.Args{"credential_id": r.CredentialID,
		"from": time.UnixMilli(from).Add(-time.Minute).UTC()})
	if err != nil {
		return nil, fmt.Errorf("read access events: %w", err)
	}
	defer rows.Close()
	out := []control.AccessEvent{}
	for rows.Next() {
		var e control.AccessEvent
		var bg uint8
		if err := rows.Scan(&e.EventID, &e.TsMs, &e.SiteID, &e.DoorID, &e.LockID, &e.Action, &e.Outcome, &e.Method, &e.Reason, &bg); err != nil {
			return nil, fmt.Errorf("scan access event: %w", err)
		}
		e.BreakGlass = bg == 1
		out = append(out, e)
	}
	return out, rows.Err()
}

// ReviewRow is the stored review of a break-glass credential.
type ReviewRow struct {
	Status, Outcome, Reviewer, Note string
	UpdatedMs                       int64
}

// Reviews reads the break-glass reviews by credential id (every one when
// id is empty).
func Reviews(ctx context.Context, conn driver.Conn, id string) (map[string]ReviewRow, error) {
	rows, err := reviewsSQL.Query(ctx, conn, chstorage.Args{"credential_id": id})
	if err != nil {
		return nil, fmt.Errorf("read reviews: %w", err)
	}
	defer rows.Close()
	out := map[string]ReviewRow{}
	for rows.Next() {
		var cid string
		var r ReviewRow
		if err := rows.Scan(&cid, &r.Status, &r.Outcome, &r.Reviewer, &r.Note, &r.UpdatedMs); err != nil {
			return nil, fmt.Errorf("scan review: %w", err)
		}
		out[cid] = r
	}
	return out, rows.Err()
}

// InsertReview stores a review of a break-glass credential at now.
func InsertReview(ctx context.Context, conn driver.Conn, credentialID string, r ReviewRow, now time.Time) error {
	return insertReviewSQL.Insert(ctx, conn,
		[]any{credentialID, r.Status, r.Outcome, r.Reviewer, r.Note, now.UnixMilli(), uint64(now.UnixNano())})
}

// LoadTemplates reads the newest stored version of every changed template
// (control_templates).
func LoadTemplates(ctx context.Context, conn driver.Conn) (map[string]control.Template, error) {
	rows, err := templatesSQL.Query(ctx, conn, nil)
	if err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	defer rows.Close()
	by := map[string]control.Template{}
	for rows.Next() {
		var role, doc string
		if err := rows.Scan(&role, &doc); err != nil {
			return nil, fmt.Errorf("scan template: %w", err)
		}
		var t control.Template
		if err := json.Unmarshal([]byte(doc), &t); err != nil {
			return nil, fmt.Errorf("template %s: %w", role, err)
		}
		by[role] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load templates: %w", err)
	}
	return by, nil
}

// InsertTemplate stores a template version.
func InsertTemplate(ctx context.Context, conn driver.Conn, t control.Template) error {
	doc, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("encode template: %w", err)
	}
	return insertTemplateSQL.Insert(ctx, conn,
		[]any{t.Role, t.Version, string(doc), t.UpdatedMs, t.UpdatedBy})
}

// Package store holds every ClickHouse statement of the control plane:
// credential_events (the history of credential.events), request statuses
// and documents, revocations with their locks and acks, templates, reviews,
// the revocation resource and the KPIs. Functions take ctx and a
// connection; control/api and control/stream call them.
package store

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/pipeline"
)

// CredentialRows turns credential.events records into credential_events rows
// (the Rows of the ClickHouse writer control/stream runs).
type CredentialRows struct {
	rows [][]any
	now  func() time.Time
}

var _ pipeline.Rows = (*CredentialRows)(nil)

// credentialEventsSQL declares the credential_events writer's columns
// (internal/chstorage/queries/control/insert_credential_events.sql).
var credentialEventsSQL = chstorage.Query("control/insert_credential_events")

var credentialColumns = credentialEventsSQL.Columns()

// NewCredentialRows returns an empty batch.
func NewCredentialRows() *CredentialRows { return &CredentialRows{now: time.Now} }

func (c *CredentialRows) Table() string     { return "credential_events" }
func (c *CredentialRows) Columns() []string { return credentialColumns }
func (c *CredentialRows) Len() int          { return len(c.rows) }
func (c *CredentialRows) Stored()           {}
func (c *CredentialRows) Reset()            { clear(c.rows); c.rows = c.rows[:0] }

// Append decodes one record.
func (c *CredentialRows) Append(m kafka.Message) error {
	r, err := control.DecodeRecord(m.Value)
	if err != nil {
		return err
	}
	if r.TsMs <= 0 {
		return fmt.Errorf("credential record %s: ts_ms %d", r.CredentialID, r.TsMs)
	}
	var d event.Device
	if r.Device != nil {
		d = *r.Device
	}
	c.rows = append(c.rows, []any{
		r.CredentialID, r.Seq, time.UnixMilli(r.TsMs).UTC(), r.TsMs, r.Op, r.State, r.PrevState, r.SubjectID,
		r.Role, r.SiteID, r.DeviceID, b2u(r.Attested), b2u(r.BreakGlass), b2u(r.Exception), nonNil(r.DoorGroups),
		r.ValidFromMs, r.ValidUntilMs, r.Issuer, nonNil(r.Approvers), r.ApprovalRule, r.Reason, r.Actor,
		r.RequestID, r.CommandID, r.RevocationID, r.RequestedMs, r.IssuedMs, uint32(len(r.Locks)),
		d.PhoneModel, d.OSName, d.OSVersion, d.OSPatchLevel, d.AppVersion, d.Facts,
		string(m.Value), int64(0),
	})
	return nil
}

// Data returns the columns; inserted_ms is stamped now.
func (c *CredentialRows) Data() []any {
	now := c.now().UnixMilli()
	cols := make([]any, len(credentialColumns))
	for i := range credentialColumns {
		cols[i] = column(c.rows, i)
	}
	ins := make([]int64, len(c.rows))
	for i := range ins {
		ins[i] = now
	}
	cols[len(cols)-1] = ins
	return cols
}

// column builds a typed column slice from row-major values.
func column(rows [][]any, i int) any {
	if len(rows) == 0 {
		return []string{}
	}
	switch rows[0][i].(type) {
	case string:
		out := make([]string, len(rows))
		for j, r := range rows {
			out[j] = r[i].(string)
		}
		return out
	case uint64:
		out := make([]uint64, len(rows))
		for j, r := range rows {
			out[j] = r[i].(uint64)
		}
		return out
	case int64:
		out := make([]int64, len(rows))
		for j, r := range rows {
			out[j] = r[i].(int64)
		}
		return out
	case uint32:
		out := make([]uint32, len(rows))
		for j, r := range rows {
			out[j] = r[i].(uint32)
		}
		return out
	case uint8:
		out := make([]uint8, len(rows))
		for j, r := range rows {
			out[j] = r[i].(uint8)
		}
		return out
	case time.Time:
		out := make([]time.Time, len(rows))
		for j, r := range rows {
			out[j] = r[i].(time.Time)
		}
		return out
	case []string:
		out := make([][]string, len(rows))
		for j, r := range rows {
			out[j] = r[i].([]string)
		}
		return out
	}
	panic(fmt.Sprintf("column %d: unsupported type %T", i, rows[0][i]))
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// The statements of the owner's writes (internal/chstorage/queries/control).
var (
	insertItemsSQL           = chstorage.Query("control/insert_items")
	insertRevocationsSQL     = chstorage.Query("control/insert_revocations")
	insertRevocationLocksSQL = chstorage.Query("control/insert_revocation_locks")
	insertAcksSQL            = chstorage.Query("control/insert_acks")
)

// InsertItems stores request item statuses (control_request_items).
func InsertItems(ctx context.Context, conn driver.Conn, now time.Time, items []control.ItemRow) error {
	if len(items) == 0 {
		return nil
	}
	ms := now.UnixMilli()
	rows := make([][]any, len(items))
	for i, it := range items {
		// An outcome outranks pending whatever the clocks of the writers
		// say; among equals the later write wins.
		rank := uint64(2)
		if it.Status == control.StatusPending {
			rank = 1
		}
		rows[i] = []any{it.RequestID, uint32(it.Item), it.CredentialID, it.Status, it.Error, it.Detail, ms, rank<<48 | uint64(ms)}
	}
	return insertItemsSQL.Insert(ctx, conn, rows...)
}

// InsertRevocations stores revoked credentials (revocations) and the locks
// told to drop them (revocation_locks).
func InsertRevocations(ctx context.Context, conn driver.Conn, revs []control.RevocationRow, locks []control.RevocationLockRow) error {
	if len(revs) > 0 {
		rows := make([][]any, len(revs))
		for i, r := range revs {
			// session_revoked_ms stays 0: the session layer is revocation_sessions.
			rows[i] = []any{r.RevocationID, r.CredentialID, r.SubjectID, r.Scope, time.UnixMilli(r.RequestedMs).UTC(),
				r.RequestedMs, r.DisabledMs, int64(0), r.DeviceID, uint32(r.Locks)}
		}
		if err := insertRevocationsSQL.Insert(ctx, conn, rows...); err != nil {
			return err
		}
	}
	if len(locks) > 0 {
		rows := make([][]any, len(locks))
		for i, l := range locks {
			rows[i] = []any{l.RevocationID, l.CredentialID, l.Vendor, l.LockID, l.CommandID, time.UnixMilli(l.IssuedMs).UTC(), l.IssuedMs}
		}
		if err := insertRevocationLocksSQL.Insert(ctx, conn, rows...); err != nil {
			return err
		}
	}
	return nil
}

// InsertAcks stores lock acknowledgements (lock_acks); ackedMs stands in
// for an ack's missing applied time.
func InsertAcks(ctx context.Context, conn driver.Conn, acks []gateway.Ack, ackedMs int64) error {
	if len(acks) == 0 {
		return nil
	}
	rows := make([][]any, len(acks))
	for i, a := range acks {
		ts := a.AppliedMs
		if ts <= 0 {
			ts = ackedMs
		}
		rows[i] = []any{a.CommandID, a.RevocationID, a.Type, a.Vendor, a.LockID, a.CredentialID, a.Status, a.Error,
			time.UnixMilli(ts).UTC(), a.ReceivedMs, a.AppliedMs, ackedMs}
	}
	return insertAcksSQL.Insert(ctx, conn, rows...)
}

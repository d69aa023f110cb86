package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

// The statements of the reconciliation (internal/chstorage/queries/control).
var (
	insertLockSendsSQL     = chstorage.Query("control/insert_lock_sends")
	insertLockOutcomesSQL  = chstorage.Query("control/insert_lock_outcomes")
	unackedCommandsSQL     = chstorage.Query("control/unacked_commands")
	insertEscalationsSQL   = chstorage.Query("control/insert_escalations")
	escalatedSQL           = chstorage.Query("control/escalated")
	insertResyncsSQL       = chstorage.Query("control/insert_resyncs")
	credentialLockSendsSQL = chstorage.Query("control/credential_lock_sends")
	credentialLockAcksSQL  = chstorage.Query("control/credential_lock_acks")
)

// InsertLockSends stores sends of lock commands (lock_command_sends): each
// command as published, its Attempt and SentMs saying which send it was.
func InsertLockSends(ctx context.Context, conn driver.Conn, cmds []gateway.Command) error {
	if len(cmds) == 0 {
		return nil
	}
	rows := make([][]any, len(cmds))
	for i, c := range cmds {
		doc, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode lock command: %w", err)
		}
		attempt := max(c.Attempt, 1)
		sent := c.SentMs
		if sent == 0 {
			sent = c.IssuedMs
		}
		rows[i] = []any{c.CommandID, uint32(attempt), c.Type, c.Vendor, c.LockID, c.CredentialID, c.RevocationID,
			c.Seq, c.ACLVersion, c.IssuedMs, sent, time.UnixMilli(c.IssuedMs).UTC(), string(doc)}
	}
	return insertLockSendsSQL.Insert(ctx, conn, rows...)
}

// Outcomes of a lock command keyfleet stopped re-sending.
const OutcomeGaveUp = "gave_up"

// GiveUp is a lock command keyfleet stopped re-sending without an ack.
type GiveUp struct {
	Command  gateway.Command
	Attempts int
	Error    string
	AtMs     int64
}

// InsertGiveUps stores given-up commands (lock_command_outcomes).
func InsertGiveUps(ctx context.Context, conn driver.Conn, gs []GiveUp) error {
	if len(gs) == 0 {
		return nil
	}
	rows := make([][]any, len(gs))
	for i, g := range gs {
		c := g.Command
		rows[i] = []any{c.CommandID, OutcomeGaveUp, c.Type, c.Vendor, c.LockID, c.CredentialID, c.RevocationID,
			uint32(g.Attempts), g.Error, time.UnixMilli(c.IssuedMs).UTC(), g.AtMs}
	}
	return insertLockOutcomesSQL.Insert(ctx, conn, rows...)
}

// Outstanding is a lock command without an applied ack: the newest command
// for its credential on its lock (an older one is superseded by it), as
// last sent, with how often and when.
type Outstanding struct {
	Command    gateway.Command
	Attempts   int
	LastSentMs int64
}

// UnackedCommands reads the lock commands sent since from that no lock
// acknowledged as applied and keyfleet did not give up on, newest per
// credential and lock (acl_push: per lock).
func UnackedCommands(ctx context.Context, conn driver.Conn, from time.Time) ([]Outstanding, error) {
	fromTs := from.UTC().Truncate(time.Second)
	rows, err := unackedCommandsSQL.Query(ctx, conn, chstorage.Args{"acks_from": fromTs.Add(-time.Hour), "from": fromTs})
	if err != nil {
		return nil, fmt.Errorf("load unacknowledged lock commands: %w", err)
	}
	defer rows.Close()
	type key struct{ vendor, lock, credential string }
	type cand struct {
		o             Outstanding
		seq           uint64
		issued        int64
		id            string
		acked, closed bool
	}
	newest := map[key]*cand{}
	for rows.Next() {
		var c cand
		var doc, vendor, lock, cred string
		var attempts uint32
		var acked, closed uint8
		if err := rows.Scan(&c.id, &doc, &attempts, &c.o.LastSentMs, &vendor, &lock, &cred, &c.seq, &c.issued,
			&acked, &closed); err != nil {
			return nil, fmt.Errorf("scan lock command: %w", err)
		}
		if err := json.Unmarshal([]byte(doc), &c.o.Command); err != nil {
			return nil, fmt.Errorf("lock command %s: %w", c.id, err)
		}
		c.o.Attempts, c.acked, c.closed = int(attempts), acked == 1, closed == 1
		k := key{vendor, lock, cred}
		if cur := newest[k]; cur == nil || c.seq > cur.seq || (c.seq == cur.seq && (c.issued > cur.issued ||
			(c.issued == cur.issued && c.id > cur.id))) {
			newest[k] = &c
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load unacknowledged lock commands: %w", err)
	}
	var out []Outstanding
	for _, c := range newest {
		if !c.acked && !c.closed {
			out = append(out, c.o)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Command.CommandID < out[j].Command.CommandID })
	return out, nil
}

// Escalation is a revoked credential whose revocation passed the SLA with
// locks unconfirmed.
type Escalation struct {
	RevocationID, CredentialID, AlertID string
	RequestedMs, EscalatedMs            int64
	PendingLocks                        int
}

// InsertEscalations stores escalations (revocation_escalations).
func InsertEscalations(ctx context.Context, conn driver.Conn, es []Escalation) error {
	if len(es) == 0 {
		return nil
	}
	rows := make([][]any, len(es))
	for i, e := range es {
		rows[i] = []any{e.RevocationID, e.CredentialID, e.AlertID, e.RequestedMs, e.EscalatedMs, uint32(e.PendingLocks),
			time.UnixMilli(e.RequestedMs).UTC()}
	}
	return insertEscalationsSQL.Insert(ctx, conn, rows...)
}

// Escalated reads which revoked credentials (revocation id, credential id)
// of revocations requested since from were escalated.
func Escalated(ctx context.Context, conn driver.Conn, from time.Time) (map[[2]string]bool, error) {
	rows, err := escalatedSQL.Query(ctx, conn, chstorage.Args{"from": from.UTC().Truncate(time.Second)})
	if err != nil {
		return nil, fmt.Errorf("read escalations: %w", err)
	}
	defer rows.Close()
	out := map[[2]string]bool{}
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			return nil, fmt.Errorf("scan escalation: %w", err)
		}
		out[k] = true
	}
	return out, rows.Err()
}

// Resync is one full ACL resync sent to a lock.
type Resync struct {
	CommandID, Vendor, LockID, Reason string
	Reported, Expected, Version       string
	Trigger                           string // the command whose ack drifted
	Entries                           int
	AtMs                              int64
}

// InsertResyncs stores ACL resyncs (acl_resyncs).
func InsertResyncs(ctx context.Context, conn driver.Conn, rs []Resync) error {
	if len(rs) == 0 {
		return nil
	}
	rows := make([][]any, len(rs))
	for i, r := range rs {
		rows[i] = []any{r.CommandID, r.Vendor, r.LockID, r.Reason, r.Reported, r.Expected, r.Version, uint32(r.Entries),
			r.Trigger, time.UnixMilli(r.AtMs).UTC(), r.AtMs}
	}
	return insertResyncsSQL.Insert(ctx, conn, rows...)
}

// CredentialLocks reads, per lock, the newest command sent about a
// credential and whether the lock acknowledged it.
func CredentialLocks(ctx context.Context, conn driver.Conn, credentialID string) ([]control.CredentialLock, error) {
	rows, err := credentialLockSendsSQL.Query(ctx, conn, chstorage.Args{"credential_id": credentialID})
	if err != nil {
		return nil, fmt.Errorf("read credential locks: %w", err)
	}
	type cmd struct {
		id, vendor, lock, typ string
		seq                   uint64
		issued, sent          int64
		attempts              uint32
	}
	newest := map[[2]string]cmd{}
	for rows.Next() {
		var c cmd
		if err := rows.Scan(&c.id, &c.vendor, &c.lock, &c.typ, &c.seq, &c.issued, &c.sent, &c.attempts); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan credential lock: %w", err)
		}
		k := [2]string{c.vendor, c.lock}
		if cur, ok := newest[k]; !ok || c.seq > cur.seq || (c.seq == cur.seq && c.issued > cur.issued) {
			newest[k] = c
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read credential locks: %w", err)
	}
	applied := map[string]int64{}
	rows, err = credentialLockAcksSQL.Query(ctx, conn, chstorage.Args{"credential_id": credentialID})
	if err != nil {
		return nil, fmt.Errorf("read credential lock acks: %w", err)
	}
	for rows.Next() {
		var id string
		var at int64
		if err := rows.Scan(&id, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan credential lock ack: %w", err)
		}
		applied[id] = max(at, 1)
	}
	rows.Close()
	out := make([]control.CredentialLock, 0, len(newest))
	for _, c := range newest {
		l := control.CredentialLock{Vendor: c.vendor, LockID: c.lock, Command: c.typ, State: control.LockSending,
			SentMs: c.sent, Attempts: int(c.attempts)}
		if at := applied[c.id]; at > 0 {
			l.AppliedMs, l.State = at, control.LockHeld
			if c.typ == gateway.CommandRevoke {
				l.State = control.LockRemoved
			}
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Vendor != out[j].Vendor {
			return out[i].Vendor < out[j].Vendor
		}
		return out[i].LockID < out[j].LockID
	})
	return out, rows.Err()
}

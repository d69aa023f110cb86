package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// RevocationHead is a revocation as requested (revocation_requests): which
// credentials it covers, who asked and why; the revocation resource is
// found by it even before the owner has stored its rows.
type RevocationHead struct {
	RevocationID, Scope, SubjectID string
	CredentialIDs                  []string
	RequestedMs                    int64
	Actor, Reason                  string
}

// InsertRevocationHeads stores revocation requests.
func InsertRevocationHeads(ctx context.Context, conn driver.Conn, heads ...RevocationHead) error {
	if len(heads) == 0 {
		return nil
	}
	rows := make([][]any, len(heads))
	for i, h := range heads {
		rows[i] = []any{h.RevocationID, h.Scope, h.SubjectID, h.CredentialIDs, time.UnixMilli(h.RequestedMs).UTC(),
			h.RequestedMs, h.Actor, h.Reason}
	}
	return chstorage.InsertRows(ctx, conn, "revocation_requests", []string{"revocation_id", "scope", "subject_id",
		"credential_ids", "ts", "requested_ms", "actor", "reason"}, rows...)
}

// UnackedLock is a lock that has not acknowledged a revocation.
type UnackedLock struct {
	RevocationID, CredentialID string
	Lock                       control.LockRef
	IssuedMs, RequestedMs      int64
	Scope                      string
}

// PendingRevocations reads the locks of the revocations since from that
// have not acknowledged them (revocation_locks without an applied ack).
func PendingRevocations(ctx context.Context, conn driver.Conn, from time.Time) ([]UnackedLock, error) {
	rows, err := conn.Query(ctx, `SELECT l.revocation_id, l.credential_id, l.vendor, l.lock_id, l.issued_ms, r.requested_ms, r.scope
		FROM (SELECT revocation_id, credential_id, vendor, lock_id, issued_ms FROM revocation_locks FINAL WHERE ts >= ?) AS l
		ANY LEFT JOIN (SELECT revocation_id, credential_id, requested_ms, scope FROM revocations FINAL WHERE ts >= ?) AS r
		USING (revocation_id, credential_id)
		WHERE (revocation_id, credential_id, vendor, lock_id) NOT IN
			(SELECT revocation_id, credential_id, vendor, lock_id FROM lock_acks WHERE status = 'applied' AND revocation_id != '' AND ts >= ?)`,
		from, from, from)
	if err != nil {
		return nil, fmt.Errorf("load pending revocations: %w", err)
	}
	defer rows.Close()
	var out []UnackedLock
	for rows.Next() {
		var p UnackedLock
		if err := rows.Scan(&p.RevocationID, &p.CredentialID, &p.Lock.Vendor, &p.Lock.LockID, &p.IssuedMs,
			&p.RequestedMs, &p.Scope); err != nil {
			return nil, fmt.Errorf("scan pending revocation: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Revocation reads the revocation resource from ClickHouse; nil when
// unknown. A lock pending longer than sla is overdue; now is read after the
// reads (no negative ages).
func Revocation(ctx context.Context, conn driver.Conn, id string, sla time.Duration, now func() time.Time) (*control.Revocation, error) {
	rv := &control.Revocation{RevocationID: id, ConfirmedLocks: []control.LockStatus{}, PendingLocks: []control.LockStatus{}}
	var expected []string
	found := false
	rows, err := conn.Query(ctx, `SELECT scope, subject_id, credential_ids, requested_ms, actor, reason
		FROM revocation_requests WHERE revocation_id = ? LIMIT 1`, id)
	if err != nil {
		return nil, fmt.Errorf("read revocation: %w", err)
	}
	for rows.Next() {
		found = true
		if err := rows.Scan(&rv.Scope, &rv.SubjectID, &expected, &rv.RequestedMs, &rv.Actor, &rv.Reason); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan revocation: %w", err)
		}
	}
	rows.Close()

	creds := map[string]*control.RevokedCredential{}
	for _, cid := range expected {
		creds[cid] = &control.RevokedCredential{CredentialID: cid}
	}
	rows, err = conn.Query(ctx, `SELECT credential_id, min(requested_ms), max(disabled_ms), max(session_revoked_ms),
		any(device_id), max(locks_total), any(scope) FROM revocations WHERE revocation_id = ? GROUP BY credential_id`, id)
	if err != nil {
		return nil, fmt.Errorf("read revoked credentials: %w", err)
	}
	devices := map[string]string{}
	for rows.Next() {
		var rc control.RevokedCredential
		var requested int64
		var locks uint32
		var device, scope string
		if err := rows.Scan(&rc.CredentialID, &requested, &rc.DisabledMs, &rc.SessionRevokedMs, &device, &locks, &scope); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan revoked credential: %w", err)
		}
		found = true
		rc.LocksTotal = int(locks)
		creds[rc.CredentialID] = &rc
		devices[rc.CredentialID] = device
		if rv.RequestedMs == 0 {
			rv.RequestedMs, rv.Scope = requested, scope
		}
	}
	rows.Close()
	if !found {
		return nil, nil
	}

	type lk struct{ cred, vendor, lock string }
	locks := map[lk]*control.LockStatus{}
	rows, err = conn.Query(ctx, `SELECT credential_id, vendor, lock_id, min(issued_ms) FROM revocation_locks
		WHERE revocation_id = ? GROUP BY credential_id, vendor, lock_id`, id)
	if err != nil {
		return nil, fmt.Errorf("read revocation locks: %w", err)
	}
	for rows.Next() {
		var l control.LockStatus
		if err := rows.Scan(&l.CredentialID, &l.Vendor, &l.LockID, &l.IssuedMs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan revocation lock: %w", err)
		}
		locks[lk{l.CredentialID, l.Vendor, l.LockID}] = &l
	}
	rows.Close()
	rows, err = conn.Query(ctx, `SELECT credential_id, vendor, lock_id, min(applied_ms) FROM lock_acks
		WHERE revocation_id = ? AND status = 'applied' GROUP BY credential_id, vendor, lock_id`, id)
	if err != nil {
		return nil, fmt.Errorf("read lock acks: %w", err)
	}
	for rows.Next() {
		var k lk
		var applied int64
		if err := rows.Scan(&k.cred, &k.vendor, &k.lock, &applied); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan lock ack: %w", err)
		}
		if l, ok := locks[k]; ok {
			l.AppliedMs = max(applied, 1)
		}
	}
	rows.Close()

	nowMs := now().UnixMilli() // after the reads: no negative ages
	slaMs := sla.Milliseconds()
	var lastAck int64
	for _, l := range locks {
		if l.AppliedMs > 0 {
			l.LatencyMs = l.AppliedMs - rv.RequestedMs
			lastAck = max(lastAck, l.AppliedMs)
			rv.ConfirmedLocks = append(rv.ConfirmedLocks, *l)
			if rc := creds[l.CredentialID]; rc != nil {
				rc.LocksConfirmed++
			}
		} else {
			l.AgeMs = nowMs - l.IssuedMs
			l.Overdue = l.AgeMs > slaMs
			rv.PendingLocks = append(rv.PendingLocks, *l)
		}
	}
	sortLocks(rv.ConfirmedLocks)
	sortLocks(rv.PendingLocks)
	var lastDisabled int64
	for _, rc := range creds {
		rv.Credentials = append(rv.Credentials, *rc)
		rv.Layers.Entitlement.Total++
		rv.Layers.DeviceSession.Total++
		if rc.DisabledMs > 0 {
			rv.Layers.Entitlement.Done++
			lastDisabled = max(lastDisabled, rc.DisabledMs)
			if devices[rc.CredentialID] == "" || rc.SessionRevokedMs > 0 {
				rv.Layers.DeviceSession.Done++
			}
		}
		rv.Layers.Locks.Total += rc.LocksTotal
	}
	sort.Slice(rv.Credentials, func(i, j int) bool { return rv.Credentials[i].CredentialID < rv.Credentials[j].CredentialID })
	rv.Layers.Locks.Done = len(rv.ConfirmedLocks)
	rv.Layers.Locks.Total = max(rv.Layers.Locks.Total, len(locks))
	rv.AgeMs = nowMs - rv.RequestedMs
	rv.Status = control.StatusPending
	if rv.Layers.Entitlement.Done == rv.Layers.Entitlement.Total && rv.Layers.Entitlement.Total > 0 {
		rv.TimeToDisableMs = lastDisabled - rv.RequestedMs
		if len(rv.PendingLocks) == 0 && rv.Layers.Locks.Done >= rv.Layers.Locks.Total {
			rv.Status = "confirmed"
			rv.TimeToConfirmMs = max(lastAck, lastDisabled) - rv.RequestedMs
		}
	}
	return rv, nil
}

func sortLocks(ls []control.LockStatus) {
	sort.Slice(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if a.Vendor+"/"+a.LockID != b.Vendor+"/"+b.LockID {
			return a.Vendor+"/"+a.LockID < b.Vendor+"/"+b.LockID
		}
		return a.CredentialID < b.CredentialID
	})
}

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

// The statements of the revocation layers (internal/chstorage/queries/control).
var (
	insertRevocationHeadsSQL = chstorage.Query("control/insert_revocation_heads")
	pendingRevocationsSQL    = chstorage.Query("control/pending_revocations")
	revocationRequestSQL     = chstorage.Query("control/revocation_request")
	revokedCredentialsSQL    = chstorage.Query("control/revoked_credentials")
	revocationLocksSQL       = chstorage.Query("control/revocation_locks")
	revocationSessionsSQL    = chstorage.Query("control/revocation_sessions")
	revocationAcksSQL        = chstorage.Query("control/revocation_acks")
	revocationSendsSQL       = chstorage.Query("control/revocation_sends")
	revocationGaveUpSQL      = chstorage.Query("control/revocation_gave_up")
	revocationEscalationSQL  = chstorage.Query("control/revocation_escalation")
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
	return insertRevocationHeadsSQL.Insert(ctx, conn, rows...)
}

// UnackedLock is a lock that has not acknowledged a revocation.
type UnackedLock struct {
	RevocationID, CredentialID, SubjectID string
	Lock                                  control.LockRef
	IssuedMs, RequestedMs                 int64
	Scope                                 string
}

// PendingRevocations reads the locks of the revocations since from that
// have not acknowledged them (revocation_locks without an applied ack).
func PendingRevocations(ctx context.Context, conn driver.Conn, from time.Time) ([]UnackedLock, error) {
	rows, err := pendingRevocationsSQL.Query(ctx, conn, chstorage.Args{"from": from})
	if err != nil {
		return nil, fmt.Errorf("load pending revocations: %w", err)
	}
	defer rows.Close()
	var out []UnackedLock
	for rows.Next() {
		var p UnackedLock
		if err := rows.Scan(&p.RevocationID, &p.CredentialID, &p.Lock.Vendor, &p.Lock.LockID, &p.IssuedMs,
			&p.RequestedMs, &p.Scope, &p.SubjectID); err != nil {
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
	rv := &control.Revocation{RevocationID: id, ConfirmedLocks: []control.LockStatus{}, PendingLocks: []control.LockStatus{},
		FailedLocks: []control.LockStatus{}}
	var expected []string
	found := false
	rows, err := revocationRequestSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id})
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
	rows, err = revokedCredentialsSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id})
	if err != nil {
		return nil, fmt.Errorf("read revoked credentials: %w", err)
	}
	for rows.Next() {
		var rc control.RevokedCredential
		var requested int64
		var locks uint32
		var scope string
		if err := rows.Scan(&rc.CredentialID, &requested, &rc.DisabledMs, &locks, &scope); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan revoked credential: %w", err)
		}
		found = true
		rc.LocksTotal = int(locks)
		creds[rc.CredentialID] = &rc
		if rv.RequestedMs == 0 {
			rv.RequestedMs, rv.Scope = requested, scope
		}
	}
	rows.Close()
	if !found {
		return nil, nil
	}

	// The device-session layer, per credential.
	rows, err = revocationSessionsSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id})
	if err != nil {
		return nil, fmt.Errorf("read revocation sessions: %w", err)
	}
	for rows.Next() {
		var cid, status, why string
		var attempts uint32
		var doneMs int64
		if err := rows.Scan(&cid, &status, &why, &attempts, &doneMs); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan revocation session: %w", err)
		}
		if rc := creds[cid]; rc != nil {
			rc.SessionState, rc.SessionError, rc.SessionAttempts, rc.SessionRevokedMs = status, why, int(attempts), doneMs
		}
	}
	rows.Close()

	type lk struct{ cred, vendor, lock string }
	locks := map[lk]*control.LockStatus{}
	rows, err = revocationLocksSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id})
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
	// Acks: the first applied one confirms; the last failed one says why.
	rows, err = revocationAcksSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id})
	if err != nil {
		return nil, fmt.Errorf("read lock acks: %w", err)
	}
	for rows.Next() {
		var k lk
		var applied int64
		var nApplied uint64
		var lastErr string
		if err := rows.Scan(&k.cred, &k.vendor, &k.lock, &applied, &nApplied, &lastErr); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan lock ack: %w", err)
		}
		if l, ok := locks[k]; ok {
			if nApplied > 0 {
				l.AppliedMs = max(applied, 1)
			} else if lastErr != "" {
				l.Error = "lock answered failed: " + lastErr
			}
		}
	}
	rows.Close()
	// Sends (re-sends until acknowledged) and give-ups.
	rows, err = revocationSendsSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id})
	if err != nil {
		return nil, fmt.Errorf("read lock command sends: %w", err)
	}
	for rows.Next() {
		var k lk
		var n uint32
		var last int64
		if err := rows.Scan(&k.cred, &k.vendor, &k.lock, &n, &last); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan lock command sends: %w", err)
		}
		if l, ok := locks[k]; ok {
			l.Attempts, l.LastSentMs = int(n), last
		}
	}
	rows.Close()
	gaveUp := map[lk]string{}
	rows, err = revocationGaveUpSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id}) // outcome gave_up (OutcomeGaveUp)
	if err != nil {
		return nil, fmt.Errorf("read lock command outcomes: %w", err)
	}
	for rows.Next() {
		var k lk
		var why string
		var attempts uint32
		if err := rows.Scan(&k.cred, &k.vendor, &k.lock, &why, &attempts); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan lock command outcome: %w", err)
		}
		gaveUp[k] = fmt.Sprintf("gave up after %d sends without an applied ack", attempts)
		if why != "" {
			gaveUp[k] += ": " + why
		}
	}
	rows.Close()
	rows, err = revocationEscalationSQL.Query(ctx, conn, chstorage.Args{"revocation_id": id})
	if err != nil {
		return nil, fmt.Errorf("read escalation: %w", err)
	}
	for rows.Next() {
		if err := rows.Scan(&rv.EscalatedMs, &rv.EscalationAlertID); err != nil {
			rows.Close()
			return nil, fmt.Errorf("scan escalation: %w", err)
		}
	}
	rows.Close()

	nowMs := now().UnixMilli() // after the reads: no negative ages
	slaMs := sla.Milliseconds()
	var lastAck int64
	for k, l := range locks {
		switch {
		case l.AppliedMs > 0:
			l.LatencyMs = l.AppliedMs - rv.RequestedMs
			lastAck = max(lastAck, l.AppliedMs)
			rv.ConfirmedLocks = append(rv.ConfirmedLocks, *l)
			if rc := creds[l.CredentialID]; rc != nil {
				rc.LocksConfirmed++
			}
		case gaveUp[k] != "":
			l.AgeMs = nowMs - l.IssuedMs
			l.Error = gaveUp[k]
			rv.FailedLocks = append(rv.FailedLocks, *l)
		default:
			l.AgeMs = nowMs - l.IssuedMs
			l.Overdue = l.AgeMs > slaMs
			rv.PendingLocks = append(rv.PendingLocks, *l)
		}
	}
	sortLocks(rv.ConfirmedLocks)
	sortLocks(rv.PendingLocks)
	sortLocks(rv.FailedLocks)
	var lastDisabled, lastSession int64
	ent, ses, lck := &rv.Layers.Entitlement, &rv.Layers.DeviceSession, &rv.Layers.Locks
	sessions := map[string]int{}
	for _, rc := range creds {
		if rc.SessionState == "" {
			rc.SessionState = control.LayerPending // the owner has not stored it yet
		}
		rv.Credentials = append(rv.Credentials, *rc)
		ent.Total++
		if rc.DisabledMs > 0 {
			ent.Done++
			lastDisabled = max(lastDisabled, rc.DisabledMs)
		}
		ses.Total++
		sessions[rc.SessionState]++
		switch rc.SessionState {
		case control.LayerDone:
			ses.Done++
			lastSession = max(lastSession, rc.SessionRevokedMs)
		case control.LayerFailed:
			ses.Failed++
			if ses.Why == "" || sessions[control.LayerFailed] == 1 {
				ses.Why = rc.CredentialID + ": " + rc.SessionError
			}
		case control.LayerPending:
			// A provider failing transiently: the layer is retried, and
			// says why (a failure outranks it).
			if ses.Why == "" && rc.SessionError != "" {
				ses.Why = rc.CredentialID + ": " + rc.SessionError
			}
		}
		lck.Total += rc.LocksTotal
	}
	sort.Slice(rv.Credentials, func(i, j int) bool { return rv.Credentials[i].CredentialID < rv.Credentials[j].CredentialID })
	ent.State = control.LayerPending
	if ent.Done == ent.Total && ent.Total > 0 {
		ent.State = control.LayerDone
	}
	switch {
	case sessions[control.LayerPending] > 0:
		ses.State = control.LayerPending
	case ses.Failed > 0:
		ses.State = control.LayerFailed
	case sessions[control.LayerNotConfigured] > 0:
		ses.State = control.LayerNotConfigured
		ses.Why = "no device-session endpoint is configured (--session-revoke-url): wallet/app sessions were not revoked"
	default:
		ses.State = control.LayerDone
	}
	lck.Done, lck.Failed = len(rv.ConfirmedLocks), len(rv.FailedLocks)
	lck.Total = max(lck.Total, len(locks))
	switch {
	case len(rv.PendingLocks) > 0 || lck.Done+lck.Failed < lck.Total:
		lck.State = control.LayerPending
	case lck.Failed > 0:
		lck.State = control.LayerFailed
		lck.Why = fmt.Sprintf("%d of %d locks never confirmed (%s/%s: %s)", lck.Failed, lck.Total,
			rv.FailedLocks[0].Vendor, rv.FailedLocks[0].LockID, rv.FailedLocks[0].Error)
	default:
		lck.State = control.LayerDone
	}
	rv.AgeMs = nowMs - rv.RequestedMs
	if ent.State == control.LayerDone {
		rv.TimeToDisableMs = lastDisabled - rv.RequestedMs
	}
	if ses.State == control.LayerDone && lastSession > 0 {
		rv.TimeToSessionMs = lastSession - rv.RequestedMs
	}
	settled := func(l control.Layer) bool {
		return l.State == control.LayerDone || l.State == control.LayerNotConfigured
	}
	switch {
	case settled(*ent) && settled(*ses) && settled(*lck):
		rv.Status = control.RevocationConfirmed
		rv.TimeToConfirmMs = max(lastAck, lastDisabled) - rv.RequestedMs
	case ses.State == control.LayerFailed || lck.State == control.LayerFailed:
		rv.Status = control.RevocationFailed
	case rv.EscalatedMs > 0:
		rv.Status = control.RevocationEscalated
	default:
		rv.Status = control.RevocationPending
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

package control

import (
	"context"
	"fmt"
	"sort"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// SubjectRevokeResponse answers POST /v1/subjects/{id}:revoke.
type SubjectRevokeResponse struct {
	RevocationID  string   `json:"revocation_id"`
	RevocationURL string   `json:"revocation_url"`
	RequestID     string   `json:"request_id"`
	StatusURL     string   `json:"status_url"`
	SubjectID     string   `json:"subject_id"`
	CredentialIDs []string `json:"credential_ids"`
}

// handleSubjectRevoke revokes every live credential of a subject under one
// revocation id. Revocations are never throttled (no 429): they are the
// security-critical path.
func (p *Plane) handleSubjectRevoke(c *fiber.Ctx) error {
	subject, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var in opBody
	if len(c.Body()) > 0 {
		if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
			return httpapi.BadRequest("body", err.Error())
		}
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	resp, err := p.RevokeSubject(ctx, subject, in.Reason, actorOf(httpapi.Caller(c)))
	if err != nil {
		return problemFor(err, nil)
	}
	if resp == nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "no_live_credentials", "subject "+subject+" has no live credential")
	}
	return c.Status(fiber.StatusAccepted).JSON(resp)
}

// RevokeSubject revokes every live credential of a subject (audited, one
// revocation id). It returns nil when the subject has no live credential.
func (p *Plane) RevokeSubject(ctx context.Context, subject, reason, actor string) (*SubjectRevokeResponse, error) {
	var live []*Record
	for _, r := range p.view.subject(subject) {
		if lifecycle.IsLive(r.State) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	now := p.opts.Now().UnixMilli()
	resp := &SubjectRevokeResponse{RevocationID: uuid.NewString(), RequestID: uuid.NewString(), SubjectID: subject}
	resp.RevocationURL, resp.StatusURL = "/v1/revocations/"+resp.RevocationID, "/v1/requests/"+resp.RequestID
	cmds := make([]Command, len(live))
	for i, r := range live {
		resp.CredentialIDs = append(resp.CredentialIDs, r.CredentialID)
		cmds[i] = Command{CommandID: uuid.NewString(), Op: lifecycle.OpRevoke, CredentialID: r.CredentialID,
			RequestID: resp.RequestID, Item: i, Actor: actor, Reason: reason, TsMs: now,
			RevocationID: resp.RevocationID, Scope: ScopeSubject}
	}
	if err := p.audit(ctx, actor, "subject.revoke", subject, map[string]string{"reason": reason,
		"revocation_id": resp.RevocationID, "credentials": strconv.Itoa(len(live))}); err != nil {
		return nil, err
	}
	// The revocation first; its record for the resource right after (the
	// owner's own rows make it findable even if this insert fails).
	if err := p.publish(ctx, cmds...); err != nil {
		return nil, err
	}
	head := revocationHead(resp.RevocationID, ScopeSubject, subject, resp.CredentialIDs, now, actor, reason)
	if err := insertRevocationHeads(ctx, p.opts.Conn, [][]any{head}); err != nil {
		p.opts.Logger.Warn("revocation request not stored", "err", err)
	}
	return resp, nil
}

// Revocation is the revocation resource (GET /v1/revocations/{id}): which
// layers are done and which locks have confirmed or are still pending.
type Revocation struct {
	RevocationID string `json:"revocation_id"`
	Scope        string `json:"scope"`
	SubjectID    string `json:"subject_id,omitempty"`
	RequestedMs  int64  `json:"requested_ms"`
	Actor        string `json:"actor"`
	Reason       string `json:"reason,omitempty"`
	// Status is confirmed once every credential is disabled and every lock
	// has acknowledged, pending before.
	Status         string              `json:"status"`
	Layers         Layers              `json:"layers"`
	Credentials    []RevokedCredential `json:"credentials"`
	ConfirmedLocks []LockStatus        `json:"confirmed_locks"`
	PendingLocks   []LockStatus        `json:"pending_locks"`
	// TimeToDisableMs: request → last entitlement record (all credentials).
	TimeToDisableMs int64 `json:"time_to_disable_ms,omitempty"`
	// TimeToConfirmMs: request → last lock ack (once all confirmed).
	TimeToConfirmMs int64 `json:"time_to_confirm_ms,omitempty"`
	AgeMs           int64 `json:"age_ms"`
}

// Layers counts the revocation layers done.
type Layers struct {
	Entitlement   Progress `json:"entitlement"`
	DeviceSession Progress `json:"device_session"`
	Locks         Progress `json:"locks"`
}

// Progress is done out of total.
type Progress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// RevokedCredential is one credential of a revocation.
type RevokedCredential struct {
	CredentialID     string `json:"credential_id"`
	DisabledMs       int64  `json:"disabled_ms,omitempty"`
	SessionRevokedMs int64  `json:"session_revoked_ms,omitempty"`
	LocksTotal       int    `json:"locks_total"`
	LocksConfirmed   int    `json:"locks_confirmed"`
}

// LockStatus is one lock of a revocation.
type LockStatus struct {
	CredentialID string `json:"credential_id"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	IssuedMs     int64  `json:"issued_ms"`
	AppliedMs    int64  `json:"applied_ms,omitempty"`
	LatencyMs    int64  `json:"latency_ms,omitempty"` // request → ack
	AgeMs        int64  `json:"age_ms,omitempty"`     // pending for
	Overdue      bool   `json:"overdue,omitempty"`    // pending past the SLA
}

// RevocationStatus reads a revocation from ClickHouse; nil when unknown.
func (p *Plane) RevocationStatus(ctx context.Context, id string) (*Revocation, error) {
	conn := p.opts.Conn
	rv := &Revocation{RevocationID: id, ConfirmedLocks: []LockStatus{}, PendingLocks: []LockStatus{}}
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

	creds := map[string]*RevokedCredential{}
	for _, cid := range expected {
		creds[cid] = &RevokedCredential{CredentialID: cid}
	}
	rows, err = conn.Query(ctx, `SELECT credential_id, min(requested_ms), max(disabled_ms), max(session_revoked_ms),
		any(device_id), max(locks_total), any(scope) FROM revocations WHERE revocation_id = ? GROUP BY credential_id`, id)
	if err != nil {
		return nil, fmt.Errorf("read revoked credentials: %w", err)
	}
	devices := map[string]string{}
	for rows.Next() {
		var rc RevokedCredential
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
	locks := map[lk]*LockStatus{}
	rows, err = conn.Query(ctx, `SELECT credential_id, vendor, lock_id, min(issued_ms) FROM revocation_locks
		WHERE revocation_id = ? GROUP BY credential_id, vendor, lock_id`, id)
	if err != nil {
		return nil, fmt.Errorf("read revocation locks: %w", err)
	}
	for rows.Next() {
		var l LockStatus
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

	now := p.opts.Now().UnixMilli() // after the reads: no negative ages
	sla := p.opts.PendingSLA.Milliseconds()
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
			l.AgeMs = now - l.IssuedMs
			l.Overdue = l.AgeMs > sla
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
	rv.AgeMs = now - rv.RequestedMs
	rv.Status = StatusPending
	if rv.Layers.Entitlement.Done == rv.Layers.Entitlement.Total && rv.Layers.Entitlement.Total > 0 {
		rv.TimeToDisableMs = lastDisabled - rv.RequestedMs
		if len(rv.PendingLocks) == 0 && rv.Layers.Locks.Done >= rv.Layers.Locks.Total {
			rv.Status = "confirmed"
			rv.TimeToConfirmMs = max(lastAck, lastDisabled) - rv.RequestedMs
		}
	}
	return rv, nil
}

func sortLocks(ls []LockStatus) {
	sort.Slice(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if a.Vendor+"/"+a.LockID != b.Vendor+"/"+b.LockID {
			return a.Vendor+"/"+a.LockID < b.Vendor+"/"+b.LockID
		}
		return a.CredentialID < b.CredentialID
	})
}

func (p *Plane) handleRevocation(c *fiber.Ctx) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	rv, err := p.RevocationStatus(ctx, id)
	if err != nil {
		return unavailable(err)
	}
	if rv == nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "revocation_not_found", "no revocation "+id)
	}
	return c.JSON(rv)
}

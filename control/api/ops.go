package api

import (
	"context"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// Credential returns a credential's current record.
func (p *API) Credential(id string) (*control.Record, bool) {
	r, ok := p.state.Record(id)
	if !ok {
		return nil, false
	}
	return r.Clone(), true
}

// Suspend suspends an active credential (for automated responders): the
// suspension is audited (actor, reason), then queued; the owner records it
// and tells every lock holding the credential to drop it. It returns
// control.ErrNotFound, a *lifecycle.TransitionError when the credential is not
// active, or an error when the audit append or the queueing failed (then
// nothing was done).
func (p *API) Suspend(ctx context.Context, credentialID, reason, actor string) error {
	_, err := p.simpleOp(ctx, lifecycle.OpSuspend, credentialID, reason, actor, "")
	return err
}

// Reinstate reverses a suspension (for humans): the credential is active
// again and its locks are told to hold it again.
func (p *API) Reinstate(ctx context.Context, credentialID, reason, actor string) error {
	_, err := p.simpleOp(ctx, lifecycle.OpReinstate, credentialID, reason, actor, "")
	return err
}

// simpleOp checks op against the current state, audits it, and queues it.
// It returns the queued command.
func (p *API) simpleOp(ctx context.Context, op, credentialID, reason, actor, requestID string) (control.Command, error) {
	r, ok := p.state.Record(credentialID)
	if !ok {
		return control.Command{}, control.ErrNotFound
	}
	if _, err := lifecycle.Next(op, r.State); err != nil {
		return control.Command{}, err
	}
	c := control.Command{CommandID: uuid.NewString(), Op: op, CredentialID: credentialID, RequestID: requestID,
		Actor: actor, Reason: reason, TsMs: p.opts.Now().UnixMilli()}
	if err := p.audit(ctx, actor, "credential."+op, credentialID, map[string]string{
		"reason": reason, "subject_id": r.SubjectID, "from_state": r.State}); err != nil {
		return control.Command{}, err
	}
	if err := p.state.Publish(ctx, c); err != nil {
		return control.Command{}, err
	}
	return c, nil
}

// handleSubjectRevoke revokes every live credential of a subject under one
// revocation id. Revocations are never throttled (no 429): they are the
// security-critical path.
func (p *API) handleSubjectRevoke(c *fiber.Ctx) error {
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
func (p *API) RevokeSubject(ctx context.Context, subject, reason, actor string) (*control.SubjectRevokeResponse, error) {
	var live []*control.Record
	for _, r := range p.state.Subject(subject) {
		if lifecycle.IsLive(r.State) {
			live = append(live, r)
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	now := p.opts.Now().UnixMilli()
	resp := &control.SubjectRevokeResponse{RevocationID: uuid.NewString(), RequestID: uuid.NewString(), SubjectID: subject}
	resp.RevocationURL, resp.StatusURL = "/v1/revocations/"+resp.RevocationID, "/v1/requests/"+resp.RequestID
	cmds := make([]control.Command, len(live))
	for i, r := range live {
		resp.CredentialIDs = append(resp.CredentialIDs, r.CredentialID)
		cmds[i] = control.Command{CommandID: uuid.NewString(), Op: lifecycle.OpRevoke, CredentialID: r.CredentialID,
			RequestID: resp.RequestID, Item: i, Actor: actor, Reason: reason, TsMs: now,
			RevocationID: resp.RevocationID, Scope: control.ScopeSubject}
	}
	if err := p.audit(ctx, actor, "subject.revoke", subject, map[string]string{"reason": reason,
		"revocation_id": resp.RevocationID, "credentials": strconv.Itoa(len(live))}); err != nil {
		return nil, err
	}
	// The revocation first; its record for the resource right after (the
	// owner's own rows make it findable even if this insert fails).
	if err := p.state.Publish(ctx, cmds...); err != nil {
		return nil, err
	}
	head := store.RevocationHead{RevocationID: resp.RevocationID, Scope: control.ScopeSubject, SubjectID: subject,
		CredentialIDs: resp.CredentialIDs, RequestedMs: now, Actor: actor, Reason: reason}
	if err := store.InsertRevocationHeads(ctx, p.opts.Conn, head); err != nil {
		p.opts.Logger.Warn("revocation request not stored", "err", err)
	}
	return resp, nil
}

func (p *API) handleRevocation(c *fiber.Ctx) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	rv, err := store.Revocation(ctx, p.opts.Conn, id, p.opts.PendingSLA, p.opts.Now)
	if err != nil {
		return unavailable(err)
	}
	if rv == nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "revocation_not_found", "no revocation "+id)
	}
	return c.JSON(rv)
}

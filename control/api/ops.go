package api

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/audit"
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

// opBody is the optional body of the credential operations.
type opBody struct {
	Reason      string                    `json:"reason,omitempty"`
	DeviceID    string                    `json:"device_id,omitempty"`
	Attestation *control.AttestationInput `json:"attestation,omitempty"`
}

// opHandler serves the single-credential operations: check the operation
// against the current state (409 naming it when illegal), audit it, queue
// it, and wait (bounded) for the owner to apply it.
func (p *API) opHandler(op string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, err := pathParam(c, "id")
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
		cur, ok := p.state.Record(id)
		if !ok || !httpapi.Caller(c).InScope(cur.SiteID) {
			return httpapi.NewProblem(fiber.StatusNotFound, "credential_not_found", "no credential "+id)
		}
		check := op
		if op == lifecycle.OpApprove {
			check = lifecycle.OpAddApproval
		}
		if _, err := lifecycle.Next(check, cur.State); err != nil {
			var te *lifecycle.TransitionError
			if errors.As(err, &te) {
				return transitionProblem(te)
			}
			return err
		}
		actor := httpapi.Caller(c).Actor()
		now := p.opts.Now()
		cmd := control.Command{CommandID: uuid.NewString(), Op: op, CredentialID: id, RequestID: uuid.NewString(),
			Actor: actor, Reason: in.Reason, TsMs: now.UnixMilli()}
		details := map[string]string{"subject_id": cur.SubjectID, "from_state": cur.State, "reason": in.Reason,
			"request_id": cmd.RequestID}
		switch op {
		case lifecycle.OpApprove:
			if actor == cur.Issuer {
				return problemFor(control.ErrSelfApproval, cur)
			}
			if slices.Contains(cur.Approvers, actor) {
				return problemFor(control.ErrDuplicateApproval, cur)
			}
			details["approval_rule"] = cur.ApprovalRule
			details["approvals"] = strconv.Itoa(len(cur.Approvers) + 1)
			if cur.BreakGlass {
				details["break_glass"] = "true"
			}
		case lifecycle.OpActivate, lifecycle.OpDeviceChange:
			dev := in.DeviceID
			if op == lifecycle.OpActivate && dev == "" {
				dev = cur.DeviceID
			}
			if fe := validID("device_id", dev, true); fe != nil {
				return httpapi.BadRequest(fe.field, fe.reason)
			}
			if op == lifecycle.OpActivate && in.Attestation == nil {
				p.m.Activations.WithLabelValues("failed").Inc()
				return httpapi.BadRequest("attestation", "activation needs device-possession evidence")
			}
			if op == lifecycle.OpActivate && cur.DeviceID != "" && dev != cur.DeviceID {
				return problemFor(control.ErrDeviceMismatch, cur)
			}
			att, fe := p.verifyAttestation(id, dev, in.Attestation, now)
			if fe != nil {
				return fe.problem()
			}
			cmd.DeviceID, cmd.Attestation = dev, att
			details["device"] = audit.Pseudonym(p.opts.PseudonymKey, dev)
		case lifecycle.OpRevoke:
			cmd.RevocationID, cmd.Scope = uuid.NewString(), control.ScopeCredential
			details["revocation_id"] = cmd.RevocationID
		}
		if err := p.audit(ctx, actor, "credential."+op, id, details); err != nil {
			return unavailable(err)
		}
		var afterPublish func(context.Context)
		if op == lifecycle.OpRevoke {
			head := store.RevocationHead{RevocationID: cmd.RevocationID, Scope: control.ScopeCredential,
				SubjectID: cur.SubjectID, CredentialIDs: []string{id}, RequestedMs: cmd.TsMs, Actor: actor, Reason: in.Reason}
			afterPublish = func(ctx context.Context) {
				if err := store.InsertRevocationHeads(ctx, p.opts.Conn, head); err != nil {
					p.opts.Logger.Warn("revocation request not stored", "err", err)
				}
			}
		}
		rec, err := p.submitAndWait(ctx, cmd, afterPublish)
		if err != nil {
			return problemFor(err, cur)
		}
		resp := control.OpResponse{Status: control.StatusApplied, RequestID: cmd.RequestID, StatusURL: "/v1/requests/" + cmd.RequestID,
			Credential: rec}
		status := fiber.StatusOK
		if rec == nil {
			resp.Status, status = control.StatusPending, fiber.StatusAccepted
		}
		if cmd.RevocationID != "" {
			resp.RevocationID, resp.RevocationURL = cmd.RevocationID, "/v1/revocations/"+cmd.RevocationID
			status = fiber.StatusAccepted // locks confirm later
		}
		return c.Status(status).JSON(resp)
	}
}

// submitAndWait queues a command and waits (up to WaitTimeout) for the
// owner's outcome: the record it produced, or its rejection. A nil record
// and nil error mean it is still pending.
func (p *API) submitAndWait(ctx context.Context, cmd control.Command, afterPublish func(context.Context)) (*control.Record, error) {
	done, cancel := p.state.Await(cmd.CommandID)
	defer cancel()
	if err := p.state.Publish(ctx, cmd); err != nil {
		return nil, err
	}
	if afterPublish != nil {
		afterPublish(ctx)
	}
	wctx, wcancel := context.WithTimeout(ctx, p.opts.WaitTimeout)
	defer wcancel()
	poll := time.NewTicker(100 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case r := <-done:
			return r, nil
		case <-poll.C:
			items, err := store.Items(wctx, p.opts.Conn, cmd.RequestID, cmd.Item)
			if err != nil || len(items) == 0 {
				continue
			}
			switch it := items[0]; it.Status {
			case control.StatusFailed:
				cur, _ := p.state.Record(cmd.CredentialID)
				return nil, ownerError(cmd.Op, it, cur)
			case control.StatusApplied, control.StatusIssued:
				// Applied without a new record (a no-op) or the record is
				// on its way: answer with the current state.
				if r, ok := p.state.Record(cmd.CredentialID); ok && r.Applied(cmd.CommandID) {
					return r, nil
				}
			}
		case <-wctx.Done():
			return nil, nil
		}
	}
}

// ownerError turns the owner's rejection back into an error.
func ownerError(op string, it control.ItemStatus, cur *control.Record) error {
	if from, ok := strings.CutPrefix(it.Detail, "current_state="); ok {
		check := op
		if op == lifecycle.OpApprove {
			check = lifecycle.OpAddApproval
		}
		return &lifecycle.TransitionError{Op: check, From: from, Allowed: lifecycle.AllowedIn(check)}
	}
	for _, e := range []error{control.ErrSelfApproval, control.ErrDuplicateApproval, control.ErrNotFound, control.ErrDeviceMismatch, control.ErrExists} {
		if it.Error == e.Error() {
			return e
		}
	}
	pr := httpapi.NewProblem(fiber.StatusConflict, "rejected", it.Error)
	if cur != nil {
		pr.Extra = map[string]any{"current_state": cur.State}
	}
	return pr
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
	resp, err := p.RevokeSubject(ctx, subject, in.Reason, httpapi.Caller(c).Actor())
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
	return p.revokeMany(ctx, revocation{scope: control.ScopeSubject, subject: subject, reason: reason, actor: actor,
		action: "subject.revoke", target: subject}, live)
}

// RevokeDevice revokes every live credential on a device (a lost phone):
// the subject's credentials on other devices stay. It returns nil when
// the device holds no live credential.
func (p *API) RevokeDevice(ctx context.Context, device, reason, actor string) (*control.RevokeResponse, error) {
	var live []*control.Record
	p.state.Each(func(r *control.Record) {
		if r.DeviceID == device && lifecycle.IsLive(r.State) {
			live = append(live, r)
		}
	})
	sort.Slice(live, func(i, j int) bool { return live[i].CredentialID < live[j].CredentialID })
	subject := ""
	if len(live) > 0 {
		subject = live[0].SubjectID
		for _, r := range live[1:] {
			if r.SubjectID != subject {
				subject = ""
				break
			}
		}
	}
	return p.revokeMany(ctx, revocation{scope: control.ScopeDevice, subject: subject, device: device, reason: reason,
		actor: actor, action: "device.revoke", target: audit.Pseudonym(p.opts.PseudonymKey, device)}, live)
}

// revocation describes one revocation of several credentials.
type revocation struct {
	scope, subject, device, site, reason, actor, action, target string
}

// revokeMany revokes credentials under one revocation id: audited, queued
// (never throttled: revocation is the security-critical path), and
// findable at once (revocation_requests). Nil when there is nothing live.
func (p *API) revokeMany(ctx context.Context, rv revocation, live []*control.Record) (*control.RevokeResponse, error) {
	if len(live) == 0 {
		return nil, nil
	}
	now := p.opts.Now().UnixMilli()
	resp := &control.RevokeResponse{RevocationID: uuid.NewString(), RequestID: uuid.NewString(), Scope: rv.scope,
		SubjectID: rv.subject, SiteID: rv.site}
	if rv.device != "" {
		resp.DeviceID = rv.device
	}
	resp.RevocationURL, resp.StatusURL = "/v1/revocations/"+resp.RevocationID, "/v1/requests/"+resp.RequestID
	cmds := make([]control.Command, len(live))
	for i, r := range live {
		resp.CredentialIDs = append(resp.CredentialIDs, r.CredentialID)
		cmds[i] = control.Command{CommandID: uuid.NewString(), Op: lifecycle.OpRevoke, CredentialID: r.CredentialID,
			RequestID: resp.RequestID, Item: i, Actor: rv.actor, Reason: rv.reason, TsMs: now,
			RevocationID: resp.RevocationID, Scope: rv.scope}
	}
	if err := p.audit(ctx, rv.actor, rv.action, rv.target, map[string]string{"reason": rv.reason,
		"revocation_id": resp.RevocationID, "credentials": strconv.Itoa(len(live)), "site_id": rv.site,
		"subject_id": rv.subject}); err != nil {
		return nil, err
	}
	// The revocation first; its record for the resource right after (the
	// owner's own rows make it findable even if this insert fails).
	for i := 0; i < len(cmds); i += 5000 {
		if err := p.state.Publish(ctx, cmds[i:min(i+5000, len(cmds))]...); err != nil {
			return nil, err
		}
	}
	head := store.RevocationHead{RevocationID: resp.RevocationID, Scope: rv.scope, SubjectID: rv.subject,
		CredentialIDs: resp.CredentialIDs, RequestedMs: now, Actor: rv.actor, Reason: rv.reason}
	if err := store.InsertRevocationHeads(ctx, p.opts.Conn, head); err != nil {
		p.opts.Logger.Warn("revocation request not stored", "err", err)
	}
	return resp, nil
}

func (p *API) handleDeviceRevoke(c *fiber.Ctx) error {
	device, err := pathParam(c, "id")
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
	resp, err := p.RevokeDevice(ctx, device, in.Reason, httpapi.Caller(c).Actor())
	if err != nil {
		return problemFor(err, nil)
	}
	if resp == nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "no_live_credentials", "device "+device+" holds no live credential")
	}
	return c.Status(fiber.StatusAccepted).JSON(resp)
}

// handleMassRevocation serves POST /v1/revocations: a site's live
// credentials (a breach), subjects' or listed credentials, under one
// revocation id.
func (p *API) handleMassRevocation(c *fiber.Ctx) error {
	var in control.MassRevocation
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if strings.TrimSpace(in.Reason) == "" {
		return httpapi.BadRequest("reason", "required: a mass revocation says why")
	}
	if len(in.CredentialIDs)+len(in.SubjectIDs) > 100_000 {
		return httpapi.NewProblem(fiber.StatusRequestEntityTooLarge, "too_many_items", "at most 100,000 credential or subject ids")
	}
	creds := map[string]bool{}
	for _, id := range in.CredentialIDs {
		creds[id] = true
	}
	subjects := map[string]bool{}
	for _, id := range in.SubjectIDs {
		subjects[id] = true
	}
	listed := func(r *control.Record) bool {
		if len(creds) == 0 && len(subjects) == 0 {
			return true
		}
		return creds[r.CredentialID] || subjects[r.SubjectID]
	}
	var live []*control.Record
	rv := revocation{scope: in.Scope, reason: in.Reason, actor: httpapi.Caller(c).Actor()}
	switch in.Scope {
	case control.ScopeSite:
		if fe := validID("site_id", in.SiteID, true); fe != nil {
			return fe.problem()
		}
		if sites := p.state.Sites(); len(sites) > 0 && sites[in.SiteID] == 0 {
			return httpapi.BadRequest("site_id", "unknown site "+in.SiteID)
		}
		rv.site, rv.action, rv.target = in.SiteID, "site.revoke", in.SiteID
		p.state.Each(func(r *control.Record) {
			if r.SiteID == in.SiteID && lifecycle.IsLive(r.State) && listed(r) {
				live = append(live, r)
			}
		})
	case control.ScopeSubject:
		if len(in.SubjectIDs) == 0 {
			return httpapi.BadRequest("subject_ids", "required with scope subject")
		}
		rv.action, rv.target = "subjects.revoke", strconv.Itoa(len(in.SubjectIDs))+" subjects"
		for id := range subjects {
			for _, r := range p.state.Subject(id) {
				if lifecycle.IsLive(r.State) && (len(creds) == 0 || creds[r.CredentialID]) {
					live = append(live, r)
				}
			}
		}
	case control.ScopeCredential:
		if len(in.CredentialIDs) == 0 {
			return httpapi.BadRequest("credential_ids", "required with scope credential")
		}
		rv.action, rv.target = "credentials.revoke", strconv.Itoa(len(in.CredentialIDs))+" credentials"
		for id := range creds {
			if r, ok := p.state.Record(id); ok && lifecycle.IsLive(r.State) {
				live = append(live, r)
			}
		}
	default:
		return httpapi.BadRequest("scope", "want site, subject or credential")
	}
	sort.Slice(live, func(i, j int) bool { return live[i].CredentialID < live[j].CredentialID })
	if len(live) == 1 {
		rv.subject = live[0].SubjectID
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	resp, err := p.revokeMany(ctx, rv, live)
	if err != nil {
		return problemFor(err, nil)
	}
	if resp == nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "no_live_credentials", "no live credential matches")
	}
	return c.Status(fiber.StatusAccepted).JSON(resp)
}

// handleChallenge issues an attestation challenge for a device (and a
// credential, when activating one).
func (p *API) handleChallenge(c *fiber.Ctx) error {
	var in control.ChallengeRequest
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if fe := validID("device_id", in.DeviceID, true); fe != nil {
		return fe.problem()
	}
	if in.CredentialID != "" {
		if _, ok := p.state.Record(in.CredentialID); !ok {
			return httpapi.NewProblem(fiber.StatusNotFound, "credential_not_found", "no credential "+in.CredentialID)
		}
	}
	if p.opts.Attester == nil || p.opts.Challenges == nil {
		return httpapi.NewProblem(fiber.StatusNotImplemented, "attestation_not_configured",
			"this keyfleet verifies no device attestation (serve's --attest-* roots and apps are not configured)")
	}
	ch, exp := p.opts.Challenges.Issue(in.CredentialID, in.DeviceID, p.opts.Now())
	return c.JSON(control.ChallengeResponse{Challenge: base64.StdEncoding.EncodeToString(ch), CredentialID: in.CredentialID,
		DeviceID: in.DeviceID, ExpiresMs: exp.UnixMilli(), Formats: p.opts.Attester.Formats()})
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

package api

import (
	"bytes"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

func (p *API) handleBreakGlass(c *fiber.Ctx) error {
	body := bytes.Clone(c.Body())
	var in control.BreakGlassRequest
	if err := httpapi.DecodeStrict(body, &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if in.Role == "" {
		in.Role = "emergency_responder"
	}
	spec, fe := p.resolveBreakGlass(in, p.opts.Now())
	if fe != nil {
		return fe.problem()
	}
	return p.provision(c, "breakglass", body, []item{{index: 0, spec: spec, sub: in.SubjectID}}, in.Reason)
}

func (p *API) resolveBreakGlass(in control.BreakGlassRequest, now time.Time) (control.Spec, *fieldError) {
	t, ok := p.state.Templates().Get(in.Role)
	if !ok || !t.BreakGlass {
		var bg []string
		for _, t := range p.state.Templates().List() {
			if t.BreakGlass {
				bg = append(bg, t.Role)
			}
		}
		return control.Spec{}, bad("role", "%q is not a break-glass role (break-glass roles: %s)", in.Role, strings.Join(bg, ", "))
	}
	if strings.TrimSpace(in.Reason) == "" {
		return control.Spec{}, bad("reason", "required: say what the emergency is")
	}
	if in.DurationSeconds <= 0 {
		return control.Spec{}, bad("duration_s", "required: break-glass access is time-bound")
	}
	if t.MaxValiditySeconds > 0 && in.DurationSeconds > t.MaxValiditySeconds {
		return control.Spec{}, bad("duration_s", "at most %d for %s", t.MaxValiditySeconds, t.Role)
	}
	groups := t.DoorGroups
	if len(in.DoorGroups) > 0 {
		all := slices.Contains(t.DoorGroups, "*")
		for _, g := range in.DoorGroups {
			if !all && !slices.Contains(t.DoorGroups, g) {
				return control.Spec{}, bad("door_groups", "%q is not in the %s template", g, t.Role)
			}
		}
		groups = slices.Clone(in.DoorGroups)
		sort.Strings(groups)
	}
	// Reuse the common checks (subject, device, attestation, refs) with a
	// role the resolver accepts, then make it break-glass.
	base, fe := p.resolveWith(t, control.CredentialRequest{SubjectID: in.SubjectID, Role: in.Role, SiteID: in.SiteID,
		DeviceID: in.DeviceID, Attestation: in.Attestation, Refs: in.Refs, Reason: in.Reason}, now)
	if fe != nil {
		return control.Spec{}, fe
	}
	base.DoorGroups, base.ExtraGroups = groups, nil
	base.BreakGlass, base.BreakGlassMs = true, in.DurationSeconds*1000
	base.ValidFromMs, base.ValidUntilMs = 0, 0 // set at issue
	base.ApprovalRule = control.ApprovalTwo
	base.Exception, base.ExceptionWhy = true, "break-glass"
	return base, nil
}

// firstReason is the reason the credential was requested with (records
// carry the reason of their own change).
func (p *API) reviewOf(r *control.Record, rv map[string]store.ReviewRow, requestReason string) control.Review {
	out := control.Review{CredentialID: r.CredentialID, SubjectID: r.SubjectID, Role: r.Role, State: r.State,
		Requester: r.Issuer, Approvers: r.Approvers, Reason: requestReason, RequestedMs: r.RequestedMs,
		IssuedMs: r.IssuedMs, ValidUntilMs: r.ValidUntilMs}
	switch row, ok := rv[r.CredentialID]; {
	case ok && row.Status == control.ReviewClosed:
		out.Status, out.Outcome, out.Reviewer, out.Note, out.ReviewedMs = control.ReviewClosed, row.Outcome, row.Reviewer, row.Note, row.UpdatedMs
	case lifecycle.IsLive(r.State):
		out.Status = control.ReviewInUse
	default:
		out.Status = control.ReviewAwaiting
	}
	return out
}

func (p *API) handleReviews(c *fiber.Ctx) error {
	want := c.Query("status", "open")
	if !slices.Contains([]string{"open", "all", control.ReviewInUse, control.ReviewAwaiting, control.ReviewClosed}, want) {
		return httpapi.BadRequest("status", "want open, all, in_use, awaiting_review or reviewed")
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	rv, err := store.Reviews(ctx, p.opts.Conn, "")
	if err != nil {
		return unavailable(err)
	}
	var bg []*control.Record
	p.state.Each(func(r *control.Record) {
		if r.BreakGlass {
			bg = append(bg, r)
		}
	})
	out := []control.Review{}
	for _, r := range bg {
		rev := p.reviewOf(r, rv, "")
		if want == "all" || want == rev.Status || want == "open" && rev.Status != control.ReviewClosed {
			out = append(out, rev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestedMs > out[j].RequestedMs })
	return c.JSON(fiber.Map{"reviews": out})
}

func (p *API) handleReview(c *fiber.Ctx) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	r, ok := p.state.Record(id)
	if !ok || !r.BreakGlass {
		return httpapi.NewProblem(fiber.StatusNotFound, "breakglass_not_found", "no break-glass credential "+id)
	}
	rv, err := store.Reviews(ctx, p.opts.Conn, id)
	if err != nil {
		return unavailable(err)
	}
	history, err := store.History(ctx, p.opts.Conn, id)
	if err != nil {
		return unavailable(err)
	}
	reason := ""
	if len(history) > 0 {
		reason = history[0].Reason
	}
	events, err := store.AccessEvents(ctx, p.opts.Conn, r)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(fiber.Map{"review": p.reviewOf(r, rv, reason), "credential": r, "events": events})
}

type reviewBody struct {
	Outcome string `json:"outcome"` // justified, unjustified, inconclusive
	Note    string `json:"note,omitempty"`
}

func (p *API) handleCloseReview(c *fiber.Ctx) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	var in reviewBody
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if !slices.Contains([]string{"justified", "unjustified", "inconclusive"}, in.Outcome) {
		return httpapi.BadRequest("outcome", "want justified, unjustified or inconclusive")
	}
	r, ok := p.state.Record(id)
	if !ok || !r.BreakGlass {
		return httpapi.NewProblem(fiber.StatusNotFound, "breakglass_not_found", "no break-glass credential "+id)
	}
	if lifecycle.IsLive(r.State) {
		pr := httpapi.NewProblem(fiber.StatusConflict, "still_in_use", "the break-glass access has not ended; revoke it or wait for it to expire")
		pr.Extra = map[string]any{"current_state": r.State}
		return pr
	}
	actor := httpapi.Caller(c).Actor()
	if actor == r.Issuer {
		return httpapi.NewProblem(fiber.StatusForbidden, "self_review", "the requester may not review their own break-glass access")
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	if err := p.audit(ctx, actor, "breakglass.review", id, map[string]string{"outcome": in.Outcome,
		"subject_id": r.SubjectID}); err != nil {
		return unavailable(err)
	}
	now := p.opts.Now()
	if err := store.InsertReview(ctx, p.opts.Conn, id, store.ReviewRow{Status: control.ReviewClosed, Outcome: in.Outcome,
		Reviewer: actor, Note: in.Note}, now); err != nil {
		return unavailable(err)
	}
	return c.JSON(fiber.Map{"credential_id": id, "status": control.ReviewClosed, "outcome": in.Outcome})
}

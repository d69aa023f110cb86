package control

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// BreakGlassRequest asks for emergency access: bound to a break-glass role
// (its template's door groups, or a subset), bound in time (the access
// lasts DurationSeconds from the second approval, at most the template's
// max validity, and expires on its own), and approved by two different
// approvers, neither the requester (POST /v1/credentials/{id}:approve).
type BreakGlassRequest struct {
	SubjectID       string            `json:"subject_id"`
	Role            string            `json:"role,omitempty"` // default emergency_responder
	SiteID          string            `json:"site_id,omitempty"`
	DoorGroups      []string          `json:"door_groups,omitempty"`
	DurationSeconds int64             `json:"duration_s"`
	DeviceID        string            `json:"device_id,omitempty"`
	Attestation     *AttestationInput `json:"attestation,omitempty"`
	Refs            []RefInput        `json:"refs,omitempty"`
	Reason          string            `json:"reason"`
}

func (p *Plane) handleBreakGlass(c *fiber.Ctx) error {
	body := bytes.Clone(c.Body())
	var in BreakGlassRequest
	if err := httpapi.DecodeStrict(body, &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if in.Role == "" {
		in.Role = "emergency_responder"
	}
	spec, fe := p.resolveBreakGlass(in, p.opts.Now())
	if fe != nil {
		return httpapi.BadRequest(fieldName(fe.field), fe.reason)
	}
	return p.provision(c, "breakglass", body, []item{{index: 0, spec: spec, sub: in.SubjectID}}, in.Reason)
}

func (p *Plane) resolveBreakGlass(in BreakGlassRequest, now time.Time) (Spec, *fieldError) {
	t, ok := p.templates.get(in.Role)
	if !ok || !t.BreakGlass {
		var bg []string
		for _, t := range p.templates.list() {
			if t.BreakGlass {
				bg = append(bg, t.Role)
			}
		}
		return Spec{}, bad("role", "%q is not a break-glass role (break-glass roles: %s)", in.Role, strings.Join(bg, ", "))
	}
	if strings.TrimSpace(in.Reason) == "" {
		return Spec{}, bad("reason", "required: say what the emergency is")
	}
	if in.DurationSeconds <= 0 {
		return Spec{}, bad("duration_s", "required: break-glass access is time-bound")
	}
	if t.MaxValiditySeconds > 0 && in.DurationSeconds > t.MaxValiditySeconds {
		return Spec{}, bad("duration_s", "at most %d for %s", t.MaxValiditySeconds, t.Role)
	}
	groups := t.DoorGroups
	if len(in.DoorGroups) > 0 {
		all := slices.Contains(t.DoorGroups, "*")
		for _, g := range in.DoorGroups {
			if !all && !slices.Contains(t.DoorGroups, g) {
				return Spec{}, bad("door_groups", "%q is not in the %s template", g, t.Role)
			}
		}
		groups = slices.Clone(in.DoorGroups)
		sort.Strings(groups)
	}
	// Reuse the common checks (subject, device, attestation, refs) with a
	// role the resolver accepts, then make it break-glass.
	base, fe := p.resolveWith(t, CredentialRequest{SubjectID: in.SubjectID, Role: in.Role, SiteID: in.SiteID,
		DeviceID: in.DeviceID, Attestation: in.Attestation, Refs: in.Refs, Reason: in.Reason}, now)
	if fe != nil {
		return Spec{}, fe
	}
	base.DoorGroups, base.ExtraGroups = groups, nil
	base.BreakGlass, base.BreakGlassMs = true, in.DurationSeconds*1000
	base.ValidFromMs, base.ValidUntilMs = 0, 0 // set at issue
	base.ApprovalRule = ApprovalTwo
	base.Exception, base.ExceptionWhy = true, "break-glass"
	return base, nil
}

// Review statuses of a break-glass credential.
const (
	ReviewInUse    = "in_use"          // still live
	ReviewAwaiting = "awaiting_review" // ended, not reviewed yet
	ReviewClosed   = "reviewed"
)

// Review is one break-glass credential in the review queue.
type Review struct {
	CredentialID string   `json:"credential_id"`
	SubjectID    string   `json:"subject_id"`
	Role         string   `json:"role"`
	State        string   `json:"state"`
	Requester    string   `json:"requester"`
	Approvers    []string `json:"approvers"`
	Reason       string   `json:"reason,omitempty"`
	RequestedMs  int64    `json:"requested_ms"`
	IssuedMs     int64    `json:"issued_ms,omitempty"`
	ValidUntilMs int64    `json:"valid_until_ms,omitempty"`
	Status       string   `json:"status"`
	Outcome      string   `json:"outcome,omitempty"`
	Reviewer     string   `json:"reviewer,omitempty"`
	Note         string   `json:"note,omitempty"`
	ReviewedMs   int64    `json:"reviewed_ms,omitempty"`
}

type reviewRow struct {
	status, outcome, reviewer, note string
	updated                         int64
}

func (p *Plane) reviewRows(ctx context.Context, id string) (map[string]reviewRow, error) {
	q := `SELECT credential_id, argMax(status, version), argMax(outcome, version), argMax(reviewer, version),
		argMax(note, version), max(updated_ms) FROM breakglass_reviews`
	var args []any
	if id != "" {
		q += ` WHERE credential_id = ?`
		args = append(args, id)
	}
	rows, err := p.opts.Conn.Query(ctx, q+` GROUP BY credential_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("read reviews: %w", err)
	}
	defer rows.Close()
	out := map[string]reviewRow{}
	for rows.Next() {
		var cid string
		var r reviewRow
		if err := rows.Scan(&cid, &r.status, &r.outcome, &r.reviewer, &r.note, &r.updated); err != nil {
			return nil, fmt.Errorf("scan review: %w", err)
		}
		out[cid] = r
	}
	return out, rows.Err()
}

// firstReason is the reason the credential was requested with (records
// carry the reason of their own change).
func (p *Plane) reviewOf(r *Record, rv map[string]reviewRow, requestReason string) Review {
	out := Review{CredentialID: r.CredentialID, SubjectID: r.SubjectID, Role: r.Role, State: r.State,
		Requester: r.Issuer, Approvers: r.Approvers, Reason: requestReason, RequestedMs: r.RequestedMs,
		IssuedMs: r.IssuedMs, ValidUntilMs: r.ValidUntilMs}
	switch row, ok := rv[r.CredentialID]; {
	case ok && row.status == ReviewClosed:
		out.Status, out.Outcome, out.Reviewer, out.Note, out.ReviewedMs = ReviewClosed, row.outcome, row.reviewer, row.note, row.updated
	case lifecycle.IsLive(r.State):
		out.Status = ReviewInUse
	default:
		out.Status = ReviewAwaiting
	}
	return out
}

func (p *Plane) handleReviews(c *fiber.Ctx) error {
	want := c.Query("status", "open")
	if !slices.Contains([]string{"open", "all", ReviewInUse, ReviewAwaiting, ReviewClosed}, want) {
		return httpapi.BadRequest("status", "want open, all, in_use, awaiting_review or reviewed")
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	rv, err := p.reviewRows(ctx, "")
	if err != nil {
		return unavailable(err)
	}
	var bg []*Record
	p.view.each(func(r *Record) {
		if r.BreakGlass {
			bg = append(bg, r)
		}
	})
	out := []Review{}
	for _, r := range bg {
		rev := p.reviewOf(r, rv, "")
		if want == "all" || want == rev.Status || want == "open" && rev.Status != ReviewClosed {
			out = append(out, rev)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RequestedMs > out[j].RequestedMs })
	return c.JSON(fiber.Map{"reviews": out})
}

// AccessEvent is an access event in a break-glass review.
type AccessEvent struct {
	EventID    string `json:"event_id"`
	TsMs       int64  `json:"ts_ms"`
	SiteID     string `json:"site_id"`
	DoorID     string `json:"door_id"`
	LockID     string `json:"lock_id"`
	Action     string `json:"action"`
	Outcome    string `json:"outcome"`
	Method     string `json:"method"`
	Reason     string `json:"reason,omitempty"`
	BreakGlass bool   `json:"break_glass"`
}

func (p *Plane) handleReview(c *fiber.Ctx) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	r, ok := p.view.get(id)
	if !ok || !r.BreakGlass {
		return httpapi.NewProblem(fiber.StatusNotFound, "breakglass_not_found", "no break-glass credential "+id)
	}
	rv, err := p.reviewRows(ctx, id)
	if err != nil {
		return unavailable(err)
	}
	history, err := p.history(ctx, id)
	if err != nil {
		return unavailable(err)
	}
	reason := ""
	if len(history) > 0 {
		reason = history[0].Reason
	}
	events, err := p.accessEvents(ctx, r)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(fiber.Map{"review": p.reviewOf(r, rv, reason), "credential": r, "events": events})
}

// accessEvents returns the access events made with a credential (at most
// 10,000, oldest first).
func (p *Plane) accessEvents(ctx context.Context, r *Record) ([]AccessEvent, error) {
	from := r.RequestedMs
	if from == 0 {
		from = r.TsMs
	}
	rows, err := p.opts.Conn.Query(ctx, `SELECT toString(event_id), ts_ms, site_id, door_id, lock_id, action, outcome, method,
		reason, break_glass FROM access_events WHERE credential_id = ? AND ts >= ?
		ORDER BY ts_ms LIMIT 1 BY event_id LIMIT 10000`, r.CredentialID, time.UnixMilli(from).Add(-time.Minute).UTC())
	if err != nil {
		return nil, fmt.Errorf("read access events: %w", err)
	}
	defer rows.Close()
	out := []AccessEvent{}
	for rows.Next() {
		var e AccessEvent
		var bg uint8
		if err := rows.Scan(&e.EventID, &e.TsMs, &e.SiteID, &e.DoorID, &e.LockID, &e.Action, &e.Outcome, &e.Method, &e.Reason, &bg); err != nil {
			return nil, fmt.Errorf("scan access event: %w", err)
		}
		e.BreakGlass = bg == 1
		out = append(out, e)
	}
	return out, rows.Err()
}

type reviewBody struct {
	Outcome string `json:"outcome"` // justified, unjustified, inconclusive
	Note    string `json:"note,omitempty"`
}

func (p *Plane) handleCloseReview(c *fiber.Ctx) error {
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
	r, ok := p.view.get(id)
	if !ok || !r.BreakGlass {
		return httpapi.NewProblem(fiber.StatusNotFound, "breakglass_not_found", "no break-glass credential "+id)
	}
	if lifecycle.IsLive(r.State) {
		pr := httpapi.NewProblem(fiber.StatusConflict, "still_in_use", "the break-glass access has not ended; revoke it or wait for it to expire")
		pr.Extra = map[string]any{"current_state": r.State}
		return pr
	}
	actor := actorOf(httpapi.Caller(c))
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
	if err := chstorage.InsertRows(ctx, p.opts.Conn, "breakglass_reviews", []string{"credential_id", "status",
		"outcome", "reviewer", "note", "updated_ms", "version"},
		[]any{id, ReviewClosed, in.Outcome, actor, in.Note, now.UnixMilli(), uint64(now.UnixNano())}); err != nil {
		return unavailable(err)
	}
	return c.JSON(fiber.Map{"credential_id": id, "status": ReviewClosed, "outcome": in.Outcome})
}

package api

import (
	"context"
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
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

func rfc3339(ms int64) string {
	if ms <= 0 {
		return ""
	}
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func (p *API) handleGet(c *fiber.Ctx) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	cur, ok := p.state.Record(id)
	if !ok || !httpapi.Caller(c).InScope(cur.SiteID) {
		return httpapi.NewProblem(fiber.StatusNotFound, "credential_not_found", "no credential "+id)
	}
	history, err := store.History(ctx, p.opts.Conn, id)
	if err != nil {
		return unavailable(err)
	}
	// ClickHouse may lag the view by a flush interval: append what it lacks.
	last := uint64(0)
	if n := len(history); n > 0 {
		last = history[n-1].Seq
	}
	if cur.Seq > last {
		history = append(history, cur)
	}
	locks, err := store.CredentialLocks(ctx, p.opts.Conn, id)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(control.CredentialView{Credential: cur, History: history, Locks: locks, Summary: control.Summary{
		IssuedBy: cur.Issuer, RequestedAt: rfc3339(cur.RequestedMs), IssuedAt: rfc3339(cur.IssuedMs),
		DeviceID: cur.DeviceID, Attested: cur.Attested, ApprovalRule: cur.ApprovalRule, Approvers: cur.Approvers,
		State: cur.State, BreakGlass: cur.BreakGlass, Exception: cur.ExceptionWhy,
	}})
}

func (p *API) handleList(c *fiber.Ctx) error {
	subject, state, role := strings.Clone(c.Query("subject_id")), strings.Clone(c.Query("state")), strings.Clone(c.Query("role"))
	if state != "" && !slices.Contains(event.States, state) {
		return httpapi.BadRequest("state", "unknown state "+state)
	}
	limit := c.QueryInt("limit", 100)
	if limit < 1 || limit > 10000 {
		return httpapi.BadRequest("limit", "want 1..10000")
	}
	var out []*control.Record
	caller := httpapi.Caller(c)
	match := func(r *control.Record) bool {
		return (state == "" || r.State == state) && (role == "" || r.Role == role) && caller.InScope(r.SiteID)
	}
	if subject != "" {
		for _, r := range p.state.Subject(subject) {
			if match(r) {
				out = append(out, r)
			}
		}
	} else {
		p.state.Each(func(r *control.Record) {
			if match(r) {
				out = append(out, r)
			}
		})
		sort.Slice(out, func(i, j int) bool { return out[i].CredentialID < out[j].CredentialID })
	}
	total := len(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return c.JSON(fiber.Map{"credentials": out, "total": total})
}

func (p *API) handleTemplates(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"templates": p.state.Templates().List()})
}

// handlePutTemplate stores a new template version (audited) and queues an
// update command for every live credential of the role, which the owners
// apply: door groups, windows and validity follow the template, and the
// locks that gained or lost the credential are told.
func (p *API) handlePutTemplate(c *fiber.Ctx) error {
	role, err := pathParam(c, "role")
	if err != nil {
		return err
	}
	var t control.Template
	if err := httpapi.DecodeStrict(c.Body(), &t); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if t.Role == "" {
		t.Role = role
	}
	if t.Role != role {
		return httpapi.BadRequest("role", "the body's role differs from the path's")
	}
	if err := t.Validate(); err != nil {
		return httpapi.BadRequest("template", err.Error())
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	if err := p.checkTemplate(ctx, t); err != nil {
		return err
	}
	actor := httpapi.Caller(c).Actor()
	tpls := p.state.Templates()
	old, _ := tpls.Get(role)
	if err := p.audit(ctx, actor, "template.change", role, map[string]string{
		"door_groups": strings.Join(t.DoorGroups, ","), "approval": t.Approval,
		"max_validity_s": strconv.FormatInt(t.MaxValiditySeconds, 10), "previous_version": strconv.FormatUint(old.Version, 10),
	}); err != nil {
		return unavailable(err)
	}
	stored := tpls.Next(t, actor, p.opts.Now())
	if err := store.InsertTemplate(ctx, p.opts.Conn, stored); err != nil {
		return unavailable(err)
	}
	tpls.Set(stored)
	var cmds []control.Command
	now := p.opts.Now().UnixMilli()
	p.state.Each(func(r *control.Record) {
		if r.Role == role && lifecycle.IsLive(r.State) {
			tc := stored
			cmds = append(cmds, control.Command{CommandID: uuid.NewString(), Op: lifecycle.OpUpdate, CredentialID: r.CredentialID,
				Actor: actor, Reason: "template " + role + " v" + strconv.FormatUint(stored.Version, 10), TsMs: now, Template: &tc})
		}
	})
	for i := 0; i < len(cmds); i += 5000 {
		if err := p.state.Publish(ctx, cmds[i:min(i+5000, len(cmds))]...); err != nil {
			return unavailable(err)
		}
	}
	return c.JSON(fiber.Map{"template": stored, "propagating_to": len(cmds)})
}

func (p *API) handleDoorGroups(c *fiber.Ctx) error {
	type group struct {
		Group string `json:"group"`
		Locks int    `json:"locks"`
	}
	var out []group
	for g, n := range p.state.DoorGroups() {
		out = append(out, group{g, n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Group < out[j].Group })
	return c.JSON(fiber.Map{"door_groups": out})
}

func (p *API) handleAuditVerify(c *fiber.Ctx) error {
	if p.opts.Verifier == nil {
		return httpapi.NewProblem(fiber.StatusNotImplemented, "no_verifier", "audit verification is not configured")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 5*time.Minute)
	defer cancel()
	rep, err := p.opts.Verifier.Verify(ctx)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(rep)
}

func (p *API) handleKPIs(c *fiber.Ctx) error {
	now := p.opts.Now()
	q := control.KPIQuery{To: now, From: now.Add(-7 * 24 * time.Hour), SLA: p.opts.PendingSLA, Now: now}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		if v := c.Query(f.name); v != "" {
			ms, err := parseTime(v)
			if err != nil {
				return httpapi.BadRequest(f.name, err.Error())
			}
			*f.dst = time.UnixMilli(ms)
		}
	}
	if v := c.Query("sla"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return httpapi.BadRequest("sla", "want a positive duration such as 15m")
		}
		q.SLA = d
	}
	if !q.To.After(q.From) {
		return httpapi.BadRequest("to", "must be after from")
	}
	if q.To.Sub(q.From) > 400*24*time.Hour {
		return httpapi.BadRequest("from", "range longer than 400 days")
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	k, err := store.ComputeKPIs(ctx, p.opts.Conn, q)
	if err != nil {
		return unavailable(err)
	}
	return c.JSON(k)
}

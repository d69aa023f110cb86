// Package api serves the exception register over HTTP: admins and managers
// record, change (renew) and close exceptions (every write audited,
// published on exception.register and kept in ClickHouse); every analyst
// role reads them, one with its history, and the register's KPIs.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/exception/store"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Exceptions is where changes go and the register is read from
// (exception/stream.Exceptions).
type Exceptions interface {
	Ready() <-chan struct{}
	Register() *exception.Register
	NextVersion(id string) uint64
	Publish(ctx context.Context, recs ...exception.Record) error
}

// CredentialCounts returns the live credentials the KPIs are relative to
// (the control plane's; nil: KPIs without a population, rates 0).
type CredentialCounts func() exception.Credentials

// Options configure the API.
type Options struct {
	Exceptions  Exceptions
	Conn        driver.Conn
	Audit       audit.Appender
	Credentials CredentialCounts
	// Warn is how long before its expiry an exception reads "expiring"
	// (default 7 days, as the expiry alerts).
	Warn time.Duration
	// Timeout bounds each request's ClickHouse and Kafka work (default 30 s).
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Exceptions == nil {
		errs = append(errs, errors.New("exception api: Exceptions is required"))
	}
	if o.Conn == nil {
		errs = append(errs, errors.New("exception api: Conn is required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("exception api: Audit is required (register changes must be audited)"))
	}
	if o.Warn <= 0 {
		o.Warn = 7 * 24 * time.Hour
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return errors.Join(errs...)
}

// API serves the exception routes.
type API struct{ opts Options }

// New returns the API.
func New(opts Options) (*API, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &API{opts: opts}, nil
}

// Route paths.
const (
	PathExceptions = "/v1/exceptions"
	PathException  = "/v1/exceptions/:id"
	PathClose      = `/v1/exceptions/:id\:close`
	PathKPIs       = `/v1/exceptions\:kpis`
)

// WriteRoles may record, change and close exceptions besides admins: the
// managers who approve access at their properties.
var WriteRoles = []httpapi.Role{httpapi.RoleManager}

// Routes returns the exception routes.
func (a *API) Routes() []httpapi.Route {
	read := httpapi.ReadRoles
	r := func(method, path, summary string, roles []httpapi.Role, h fiber.Handler) httpapi.Route {
		return httpapi.Route{Method: method, Path: path, Summary: summary, Roles: roles, Handler: a.whenReady(h), SiteScoped: true}
	}
	return []httpapi.Route{
		r(fiber.MethodGet, PathExceptions, "The exception register (filters: kind, state, site, reason; limit), soonest expiry first.", read, a.handleList),
		r(fiber.MethodPost, PathExceptions, "Record an exception: kind, scope, reason, approvers, compensating control (required), start, expiry, review date (audited).", WriteRoles, a.handleCreate),
		r(fiber.MethodGet, PathKPIs, "Exception KPIs: open exceptions per 1,000 live credentials by reason and by site, by state and kind, their age, reviews overdue.", read, a.handleKPIs),
		r(fiber.MethodGet, PathException, "One exception with its state and history.", read, a.handleGet),
		r(fiber.MethodPut, PathException, "Change or renew an open exception (audited): scope, reason, approvers, compensating control, dates; its kind stays.", WriteRoles, a.handleUpdate),
		r(fiber.MethodPost, PathClose, "Close an exception (audited): the policy applies again; body {\"reason\": ...}.", WriteRoles, a.handleClose),
	}
}

var exceptionSchema = map[string]any{"type": "object",
	"required": []string{"kind", "scope", "reason", "approvers", "compensating_control", "start_ms", "expiry_ms"},
	"properties": map[string]any{
		"kind": map[string]any{"type": "string", "enum": []string{"credential", "door", "lock", "policy"}},
		"scope": map[string]any{"type": "object", "description": "what the exception covers; every field set must match",
			"properties": map[string]any{"site_id": str, "door_id": str, "vendor": str, "lock_id": str, "subject_id": str,
				"credential_id": str, "role": str, "capability": str}},
		"reason":               map[string]any{"type": "string", "description": "a short code the KPIs group by (legacy_hardware, business_need ...)"},
		"description":          str,
		"approvers":            map[string]any{"type": "array", "items": str, "minItems": 1},
		"compensating_control": map[string]any{"type": "string", "minLength": 1},
		"start_ms":             map[string]any{"type": "integer"},
		"expiry_ms":            map[string]any{"type": "integer"},
		"review_ms":            map[string]any{"type": "integer", "description": "0: at expiry"},
	}}

var str = map[string]any{"type": "string"}

var listOp = openapi.Operation{
	Description: "The exception register as this instance follows it (exception.register): every exception's current version " +
		"with its state now (pending, active, expiring within the warning period, expired but open, closed).",
	Params: []openapi.Param{
		{Name: "kind", Enum: []string{"credential", "door", "lock", "policy"}, Description: "only this kind"},
		{Name: "state", Enum: []string{"pending", "active", "expiring", "expired", "closed", "open"}, List: true,
			Description: "only these states (open: every state but closed)"},
		{Name: "site", Description: "only exceptions scoped to this site"},
		{Name: "reason", Description: "only this reason code"},
		{Name: "limit", Type: openapi.TypeInteger, Default: "500", Min: 1, Max: 10000},
	},
}

var kpisOp = openapi.Operation{
	Description: "Open exceptions (started, not closed: active, expiring and expired ones) per 1,000 live credentials, " +
		"by reason and by site (a site's rate is against that site's credentials), counts by state and kind, the age of " +
		"open exceptions in days (mean, median, max, the oldest) and how many are past their review date.",
	Params: []openapi.Param{{Name: "site", Description: "only exceptions scoped to this site (rates against its credentials)"}},
}

var createOp = openapi.Operation{
	Description: "Records an exception. A compensating control and at least one approver are required; every exception " +
		"expires (at most 3 years after its start). While in force, a lock, policy or credential exception lifts the " +
		"estate's grant-time refusals its scope covers (scope.capability: schedules, expiring_keys, revocation_delay, tier; " +
		"empty: any).",
	Body: exceptionSchema,
}

var updateOp = openapi.Operation{
	Description: "Replaces an open exception's fields (the body is the whole exception); a closed one is 409.",
	Params:      []openapi.Param{{Name: "id", In: "path", Required: true}},
	Body:        exceptionSchema,
}

var closeOp = openapi.Operation{
	Description: "Closes an exception; closing a closed one is 409.",
	Params:      []openapi.Param{{Name: "id", In: "path", Required: true}},
	Body: map[string]any{"type": "object", "required": []string{"reason"},
		"properties": map[string]any{"reason": str}},
}

var getOp = openapi.Operation{
	Description: "One exception: its current version, state and its history (newest first, from ClickHouse).",
	Params:      []openapi.Param{{Name: "id", In: "path", Required: true}},
}

// ListResponse is the answer of GET /v1/exceptions.
type ListResponse struct {
	Exceptions []View `json:"exceptions"`
	Count      int    `json:"count"`
	Truncated  bool   `json:"truncated"`
}

// Operations describes the routes for the OpenAPI document.
func (a *API) Operations() map[string]openapi.Operation {
	with := func(op openapi.Operation, code int, desc string, v any) openapi.Operation {
		op.Responses = map[int]openapi.Response{code: {Description: desc, Content: openapi.JSON(openapi.ResponseSchema(v, nil))}}
		return op
	}
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, PathExceptions):  with(listOp, 200, "the exceptions", ListResponse{}),
		openapi.Key(fiber.MethodPost, PathExceptions): with(createOp, 201, "the recorded exception", View{}),
		openapi.Key(fiber.MethodGet, PathKPIs):        with(kpisOp, 200, "the register's KPIs", exception.KPIs{}),
		openapi.Key(fiber.MethodGet, PathException):   with(getOp, 200, "the exception and its history", View{}),
		openapi.Key(fiber.MethodPut, PathException):   with(updateOp, 200, "the changed exception", View{}),
		openapi.Key(fiber.MethodPost, PathClose):      with(closeOp, 200, "the closed exception", View{}),
	}
}

// whenReady answers 503 until the register has caught up with Kafka.
func (a *API) whenReady(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		select {
		case <-a.opts.Exceptions.Ready():
			return h(c)
		default:
			c.Set(fiber.HeaderRetryAfter, "2")
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "starting", "the exception register is catching up with Kafka")
		}
	}
}

func (a *API) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), a.opts.Timeout)
}

// View is an exception as the API shows it.
type View struct {
	exception.Record
	State     exception.State    `json:"state"`
	ReviewDue bool               `json:"review_due"`
	History   []exception.Record `json:"history,omitempty"`
}

func (a *API) view(r exception.Record) View {
	now := a.opts.Now().UnixMilli()
	st := r.StateAt(now, a.opts.Warn)
	return View{Record: r, State: st, ReviewDue: st != exception.StateClosed && r.ReviewAt() <= now}
}

func (a *API) handleList(c *fiber.Ctx) error {
	v, err := openapi.Parse(listOp.Params, openapi.Args(c), a.opts.Now().UTC())
	if err != nil {
		return err
	}
	limit := 500
	if v.Has("limit") {
		limit = int(v.Int("limit"))
	}
	sites, err := httpapi.Caller(c).SiteFilter(v.String("site"))
	if err != nil {
		return err
	}
	states := v.List("state")
	out := []View{}
	for _, r := range a.opts.Exceptions.Register().All() {
		vw := a.view(r)
		switch {
		case v.Has("kind") && string(r.Kind) != v.String("kind"),
			len(sites) > 0 && !slices.Contains(sites, r.Scope.SiteID),
			v.Has("reason") && r.Reason != v.String("reason"),
			len(states) > 0 && !slices.Contains(states, string(vw.State)) &&
				!(slices.Contains(states, "open") && vw.State != exception.StateClosed):
			continue
		}
		out = append(out, vw)
	}
	slices.SortStableFunc(out, func(x, y View) int {
		if x.ExpiryMs != y.ExpiryMs {
			return compare(x.ExpiryMs, y.ExpiryMs)
		}
		return strings.Compare(x.ID, y.ID)
	})
	truncated := len(out) > limit
	if truncated {
		out = out[:limit]
	}
	return c.JSON(ListResponse{Exceptions: out, Count: len(out), Truncated: truncated})
}

func compare(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (a *API) handleKPIs(c *fiber.Ctx) error {
	v, err := openapi.Parse(kpisOp.Params, openapi.Args(c), a.opts.Now().UTC())
	if err != nil {
		return err
	}
	creds := exception.Credentials{}
	if a.opts.Credentials != nil {
		creds = a.opts.Credentials()
	}
	sites, err := httpapi.Caller(c).SiteFilter(v.String("site"))
	if err != nil {
		return err
	}
	recs := a.opts.Exceptions.Register().All()
	if len(sites) > 0 {
		recs = slices.DeleteFunc(recs, func(r exception.Record) bool { return !slices.Contains(sites, r.Scope.SiteID) })
		scoped := exception.Credentials{BySite: map[string]int{}}
		for _, site := range sites {
			scoped.BySite[site] = creds.BySite[site]
			scoped.Total += creds.BySite[site]
		}
		creds = scoped
	}
	return c.JSON(exception.ComputeKPIs(recs, creds, a.opts.Now().UnixMilli(), a.opts.Warn))
}

func idParam(c *fiber.Ctx) (string, error) {
	id, err := httpapi.PathParam(c, "id")
	if err != nil {
		return "", err
	}
	if !exception.ValidID(id) {
		return "", httpapi.BadRequest("id", "invalid exception id")
	}
	return id, nil
}

func notFound(id string) error {
	return httpapi.NewProblem(fiber.StatusNotFound, "exception_not_found", "no exception "+id)
}

func (a *API) handleGet(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	r, ok := a.opts.Exceptions.Register().Get(id)
	if !ok || !httpapi.Caller(c).InScope(r.Scope.SiteID) {
		return notFound(id)
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	v := a.view(r)
	hist, err := store.History(ctx, a.opts.Conn, id, 100)
	if err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	v.History = hist
	return c.JSON(v)
}

// checkWrite validates an exception a caller writes: its fields, and a
// start not far in the past (an exception documents a decision, it does
// not backdate one by more than a day).
func (a *API) checkWrite(e exception.Exception, prev *exception.Record) error {
	if err := e.Validate(); err != nil {
		return httpapi.BadRequest("exception", err.Error())
	}
	now := a.opts.Now()
	if e.ExpiryMs <= now.UnixMilli() {
		return httpapi.BadRequest("expiry_ms", "in the past: record an exception that is still to end (close an ended one)")
	}
	if (prev == nil || prev.StartMs != e.StartMs) && e.StartMs < now.Add(-24*time.Hour).UnixMilli() {
		return httpapi.BadRequest("start_ms", "more than a day in the past")
	}
	return nil
}

// publish audits and publishes one record; the audit entry comes first,
// so no change is made that the log does not hold.
func (a *API) publish(ctx context.Context, action string, r exception.Record, prev uint64) error {
	details := map[string]string{"kind": string(r.Kind), "scope": scopeText(r.Scope), "reason": r.Reason,
		"approvers": strings.Join(r.Approvers, ";"), "compensating_control": r.CompensatingControl,
		"start_ms": strconv.FormatInt(r.StartMs, 10), "expiry_ms": strconv.FormatInt(r.ExpiryMs, 10),
		"review_ms": strconv.FormatInt(r.ReviewMs, 10), "status": string(r.Status), "close_reason": r.CloseReason,
		"version": strconv.FormatUint(r.Version, 10), "previous_version": strconv.FormatUint(prev, 10)}
	for k, v := range details {
		if v == "" || v == "0" && k != "version" {
			delete(details, k)
		}
	}
	if err := a.opts.Audit.Append(ctx, audit.Entry{Actor: r.Actor, Action: action, Target: "exception/" + r.ID,
		Details: details, TsMs: r.TsMs}); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable",
			"audit log unavailable, change not carried out: "+err.Error())
	}
	if err := a.opts.Exceptions.Publish(ctx, r); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	return nil
}

func scopeText(s exception.Scope) string {
	var parts []string
	for _, p := range [][2]string{{"site_id", s.SiteID}, {"door_id", s.DoorID}, {"vendor", s.Vendor}, {"lock_id", s.LockID},
		{"subject_id", s.SubjectID}, {"credential_id", s.CredentialID}, {"role", s.Role}, {"capability", s.Capability}} {
		if p[1] != "" {
			parts = append(parts, p[0]+"="+p[1])
		}
	}
	return strings.Join(parts, " ")
}

func (a *API) handleCreate(c *fiber.Ctx) error {
	var in exception.Exception
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if err := a.checkWrite(in, nil); err != nil {
		return err
	}
	if !httpapi.Caller(c).InScope(in.Scope.SiteID) {
		return httpapi.OutOfScope("an exception of site " + strconv.Quote(in.Scope.SiteID))
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	actor := httpapi.Caller(c).Actor()
	now := a.opts.Now().UnixMilli()
	id := "ex-" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	r := exception.Record{ID: id, Exception: in, Status: exception.StatusOpen, Version: a.opts.Exceptions.NextVersion(id),
		Op: exception.OpCreate, Actor: actor, CreatedMs: now, CreatedBy: actor, TsMs: now}
	if err := a.publish(ctx, "exception.create", r, 0); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(a.view(r))
}

func (a *API) current(c *fiber.Ctx) (exception.Record, error) {
	id, err := idParam(c)
	if err != nil {
		return exception.Record{}, err
	}
	cur, ok := a.opts.Exceptions.Register().Get(id)
	if !ok || !httpapi.Caller(c).InScope(cur.Scope.SiteID) {
		return exception.Record{}, notFound(id)
	}
	if cur.Status == exception.StatusClosed {
		pr := httpapi.NewProblem(fiber.StatusConflict, "exception_closed",
			fmt.Sprintf("exception %s was closed (%s): record a new one", id, cur.CloseReason))
		pr.Extra = map[string]any{"exception": cur}
		return exception.Record{}, pr
	}
	return cur, nil
}

func (a *API) handleUpdate(c *fiber.Ctx) error {
	cur, err := a.current(c)
	if err != nil {
		return err
	}
	var in exception.Exception
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if in.Kind != cur.Kind {
		return httpapi.BadRequest("kind", fmt.Sprintf("an exception's kind stays %s (record a new one)", cur.Kind))
	}
	if err := a.checkWrite(in, &cur); err != nil {
		return err
	}
	if !httpapi.Caller(c).InScope(in.Scope.SiteID) {
		return httpapi.OutOfScope("an exception of site " + strconv.Quote(in.Scope.SiteID))
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	r := cur
	r.Exception, r.Version, r.Op = in, a.opts.Exceptions.NextVersion(cur.ID), exception.OpUpdate
	r.Actor, r.TsMs = httpapi.Caller(c).Actor(), a.opts.Now().UnixMilli()
	if err := a.publish(ctx, "exception.update", r, cur.Version); err != nil {
		return err
	}
	return c.JSON(a.view(r))
}

// CloseInput is the body of POST /v1/exceptions/{id}:close.
type CloseInput struct {
	Reason string `json:"reason"`
}

func (a *API) handleClose(c *fiber.Ctx) error {
	cur, err := a.current(c)
	if err != nil {
		return err
	}
	var in CloseInput
	if err := httpapi.DecodeStrict(c.Body(), &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	if strings.TrimSpace(in.Reason) == "" || len(in.Reason) > 2000 {
		return httpapi.BadRequest("reason", "required (at most 2000 characters): why the exception ends")
	}
	ctx, cancel := a.ctx(c)
	defer cancel()
	r := cur
	r.Status, r.CloseReason, r.Version, r.Op = exception.StatusClosed, in.Reason, a.opts.Exceptions.NextVersion(cur.ID), exception.OpClose
	r.Actor, r.TsMs = httpapi.Caller(c).Actor(), a.opts.Now().UnixMilli()
	if err := a.publish(ctx, "exception.close", r, cur.Version); err != nil {
		return err
	}
	return c.JSON(a.view(r))
}

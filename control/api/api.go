// Package api is the control plane's HTTP API (fiber handlers, request
// validation and parsing: single, CSV and JSON bulk, break-glass, reviews,
// the revocation resource, KPIs) and the operations automated responders
// call (Suspend, Reinstate, RevokeSubject, Credential). It reads the
// credentials from and queues commands through a State (control/stream's
// Processor) and reads ClickHouse through control/store.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/internal/metrics"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// State is what the API reads the credentials from and queues commands
// through: control/stream's Processor.
type State interface {
	// Ready is closed once the credentials are rebuilt from Kafka.
	Ready() <-chan struct{}
	// control.Record returns a credential's newest record (not to be changed).
	Record(id string) (*control.Record, bool)
	Subject(id string) []*control.Record
	Each(fn func(r *control.Record))
	// Await registers interest in a command's last record; call it before
	// publishing the command.
	Await(commandID string) (<-chan *control.Record, func())
	Publish(ctx context.Context, cmds ...control.Command) error
	// Admit reserves queue room for n commands (false: retry after the
	// duration); Release returns an unused reservation.
	Admit(n int) (bool, time.Duration)
	Release(n int)
	Templates() *control.Templates
	DoorGroups() map[string]int
}

// AuditVerifier checks the audit log (internal/audit.Store).
type AuditVerifier interface {
	Verify(ctx context.Context) (*audit.Report, error)
}

// Options configure an API.
type Options struct {
	State    State
	Conn     driver.Conn
	Audit    audit.Appender
	Verifier AuditVerifier // for GET /v1/audit/verify (optional)
	// PseudonymKey keys normalize.RefHash of the vendor user references
	// requests carry, and the audit pseudonyms of device ids.
	PseudonymKey []byte
	Logger       *slog.Logger
	Registerer   prometheus.Registerer

	// MaxBulk is the most items one bulk request may hold (default 10,000).
	MaxBulk int
	// PendingSLA is how long a lock may take to acknowledge a revocation
	// before it counts as overdue (default 15 min).
	PendingSLA time.Duration
	// WaitTimeout bounds how long a single-credential API call waits for its
	// command to be applied before answering 202 (default 5 s).
	WaitTimeout time.Duration
	// VerifyAttestation checks device-possession evidence; nil accepts any
	// non-empty evidence of a known format.
	VerifyAttestation func(deviceID string, a control.AttestationInput) error
	Now               func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.State == nil {
		errs = append(errs, errors.New("control: State is required"))
	}
	if o.Conn == nil {
		errs = append(errs, errors.New("control: Conn is required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("control: Audit is required (admin actions must be audited)"))
	}
	if len(o.PseudonymKey) == 0 {
		errs = append(errs, errors.New("control: PseudonymKey is required"))
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBulk <= 0 {
		o.MaxBulk = 10000
	}
	if o.PendingSLA <= 0 {
		o.PendingSLA = control.DefaultPendingSLA
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return errors.Join(errs...)
}

// API serves the control plane's routes and operations.
type API struct {
	opts     Options
	state    State
	m        *metrics.Metrics
	requests *requestCache
}

// New returns an API.
func New(opts Options) (*API, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &API{opts: opts, state: opts.State, m: metrics.New(opts.Registerer), requests: newRequestCache(4096)}, nil
}

// Routes returns the control plane's HTTP routes. Credential management is
// for managers, suspension also for responders, reads for every analyst
// role, audit verification for admins (always admitted).
func (p *API) Routes() []httpapi.Route {
	read := httpapi.ReadRoles
	manage := httpapi.ManageRoles
	suspend := []httpapi.Role{httpapi.RoleResponder, httpapi.RoleManager}
	r := func(method, path, summary string, roles []httpapi.Role, h fiber.Handler) httpapi.Route {
		return httpapi.Route{Method: method, Path: path, Summary: summary, Roles: roles, Handler: p.whenReady(h)}
	}
	return []httpapi.Route{
		r(fiber.MethodPost, "/v1/credentials", "Request one credential (queued; Idempotency-Key supported).", manage, p.handleCreate),
		r(fiber.MethodPost, `/v1/credentials\:bulk`, "Request credentials in bulk: JSON array, CSV or multipart CSV upload (queued; Idempotency-Key supported).", manage, p.handleBulk),
		r(fiber.MethodGet, "/v1/credentials", "List credentials (filters: subject_id, state, role; limit).", read, p.handleList),
		r(fiber.MethodGet, "/v1/credentials/:id", "A credential: who issued it, when, to which device, under which approval rule, and its history.", read, p.handleGet),
		r(fiber.MethodPost, `/v1/credentials/:id\:approve`, "Approve a requested credential (approvers differ from the requester and each other).", manage, p.opHandler(lifecycle.OpApprove)),
		r(fiber.MethodPost, `/v1/credentials/:id\:activate`, "Activate a credential with device-possession evidence (attestation).", manage, p.opHandler(lifecycle.OpActivate)),
		r(fiber.MethodPost, `/v1/credentials/:id\:device`, "Move a credential to a new device: the old device's session is revoked, fresh attestation is required.", manage, p.opHandler(lifecycle.OpDeviceChange)),
		r(fiber.MethodPost, `/v1/credentials/:id\:suspend`, "Suspend an active credential (locks drop it).", suspend, p.opHandler(lifecycle.OpSuspend)),
		r(fiber.MethodPost, `/v1/credentials/:id\:reinstate`, "Reinstate a suspended credential.", manage, p.opHandler(lifecycle.OpReinstate)),
		r(fiber.MethodPost, `/v1/credentials/:id\:revoke`, "Revoke a credential: entitlement, device session, every lock holding it.", manage, p.opHandler(lifecycle.OpRevoke)),
		r(fiber.MethodPost, `/v1/credentials/:id\:archive`, "Archive a revoked credential.", manage, p.opHandler(lifecycle.OpArchive)),
		r(fiber.MethodPost, `/v1/subjects/:id\:revoke`, "Revoke every live credential of a subject (move-out, termination).", manage, p.handleSubjectRevoke),
		r(fiber.MethodGet, "/v1/requests/:id", "Status of a request: pending, issued, failed (with why) per item.", manage, p.handleRequestStatus),
		r(fiber.MethodGet, "/v1/revocations/:id", "A revocation: layers done, locks confirmed and pending (with age).", read, p.handleRevocation),
		r(fiber.MethodGet, "/v1/templates", "Role templates.", read, p.handleTemplates),
		r(fiber.MethodPut, "/v1/templates/:role", "Change a role template; the change propagates to the role's credentials.", manage, p.handlePutTemplate),
		r(fiber.MethodGet, "/v1/door-groups", "Door groups of the lock registry with their lock counts.", read, p.handleDoorGroups),
		r(fiber.MethodPost, "/v1/breakglass", "Request break-glass emergency access (role-bound, time-bound, two approvers).", manage, p.handleBreakGlass),
		r(fiber.MethodGet, "/v1/breakglass/reviews", "Break-glass credentials queued for post-event review.", manage, p.handleReviews),
		r(fiber.MethodGet, "/v1/breakglass/:id/review", "One break-glass credential with the access events that happened under it.", manage, p.handleReview),
		r(fiber.MethodPost, `/v1/breakglass/:id\:review`, "Close the post-event review of a break-glass credential.", manage, p.handleCloseReview),
		r(fiber.MethodGet, "/v1/kpis/credentials", "Credential KPIs over a time range (also part of GET /v1/kpis): revocation latency, time to issue, activation, exceptions, pending locks; sla= sets the pending-lock SLA.", []httpapi.Role{httpapi.RoleManager}, p.handleKPIs),
		r(fiber.MethodGet, "/v1/audit/verify", "Verify the hash-chained audit log; names the first altered or removed entry.", httpapi.AdminOnly, p.handleAuditVerify),
	}
}

// whenReady answers 503 until the state is rebuilt.
func (p *API) whenReady(h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		select {
		case <-p.state.Ready():
			return h(c)
		default:
			c.Set(fiber.HeaderRetryAfter, "2")
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "starting", "the control plane is rebuilding its state")
		}
	}
}

func (p *API) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.UserContext(), 30*time.Second)
}

// pathParam returns a path parameter decoded and copied (fiber's strings
// point into its buffers).
func pathParam(c *fiber.Ctx, name string) (string, error) {
	v, err := url.PathUnescape(c.Params(name))
	if err != nil || v == "" {
		return "", httpapi.BadRequest(name, "invalid path parameter")
	}
	return strings.Clone(v), nil
}

func actorOf(pr httpapi.Principal) string {
	if pr.Name != "" {
		return pr.Name
	}
	if pr.TokenID != "" {
		return pr.TokenID
	}
	return "unknown"
}

// unavailable maps a dependency failure to a 503 problem.
func unavailable(err error) error {
	if errors.Is(err, control.ErrAudit) {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable", err.Error())
	}
	var pr *httpapi.Problem
	if errors.As(err, &pr) {
		return pr
	}
	return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
}

// transitionProblem is the 409 of an illegal transition; it names the
// current state in extra.current_state.
func transitionProblem(te *lifecycle.TransitionError) *httpapi.Problem {
	pr := httpapi.NewProblem(fiber.StatusConflict, "illegal_transition", te.Error())
	pr.Extra = map[string]any{"current_state": te.From, "operation": te.Op, "allowed_in": te.Allowed}
	return pr
}

func problemFor(err error, current *control.Record) error {
	var te *lifecycle.TransitionError
	switch {
	case errors.As(err, &te):
		return transitionProblem(te)
	case errors.Is(err, control.ErrNotFound):
		return httpapi.NewProblem(fiber.StatusNotFound, "credential_not_found", err.Error())
	case errors.Is(err, control.ErrSelfApproval):
		return httpapi.NewProblem(fiber.StatusForbidden, "self_approval", err.Error())
	case errors.Is(err, control.ErrDuplicateApproval):
		pr := httpapi.NewProblem(fiber.StatusConflict, "duplicate_approval", err.Error())
		if current != nil {
			pr.Extra = map[string]any{"current_state": current.State, "approvers": current.Approvers}
		}
		return pr
	case errors.Is(err, control.ErrDeviceMismatch):
		return httpapi.NewProblem(fiber.StatusConflict, "device_mismatch", err.Error())
	}
	return unavailable(err)
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
		if !ok {
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
		actor := actorOf(httpapi.Caller(c))
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
			att, fe := p.verifyAttestation(dev, in.Attestation, now)
			if fe != nil {
				return httpapi.NewProblem(fiber.StatusUnprocessableEntity, "attestation_failed", fe.Error())
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
	if !ok {
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
	return c.JSON(control.CredentialView{Credential: cur, History: history, Summary: control.Summary{
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
	match := func(r *control.Record) bool {
		return (state == "" || r.State == state) && (role == "" || r.Role == role)
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
	actor := actorOf(httpapi.Caller(c))
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

// audit appends an entry; an error means the action must not happen.
func (p *API) audit(ctx context.Context, actor, action, target string, details map[string]string) error {
	for k, v := range details {
		if v == "" {
			delete(details, k)
		}
	}
	if err := p.opts.Audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: target,
		Details: details, TsMs: p.opts.Now().UnixMilli()}); err != nil {
		return fmt.Errorf("%w: %w", control.ErrAudit, err)
	}
	return nil
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

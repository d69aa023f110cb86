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
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/internal/metrics"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/audit"
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
	// Sites returns every site of the lock registry with its number of
	// locks; LocksFor the locks of a site's door groups ("*": all).
	Sites() map[string]int
	LocksFor(site string, groups []string) []control.LockRef
}

// Attester verifies attestation evidence (control/attest's Verifier).
type Attester interface {
	Verify(format string, evidence, challenge []byte) (*attest.Result, error)
	Formats() []string
}

// Challenger issues and checks attestation challenges (control/attest's
// Challenger).
type Challenger interface {
	Issue(credentialID, deviceID string, now time.Time) ([]byte, time.Time)
	Check(challenge []byte, credentialID, deviceID string, now time.Time) error
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
	// PseudonymKey keys event.RefHash of the vendor user references
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
	// Attester and Challenges verify device-possession evidence: a
	// challenge from POST /v1/attestation/challenge, then the device's
	// attestation of it. Without both, evidence is refused
	// (attestation_not_configured) and no credential can be activated.
	Attester   Attester
	Challenges Challenger
	// Policy refuses grants the locks cannot enforce (the estate policy;
	// nil admits every grant).
	Policy GrantPolicy
	// VerifySubjects, when set, is the verified-identity check of
	// issuance: before credentials are requested (single, bulk,
	// break-glass) it gets the items' subject ids and roles and returns,
	// per item, why that subject may not receive a credential of that
	// role ("" admits it). A refused single request is a 422
	// subject_not_verified naming why; a refused bulk item fails with the
	// reason. Its own error (the identity source unreachable) is a 503.
	VerifySubjects func(ctx context.Context, subjects, roles []string) ([]string, error)
	Now            func() time.Time
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
		return httpapi.Route{Method: method, Path: path, Summary: summary, Roles: roles, Handler: p.whenReady(h),
			SiteScoped: strings.HasPrefix(path, "/v1/credentials")}
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
		r(fiber.MethodPost, `/v1/devices/:id\:revoke`, "Revoke every live credential on a device (lost or stolen phone).", manage, p.handleDeviceRevoke),
		r(fiber.MethodPost, "/v1/revocations", "Revoke many credentials under one revocation: a site (breach), subjects or credentials.", manage, p.handleMassRevocation),
		r(fiber.MethodPost, "/v1/attestation/challenge", "A challenge for a device's attestation (activation, device change, or a request carrying evidence).", manage, p.handleChallenge),
		r(fiber.MethodGet, "/v1/requests/:id", "Status of a request: pending, issued, failed (with why) per item.", manage, p.handleRequestStatus),
		r(fiber.MethodGet, "/v1/revocations/:id", "A revocation: the state of each layer (entitlement, device session, locks), locks confirmed, pending and failed.", read, p.handleRevocation),
		r(fiber.MethodGet, "/v1/drills", "Revocation drills run (keyfleet drill), newest first (scenario, from, to, limit).", read, p.handleDrills),
		r(fiber.MethodPost, "/v1/drills", "Store a revocation drill's report (keyfleet drill does).", manage, p.handlePostDrill),
		r(fiber.MethodGet, "/v1/templates", "Role templates.", read, p.handleTemplates),
		r(fiber.MethodPut, "/v1/templates/:role", "Change a role template; the change propagates to the role's credentials.", manage, p.handlePutTemplate),
		r(fiber.MethodGet, "/v1/door-groups", "Door groups of the lock registry with their lock counts.", read, p.handleDoorGroups),
		r(fiber.MethodPost, "/v1/breakglass", "Request break-glass emergency access (role-bound, time-bound, two approvers).", manage, p.handleBreakGlass),
		r(fiber.MethodGet, "/v1/breakglass/reviews", "Break-glass credentials queued for post-event review.", manage, p.handleReviews),
		r(fiber.MethodGet, "/v1/breakglass/:id/review", "One break-glass credential with the access events that happened under it.", manage, p.handleReview),
		r(fiber.MethodPost, `/v1/breakglass/:id\:review`, "Close the post-event review of a break-glass credential.", manage, p.handleCloseReview),
		r(fiber.MethodGet, "/v1/kpis/credentials", "Credential KPIs over a time range (also part of GET /v1/kpis): revocation latency, time to issue, activation, exceptions, pending locks; sla= sets the pending-lock SLA.", []httpapi.Role{httpapi.RoleManager}, p.handleKPIs),
		r(fiber.MethodGet, "/v1/audit/verify", "Verify the hash-chained audit log; names the first altered or removed entry.", httpapi.AuditRoles, p.handleAuditVerify),
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
	var de *control.DuplicateError
	if errors.As(err, &de) {
		return duplicateProblem(de.Existing)
	}
	return unavailable(err)
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

// duplicateProblem is the 409 of a second live credential for a subject,
// role and device; it names the existing one.
func duplicateProblem(existing string) *httpapi.Problem {
	pr := httpapi.NewProblem(fiber.StatusConflict, "duplicate_credential", (&control.DuplicateError{Existing: existing}).Error()+
		" (set allow_additional to issue another)")
	pr.Extra = map[string]any{"existing_credential_id": existing, "existing_credential_url": "/v1/credentials/" + existing}
	return pr
}

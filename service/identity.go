package service

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/identity/feed"
	"github.com/keyfleet/keyfleet/identity/jml"
	"github.com/keyfleet/keyfleet/identity/scim"
	idstore "github.com/keyfleet/keyfleet/identity/store"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/query"
)

// IdentityConfig configures identity sync: the SCIM service provider at
// /scim/v2, the HR/tenant feed import, the joiner/mover/leaver automation
// and the verified-identity check of issuance.
type IdentityConfig struct {
	RolesFile             string
	Verify                string
	VisitorRoles          []string
	SubjectFromExternalID bool
	SweepInterval         time.Duration
	SCIMBaseURL           string
}

// Verification modes of issuance.
const (
	VerifyAuto    = "auto"    // enforce once the identity source holds anyone
	VerifyEnforce = "enforce" // always
	VerifyOff     = "off"     // never
)

func (c *IdentityConfig) registerFlags(s *flagenv.Set) {
	s.String(&c.RolesFile, "identity-roles", "KEYFLEET_IDENTITY_ROLES", "",
		`group → role template mapping (JSON: {"rules":[{"group":"Facilities","role":"maintenance","door_groups":["garage"]}]});`+
			"\n        default: a group named like a role (resident, staff, ...) maps to that role")
	s.String(&c.Verify, "identity-verify", "KEYFLEET_IDENTITY_VERIFY", VerifyAuto,
		"verified identity for issuance: enforce (credentials only for known, active people and visitor roles), off, or\n"+
			"        auto (enforce once the identity source holds at least one person)")
	s.List(&c.VisitorRoles, "identity-visitor-roles", "KEYFLEET_IDENTITY_VISITOR_ROLES", []string{"guest", "emergency_responder"},
		"roles whose credentials may go to people the identity source does not know (visitors, outside responders); their\n"+
			"        templates' approval rules apply")
	s.Bool(&c.SubjectFromExternalID, "identity-subject-from-external-id", "KEYFLEET_IDENTITY_SUBJECT_FROM_EXTERNAL_ID", true,
		"derive a person's pseudonymous subject id from the externalId the identity provider or HR system knows them by\n"+
			"        (else from the SCIM id); an explicit access-extension subject_id wins either way")
	s.Duration(&c.SweepInterval, "identity-sweep-interval", "KEYFLEET_IDENTITY_SWEEP_INTERVAL", time.Minute,
		"how often people whose end date passed are found and become leavers")
	s.String(&c.SCIMBaseURL, "scim-base-url", "KEYFLEET_SCIM_BASE_URL", "",
		"externally visible URL of /scim/v2 for meta.location (default: derived from each request)")
}

func (c *IdentityConfig) validate() error {
	var errs []error
	switch c.Verify {
	case VerifyAuto, VerifyEnforce, VerifyOff:
	default:
		errs = append(errs, fmt.Errorf("--identity-verify %q: want auto, enforce or off", c.Verify))
	}
	for _, r := range c.VisitorRoles {
		if !slices.Contains(control.Roles, r) {
			errs = append(errs, fmt.Errorf("--identity-visitor-roles: unknown role %q (want of %s)", r, strings.Join(control.Roles, ", ")))
		}
	}
	if c.SweepInterval < time.Second {
		errs = append(errs, fmt.Errorf("--identity-sweep-interval: %s is below 1s", c.SweepInterval))
	}
	if c.RolesFile != "" {
		if _, err := jml.LoadMapping(c.RolesFile); err != nil {
			errs = append(errs, fmt.Errorf("--identity-roles: %w", err))
		}
	}
	return errors.Join(errs...)
}

// identityPart is identity sync inside serve.
type identityPart struct {
	cfg     IdentityConfig
	log     *slog.Logger
	conn    driver.Conn
	store   *idstore.Store
	scim    *scim.Service
	changes interface{ Close() error }
	mapping *jml.Mapping
	jml     *jml.Automation
	private *httpapi.Server
	pipe    *pipeListener
	audit   audit.Appender
	routes  []httpapi.Route
	ops     []map[string]openapi.Operation // of SCIM's and the /v1/identity routes
	loops   []loop

	mu       sync.Mutex
	users    int
	usersAt  time.Time
	enforced prometheus.Gauge
}

// newIdentity builds the identity store and the SCIM service provider; the
// automation needs the control plane and is added by connect.
func newIdentity(ctx context.Context, cfg IdentityConfig, bc bus.Config, conn driver.Conn, key []byte,
	reg prometheus.Registerer, logger *slog.Logger) (*identityPart, error) {
	logger = logger.With("part", "identity")
	mapping := jml.DefaultMapping()
	if cfg.RolesFile != "" {
		m, err := jml.LoadMapping(cfg.RolesFile)
		if err != nil {
			return nil, fmt.Errorf("--identity-roles: %w", err)
		}
		mapping = m
	}
	keyed := func(ref string) string { return identity.SubjectID(key, ref) }
	st, err := idstore.New(idstore.Options{Conn: conn, Bus: bc, Logger: logger, Registerer: reg,
		Subject: func(r scim.Record) string { return scim.SubjectOf(r, keyed, cfg.SubjectFromExternalID) }})
	if err != nil {
		return nil, err
	}
	changes := bus.NewWriter(bc, bus.TopicIdentityChanges)
	svc, err := scim.New(scim.Options{Store: st, Subject: keyed, SubjectFromExternalID: cfg.SubjectFromExternalID,
		Notify: jml.NewPublisher(changes).Notify, BaseURL: cfg.SCIMBaseURL, SweepInterval: cfg.SweepInterval,
		Logger: logger, Registerer: reg})
	if err != nil {
		return nil, err
	}
	p := &identityPart{cfg: cfg, log: logger, conn: conn, store: st, scim: svc, changes: changes, mapping: mapping,
		enforced: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_identity_verification_enforced",
			Help: "1 while credentials are issued only to people the identity source knows as active (and visitor roles).",
		})}
	reg.MustRegister(p.enforced)
	p.routes, p.ops = svc.Routes(), []map[string]openapi.Operation{svc.Operations()}
	p.loops = append(p.loops, loop{"identity-owner", st.Run}, loop{"identity-sweep", svc.Run})
	return p, nil
}

// connect adds the joiner/mover/leaver automation, which calls the control
// plane's own API in-process: a private copy of its routes on an in-memory
// listener, authenticated by a per-process secret as "identity-sync" (a
// manager), so its requests take the normal path and are audited as
// identity sync's.
func (p *identityPart) connect(controlRoutes []httpapi.Route, bc bus.Config, reg prometheus.Registerer, auditor audit.Appender) error {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	token := hex.EncodeToString(secret)
	srv, err := httpapi.New(httpapi.Options{Auth: internalAuth{token: token}, Logger: p.log}, controlRoutes)
	if err != nil {
		return err
	}
	p.private, p.pipe = srv, newPipeListener()
	client := &http.Client{Transport: &http.Transport{
		DialContext:     func(ctx context.Context, _, _ string) (net.Conn, error) { return p.pipe.Dial(ctx) },
		MaxIdleConns:    8,
		IdleConnTimeout: time.Minute,
	}}
	auto, err := jml.New(jml.Options{
		Control: &jml.HTTPControl{Base: "http://identity-sync.internal", Token: token, Client: client},
		Mapping: p.mapping, Bus: bc, Logger: p.log, Registerer: reg,
		Leavers: func(ctx context.Context, l identity.Leaver) error { return idstore.RecordLeaver(ctx, p.conn, l) },
	})
	if err != nil {
		return err
	}
	p.jml = auto
	p.audit = auditor
	feedAPI := &feed.API{Target: p.scim, Audit: auditor, Logger: p.log}
	p.routes = append(p.routes, feedAPI.Routes()...)
	p.ops = append(p.ops, feedAPI.Operations(), map[string]openapi.Operation{
		openapi.Key(fiber.MethodPost, "/v1/identity/resync"): {NoBody: true,
			Responses: map[int]openapi.Response{202: {Description: "every person's state is being re-emitted",
				Content: openapi.JSON(map[string]any{"type": "object", "required": []string{"status"},
					"properties": map[string]any{"status": map[string]any{"type": "string", "enum": []string{"emitted"}}}})}}},
		openapi.Key(fiber.MethodGet, "/v1/identity/subjects/:id"): {
			Params: []openapi.Param{{Name: "id", In: "path", Required: true, MaxLen: 128, Description: "pseudonymous subject id"}},
			Responses: map[int]openapi.Response{200: {Description: "what the identity source says (known false: nobody)",
				Content: openapi.JSON(openapi.ResponseSchema(identity.Status{}, nil))}}},
	})
	p.routes = append(p.routes,
		httpapi.Route{Method: fiber.MethodPost, Path: "/v1/identity/resync", Roles: httpapi.AdminOnly, Handler: p.handleResync,
			Summary: "Re-emit every person's current state as identity changes (joined or left), so the automation reconciles credentials (after a failed notification)."},
		httpapi.Route{Method: fiber.MethodGet, Path: "/v1/identity/subjects/:id", Roles: []httpapi.Role{httpapi.RoleManager},
			Handler: p.handleSubject,
			Summary: "What the identity source says about a pseudonymous subject: known, entitled (or why not), site, end date, groups."},
	)
	p.loops = append(p.loops, loop{"identity-api", func(ctx context.Context) error { return p.private.Serve(ctx, p.pipe) }},
		loop{"identity-sync", auto.Run})
	return nil
}

func (p *identityPart) Close() error {
	return errors.Join(p.store.Close(), p.changes.Close())
}

func (p *identityPart) handleResync(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Minute)
	defer cancel()
	caller := httpapi.Caller(c)
	if err := p.audit.Append(ctx, audit.Entry{Actor: cmp.Or(caller.Name, caller.TokenID), Action: "identity.resync",
		Target: "identity", TsMs: time.Now().UnixMilli()}); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable", err.Error())
	}
	if err := p.scim.Resync(ctx); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", "resync incomplete: "+err.Error())
	}
	return c.Status(fiber.StatusAccepted).JSON(fiber.Map{"status": "emitted"})
}

func (p *identityPart) handleSubject(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	ctx, cancel := context.WithTimeout(c.UserContext(), 30*time.Second)
	defer cancel()
	recs, err := p.store.UsersBySubject(ctx, []string{id})
	if err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	st := identity.Status{SubjectID: id}
	for _, r := range recs {
		s, err := p.scim.StatusWithGroups(ctx, r, time.Now())
		if err != nil {
			return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
		}
		if !st.Known || s.Entitled {
			st = s
		}
	}
	return c.JSON(st)
}

// internalAuth admits the automation's per-process secret only.
type internalAuth struct{ token string }

func (a internalAuth) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if subtle.ConstantTimeCompare([]byte(token), []byte(a.token)) != 1 {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	return httpapi.Principal{TokenID: "identity-sync", Name: "identity-sync", Role: httpapi.RoleManager}, nil
}

// verifySubjects is control's verified-identity check (api.Options.VerifySubjects).
func (p *identityPart) verifySubjects(ctx context.Context, subjects, roles []string) ([]string, error) {
	out := make([]string, len(subjects))
	on, err := p.enforcing(ctx)
	if err != nil || !on {
		return out, err
	}
	var ask []string
	for i, s := range subjects {
		if !slices.Contains(p.cfg.VisitorRoles, roles[i]) && !slices.Contains(ask, s) {
			ask = append(ask, s)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	recs, err := p.store.UsersBySubject(ctx, ask)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	status := map[string]identity.Status{}
	for _, r := range recs {
		st := p.scim.Status(r, now)
		if cur, ok := status[st.SubjectID]; !ok || !cur.Entitled {
			status[st.SubjectID] = st
		}
	}
	for i, s := range subjects {
		if slices.Contains(p.cfg.VisitorRoles, roles[i]) {
			continue
		}
		st, ok := status[s]
		switch {
		case !ok:
			out[i] = fmt.Sprintf("subject %s is not in the identity source (SCIM or HR feed): %s credentials are issued only to "+
				"people it knows as active; a visitor needs a visitor role (%s)", s, roles[i], strings.Join(p.cfg.VisitorRoles, ", "))
		case !st.Entitled && st.Reason == "end_date":
			out[i] = fmt.Sprintf("subject %s left: its end date (%s) has passed in the identity source", s, st.EndDate.Format(time.RFC3339))
		case !st.Entitled:
			out[i] = fmt.Sprintf("subject %s left: it is deactivated in the identity source", s)
		}
	}
	return out, nil
}

// enforcing reports whether the check applies now: always (enforce),
// never (off), or once the store holds a person (auto; the count is
// re-read every 10 s, every 2 s while it is empty).
func (p *identityPart) enforcing(ctx context.Context) (bool, error) {
	switch p.cfg.Verify {
	case VerifyOff:
		p.enforced.Set(0)
		return false, nil
	case VerifyEnforce:
		p.enforced.Set(1)
		return true, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	ttl := 10 * time.Second
	if p.users == 0 {
		ttl = 2 * time.Second
	}
	if p.usersAt.IsZero() || time.Since(p.usersAt) > ttl {
		n, err := p.store.CountUsers(ctx)
		if err != nil {
			return false, err
		}
		if (n > 0) != (p.users > 0) || p.usersAt.IsZero() {
			p.log.Info("verified identity for issuance", "enforced", n > 0, "people", n, "mode", p.cfg.Verify)
		}
		p.users, p.usersAt = n, time.Now()
	}
	if p.users > 0 {
		p.enforced.Set(1)
	} else {
		p.enforced.Set(0)
	}
	return p.users > 0, nil
}

// kpis is GET /v1/kpis' credentials document: the control plane's KPIs
// and the leaver latency.
type kpis struct {
	*control.FleetKPIs
	LeaverLatency *identity.LeaverLatency `json:"leaver_latency,omitempty"`
	LeaverError   string                  `json:"leaver_latency_error,omitempty"`
}

// kpiFunc computes GET /v1/kpis' credentials document.
func (p *identityPart) kpiFunc() query.KPIFunc {
	return func(ctx context.Context, from, to time.Time) (any, error) {
		k, err := store.KPIs(ctx, p.conn, from, to)
		if err != nil {
			return nil, err
		}
		out := kpis{FleetKPIs: k}
		l, err := idstore.LeaverKPI(ctx, p.conn, from, to)
		if err != nil {
			p.log.Warn("leaver kpi unavailable", "err", err)
			out.LeaverError = "the leaver latency could not be computed"
		} else {
			out.LeaverLatency = &l
		}
		return out, nil
	}
}

// pipeListener is an in-memory listener: Dial hands the server one end of
// a net.Pipe.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

// Dial connects to the listener.
func (l *pipeListener) Dial(ctx context.Context) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- pipeConn{server}:
		return client, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// pipeConn is the server's end of a pipe. fasthttp panics ("BUG: error in
// SetWriteDeadline") when setting a deadline fails, and a pipe refuses
// deadlines once the client has closed its end (the transport dropping an
// idle connection): that ended serve. A deadline on a closed pipe does not
// matter, the next read or write fails and fasthttp closes the connection.
type pipeConn struct{ net.Conn }

func (c pipeConn) SetDeadline(t time.Time) error      { return openOnly(c.Conn.SetDeadline(t)) }
func (c pipeConn) SetReadDeadline(t time.Time) error  { return openOnly(c.Conn.SetReadDeadline(t)) }
func (c pipeConn) SetWriteDeadline(t time.Time) error { return openOnly(c.Conn.SetWriteDeadline(t)) }

func openOnly(err error) error {
	if errors.Is(err, io.ErrClosedPipe) {
		return nil
	}
	return err
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "identity-sync.internal" }

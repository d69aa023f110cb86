// Package httpapi is keyfleet's HTTP layer: one fiber app, a route table in
// which every route names the roles it admits (enforced here, in one place),
// RFC 9457 problem documents, request metrics and access logs. Domain packages
// hand in Routes; fiber does not leak past their handlers.
package httpapi

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/prometheus/client_golang/prometheus"
)

// Role is what a token may do.
type Role string

// Roles, from least to most privileged (ingest is separate: webhooks only).
const (
	RoleIngest    Role = "ingest"
	RoleAnalyst   Role = "analyst"
	RoleResponder Role = "responder"
	RoleManager   Role = "manager"
	RoleAdmin     Role = "admin"
	// RoleSCIM is an identity provider's (SCIM /scim/v2, HR feed): people only.
	RoleSCIM Role = "scim"
	// RoleAuditor reads the admin audit log (search, export, verify) and
	// nothing else.
	RoleAuditor Role = "auditor"
)

// AllRoles lists every role.
var AllRoles = []Role{RoleIngest, RoleAnalyst, RoleResponder, RoleManager, RoleAdmin, RoleSCIM, RoleAuditor}

// Common role sets for routes. Admin is always admitted and need not be listed.
var (
	ReadRoles    = []Role{RoleAnalyst, RoleResponder, RoleManager}
	RespondRoles = []Role{RoleResponder}
	ManageRoles  = []Role{RoleManager}
	AdminOnly    = []Role{}
	IngestRoles  = []Role{RoleIngest, RoleManager}
	AuditRoles   = []Role{RoleAuditor}
)

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return slices.Contains(AllRoles, r) }

// Principal is the authenticated caller.
type Principal struct {
	TokenID string
	Name    string
	Role    Role
	// Sites limits the caller to these sites (property-scoped tokens);
	// empty: every site.
	Sites []string
}

// Scoped reports whether the caller is limited to some sites.
func (p Principal) Scoped() bool { return len(p.Sites) > 0 }

// Actor names the caller in audit entries and records: the token's name,
// else its id.
func (p Principal) Actor() string {
	if p.Name != "" {
		return p.Name
	}
	if p.TokenID != "" {
		return p.TokenID
	}
	return "unknown"
}

// InScope reports whether the caller may see or change site: always for an
// unscoped caller; for a scoped one only its sites (never "", a record of
// no site, which is fleet-wide).
func (p Principal) InScope(site string) bool {
	return !p.Scoped() || (site != "" && slices.Contains(p.Sites, site))
}

// SiteFilter is the site a read is limited to: the requested one (which a
// scoped caller must hold, else 403 out_of_scope), or, when none is
// requested, "" for an unscoped caller and the caller's sites otherwise.
func (p Principal) SiteFilter(requested string) ([]string, error) {
	if requested != "" {
		if !p.InScope(requested) {
			return nil, OutOfScope("site " + requested)
		}
		return []string{requested}, nil
	}
	return p.Sites, nil
}

// OutOfScope is the 403 a scoped caller gets for what lies outside its sites.
func OutOfScope(what string) *Problem {
	return NewProblem(fiber.StatusForbidden, "out_of_scope", what+" is outside the sites this token is limited to")
}

// Authenticator checks bearer tokens. It is implemented by internal/auth.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// ErrUnauthenticated is returned by an Authenticator for an unknown or revoked token.
var ErrUnauthenticated = errors.New("unknown, expired or revoked token")

// Route is one endpoint.
type Route struct {
	Method  string
	Path    string // fiber path, e.g. /v1/ingest/:vendor
	Summary string // one line for the OpenAPI document
	// Roles admitted besides admin. Public routes (health) set Public instead.
	Roles  []Role
	Public bool
	// Signed, when set, authenticates a request by its vendor signature
	// instead of a token: it returns (true, nil) for a valid signature,
	// (false, nil) when the request carries none, and an error for a bad one.
	Signed func(c *fiber.Ctx) (bool, error)
	// BinaryBody exempts the request body from the UTF-8 check every other
	// route's body gets.
	BinaryBody bool
	// SiteScoped says the handler honours a property-scoped token (reads
	// filtered to its sites, writes outside them 403 out_of_scope). A
	// route without it is fleet-wide: a scoped token gets 403
	// scope_unsupported, so no route leaks other sites by default.
	SiteScoped bool
	Handler    fiber.Handler
}

// Allows reports whether a role may call the route.
func (r Route) Allows(role Role) bool {
	return role == RoleAdmin || slices.Contains(r.Roles, role)
}

// Options configure the server.
type Options struct {
	Addr         string
	BodyLimit    int // bytes
	Auth         Authenticator
	Logger       *slog.Logger
	Registerer   prometheus.Registerer
	AccessLog    bool
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// TLS, when set, makes Serve speak HTTPS (see LoadTLS).
	TLS *tls.Config
	// AuthFailures limits failed authentications (401s) per client
	// address: once spent, every request from that address that needs
	// authentication gets 429 with Retry-After until the bucket refills.
	AuthFailures Rate
	// Expensive limits the routes named in ExpensiveRoutes ("GET /v1/events")
	// per caller (token id, else client address): 429 with Retry-After.
	Expensive       Rate
	ExpensiveRoutes []string
	// ProxyHeader names a header carrying the client address (X-Real-IP)
	// that is believed only on requests from TrustedProxies; without them
	// the client address is the connection's peer.
	ProxyHeader    string
	TrustedProxies []string
	// Now is the limiters' clock (tests; default time.Now).
	Now func() time.Time
}

// Server is the HTTP server.
type Server struct {
	opts     Options
	app      *fiber.App
	routes   []Route
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	limited  *prometheus.CounterVec

	authFail  *limiter
	expensive *limiter
	costly    map[string]bool // "METHOD path" of expensive routes
}

// PrincipalKey is the fiber Locals key of the authenticated Principal.
const PrincipalKey = "keyfleet.principal"

const routeKey = "keyfleet.route"

// New returns a server with the given routes.
func New(opts Options, routes []Route) (*Server, error) {
	if opts.Auth == nil {
		return nil, errors.New("httpapi: Auth is required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.BodyLimit <= 0 {
		opts.BodyLimit = 8 << 20
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 30 * time.Second
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = 5 * time.Minute // exports stream for a while
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:   opts,
		routes: routes,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_http_requests_total",
			Help: "HTTP requests, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyfleet_http_request_duration_seconds",
			Help:    "HTTP request latency, by route and method.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14),
		}, []string{"route", "method"}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_http_rate_limited_total",
			Help: "Requests answered 429, by limit (auth_failures, expensive).",
		}, []string{"limit"}),
		authFail:  newLimiter(opts.AuthFailures, opts.Now),
		expensive: newLimiter(opts.Expensive, opts.Now),
		costly:    map[string]bool{},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.requests, s.duration, s.limited)
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "keyfleet",
		BodyLimit:             opts.BodyLimit,
		ReadTimeout:           opts.ReadTimeout,
		WriteTimeout:          opts.WriteTimeout,
		IdleTimeout:           2 * time.Minute,
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		// Bodies over the limit are streamed rather than refused mid-upload,
		// so limitBody can drain them and answer a clean 413.
		StreamRequestBody:       true,
		ProxyHeader:             opts.ProxyHeader,
		EnableTrustedProxyCheck: opts.ProxyHeader != "",
		TrustedProxies:          opts.TrustedProxies,
		EnableIPValidation:      true,
	})
	s.app.Use(recover.New())
	s.app.Use(s.observe)
	s.app.Use(s.limitBody)
	seen := map[string]bool{}
	for _, r := range routes {
		key := r.Method + " " + r.Path
		if seen[key] {
			return nil, fmt.Errorf("httpapi: route %s registered twice", key)
		}
		seen[key] = true
	}
	for _, key := range opts.ExpensiveRoutes {
		if !seen[key] {
			return nil, fmt.Errorf("httpapi: expensive route %s is not a route", key)
		}
		s.costly[key] = true
	}
	for _, r := range routes {
		s.app.Add(r.Method, r.Path, s.authorize(r), r.Handler)
	}
	s.app.Use(func(c *fiber.Ctx) error {
		return NewProblem(fiber.StatusNotFound, "not_found", "no such route: "+c.Method()+" "+c.Path())
	})
	return s, nil
}

// Routes returns the registered routes (for the OpenAPI document and tests).
func (s *Server) Routes() []Route { return s.routes }

// App exposes the fiber app for in-process tests (app.Test).
func (s *Server) App() *fiber.App { return s.app }

// authorize enforces the route's roles: 401 without a valid credential, 403
// with a valid one of the wrong role, 429 once a client address has failed
// authentication too often or a caller has called expensive routes too
// often, and 400 for input that is not valid UTF-8.
func (s *Server) authorize(r Route) fiber.Handler {
	costly := s.costly[r.Method+" "+r.Path]
	return func(c *fiber.Ctx) error {
		c.Locals(routeKey, r.Path)
		if r.Public {
			if err := checkInput(c, r); err != nil {
				return err
			}
			return c.Next()
		}
		ip := c.IP()
		if s.authFail != nil {
			if wait := s.authFail.wait(ip); wait > 0 {
				s.limited.WithLabelValues("auth_failures").Inc()
				return tooManyRequests(c, wait, "too_many_auth_failures",
					"too many failed authentications from this address; retry later")
			}
		}
		p, err := s.authenticate(c, r)
		if err != nil {
			var pr *Problem
			if s.authFail != nil && errors.As(err, &pr) && pr.Status == fiber.StatusUnauthorized {
				s.authFail.take(ip)
			}
			return err
		}
		if !r.Allows(p.Role) {
			return NewProblem(fiber.StatusForbidden, "forbidden",
				fmt.Sprintf("role %s may not call %s %s", p.Role, r.Method, r.Path))
		}
		if p.Scoped() && !r.SiteScoped {
			return NewProblem(fiber.StatusForbidden, "scope_unsupported",
				fmt.Sprintf("%s %s is fleet-wide; a token limited to sites (%s) may not call it", r.Method, r.Path, strings.Join(p.Sites, ", ")))
		}
		if costly && s.expensive != nil {
			key := "ip:" + ip
			if p.TokenID != "" {
				key = "token:" + p.TokenID
			}
			if ok, wait := s.expensive.take(key); !ok {
				s.limited.WithLabelValues("expensive").Inc()
				return tooManyRequests(c, wait, "rate_limited",
					fmt.Sprintf("%s %s may be called %s per caller; retry later", r.Method, r.Path, s.opts.Expensive))
			}
		}
		if err := checkInput(c, r); err != nil {
			return err
		}
		c.Locals(PrincipalKey, p)
		return c.Next()
	}
}

// authenticate returns the caller of a request: a signed webhook or a
// bearer token.
func (s *Server) authenticate(c *fiber.Ctx, r Route) (Principal, error) {
	if r.Signed != nil {
		ok, err := r.Signed(c)
		if err != nil {
			return Principal{}, NewProblem(fiber.StatusUnauthorized, "bad_signature", err.Error())
		}
		if ok {
			return Principal{Name: "signed-webhook", Role: RoleIngest}, nil
		}
	}
	token, ok := bearer(c.Get(fiber.HeaderAuthorization))
	if !ok {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="keyfleet"`)
		return Principal{}, NewProblem(fiber.StatusUnauthorized, "unauthenticated", "an API token is required (Authorization: Bearer <token>)")
	}
	p, err := s.opts.Auth.Authenticate(c.UserContext(), token)
	if err != nil {
		c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="keyfleet", error="invalid_token"`)
		if errors.Is(err, ErrUnauthenticated) {
			return Principal{}, NewProblem(fiber.StatusUnauthorized, "invalid_token", "the API token is unknown, expired or revoked")
		}
		return Principal{}, err
	}
	return p, nil
}

func bearer(h string) (string, bool) {
	const prefix = "Bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	t := strings.TrimSpace(h[len(prefix):])
	return t, t != ""
}

// Caller returns the authenticated principal of a request.
func Caller(c *fiber.Ctx) Principal {
	p, _ := c.Locals(PrincipalKey).(Principal)
	return p
}

// observe records metrics and the access log. Only the route pattern, never
// the raw path or query (which may carry ids), is logged and used as a label.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	if err != nil {
		if herr := s.app.ErrorHandler(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	route, _ := c.Locals(routeKey).(string)
	if route == "" {
		route = "unmatched"
	}
	status := c.Response().StatusCode()
	elapsed := time.Since(start)
	// fiber's strings point into buffers it reuses: metric labels outlive
	// the request, so they get their own copies.
	method := strings.Clone(c.Method())
	s.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.duration.WithLabelValues(route, method).Observe(elapsed.Seconds())
	if s.opts.AccessLog {
		s.opts.Logger.Info("http request", "method", method, "route", route, "status", status,
			"duration_ms", float64(elapsed.Microseconds())/1000, "role", string(Caller(c).Role),
			"bytes_in", len(c.Request().Body()), "bytes_out", len(c.Response().Body()))
	}
	return nil
}

// limitBody answers 413 to a body over the limit. With StreamRequestBody
// fasthttp hands bodies over as streams; a body over the limit is read and
// discarded (up to 64 MiB) before answering, so the client sees the 413
// instead of a connection reset while it is still writing.
func (s *Server) limitBody(c *fiber.Ctx) error {
	req := c.Request()
	limit := s.opts.BodyLimit
	if !req.IsBodyStream() {
		if len(req.Body()) > limit {
			return tooLarge(c, limit)
		}
		return c.Next()
	}
	if cl := req.Header.ContentLength(); cl > limit {
		_, _ = io.Copy(io.Discard, io.LimitReader(req.BodyStream(), 64<<20))
		return tooLarge(c, limit)
	} else if cl >= 0 {
		return c.Next()
	}
	// Chunked: read at most limit+1 bytes to decide.
	body, err := io.ReadAll(io.LimitReader(req.BodyStream(), int64(limit)+1))
	if err != nil {
		return NewProblem(fiber.StatusBadRequest, "unreadable_body", "the request body could not be read")
	}
	if len(body) > limit {
		_, _ = io.Copy(io.Discard, io.LimitReader(req.BodyStream(), 64<<20))
		return tooLarge(c, limit)
	}
	req.SetBody(body)
	return c.Next()
}

func tooLarge(c *fiber.Ctx, limit int) error {
	c.Set(fiber.HeaderConnection, "close")
	return NewProblem(fiber.StatusRequestEntityTooLarge, "body_too_large",
		fmt.Sprintf("the request body is larger than %d bytes", limit))
}

func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var p *Problem
	var fe *fiber.Error
	if !errors.As(err, &p) && !errors.As(err, &fe) {
		route, _ := c.Locals(routeKey).(string)
		s.opts.Logger.Error("http handler failed", "method", c.Method(), "route", route, "err", err)
	}
	return errorHandler(c, err)
}

// Serve is Run on a listener the caller opened.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.opts.TLS != nil {
		ln = tls.NewListener(ln, s.opts.TLS)
	}
	s.opts.Logger.Info("http server listening", "addr", ln.Addr().String(), "tls", s.opts.TLS != nil)
	errc := make(chan error, 1)
	go func() { errc <- s.app.Listener(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	if err := s.app.ShutdownWithTimeout(20 * time.Second); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

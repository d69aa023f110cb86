// Package httpapi is keyfleet's HTTP layer: one fiber app, a route table in
// which every route names the roles it admits (enforced here, in one place),
// RFC 9457 problem documents, request metrics and access logs. Domain packages
// hand in Routes; fiber does not leak past their handlers.
package httpapi

import (
	"context"
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
)

// AllRoles lists every role.
var AllRoles = []Role{RoleIngest, RoleAnalyst, RoleResponder, RoleManager, RoleAdmin, RoleSCIM}

// Common role sets for routes. Admin is always admitted and need not be listed.
var (
	ReadRoles    = []Role{RoleAnalyst, RoleResponder, RoleManager}
	RespondRoles = []Role{RoleResponder}
	ManageRoles  = []Role{RoleManager}
	AdminOnly    = []Role{}
	IngestRoles  = []Role{RoleIngest, RoleManager}
)

// ValidRole reports whether r is a known role.
func ValidRole(r Role) bool { return slices.Contains(AllRoles, r) }

// Principal is the authenticated caller.
type Principal struct {
	TokenID string
	Name    string
	Role    Role
}

// Authenticator checks bearer tokens. It is implemented by internal/auth.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// ErrUnauthenticated is returned by an Authenticator for an unknown or revoked token.
var ErrUnauthenticated = errors.New("unknown or revoked token")

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
	Signed  func(c *fiber.Ctx) (bool, error)
	Handler fiber.Handler
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
}

// Server is the HTTP server.
type Server struct {
	opts     Options
	app      *fiber.App
	routes   []Route
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
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
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(s.requests, s.duration)
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
		StreamRequestBody: true,
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
// with a valid one of the wrong role.
func (s *Server) authorize(r Route) fiber.Handler {
	return func(c *fiber.Ctx) error {
		c.Locals(routeKey, r.Path)
		if r.Public {
			return c.Next()
		}
		if r.Signed != nil {
			ok, err := r.Signed(c)
			if err != nil {
				return NewProblem(fiber.StatusUnauthorized, "bad_signature", err.Error())
			}
			if ok {
				c.Locals(PrincipalKey, Principal{Name: "signed-webhook", Role: RoleIngest})
				return c.Next()
			}
		}
		token, ok := bearer(c.Get(fiber.HeaderAuthorization))
		if !ok {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="keyfleet"`)
			return NewProblem(fiber.StatusUnauthorized, "unauthenticated", "an API token is required (Authorization: Bearer <token>)")
		}
		p, err := s.opts.Auth.Authenticate(c.UserContext(), token)
		if err != nil {
			c.Set(fiber.HeaderWWWAuthenticate, `Bearer realm="keyfleet", error="invalid_token"`)
			if errors.Is(err, ErrUnauthenticated) {
				return NewProblem(fiber.StatusUnauthorized, "invalid_token", "the API token is unknown or revoked")
			}
			return err
		}
		if !r.Allows(p.Role) {
			return NewProblem(fiber.StatusForbidden, "forbidden",
				fmt.Sprintf("role %s may not call %s %s", p.Role, r.Method, r.Path))
		}
		c.Locals(PrincipalKey, p)
		return c.Next()
	}
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
	s.opts.Logger.Info("http server listening", "addr", ln.Addr().String())
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

// Package dashboards serves keyfleet's web dashboards: a static shell (HTML,
// JS, CSS and the vendored uPlot chart library, embedded with go:embed) that
// is public, and the few read-only, token-protected API routes the pages need
// beyond the query, alerts and control-plane APIs: ingest health, alert
// counts, an alert's evidence events, the revocation tracker and pending
// provisioning requests. Every number a page shows comes from a token-
// protected API route; the shell itself holds no data.
package dashboards

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"mime"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

//go:embed assets
var embedded embed.FS

// contentPolicy allows only keyfleet's own scripts, styles and API: no
// inline scripts, no third-party origins. Inline styles are allowed for the
// chart library's layout and the weekly report's own stylesheet (shown in a
// sandboxed frame).
const contentPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; frame-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Options configure the dashboards.
type Options struct {
	// Conn reads ClickHouse for the dashboard routes.
	Conn driver.Conn
	// Gatherer is the process's metric registry (ingest health reads the
	// keyfleet_* pipeline metrics from it).
	Gatherer prometheus.Gatherer
	// SampleEvery is how often ingest health samples the metrics (default 5s).
	SampleEvery time.Duration
	// Instance, when set, names this instance: ingest health writes its
	// figures to instance_stats every sample and adds the fleet's (the sum
	// over live instances) to GET /v1/health/ingest.
	Instance string
	// Timeout bounds each ClickHouse query (default 10s).
	Timeout time.Duration
	Logger  *slog.Logger
	Now     func() time.Time
}

// Dashboards serves the dashboard shell and its data routes.
type Dashboards struct {
	opts   Options
	assets fs.FS
	ingest *IngestHealth
}

// New returns the dashboards.
func New(opts Options) (*Dashboards, error) {
	if opts.Conn == nil || opts.Gatherer == nil {
		return nil, errors.New("dashboards: Conn and Gatherer are required")
	}
	if opts.SampleEvery <= 0 {
		opts.SampleEvery = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	assets, err := fs.Sub(embedded, "assets")
	if err != nil {
		return nil, fmt.Errorf("dashboards: embedded assets: %w", err)
	}
	ingest := NewIngestHealth(opts.Gatherer, opts.SampleEvery, opts.Now)
	if opts.Instance != "" {
		ingest.Fleet(opts.Instance, opts.Conn, opts.Timeout, opts.Logger)
	}
	return &Dashboards{opts: opts, assets: assets, ingest: ingest}, nil
}

// Run samples ingest health until ctx ends.
func (d *Dashboards) Run(ctx context.Context) error { return d.ingest.Run(ctx) }

// Route paths of the dashboard data routes.
const (
	PathIngestHealth = "/v1/health/ingest"
	PathAlertCounts  = "/v1/dashboards/alerts"
	PathEvidence     = "/v1/alerts/:id/evidence"
	PathRevocations  = "/v1/dashboards/revocations"
	PathRequests     = "/v1/dashboards/requests"
	PathSession      = "/v1/dashboards/session"
)

// Routes returns the public static shell and the token-protected data routes.
func (d *Dashboards) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: fiber.MethodGet, Path: "/", Public: true, Handler: d.index,
			Summary: "The dashboards' HTML shell (public; every data call needs a token)."},
		{Method: fiber.MethodGet, Path: "/assets/*", Public: true, Handler: d.asset,
			Summary: "The dashboards' static files: scripts, styles, the vendored chart library (public)."},
		{Method: fiber.MethodGet, Path: PathIngestHealth, Roles: httpapi.ReadRoles, Handler: d.ingest.handle,
			Summary: "Ingest health: consumer lag per group, records, dead letters and inserts per second, DLQ rate, recent history."},
		{Method: fiber.MethodGet, Path: PathAlertCounts, Roles: httpapi.ReadRoles, Handler: d.alertCounts, SiteScoped: true,
			Summary: "Alert counts by detector, severity and status (status, site, from, to)."},
		{Method: fiber.MethodGet, Path: PathEvidence, Roles: httpapi.ReadRoles, Handler: d.evidence, SiteScoped: true,
			Summary: "An alert's evidence: the access events it cites."},
		{Method: fiber.MethodGet, Path: PathRevocations, Roles: httpapi.ReadRoles, Handler: d.revocations,
			Summary: "Revocation tracker: recent revocations with locks told, confirmed and pending, and their escalation past the SLA (from, pending, escalated, limit)."},
		{Method: fiber.MethodGet, Path: PathRequests, Roles: httpapi.ManageRoles, Handler: d.requests,
			Summary: "Provisioning requests with their items' status counts (status: pending or all; from, limit)."},
		{Method: fiber.MethodGet, Path: PathSession, Roles: httpapi.ReadRoles, Handler: d.session, SiteScoped: true,
			Summary: "The caller's role and what it may do on the dashboards (pages, actions)."},
	}
}

// Session is what the dashboards show a token: its role and the pages and
// actions that role may use, so the pages never offer what would be refused.
type Session struct {
	Role    string          `json:"role"`
	Name    string          `json:"name"`
	Pages   []string        `json:"pages"`
	Actions map[string]bool `json:"actions"`
	// Sites are the sites a token limited to sites sees (absent: every
	// site); such a token's pages show those sites only, and the
	// fleet-wide figures (ingest health, the revocation tracker,
	// provisioning requests, break-glass reviews) are not offered.
	Sites []string `json:"sites,omitempty"`
}

// sessionFor derives the dashboards' permissions from the routes they call.
func sessionFor(p httpapi.Principal) Session {
	has := func(roles ...httpapi.Role) bool {
		return p.Role == httpapi.RoleAdmin || slices.Contains(roles, p.Role)
	}
	s := Session{Role: string(p.Role), Name: p.Name, Pages: []string{"overview", "alerts", "investigate", "credentials", "estate"},
		Actions: map[string]bool{
			"change_alert_status": has(httpapi.RoleAnalyst, httpapi.RoleResponder), // PATCH /v1/alerts/{id}
			"suspend_credential":  has(httpapi.RoleResponder, httpapi.RoleManager), // POST /v1/credentials/{id}:suspend
			"reveal_identity":     has(),                                           // GET /v1/subjects/{id}/identity
			"read_kpis":           has(httpapi.RoleManager),                        // GET /v1/kpis
			"read_requests":       has(httpapi.RoleManager),                        // GET /v1/dashboards/requests
			"read_reviews":        has(httpapi.RoleManager),                        // GET /v1/breakglass/reviews
			"read_reports":        has(httpapi.RoleManager),                        // GET /v1/reports
			"read_migrations":     has(),                                           // GET /v1/estate/migrations
		}}
	s.Actions["read_ingest_health"] = true // GET /v1/health/ingest
	s.Actions["read_revocations"] = true   // GET /v1/dashboards/revocations
	if p.Scoped() {
		s.Sites = p.Sites
		for _, fleetWide := range []string{"read_requests", "read_reviews", "read_migrations", "read_ingest_health", "read_revocations"} {
			s.Actions[fleetWide] = false
		}
	}
	if s.Actions["read_reports"] {
		s.Pages = append(s.Pages, "reports")
	}
	return s
}

func (d *Dashboards) session(c *fiber.Ctx) error {
	if err := unknownParams(c); err != nil {
		return err
	}
	return c.JSON(sessionFor(httpapi.Caller(c)))
}

func (d *Dashboards) index(c *fiber.Ctx) error { return d.serve(c, "index.html") }

func (d *Dashboards) asset(c *fiber.Ctx) error {
	name := path.Clean("/" + c.Params("*"))[1:]
	if name == "" || name == "index.html" || !fs.ValidPath(name) {
		return httpapi.NewProblem(fiber.StatusNotFound, "not_found", "no such asset")
	}
	return d.serve(c, name)
}

func (d *Dashboards) serve(c *fiber.Ctx, name string) error {
	b, err := fs.ReadFile(d.assets, name)
	if err != nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "not_found", "no such asset")
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if strings.HasPrefix(ctype, "text/") && !strings.Contains(ctype, "charset") {
		ctype += "; charset=utf-8"
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderContentSecurityPolicy, contentPolicy)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	c.Set(fiber.HeaderReferrerPolicy, "no-referrer")
	c.Set(fiber.HeaderXFrameOptions, "DENY")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	return c.Send(b)
}

// Package query is keyfleet's analyst API over ClickHouse: event search with
// stable cursor pagination, summaries for dashboards, subject timelines,
// streamed exports (CSV, Arrow IPC, Parquet), KPIs and the OpenAPI document.
//
// Every request parameter is declared once (openapi.Param) and validated
// against that declaration, which also feeds the OpenAPI document. SQL is
// built from allow-listed identifiers and bound values only; every query has
// a timeout (context and ClickHouse max_execution_time) and a row bound.
// Counting is dedup-safe: access_events is a ReplacingMergeTree that may
// still hold re-delivered duplicates, so lists use LIMIT 1 BY event_id and
// counts use uniqExact(event_id) or the exact rollups (see summary.go).
package query

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// KPISource computes the control plane's credential KPIs over [from, to).
type KPISource interface {
	KPIs(ctx context.Context, from, to time.Time) (any, error)
}

// KPIFunc adapts a function to KPISource.
type KPIFunc func(ctx context.Context, from, to time.Time) (any, error)

// KPIs implements KPISource.
func (f KPIFunc) KPIs(ctx context.Context, from, to time.Time) (any, error) { return f(ctx, from, to) }

// Options configure the query service.
type Options struct {
	Conn driver.Conn
	// ClickHouse is where Conn connects (optional). Given, and with the
	// native protocol, an export reads its rows over a connection of its own
	// a native block at a time (ch-go), several times faster than row by row
	// through Conn.
	ClickHouse *chstorage.Config
	// Audit receives exports and re-identifications (required).
	Audit audit.Appender
	// KPIs, when set, adds the control plane's credential KPIs to GET /v1/kpis.
	KPIs KPISource
	// ExportKey keys the pseudonyms of exported subject, credential and
	// device ids (required, at least 16 bytes).
	ExportKey []byte
	// Timeout bounds every ClickHouse query of a request (default 10s).
	// Exports bound each chunk query by it, not the whole stream.
	Timeout time.Duration
	// MaxLimit is the largest page size of lists (default 1000).
	MaxLimit int
	// ExportMaxRows bounds one export (default 50,000,000).
	ExportMaxRows int64
	// MaxRange is the longest time range a request may ask for (default 400 days).
	MaxRange   time.Duration
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	if o.Conn == nil || o.Audit == nil {
		return errors.New("query: Conn and Audit are required")
	}
	if len(o.ExportKey) < 16 {
		return errors.New("query: ExportKey must be at least 16 bytes")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxLimit <= 0 {
		o.MaxLimit = 1000
	}
	if o.ExportMaxRows <= 0 {
		o.ExportMaxRows = 50_000_000
	}
	if o.MaxRange <= 0 {
		o.MaxRange = 400 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Service serves the query routes.
type Service struct {
	opts    Options
	metrics *metrics
}

type metrics struct {
	summaries  *prometheus.CounterVec
	exportRows *prometheus.CounterVec
	exports    *prometheus.CounterVec
	timeouts   *prometheus.CounterVec
}

// New returns the query service.
func New(opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := &metrics{
		summaries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_query_summaries_total",
			Help: "Event summaries served, by data source (rollup, raw, mixed).",
		}, []string{"source"}),
		exportRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_query_export_rows_total",
			Help: "Rows written by event exports, by format.",
		}, []string{"format"}),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_query_exports_total",
			Help: "Event exports, by format and result (complete, failed).",
		}, []string{"format", "result"}),
		timeouts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_query_timeouts_total",
			Help: "Queries stopped by the query timeout, by route.",
		}, []string{"route"}),
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(m.summaries, m.exportRows, m.exports, m.timeouts)
	}
	return &Service{opts: opts, metrics: m}, nil
}

// Route paths.
const (
	PathEvents     = "/v1/events"
	PathSummary    = "/v1/events/summary"
	PathTimeline   = "/v1/subjects/:id/timeline"
	PathIdentity   = "/v1/subjects/:id/identity"
	PathIdentities = "/v1/subjects/identities"
	PathExport     = "/v1/export/events"
	PathExportReid = "/v1/export/events/reidentified"
	PathKPIs       = "/v1/kpis"
)

// Routes returns the query routes.
func (s *Service) Routes() []httpapi.Route {
	get := func(path, summary string, roles []httpapi.Role, h fiber.Handler) httpapi.Route {
		return httpapi.Route{Method: fiber.MethodGet, Path: path, Summary: summary, Roles: roles, Handler: h}
	}
	// scoped routes filter to a site-scoped token's sites (scoped in filters.go).
	siteScoped := func(r httpapi.Route) httpapi.Route { r.SiteScoped = true; return r }
	return []httpapi.Route{
		siteScoped(get(PathEvents, "Search access events (filters, time range, cursor pagination).", httpapi.ReadRoles, s.handleEvents)),
		siteScoped(get(PathSummary, "Count access events by a dimension and time bucket.", httpapi.ReadRoles, s.handleSummary)),
		siteScoped(get(PathTimeline, "Everything one subject did and had, across vendors, in time order.", httpapi.ReadRoles, s.handleTimeline)),
		get(PathIdentity, "Re-identify a subject: its organisation reference (admin, audited).", httpapi.AdminOnly, s.handleIdentity),
		{Method: fiber.MethodPut, Path: PathIdentity, Summary: "Record a subject's organisation reference and display name (admin, audited).",
			Roles: httpapi.AdminOnly, Handler: s.handlePutIdentity},
		{Method: fiber.MethodDelete, Path: PathIdentity, Summary: "Erase a subject's identity (admin, audited).",
			Roles: httpapi.AdminOnly, Handler: s.handleDeleteIdentity},
		{Method: fiber.MethodPost, Path: PathIdentities, Summary: "Record many subjects' identities, e.g. a directory sync (admin, audited).",
			Roles: httpapi.AdminOnly, Handler: s.handleImportIdentities},
		siteScoped(get(PathExport, "Export access events (CSV, Arrow IPC stream, Parquet), pseudonymized.", httpapi.ReadRoles, s.handleExport)),
		get(PathExportReid, "Export access events with real ids and subject references (admin, audited).", httpapi.AdminOnly, s.handleExportReidentified),
		siteScoped(get(PathKPIs, "Fleet KPIs over a time range: access, pipeline and credential KPIs, sliced and filtered by site, vendor, lock and phone dimensions.",
			httpapi.ManageRoles, s.handleKPIs)),
	}
}

// Operations describes the query routes for the OpenAPI document.
func (s *Service) Operations() map[string]openapi.Operation {
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, PathEvents):      eventsOp(s.opts.MaxLimit),
		openapi.Key(fiber.MethodGet, PathSummary):     summaryOp,
		openapi.Key(fiber.MethodGet, PathTimeline):    timelineOp(s.opts.MaxLimit),
		openapi.Key(fiber.MethodGet, PathIdentity):    identityOp,
		openapi.Key(fiber.MethodPut, PathIdentity):    putIdentityOp,
		openapi.Key(fiber.MethodDelete, PathIdentity): deleteIdentityOp,
		openapi.Key(fiber.MethodPost, PathIdentities): importIdentitiesOp,
		openapi.Key(fiber.MethodGet, PathExport):      s.exportOp(false),
		openapi.Key(fiber.MethodGet, PathExportReid):  s.exportOp(true),
		openapi.Key(fiber.MethodGet, PathKPIs):        kpisOp,
	}
}

// parse validates a request against its operation's parameters.
func (s *Service) parse(c *fiber.Ctx, op openapi.Operation) (openapi.Values, error) {
	return openapi.Parse(op.Params, openapi.Args(c), s.opts.Now().UTC())
}

// queryCtx bounds one ClickHouse query: a context deadline plus the
// server-side max_execution_time, so a runaway query is stopped on both sides.
func (s *Service) queryCtx(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(parent, s.opts.Timeout)
	secs := int(s.opts.Timeout.Seconds())
	if secs < 1 {
		secs = 1
	}
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{
		"max_execution_time": secs,
	})), cancel
}

// queryError maps ClickHouse and context errors to problems: a timeout is a
// 504 with a stable code, anything else is returned for a 500.
func (s *Service) queryError(route string, err error) error {
	var ex *clickhouse.Exception
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ex) && ex.Code == 159) {
		s.metrics.timeouts.WithLabelValues(route).Inc()
		return httpapi.NewProblem(fiber.StatusGatewayTimeout, "query_timeout",
			fmt.Sprintf("the query took longer than %s; narrow the time range or add filters", s.opts.Timeout))
	}
	return fmt.Errorf("query %s: %w", route, err)
}

// audit writes one audit entry on behalf of the caller; failing to audit
// fails the request (nothing audited leaves without its entry).
func (s *Service) audit(ctx context.Context, c *fiber.Ctx, action, target string, details map[string]string) error {
	p := httpapi.Caller(c)
	actor := p.TokenID
	if actor == "" {
		actor = p.Name
	}
	e := audit.Entry{Actor: actor, Action: action, Target: target, Details: details, TsMs: s.opts.Now().UnixMilli()}
	if err := s.opts.Audit.Append(ctx, e); err != nil {
		s.opts.Logger.Error("audit append failed", "action", action, "err", err)
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable",
			"the audit log could not record this request, so it was not served")
	}
	return nil
}

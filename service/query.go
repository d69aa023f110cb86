package service

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/query"
	"github.com/keyfleet/keyfleet/query/retention"
	"github.com/keyfleet/keyfleet/query/rollup"
)

// QueryConfig configures the analyst query API, its rollups and retention.
type QueryConfig struct {
	Retention         []string
	RetentionInterval time.Duration
	RollupInterval    time.Duration
	Timeout           time.Duration
	ExportMaxRows     int64
}

// RegisterFlags defines the query API's flags.
func (q *QueryConfig) RegisterFlags(s *flagenv.Set) {
	s.List(&q.Retention, "retention", "KEYFLEET_RETENTION", nil,
		"per-table retention, comma-separated table=duration (e.g. access_events=400d,dead_letters=90d); "+
			"defaults: "+fmt.Sprint(retention.DefaultPolicy))
	s.Duration(&q.RetentionInterval, "retention-interval", "KEYFLEET_RETENTION_INTERVAL", time.Hour,
		"how often expired monthly partitions are dropped")
	s.Duration(&q.RollupInterval, "rollup-interval", "KEYFLEET_ROLLUP_INTERVAL", 10*time.Second,
		"how often the rollup job looks for newly inserted hours (an hour or day still open is recomputed at most every 5m / 1h)")
	s.Duration(&q.Timeout, "query-timeout", "KEYFLEET_QUERY_TIMEOUT", 10*time.Second,
		"time limit of each API query in ClickHouse")
	s.Int64(&q.ExportMaxRows, "export-max-rows", "KEYFLEET_EXPORT_MAX_ROWS", 50_000_000,
		"most events one export may stream")
}

// Validate checks the query configuration.
func (q *QueryConfig) Validate() error {
	var errs []error
	if _, err := retention.ParsePolicies(q.Retention); err != nil {
		errs = append(errs, fmt.Errorf("--retention: %w", err))
	}
	if q.RetentionInterval < time.Minute {
		errs = append(errs, fmt.Errorf("--retention-interval: %s is below 1m", q.RetentionInterval))
	}
	if q.RollupInterval < time.Second {
		errs = append(errs, fmt.Errorf("--rollup-interval: %s is below 1s", q.RollupInterval))
	}
	if q.Timeout < 100*time.Millisecond || q.Timeout > 10*time.Minute {
		errs = append(errs, fmt.Errorf("--query-timeout: %s is not in 100ms..10m", q.Timeout))
	}
	if q.ExportMaxRows < 1 {
		errs = append(errs, fmt.Errorf("--export-max-rows: %d must be positive", q.ExportMaxRows))
	}
	return errors.Join(errs...)
}

// queryPart is the query API wired into serve: its routes, its background
// jobs, and the OpenAPI document of the whole route table.
type queryPart struct {
	routes []httpapi.Route
	loops  []loop
	doc    *openapi.Document
	ops    []map[string]openapi.Operation
}

// queryDeps are what the query API needs from the rest of serve.
type queryDeps struct {
	conn       driver.Conn
	clickhouse chstorage.Config // where conn connects: exports open connections of their own (ch-go)
	tokens     *auth.Store
	audit      audit.Appender
	kpis       query.KPISource // the control plane's credential KPIs (nil: not wired)
	key        []byte          // pseudonym key; exports derive their own key from it
	logger     *slog.Logger
	reg        prometheus.Registerer
}

func setupQuery(cfg QueryConfig, d queryDeps) (*queryPart, error) {
	svc, err := query.New(query.Options{
		Conn: d.conn, ClickHouse: &d.clickhouse, Audit: d.audit, KPIs: d.kpis, ExportKey: d.key, Timeout: cfg.Timeout,
		ExportMaxRows: cfg.ExportMaxRows, Logger: d.logger, Registerer: d.reg,
	})
	if err != nil {
		return nil, err
	}
	policies, err := retention.ParsePolicies(cfg.Retention)
	if err != nil {
		return nil, fmt.Errorf("--retention: %w", err)
	}
	ret, err := retention.New(retention.Options{Conn: d.conn, Audit: d.audit, Policies: policies,
		Interval: cfg.RetentionInterval, Logger: d.logger, Registerer: d.reg})
	if err != nil {
		return nil, err
	}
	roll, err := rollup.New(rollup.Options{Conn: d.conn, Interval: cfg.RollupInterval, Logger: d.logger, Registerer: d.reg})
	if err != nil {
		return nil, err
	}
	tokenAPI, err := auth.NewAPI(d.tokens, d.audit)
	if err != nil {
		return nil, err
	}
	doc := &openapi.Document{}
	p := &queryPart{doc: doc, loops: []loop{{"rollup", roll.Run}, {"retention", ret.Run}},
		ops: []map[string]openapi.Operation{svc.Operations(), ret.Operations(), tokenAPI.Operations(), doc.Operations()}}
	p.routes = append(p.routes, svc.Routes()...)
	p.routes = append(p.routes, ret.Routes()...)
	p.routes = append(p.routes, tokenAPI.Routes()...)
	p.routes = append(p.routes, doc.Route())
	return p, nil
}

// document builds the OpenAPI document from serve's final route table and
// every part's operation descriptions (other is the other parts').
func (p *queryPart) document(routes []httpapi.Route, other ...map[string]openapi.Operation) error {
	return p.doc.Build(openapi.Info{Title: "keyfleet API", Version: "1",
		Description: "Analytics, anomaly detection and credential control for fleets of phone-based door keys. " +
			"Every route but /healthz, /readyz and the dashboards' shell needs Authorization: Bearer <token>; errors " +
			"are RFC 9457 problem documents with a stable code. docs/api.md describes the API in prose."},
		routes, append(append([]map[string]openapi.Operation{}, p.ops...), other...)...)
}

package service

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/dashboards"
	"github.com/keyfleet/keyfleet/dashboards/report"
	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// DashboardsConfig configures the dashboards and the weekly report schedule.
type DashboardsConfig struct {
	ReportSchedule bool
	ReportDay      string
	ReportTime     string
	ReportSites    []string
}

func (c *DashboardsConfig) registerFlags(s *flagenv.Set) {
	s.Bool(&c.ReportSchedule, "report-schedule", "KEYFLEET_REPORT_SCHEDULE", true,
		"generate and store the weekly fleet-health report of the previous ISO week on --report-day at --report-time")
	s.String(&c.ReportDay, "report-day", "KEYFLEET_REPORT_DAY", "monday", "weekday the weekly report is generated (UTC)")
	s.String(&c.ReportTime, "report-time", "KEYFLEET_REPORT_TIME", "06:00", "time of day (HH:MM, UTC) the weekly report is generated")
	s.List(&c.ReportSites, "report-sites", "KEYFLEET_REPORT_SITES", nil,
		"comma-separated sites that get their own weekly report besides the fleet-wide one")
}

func (c *DashboardsConfig) validate() error {
	var errs []error
	if _, err := report.ParseDay(c.ReportDay); err != nil {
		errs = append(errs, fmt.Errorf("--report-day: %w", err))
	}
	if _, err := report.ParseClock(c.ReportTime); err != nil {
		errs = append(errs, fmt.Errorf("--report-time: %w", err))
	}
	return errors.Join(errs...)
}

// dashboardsPart is the dashboards wired into serve: the static shell and
// data routes, the report routes, the ingest-health sampler and the report
// scheduler.
type dashboardsPart struct {
	routes []httpapi.Route
	ops    []map[string]openapi.Operation
	loops  []loop
}

// setupDashboards builds the dashboards and the weekly reports. reg is the
// process registry: ingest health reads the pipeline's metrics from it.
func setupDashboards(cfg DashboardsConfig, conn driver.Conn, reg *prometheus.Registry, sla time.Duration,
	expired detect.ExpiredRules, logger *slog.Logger, weakLinks report.EstateSource, instance string) (*dashboardsPart, error) {
	dash, err := dashboards.New(dashboards.Options{Conn: conn, Gatherer: reg, Logger: logger, Instance: instance})
	if err != nil {
		return nil, err
	}
	store := report.NewStore(conn)
	metrics := report.NewMetrics(reg)
	api, err := report.NewAPI(report.APIOptions{Conn: conn, Store: store, SLA: sla, Expired: expired, Estate: weakLinks, Logger: logger, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	part := &dashboardsPart{routes: append(dash.Routes(), api.Routes()...), loops: []loop{{"ingest-health", dash.Run}},
		ops: []map[string]openapi.Operation{dash.Operations(), api.Operations()}}
	if !cfg.ReportSchedule {
		return part, nil
	}
	day, err := report.ParseDay(cfg.ReportDay)
	if err != nil {
		return nil, fmt.Errorf("--report-day: %w", err)
	}
	at, err := report.ParseClock(cfg.ReportTime)
	if err != nil {
		return nil, fmt.Errorf("--report-time: %w", err)
	}
	sched, err := report.NewScheduler(report.SchedulerOptions{Conn: conn, Store: store, Day: day, At: at,
		Sites: cfg.ReportSites, SLA: sla, Expired: expired, Estate: weakLinks, Logger: logger.With("part", "reports"), Metrics: metrics})
	if err != nil {
		return nil, err
	}
	part.loops = append(part.loops, loop{"reports", sched.Run})
	return part, nil
}

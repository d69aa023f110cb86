package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/dashboards/report"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

// runReport implements `keyfleet report`: the weekly fleet-health report of
// an ISO week, read from ClickHouse directly (works while keyfleet is down),
// written to stdout or --out; --store also keeps it as GET /v1/reports lists.
func runReport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var ch chstorage.Config
	var week, site, format, out string
	var sla time.Duration
	var staleDays int
	var store bool
	fs := flagenv.New("report", "Weekly fleet-health report: KPIs of the week against the previous four, anomalies by detector,\n"+
		"stale credentials, exceptions past their end date, vendor/lock health.")
	fs.FlagSet().SetOutput(stderr)
	ch.RegisterFlags(fs)
	fs.String(&week, "week", "KEYFLEET_REPORT_WEEK", "",
		"ISO week, e.g. 2026-W47 (default: the last complete week, or the week in progress when the stored history began after it)")
	fs.String(&site, "site", "KEYFLEET_REPORT_SITE", "", "limit the access-derived sections to one site")
	fs.String(&format, "format", "KEYFLEET_REPORT_FORMAT", "md", "html, md, csv or json")
	fs.String(&out, "out", "KEYFLEET_REPORT_OUT", "", "write the report to this file instead of stdout")
	fs.Duration(&sla, "revocation-sla", "KEYFLEET_REVOCATION_SLA", 15*time.Minute,
		"how long a lock may take to confirm a revocation before it counts as overdue")
	fs.Int(&staleDays, "stale-days", "KEYFLEET_REPORT_STALE_DAYS", report.DefaultStaleDays,
		"an active credential unused this many days is stale")
	fs.Bool(&store, "store", "KEYFLEET_REPORT_STORE", false, "also store the report (listed by GET /v1/reports)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if len(fs.Args()) > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if !slices.Contains(report.Formats, format) {
		return usageError{fmt.Errorf("--format %q: want html, md, csv or json", format)}
	}
	if err := ch.Validate(); err != nil {
		return usageError{err}
	}
	now := time.Now()
	var w report.Week
	if week != "" {
		var err error
		if w, err = report.ParseWeek(week); err != nil {
			return usageError{fmt.Errorf("--week: %w", err)}
		}
		if w.Start().After(now) {
			return usageError{fmt.Errorf("--week: %s has not started yet", w)}
		}
	}
	if staleDays < 1 {
		return usageError{errors.New("--stale-days: must be positive")}
	}
	if sla <= 0 {
		return usageError{errors.New("--revocation-sla: must be positive")}
	}
	conn, err := chstorage.Open(ctx, ch)
	if err != nil {
		return err
	}
	defer conn.Close()
	if week == "" {
		if w, err = report.DefaultWeek(ctx, conn, now); err != nil {
			return err
		}
	}
	r, err := report.Generate(ctx, conn, report.Query{Week: w, Site: strings.TrimSpace(site), Now: now, SLA: sla, StaleDays: staleDays})
	if err != nil {
		return err
	}
	if store {
		if err := report.NewStore(conn).Put(ctx, r, report.TriggerCLI); err != nil {
			return err
		}
	}
	dst := stdout
	if out != "" {
		f, err := os.Create(out)
		if err != nil {
			return fmt.Errorf("--out: %w", err)
		}
		defer f.Close()
		dst = f
	}
	bw := bufio.NewWriter(dst)
	if err := report.Render(bw, r, format); err != nil {
		return err
	}
	return bw.Flush()
}

package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// Route paths.
const (
	PathWeekly    = "/v1/reports/weekly"
	PathMonthly   = "/v1/reports/monthly"
	PathQuarterly = "/v1/reports/quarterly"
	PathList      = "/v1/reports"
	PathOne       = "/v1/reports/:id"
)

// APIOptions configure the report routes.
type APIOptions struct {
	Conn    driver.Conn
	Store   *Store
	SLA     time.Duration
	Expired detect.ExpiredRules // the detectors' expired_exception rules (zero: their defaults)
	Estate  EstateSource        // the weak-link section (nil: none)
	Timeout time.Duration       // per request (default 2m: a report runs a few dozen queries)
	Now     func() time.Time
	Logger  *slog.Logger
	Metrics *Metrics
}

// API serves /v1/reports.
type API struct{ opts APIOptions }

// NewAPI returns the report routes' handlers.
func NewAPI(opts APIOptions) (*API, error) {
	if opts.Conn == nil || opts.Store == nil {
		return nil, errors.New("report API: Conn and Store are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &API{opts: opts}, nil
}

// Routes returns the report routes (managers; admin always). The weekly
// route is listed before /v1/reports/:id so it is matched first.
func (a *API) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: fiber.MethodGet, Path: PathWeekly, Roles: httpapi.ManageRoles, Handler: a.weekly, SiteScoped: true,
			Summary: "The weekly fleet-health report of an ISO week, computed now (week, site, format: json, md, csv, html); " +
				"default: the last complete week, or the week in progress when the stored history began after it."},
		{Method: fiber.MethodGet, Path: PathMonthly, Roles: httpapi.ManageRoles, Handler: a.periodic(KindMonth), SiteScoped: true,
			Summary: "The monthly fleet review of a calendar month, computed now: the weekly report's sections against the previous four months (month, site, format)."},
		{Method: fiber.MethodGet, Path: PathQuarterly, Roles: httpapi.ManageRoles, Handler: a.periodic(KindQuarter), SiteScoped: true,
			Summary: "The quarterly fleet review of a calendar quarter, computed now: the weekly report's sections against the previous four quarters (quarter, site, format)."},
		{Method: fiber.MethodGet, Path: PathList, Roles: httpapi.ManageRoles, Handler: a.list, SiteScoped: true,
			Summary: "Stored weekly reports (generated on schedule), newest week first (site, limit)."},
		{Method: fiber.MethodGet, Path: PathOne, Roles: httpapi.ManageRoles, Handler: a.get, SiteScoped: true,
			Summary: "One stored weekly report (format: json, md, csv, html)."},
	}
}

// reportSite is the site a report is about for the caller: the requested
// one (for a token limited to sites it must be one of them, else 403
// out_of_scope); a scoped token that names none gets the report of its
// only site, or must name one when it has several. scoped says the
// report must leave out the fleet-wide figures (Query.Scoped).
func reportSite(c *fiber.Ctx, requested string) (site string, scoped bool, err error) {
	p := httpapi.Caller(c)
	if !p.Scoped() {
		return requested, false, nil
	}
	sites, err := p.SiteFilter(requested)
	if err != nil {
		return "", true, err
	}
	if len(sites) != 1 {
		return "", true, httpapi.BadRequest("site", "this token is limited to several sites: name one with site")
	}
	return sites[0], true, nil
}

func format(v map[string]string) (string, error) {
	f := v["format"]
	if f == "" {
		return "json", nil
	}
	if !slices.Contains(Formats, f) {
		return "", httpapi.BadRequest("format", "format must be one of "+strings.Join(Formats, ", "))
	}
	return f, nil
}

// send renders r in the format. HTML gets a policy that keeps it inert
// (inline styles only: no scripts, no fetches).
func send(c *fiber.Ctx, r *Report, f string) error {
	var b bytes.Buffer
	if err := Render(&b, r, f); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, ContentType(f))
	if f == "html" {
		c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; style-src 'unsafe-inline'; img-src data:")
	}
	if f == "csv" || f == "md" {
		c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`inline; filename="keyfleet-report-%s.%s"`, strings.ReplaceAll(r.ID, "~", "-"), f))
	}
	return c.Send(b.Bytes())
}

func (a *API) weekly(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "week", "site", "format", "slices")
	if err != nil {
		return err
	}
	f, err := format(v)
	if err != nil {
		return err
	}
	slicers, err := slicersParam(v)
	if err != nil {
		return err
	}
	site, scoped, err := reportSite(c, v["site"])
	if err != nil {
		return err
	}
	now := a.opts.Now()
	ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
	defer cancel()
	var week Week
	if s := v["week"]; s != "" {
		if week, err = ParseWeek(s); err != nil {
			return httpapi.BadRequest("week", err.Error())
		}
	} else if week, err = DefaultWeek(ctx, a.opts.Conn, now); err != nil {
		return err
	}
	if week.Start().After(now) {
		return httpapi.BadRequest("week", "week "+week.String()+" has not started yet")
	}
	start := time.Now()
	r, err := Generate(ctx, a.opts.Conn, Query{Week: week, Site: site, Scoped: scoped, Now: now, SLA: a.opts.SLA, Expired: a.opts.Expired, Estate: a.opts.Estate,
		Slicers: slicers})
	a.opts.Metrics.observe(TriggerAPI, start, err)
	if err != nil {
		return err
	}
	return send(c, r, f)
}

// slicersParam reads the slices parameter: the report's slice tables, a
// comma-separated list of SliceDimensions (absent: DefaultSlicers).
func slicersParam(v map[string]string) ([]Slicer, error) {
	s := strings.TrimSpace(v["slices"])
	if s == "" {
		return nil, nil
	}
	var dims []string
	for _, d := range strings.Split(s, ",") {
		dims = append(dims, strings.TrimSpace(d))
	}
	out, err := SlicersFor(dims)
	if err != nil {
		return nil, httpapi.BadRequest("slices", err.Error())
	}
	return out, nil
}

// periodic serves the monthly or quarterly review of a period (the last
// complete one by default), computed on demand by the weekly generator.
func (a *API) periodic(kind string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		v, err := httpapi.QueryParams(c, kind, "site", "format", "slices")
		if err != nil {
			return err
		}
		f, err := format(v)
		if err != nil {
			return err
		}
		slicers, err := slicersParam(v)
		if err != nil {
			return err
		}
		site, scoped, err := reportSite(c, v["site"])
		if err != nil {
			return err
		}
		now := a.opts.Now()
		p := LastCompletePeriod(kind, now)
		if s := v[kind]; s != "" {
			if p, err = ParsePeriod(kind, s); err != nil {
				return httpapi.BadRequest(kind, err.Error())
			}
		}
		if p.Start().After(now) {
			return httpapi.BadRequest(kind, kind+" "+p.String()+" has not started yet")
		}
		ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
		defer cancel()
		start := time.Now()
		r, err := Generate(ctx, a.opts.Conn, Query{Period: p, Site: site, Scoped: scoped, Now: now, SLA: a.opts.SLA, Expired: a.opts.Expired, Estate: a.opts.Estate,
			Slicers: slicers})
		a.opts.Metrics.observe(TriggerAPI, start, err)
		if err != nil {
			return err
		}
		return send(c, r, f)
	}
}

func (a *API) list(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "site", "limit")
	if err != nil {
		return err
	}
	limit := 100
	if s := v["limit"]; s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > 1000 {
			return httpapi.BadRequest("limit", "limit must be an integer in 1..1000")
		}
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	p := httpapi.Caller(c)
	sites, err := p.SiteFilter(v["site"])
	if err != nil {
		return err
	}
	if len(sites) == 0 {
		sites = []string{""}
	}
	var list []Stored
	for _, site := range sites {
		l, err := a.opts.Store.List(ctx, site, limit)
		if err != nil {
			return err
		}
		list = append(list, l...)
	}
	if len(sites) > 1 {
		slices.SortStableFunc(list, func(x, y Stored) int { return strings.Compare(y.Week, x.Week) })
		list = list[:min(len(list), limit)]
	}
	if list == nil {
		list = []Stored{}
	}
	return c.JSON(fiber.Map{"reports": list, "count": len(list)})
}

func (a *API) get(c *fiber.Ctx) error {
	id, err := url.PathUnescape(c.Params("id"))
	wk, _, _ := strings.Cut(id, "~")
	if _, werr := ParseWeek(wk); err != nil || werr != nil || len(id) > 200 {
		return httpapi.BadRequest("id", "id must be a report id such as 2026-W47 or 2026-W47~site-a")
	}
	id = strings.Clone(id)
	v, err := httpapi.QueryParams(c, "format")
	if err != nil {
		return err
	}
	f, err := format(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	r, err := a.opts.Store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return httpapi.NewProblem(fiber.StatusNotFound, "report_not_found", "no stored report "+id)
	}
	if err != nil {
		return err
	}
	if p := httpapi.Caller(c); p.Scoped() {
		if !p.InScope(r.Site) {
			return httpapi.NewProblem(fiber.StatusNotFound, "report_not_found", "no stored report "+id)
		}
		r.Scope()
	}
	return send(c, r, f)
}

// Package report builds keyfleet's weekly fleet-health report: the week's
// KPIs against the previous four, anomalies by detector, revocations
// escalated past the SLA, the revocation drills and their trend, stale
// credentials, exceptions past their end date, the exception register and
// vendor/lock health, read from
// ClickHouse (dedup-safe) and from the control plane's KPIs
// (control/store.ComputeKPIs, so the report and GET /v1/kpis agree). It renders
// JSON, Markdown, CSV and HTML with inline SVG charts, stores generated
// reports, generates them on a schedule and serves /v1/reports.
//
// The report never reads a lack of data as a trend: each week says how much
// of it the stored history covers (WeekKPI.History), only weeks with their
// whole history are averaged and compared, and stale credentials count idle
// time only since the history began (as the stale_credential detector does).
// Exceptions past their end date are the expired_exception detector's own
// check (detect.CheckExpired) as of the end of the week or now, whichever is
// earlier. Per-site or per-vendor KPI tables plug in as Slicers.
package report

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/identity"
	idstore "github.com/keyfleet/keyfleet/identity/store"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Defaults of a Query.
const (
	DefaultStaleDays  = 90
	DefaultTop        = 5
	DefaultListLimit  = 100
	DefaultTrendWeeks = 4
	// TopLocks is how many locks the lock-health list keeps.
	TopLocks = 20
)

// Query selects one report.
type Query struct {
	Week Week
	// Period, when set, is what the report covers instead of Week (a month
	// or a quarter: the monthly and quarterly reviews).
	Period Period
	// Site limits the access-derived sections (events, anomalies, stale
	// credentials, exceptions, lock health) to one site; the control plane's
	// credential KPIs and the DLQ rate stay fleet-wide (see Report.Notes).
	Site string
	// Scoped makes the report the one a token limited to sites gets (issue
	// 19): Site is required and the fleet-wide figures are left out (see
	// Report.Scope).
	Scoped bool
	// Now is when the report is generated (default time.Now): it dates the
	// report and decides which lock revocations are past the SLA.
	Now time.Time
	// SLA is the revocation SLA (default control.DefaultPendingSLA).
	SLA time.Duration
	// StaleDays is how long an active credential must be unused to be
	// stale (default 90).
	StaleDays int
	// Top is how many subjects/doors/locks the top lists keep (default 5).
	Top int
	// ListLimit bounds the stale-credential and exception lists (default 100;
	// the totals count all of them).
	ListLimit int
	// Expired is the expired_exception detector's configuration (grace,
	// break-glass maximum); zero: the detector's defaults. Pass the rules
	// serve runs with so the report lists what the detector flags.
	Expired detect.ExpiredRules
	// Slicers add per-dimension KPI tables (per site, per vendor ...) to the
	// report, rendered after the headline KPIs in every format; nil means
	// DefaultSlicers (access by site and by vendor), empty means none.
	Slicers []Slicer
	// Estate gives the weak links for the estate section (nil: no section).
	Estate EstateSource
	// ExceptionWarn is how long before its expiry a recorded exception is
	// listed as expiring (default DefaultExceptionWarn).
	ExceptionWarn time.Duration
}

// Slicer computes one KPI table sliced by a dimension (site, vendor ...)
// for a report's period (q.Period, or q.Week), q.Site and q.Now say which.
type Slicer func(ctx context.Context, conn driver.Conn, q Query) (Slices, error)

// Slices is a KPI table by one dimension: a row per key (a site, a vendor),
// a column per KPI.
type Slices struct {
	Dimension string `json:"dimension"` // "site", "vendor", ...
	// Columns name the KPIs, in display order; Labels (same length, may be
	// empty) are their headings.
	Columns []string   `json:"columns"`
	Labels  []string   `json:"labels,omitempty"`
	Rows    []SliceRow `json:"rows"`
}

// SliceRow is one key's KPIs; a nil value has no data.
type SliceRow struct {
	Key    string     `json:"key"`
	Values []*float64 `json:"values"`
}

// EstateSource gives the weak links of the estate ranked by a range's
// traffic (estate/api.API implements it).
type EstateSource interface {
	WeakLinks(ctx context.Context, from, to time.Time, site string) (*estate.WeakLinkReport, error)
}

// EstateSection is the report's weak-link section: doors whose tier
// demands more than their lock can do, as the estate was registered when
// the report was generated, ranked by the week's traffic; Plan is the first
// TopLocks of the upgrade plan (critical doors first).
type EstateSection struct {
	Locks        int               `json:"locks"`
	Unclassified int               `json:"unclassified"`
	WeakLinks    int               `json:"weak_links"`
	ByTier       []TierCount       `json:"by_tier"`
	Plan         []estate.WeakLink `json:"plan"`
}

// TierCount is how many weak links one tier has.
type TierCount struct {
	Tier      int `json:"tier"`
	WeakLinks int `json:"weak_links"`
}

func (q *Query) defaults() {
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	if q.SLA <= 0 {
		q.SLA = control.DefaultPendingSLA
	}
	if q.StaleDays <= 0 {
		q.StaleDays = DefaultStaleDays
	}
	if q.Top <= 0 {
		q.Top = DefaultTop
	}
	if q.ListLimit <= 0 {
		q.ListLimit = DefaultListLimit
	}
	if q.Expired == (detect.ExpiredRules{}) {
		q.Expired = detect.DefaultRules().Detectors.ExpiredException
	}
	if q.ExceptionWarn <= 0 {
		q.ExceptionWarn = DefaultExceptionWarn
	}
}

// period is what the report covers.
func (q *Query) period() Period {
	if q.Period != nil {
		return q.Period
	}
	return q.Week
}

// asOf is when a week's point-in-time numbers (stale credentials, open
// exceptions) are taken: its end, or now for a week still in progress.
func (q *Query) asOf(w Period) time.Time {
	if end := w.End(); q.Now.Before(end) {
		return q.Now
	}
	return w.End()
}

// ID is the stored id of the report of a week (and site).
func ID(w Period, site string) string {
	if site == "" {
		return w.String()
	}
	return w.String() + "~" + site
}

// Report is the weekly fleet-health report. JSON names are a contract
// (stored reports, GET /v1/reports/*).
type Report struct {
	ID   string `json:"report_id"`
	Week string `json:"week"`
	// Period is month or quarter for the monthly and quarterly reviews
	// (Week and the trend's week then name months or quarters); absent for
	// the weekly report.
	Period      string    `json:"period,omitempty"`
	Site        string    `json:"site,omitempty"`
	FromMs      int64     `json:"from_ms"`
	ToMs        int64     `json:"to_ms"`
	GeneratedMs int64     `json:"generated_ms"`
	StaleDays   int       `json:"stale_days"`
	SLASeconds  float64   `json:"revocation_sla_s"`
	Weeks       []WeekKPI `json:"weeks"` // oldest first; the last is the report's week
	Anomalies   Anomalies `json:"anomalies"`
	// Regressions are the period's regression alerts (device or lock
	// slices whose denial share jumped), newest first; omitted when none.
	Regressions []RegressionAlert `json:"regressions,omitempty"`
	// Escalated are the week's revocations escalated past the SLA (alert
	// revocation_overdue), at most ListLimit, newest first.
	Escalated []Escalated `json:"escalated_revocations"`
	// Drills are the week's revocation drills (keyfleet drill), newest
	// first; their trend is in Weeks.
	Drills     []control.DrillRun `json:"drills"`
	Stale      CredList           `json:"stale_credentials"`
	Expired    CredList           `json:"expired_exceptions"`
	LockHealth Health             `json:"lock_health"`
	// HistoryFromMs is when the stored access history begins (the oldest
	// stored event's second; 0: no events stored).
	HistoryFromMs int64 `json:"history_from_ms"`
	// ExpiredAsOfMs is when the open exceptions were judged: the week's end,
	// or the generation time for a week in progress.
	ExpiredAsOfMs int64          `json:"expired_as_of_ms"`
	Slices        []Slices       `json:"slices,omitempty"`
	Estate        *EstateSection `json:"estate,omitempty"`
	// Register is the exception register's section (package exception).
	Register *ExceptionSection `json:"exception_register"`
	Notes    []string          `json:"notes,omitempty"`
	// SiteScoped says the report is the one a token limited to sites gets:
	// the fleet-wide figures (credential KPIs, drills, escalated
	// revocations, DLQ rate, regressions) are left out (Report.Scope).
	SiteScoped bool `json:"site_scoped,omitempty"`
}

// How much of a week the stored history covers.
const (
	HistoryFull    = "full"    // the history began before the week
	HistoryPartial = "partial" // it began during the week
	HistoryNone    = "none"    // it began after the week, or nothing is stored
)

// Current is the KPIs of the report's own week.
func (r *Report) Current() *WeekKPI { return &r.Weeks[len(r.Weeks)-1] }

// WeekKPI is one week's KPIs. The credential KPIs are control/store.ComputeKPIs'
// over the week (the numbers GET /v1/kpis gives for the same range).
type WeekKPI struct {
	Week   string `json:"week"`
	FromMs int64  `json:"from_ms"`
	ToMs   int64  `json:"to_ms"`
	// History says how much of the week the stored history covers (full,
	// partial, none); only full weeks are compared.
	History           string             `json:"history"`
	Activation        control.Activation `json:"activation"`
	TimeToIssue       control.Quantiles  `json:"time_to_issue"`
	RevocationLatency control.Quantiles  `json:"revocation_latency"`
	// LeaverLatency: identity sync's leavers whose identity change fell in
	// the week, from the change to the last lock confirming the revocation
	// (identity/store.LeaverKPI, as GET /v1/kpis gives it).
	LeaverLatency identity.LeaverLatency `json:"leaver_latency"`
	Exceptions    control.Exceptions     `json:"exceptions"`
	PendingLocks  int                    `json:"pending_locks"`
	// StaleCredentials: active at the week's end (or now) and neither used
	// nor changed for StaleDays, idle time counted from the history's start
	// at the earliest.
	StaleCredentials int `json:"stale_credentials"`
	// Events: distinct access events of the week (site-scoped with a site).
	Events uint64 `json:"events"`
	Denied uint64 `json:"denied"`
	// DeadLetters and DLQRate are fleet-wide: dead letters / (events +
	// dead letters), as GET /v1/kpis computes it.
	DeadLetters uint64  `json:"dead_letters"`
	DLQRate     float64 `json:"dlq_rate"`
	Alerts      uint64  `json:"alerts"`
	BatteryLow  uint64  `json:"battery_low"`
	Offline     uint64  `json:"offline"`
	LockJammed  uint64  `json:"lock_jammed"`
	// Escalations: revocations requested in the week and escalated past the
	// SLA; ACLDrifts: full ACL resyncs after a lock reported drift.
	Escalations int `json:"escalations"`
	ACLDrifts   int `json:"acl_drifts"`
	// Drills run in the week; their locks confirmed out of those told, and
	// the worst per-lock p99 time to confirm (ms; -1 without a drill).
	Drills            int   `json:"drills"`
	DrillLocks        int   `json:"drill_locks"`
	DrillConfirmed    int   `json:"drill_confirmed"`
	DrillConfirmP99Ms int64 `json:"drill_confirm_p99_ms"`
}

// Escalated is a revocation escalated past the SLA.
type Escalated struct {
	RevocationID string `json:"revocation_id"`
	Scope        string `json:"scope"`
	SubjectID    string `json:"subject_id"`
	RequestedMs  int64  `json:"requested_ms"`
	EscalatedMs  int64  `json:"escalated_ms"`
	AlertID      string `json:"alert_id"`
	// PendingLocks are the locks still unconfirmed when the report was
	// generated (0: confirmed since).
	PendingLocks int `json:"pending_locks"`
}

// RegressionAlert is one regression alert as the report lists it.
type RegressionAlert struct {
	AlertID         string  `json:"alert_id"`
	TsMs            int64   `json:"ts_ms"`
	Severity        string  `json:"severity"`
	Status          string  `json:"status"`
	DeniedShare     float64 `json:"denied_share"`
	BaselineShare   float64 `json:"baseline_share"`
	Explanation     string  `json:"explanation"`
	SuggestedAction string  `json:"suggested_action"`
}

var regressionsSQL = chstorage.Query("report/regressions")

// regressions lists the period's regression alerts (fleet-wide: a
// site-scoped report has none).
func (g *gen) regressions(ctx context.Context, from, to time.Time) ([]RegressionAlert, error) {
	if g.q.Site != "" {
		return nil, nil
	}
	args := chstorage.Args{"from": secs(from), "to": secs(to), "from_ms": from.UnixMilli(), "to_ms": to.UnixMilli(),
		"limit": uint32(g.q.ListLimit)}
	rows, err := regressionsSQL.Query(ctx, g.conn, args)
	if err != nil {
		return nil, fmt.Errorf("regressions: %w", err)
	}
	defer rows.Close()
	var out []RegressionAlert
	for rows.Next() {
		var a RegressionAlert
		if err := rows.Scan(&a.AlertID, &a.TsMs, &a.Severity, &a.Status, &a.DeniedShare, &a.BaselineShare, &a.Explanation,
			&a.SuggestedAction); err != nil {
			return nil, fmt.Errorf("regressions: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("regressions: %w", err)
	}
	return out, nil
}

// Anomalies are the week's alerts by detector.
type Anomalies struct {
	Total     uint64          `json:"total"`
	Detectors []DetectorCount `json:"detectors"`
}

// DetectorCount is one detector's alerts in the week.
type DetectorCount struct {
	Detector    string            `json:"detector"`
	Alerts      uint64            `json:"alerts"`
	Open        uint64            `json:"open"`
	BySeverity  map[string]uint64 `json:"by_severity"`
	TopSubjects []KeyCount        `json:"top_subjects"`
	TopDoors    []KeyCount        `json:"top_doors"`
}

// KeyCount is a key and how often it occurs.
type KeyCount struct {
	Key   string `json:"key"`
	Count uint64 `json:"count"`
}

// CredList is a bounded list of credentials and the total.
type CredList struct {
	Total       int       `json:"total"`
	Credentials []CredRow `json:"credentials"`
}

// CredRow is a credential in a report list.
type CredRow struct {
	CredentialID string `json:"credential_id"`
	SubjectID    string `json:"subject_id"`
	Role         string `json:"role"`
	SiteID       string `json:"site_id"`
	State        string `json:"state"`
	// LastUseMs is the last granted use (0: none in the look-back).
	LastUseMs int64 `json:"last_use_ms"`
	// Severity is the expired_exception detector's (raised one step for a
	// use after the end date); empty for stale credentials.
	Severity string `json:"severity,omitempty"`
	// SinceMs: stale — idle since (last use or change); expired — the end date.
	SinceMs    int64   `json:"since_ms"`
	Days       float64 `json:"days"` // idle days, or days past the end date
	BreakGlass bool    `json:"break_glass,omitempty"`
	Exception  bool    `json:"exception,omitempty"`
}

// Health is vendor and lock health: battery_low, offline and lock_jammed
// events of the week.
type Health struct {
	Vendors []VendorHealth `json:"vendors"`
	Locks   []LockHealth   `json:"locks"` // the locks with the most such events
}

// VendorHealth counts health events of one vendor's locks.
type VendorHealth struct {
	Vendor      string `json:"vendor"`
	BatteryLow  uint64 `json:"battery_low"`
	Offline     uint64 `json:"offline"`
	LockJammed  uint64 `json:"lock_jammed"`
	LocksAffect uint64 `json:"locks_affected"`
}

// LockHealth counts health events of one lock.
type LockHealth struct {
	Vendor     string `json:"vendor"`
	SiteID     string `json:"site_id"`
	DoorID     string `json:"door_id"`
	LockID     string `json:"lock_id"`
	BatteryLow uint64 `json:"battery_low"`
	Offline    uint64 `json:"offline"`
	LockJammed uint64 `json:"lock_jammed"`
	Total      uint64 `json:"total"`
}

// live are the credential states that still grant (or may grant) access.
var live = []string{"issued", "pending_activation", "active", "suspended"}

// Generate computes the report of q.Week from ClickHouse.
func Generate(ctx context.Context, conn driver.Conn, q Query) (*Report, error) {
	if conn == nil {
		return nil, errors.New("report: no ClickHouse connection")
	}
	if q.Scoped && q.Site == "" {
		return nil, errors.New("report: a site-scoped report needs a site")
	}
	q.defaults()
	p := q.period()
	r := &Report{
		ID: ID(p, q.Site), Week: p.String(), Site: q.Site,
		FromMs: p.Start().UnixMilli(), ToMs: p.End().UnixMilli(), GeneratedMs: q.Now.UnixMilli(),
		StaleDays: q.StaleDays, SLASeconds: q.SLA.Seconds(),
	}
	if p.Kind() != KindWeek {
		r.Period = p.Kind()
	}
	history, err := HistoryStart(ctx, conn)
	if err != nil {
		return nil, err
	}
	r.HistoryFromMs = history.UnixMilli()
	if history.IsZero() {
		r.HistoryFromMs = 0
	}
	g := gen{conn: conn, q: q, history: r.HistoryFromMs}
	for i := DefaultTrendWeeks; i >= 0; i-- {
		w := p.Prev(i)
		k, err := g.week(ctx, w)
		if err != nil {
			return nil, fmt.Errorf("report %s: %w", w, err)
		}
		r.Weeks = append(r.Weeks, *k)
	}
	if err := g.access(ctx, r.Weeks); err != nil {
		return nil, err
	}
	from, to := p.Start(), p.End()
	ends := make([]time.Time, len(r.Weeks))
	for i := range r.Weeks {
		ends[i] = q.asOf(p.Prev(DefaultTrendWeeks - i))
	}
	counts, stale, lastUse, err := g.stale(ctx, ends)
	if err != nil {
		return nil, err
	}
	for i := range r.Weeks {
		r.Weeks[i].StaleCredentials = counts[i]
	}
	r.Stale = stale
	if r.Anomalies, err = g.anomalies(ctx, from, to); err != nil {
		return nil, err
	}
	if r.Regressions, err = g.regressions(ctx, from, to); err != nil {
		return nil, err
	}
	if r.Escalated, err = g.escalated(ctx, from, to); err != nil {
		return nil, err
	}
	if r.Drills, err = store.Drills(ctx, g.conn, store.DrillQuery{From: from, To: to, Limit: g.q.ListLimit}); err != nil {
		return nil, err
	}
	asOf := q.asOf(p)
	r.ExpiredAsOfMs = asOf.UnixMilli()
	if r.Expired, err = g.expired(ctx, asOf, lastUse); err != nil {
		return nil, err
	}
	if r.LockHealth, err = g.health(ctx, from, to); err != nil {
		return nil, err
	}
	if r.Register, err = g.exceptions(ctx, from, to); err != nil {
		return nil, err
	}
	slicers := q.Slicers
	if slicers == nil {
		slicers = DefaultSlicers
	}
	for _, slice := range slicers {
		sl, err := slice(ctx, conn, q)
		if err != nil {
			return nil, fmt.Errorf("report slices: %w", err)
		}
		if len(sl.Rows) == 0 && optionalDims[sl.Dimension] {
			continue // no event of the period knows this device or lock dimension
		}
		r.Slices = append(r.Slices, sl)
	}
	if q.Estate != nil {
		if r.Estate, err = estateSection(ctx, q.Estate, from, to, q.Site); err != nil {
			return nil, err
		}
	}
	if q.Site != "" && !q.Scoped {
		r.Notes = append(r.Notes, "Credential KPIs (activation, time to issue, revocation latency, exceptions, "+
			"pending locks) and the DLQ rate are fleet-wide; the other sections are limited to site "+q.Site+".")
	}
	if q.Now.Before(to) {
		r.Notes = append(r.Notes, "The "+p.Kind()+" was not over when this report was generated; its numbers are partial.")
	}
	if n := r.historyNote(); n != "" {
		r.Notes = append(r.Notes, n)
	}
	if q.Scoped {
		r.Scope()
	}
	return r, nil
}

// historyNote explains weeks the stored history does not cover.
func (r *Report) historyNote() string {
	if r.HistoryFromMs == 0 {
		return "No access events are stored yet: there is nothing to compare."
	}
	full := 0
	for _, w := range r.Weeks[:len(r.Weeks)-1] {
		if w.History == HistoryFull {
			full++
		}
	}
	if full == len(r.Weeks)-1 && r.Current().History == HistoryFull {
		return ""
	}
	since := time.UnixMilli(r.HistoryFromMs).UTC().Format("2006-01-02 15:04")
	switch {
	case r.Current().History != HistoryFull:
		return "The stored history begins " + since + " UTC, within or after this week: there is not enough history " +
			"for comparisons, and stale credentials count idle time since then only."
	case full == 0:
		return "The stored history begins " + since + " UTC: no earlier week has its whole history, so nothing is compared."
	}
	return fmt.Sprintf("The stored history begins %s UTC: the averages use the %d earlier week(s) with their whole history.",
		since, full)
}

// HistoryStart returns when the stored access history begins: the oldest
// second of the access_events parts (zero time when none are stored). It
// reads part metadata, not the events.
func HistoryStart(ctx context.Context, conn driver.Conn) (time.Time, error) {
	var secs uint32
	var parts uint64
	if err := historySQL.QueryRow(ctx, conn, chstorage.Args{}).Scan(&secs, &parts); err != nil {
		return time.Time{}, fmt.Errorf("history start: %w", err)
	}
	if parts == 0 || secs == 0 {
		return time.Time{}, nil
	}
	return time.Unix(int64(secs), 0).UTC(), nil
}

// DefaultWeek is the week a report is about when none is named: the last
// complete ISO week, or the week in progress when the stored history began
// after the last complete week ended (a fresh deployment, make run).
func DefaultWeek(ctx context.Context, conn driver.Conn, now time.Time) (Week, error) {
	last := LastComplete(now)
	history, err := HistoryStart(ctx, conn)
	if err != nil {
		return last, err
	}
	if !history.IsZero() && !history.Before(last.End()) {
		return WeekOf(now), nil
	}
	return last, nil
}

// escalated reads the week's escalated revocations and how many of their
// locks are still unconfirmed.
func (g *gen) escalated(ctx context.Context, from, to time.Time) ([]Escalated, error) {
	rows, err := escalatedSQL.Query(ctx, g.conn, chstorage.Args{"from": secs(from), "to": secs(to),
		"from_ms": from.UnixMilli(), "to_ms": to.UnixMilli(), "limit": uint32(g.q.ListLimit)})
	if err != nil {
		return nil, fmt.Errorf("escalated revocations: %w", err)
	}
	defer rows.Close()
	out := []Escalated{}
	for rows.Next() {
		var e Escalated
		var pending uint64
		if err := rows.Scan(&e.RevocationID, &e.Scope, &e.SubjectID, &e.RequestedMs, &e.EscalatedMs, &e.AlertID, &pending); err != nil {
			return nil, fmt.Errorf("escalated revocations: %w", err)
		}
		e.PendingLocks = int(pending)
		out = append(out, e)
	}
	return out, rows.Err()
}

// gen runs the report's queries.
type gen struct {
	conn    driver.Conn
	q       Query
	history int64 // HistoryFromMs
}

// coverage says how much of [from, to) the stored history covers.
func (g *gen) coverage(from, to int64) string {
	switch {
	case g.history == 0 || g.history >= to:
		return HistoryNone
	case g.history > from:
		return HistoryPartial
	}
	return HistoryFull
}

// rangeArgs are the arguments of a statement over [from, to): the
// whole-second bounds on ts (partition pruning), the exact ones on ts_ms,
// and the site (empty: every site).
func (g *gen) rangeArgs(from, to time.Time) chstorage.Args {
	return chstorage.Args{"from": secs(from), "to": secs(to), "from_ms": from.UnixMilli(), "to_ms": to.UnixMilli(),
		"site": g.q.Site}
}

var (
	weekDeadLettersSQL = chstorage.Query("report/week_dead_letters")
	weekAlertsSQL      = chstorage.Query("report/week_alerts")
	weeklyAccessSQL    = chstorage.Query("report/weekly_access")
	anomaliesSQL       = chstorage.Query("report/anomalies")
	anomaliesTopSQL    = chstorage.Query("report/anomalies_top")
	lastUsesSQL        = chstorage.Query("report/credential_last_uses")
	staleSQL           = chstorage.Query("report/stale_candidates")
	expiredSQL         = chstorage.Query("report/expired")
	escalatedSQL       = chstorage.Query("report/escalated")
	vendorHealthSQL    = chstorage.Query("report/vendor_health")
	lockHealthSQL      = chstorage.Query("report/lock_health")
	historySQL         = chstorage.Query("report/history_start")
)

func secs(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

func (g *gen) week(ctx context.Context, w Period) (*WeekKPI, error) {
	from, to := w.Start(), w.End()
	k := &WeekKPI{Week: w.String(), FromMs: from.UnixMilli(), ToMs: to.UnixMilli(), History: g.coverage(from.UnixMilli(), to.UnixMilli())}
	cred, err := store.ComputeKPIs(ctx, g.conn, control.KPIQuery{From: from, To: to, SLA: g.q.SLA, Now: g.q.Now})
	if err != nil {
		return nil, err
	}
	k.Activation, k.TimeToIssue, k.RevocationLatency = cred.Activation, cred.TimeToIssue, cred.RevocationLatency
	k.Exceptions, k.PendingLocks = cred.Exceptions, cred.PendingLocks.Count
	k.Escalations, k.ACLDrifts = cred.Escalations.Count, cred.ACLDrift.Drifts
	drills, err := store.Drills(ctx, g.conn, store.DrillQuery{From: from, To: to, Limit: 1000})
	if err != nil {
		return nil, err
	}
	k.Drills, k.DrillConfirmP99Ms = len(drills), -1
	for _, d := range drills {
		k.DrillLocks += d.Locks
		k.DrillConfirmed += d.Confirmed
		k.DrillConfirmP99Ms = max(k.DrillConfirmP99Ms, d.ConfirmP99Ms)
	}
	if k.LeaverLatency, err = idstore.LeaverKPI(ctx, g.conn, from, to); err != nil {
		return nil, err
	}

	args := g.rangeArgs(from, to)
	dlArgs := chstorage.Args{"from": args["from"], "to": args["to"], "from_ms": args["from_ms"], "to_ms": args["to_ms"]}
	if err := weekDeadLettersSQL.QueryRow(ctx, g.conn, dlArgs).Scan(&k.DeadLetters); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	if err := weekAlertsSQL.QueryRow(ctx, g.conn, args).Scan(&k.Alerts); err != nil {
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return k, nil
}

// access fills the weeks' access-event counts and DLQ rates with one scan
// of access_events over all the weeks (its sorting key leads with site and
// door, so a time range reads whole partitions: one pass, not one per week).
// Counts are of distinct event ids: access_events may hold re-delivered
// duplicates until a merge.
func (g *gen) access(ctx context.Context, weeks []WeekKPI) error {
	from, to := time.UnixMilli(weeks[0].FromMs), time.UnixMilli(weeks[len(weeks)-1].ToMs)
	args := g.rangeArgs(from, to)
	starts := make([]int64, len(weeks))
	for i := range weeks {
		starts[i] = weeks[i].FromMs
	}
	args["starts"] = starts
	rows, err := weeklyAccessSQL.Query(ctx, g.conn, args)
	if err != nil {
		return fmt.Errorf("access events: %w", err)
	}
	defer rows.Close()
	fleet := make([]uint64, len(weeks))
	for rows.Next() {
		var w int64
		var all uint64
		var k WeekKPI
		if err := rows.Scan(&w, &all, &k.Events, &k.Denied, &k.BatteryLow, &k.Offline, &k.LockJammed); err != nil {
			return fmt.Errorf("access events: %w", err)
		}
		if w < 0 || int(w) >= len(weeks) {
			continue
		}
		dst := &weeks[w]
		dst.Events, dst.Denied, dst.BatteryLow, dst.Offline, dst.LockJammed = k.Events, k.Denied, k.BatteryLow, k.Offline, k.LockJammed
		fleet[w] = all
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("access events: %w", err)
	}
	for i := range weeks {
		if t := fleet[i] + weeks[i].DeadLetters; t > 0 {
			weeks[i].DLQRate = float64(weeks[i].DeadLetters) / float64(t)
		}
	}
	return nil
}

func (g *gen) anomalies(ctx context.Context, from, to time.Time) (Anomalies, error) {
	out := Anomalies{Detectors: []DetectorCount{}}
	rows, err := anomaliesSQL.Query(ctx, g.conn, g.rangeArgs(from, to))
	if err != nil {
		return out, fmt.Errorf("anomalies: %w", err)
	}
	byDet := map[string]*DetectorCount{}
	for rows.Next() {
		var det, sev string
		var n, open uint64
		if err := rows.Scan(&det, &sev, &n, &open); err != nil {
			rows.Close()
			return out, fmt.Errorf("anomalies: %w", err)
		}
		d := byDet[det]
		if d == nil {
			d = &DetectorCount{Detector: det, BySeverity: map[string]uint64{}, TopSubjects: []KeyCount{}, TopDoors: []KeyCount{}}
			byDet[det] = d
		}
		d.Alerts += n
		d.Open += open
		d.BySeverity[sev] += n
		out.Total += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("anomalies: %w", err)
	}
	for _, col := range []string{"subject_id", "door_id"} {
		args := g.rangeArgs(from, to)
		args["key"], args["top"] = col, g.q.Top
		rows, err := anomaliesTopSQL.Query(ctx, g.conn, args)
		if err != nil {
			return out, fmt.Errorf("anomalies top %s: %w", col, err)
		}
		for rows.Next() {
			var det, key string
			var n uint64
			if err := rows.Scan(&det, &key, &n); err != nil {
				rows.Close()
				return out, fmt.Errorf("anomalies top %s: %w", col, err)
			}
			if d := byDet[det]; d != nil {
				if col == "subject_id" {
					d.TopSubjects = append(d.TopSubjects, KeyCount{key, n})
				} else {
					d.TopDoors = append(d.TopDoors, KeyCount{key, n})
				}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return out, fmt.Errorf("anomalies top %s: %w", col, err)
		}
	}
	for _, d := range byDet {
		out.Detectors = append(out.Detectors, *d)
	}
	sort.Slice(out.Detectors, func(i, j int) bool {
		a, b := out.Detectors[i], out.Detectors[j]
		if a.Alerts != b.Alerts {
			return a.Alerts > b.Alerts
		}
		return a.Detector < b.Detector
	})
	return out, nil
}

// stale counts, for each week end (or now), the credentials active at that
// time and neither used (a granted access) nor changed for StaleDays, and
// lists those of the last week end, idle longest first. Idle time counts
// from the history's start at the earliest (uses before it are unknown),
// as the stale_credential detector counts it. One scan of the access events
// finds every credential's last use before each week end (uses are looked
// up from the earliest cutoff on only); the credential states come from the
// small credential_events table. lastUse maps a credential to its last use
// before each end (for the exception list).
func (g *gen) stale(ctx context.Context, ends []time.Time) ([]int, CredList, map[string][]int64, error) {
	out := CredList{Credentials: []CredRow{}}
	counts := make([]int, len(ends))
	idle := time.Duration(g.q.StaleDays) * 24 * time.Hour
	first, last := ends[0].Add(-idle), ends[len(ends)-1]
	// One maxIf per week end: the ends' number varies, so code builds the list.
	uses := chstorage.Fragment{SQL: strings.TrimSuffix(strings.Repeat("maxIf(ts_ms, ts_ms < ?), ", len(ends)), ", ")}
	for _, end := range ends {
		uses.Args = append(uses.Args, end.UnixMilli())
	}
	args := g.rangeArgs(first, last)
	args["uses"] = uses
	rows, err := lastUsesSQL.Query(ctx, g.conn, args)
	if err != nil {
		return nil, out, nil, fmt.Errorf("credential uses: %w", err)
	}
	lastUse := map[string][]int64{}
	for rows.Next() {
		var id string
		uses := make([]int64, len(ends))
		dst := []any{&id}
		for i := range uses {
			dst = append(dst, &uses[i])
		}
		if err := rows.Scan(dst...); err != nil {
			rows.Close()
			return nil, out, nil, fmt.Errorf("credential uses: %w", err)
		}
		lastUse[id] = uses
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, out, nil, fmt.Errorf("credential uses: %w", err)
	}
	for i, end := range ends {
		if g.history == 0 || end.UnixMilli() <= g.history {
			continue // no history: nothing is known to be idle
		}
		cutoff := end.Add(-idle).UnixMilli()
		rows, err := staleSQL.Query(ctx, g.conn, chstorage.Args{"end_ms": end.UnixMilli(), "cutoff_ms": cutoff, "site": g.q.Site})
		if err != nil {
			return nil, out, nil, fmt.Errorf("stale credentials: %w", err)
		}
		for rows.Next() {
			var c CredRow
			if err := rows.Scan(&c.CredentialID, &c.SubjectID, &c.Role, &c.SiteID, &c.SinceMs); err != nil {
				rows.Close()
				return nil, out, nil, fmt.Errorf("stale credentials: %w", err)
			}
			if u := lastUse[c.CredentialID]; u != nil && u[i] > 0 {
				if u[i] >= cutoff {
					continue // used within the idle period
				}
				c.LastUseMs = u[i]
				c.SinceMs = max(c.SinceMs, u[i])
			}
			if max(c.SinceMs, g.history) >= cutoff {
				continue // idle as far as the history shows, but not for long enough
			}
			counts[i]++
			if i == len(ends)-1 {
				c.State = "active"
				c.Days = days(end.UnixMilli() - max(c.SinceMs, g.history))
				out.Credentials = append(out.Credentials, c)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, out, nil, fmt.Errorf("stale credentials: %w", err)
		}
	}
	sort.Slice(out.Credentials, func(a, b int) bool {
		x, y := out.Credentials[a], out.Credentials[b]
		if x.SinceMs != y.SinceMs {
			return x.SinceMs < y.SinceMs
		}
		return x.CredentialID < y.CredentialID
	})
	out.Total = counts[len(ends)-1]
	if len(out.Credentials) > g.q.ListLimit {
		out.Credentials = out.Credentials[:g.q.ListLimit]
	}
	return counts, out, lastUse, nil
}

// expired lists the exceptions past their end date as of asOf, by the
// expired_exception detector's own check (detect.CheckExpired): a live
// credential (issued, pending_activation, active, suspended) whose end date
// — valid_until, or for break-glass without one its first activation plus
// the break-glass maximum — lies more than the grace before asOf. One query
// reads every candidate; the total and the list come from the same rows.
// lastUse (from stale) raises the severity of one used after its end.
func (g *gen) expired(ctx context.Context, asOf time.Time, lastUse map[string][]int64) (CredList, error) {
	out := CredList{Credentials: []CredRow{}}
	rows, err := expiredSQL.Query(ctx, g.conn, chstorage.Args{"to_ms": asOf.UnixMilli(), "live": live, "site": g.q.Site})
	if err != nil {
		return out, fmt.Errorf("expired exceptions: %w", err)
	}
	defer rows.Close()
	now := asOf.UnixMilli()
	for rows.Next() {
		var c CredRow
		var bg, exc uint8
		var v detect.CredentialView
		if err := rows.Scan(&c.CredentialID, &c.SubjectID, &c.Role, &c.SiteID, &c.State, &v.StateSinceMs,
			&v.ValidUntilMs, &bg, &exc, &v.ActiveSinceMs); err != nil {
			return out, fmt.Errorf("expired exceptions: %w", err)
		}
		v.CredentialID, v.SubjectID, v.Role, v.SiteID, v.State = c.CredentialID, c.SubjectID, c.Role, c.SiteID, c.State
		v.BreakGlass = bg == 1
		if u := lastUse[c.CredentialID]; u != nil {
			v.LastUseMs = u[len(u)-1]
		}
		a, ok := detect.CheckExpired(&g.q.Expired, v, now)
		if !ok {
			continue
		}
		c.BreakGlass, c.Exception = v.BreakGlass, exc == 1
		c.SinceMs = a.WindowStartMs // the end date
		c.LastUseMs = v.LastUseMs
		c.Severity = a.Severity
		c.Days = days(now - c.SinceMs)
		out.Credentials = append(out.Credentials, c)
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("expired exceptions: %w", err)
	}
	sort.Slice(out.Credentials, func(a, b int) bool {
		x, y := out.Credentials[a], out.Credentials[b]
		if x.SinceMs != y.SinceMs {
			return x.SinceMs < y.SinceMs
		}
		return x.CredentialID < y.CredentialID
	})
	out.Total = len(out.Credentials)
	if len(out.Credentials) > g.q.ListLimit {
		out.Credentials = out.Credentials[:g.q.ListLimit]
	}
	return out, nil
}

func days(ms int64) float64 { return float64(ms/(3_600_000)) / 24 }

func (g *gen) health(ctx context.Context, from, to time.Time) (Health, error) {
	out := Health{Vendors: []VendorHealth{}, Locks: []LockHealth{}}
	args := g.rangeArgs(from, to)
	rows, err := vendorHealthSQL.Query(ctx, g.conn, args)
	if err != nil {
		return out, fmt.Errorf("vendor health: %w", err)
	}
	for rows.Next() {
		var v VendorHealth
		if err := rows.Scan(&v.Vendor, &v.BatteryLow, &v.Offline, &v.LockJammed, &v.LocksAffect); err != nil {
			rows.Close()
			return out, fmt.Errorf("vendor health: %w", err)
		}
		out.Vendors = append(out.Vendors, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("vendor health: %w", err)
	}
	args["limit"] = TopLocks
	rows, err = lockHealthSQL.Query(ctx, g.conn, args)
	if err != nil {
		return out, fmt.Errorf("lock health: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var l LockHealth
		if err := rows.Scan(&l.Vendor, &l.SiteID, &l.DoorID, &l.LockID, &l.BatteryLow, &l.Offline, &l.LockJammed, &l.Total); err != nil {
			return out, fmt.Errorf("lock health: %w", err)
		}
		out.Locks = append(out.Locks, l)
	}
	return out, rows.Err()
}

// estateSection builds the weak-link section from the estate's report.
func estateSection(ctx context.Context, src EstateSource, from, to time.Time, site string) (*EstateSection, error) {
	rep, err := src.WeakLinks(ctx, from, to, site)
	if err != nil {
		return nil, fmt.Errorf("weak links: %w", err)
	}
	sec := &EstateSection{Locks: rep.Locks, Unclassified: rep.Unclassified, WeakLinks: len(rep.WeakLinks), ByTier: []TierCount{}}
	plan := estate.Plan(rep.WeakLinks)
	for _, l := range plan {
		if n := len(sec.ByTier); n == 0 || sec.ByTier[n-1].Tier != l.Lock.Tier {
			sec.ByTier = append(sec.ByTier, TierCount{Tier: l.Lock.Tier})
		}
		sec.ByTier[len(sec.ByTier)-1].WeakLinks++
	}
	sec.Plan = plan[:min(len(plan), TopLocks)]
	if sec.Plan == nil {
		sec.Plan = []estate.WeakLink{}
	}
	return sec, nil
}

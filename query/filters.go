package query

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Tables read by the query API.
var (
	tableEvents    = chstorage.AccessEvents.Name
	tableBySubject = chstorage.AccessEventsBySubject.Name
)

var (
	lookupSubjectsSQL = chstorage.Query("query/lookup_subjects")
	lookupSitesSQL    = chstorage.Query("query/lookup_sites")
)

// filter is one event filter: a query parameter and the column it selects.
type filter struct {
	param, column string
	enum          []string
}

// filters are the event filters, in a fixed order (SQL and cursors are
// deterministic). The column names are an allow-list: user input never
// becomes an identifier.
var filters = []filter{
	{"site", col("site_id"), nil},
	{"zone", col("zone_id"), nil},
	{"door", col("door_id"), nil},
	{"lock", col("lock_id"), nil},
	{"vendor", col("vendor"), event.Vendors},
	{"subject", col("subject_id"), nil},
	{"credential", col("credential_id"), nil},
	{"device", col("device_id"), nil},
	{"action", col("action"), event.Actions},
	{"outcome", col("outcome"), event.Outcomes},
	{"method", col("method"), event.Methods},
	{"reason", col("reason"), event.Reasons},
	{"attested", col("attested"), event.Attestations},
}

// col is a column of access_events (and of its copies), checked at start.
func col(name string) string { return chstorage.AccessEvents.Column(name) }

func filterParams() []openapi.Param {
	var out []openapi.Param
	for _, f := range filters {
		desc := fmt.Sprintf("only events whose %s is one of these (comma-separated)", f.column)
		out = append(out, openapi.Param{Name: f.param, List: true, Enum: f.enum, Description: desc, MaxLen: 128})
	}
	return out
}

func rangeParams(defaultFrom string) []openapi.Param {
	return []openapi.Param{
		{Name: "from", Type: openapi.TypeTime, Default: defaultFrom,
			Description: "start of the time range (inclusive), event time at the lock"},
		{Name: "to", Type: openapi.TypeTime, Default: "now", Description: "end of the time range (exclusive)"},
	}
}

// timeRange is a validated [from, to) in epoch milliseconds.
type timeRange struct{ from, to int64 }

func (s *Service) timeRange(v openapi.Values) (timeRange, error) {
	from, _ := v.Time("from")
	to, _ := v.Time("to")
	if !from.Before(to) {
		return timeRange{}, httpapi.BadRequest("from", "from must be before to")
	}
	if to.Sub(from) > s.opts.MaxRange {
		return timeRange{}, httpapi.BadRequest("from", fmt.Sprintf("the time range is longer than %s", s.opts.MaxRange))
	}
	return timeRange{from: from.UnixMilli(), to: to.UnixMilli()}, nil
}

// selection is a validated set of filters.
type selection map[string][]string // param → values

func selectionOf(v openapi.Values) selection {
	sel := selection{}
	for _, f := range filters {
		if vals := v.List(f.param); len(vals) > 0 {
			sel[f.param] = vals
		}
	}
	return sel
}

// scoped limits a selection to a site-scoped caller's sites: the sites it
// asks for must be the caller's (403 out_of_scope otherwise), and without
// any it gets all of the caller's. An unscoped caller's selection is
// unchanged.
func scoped(c *fiber.Ctx, sel selection) (selection, error) {
	p := httpapi.Caller(c)
	if !p.Scoped() {
		return sel, nil
	}
	for _, site := range sel["site"] {
		if !p.InScope(site) {
			return nil, httpapi.OutOfScope("site " + site)
		}
	}
	if len(sel["site"]) == 0 {
		sel["site"] = slices.Clone(p.Sites)
	}
	return sel, nil
}

// key is a canonical text of the selection (for cursor checks).
func (sel selection) key() string {
	var b strings.Builder
	for _, f := range filters {
		if vals, ok := sel[f.param]; ok {
			b.WriteString(f.param + "=" + strings.Join(vals, ",") + ";")
		}
	}
	return b.String()
}

// where builds a WHERE clause from conditions with ? placeholders and their
// arguments. Only constant SQL goes into conds.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// in adds "column IN (?, ...)"; column must come from an allow-list.
func (w *where) in(column string, vals []string) {
	ph := strings.TrimSuffix(strings.Repeat("?, ", len(vals)), ", ")
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	w.add(column+" IN ("+ph+")", args...)
}

// timeRange adds [from, to) on ts_ms plus the matching whole-second bounds on
// ts, which partition pruning and the primary key use.
func (w *where) timeRange(r timeRange) {
	w.add("ts >= toDateTime(?) AND ts < toDateTime(?) AND ts_ms >= ? AND ts_ms < ?",
		r.from/1000, ceilDiv(r.to, 1000), r.from, r.to)
}

// ranges adds a disjunction of [from, to) ranges.
func (w *where) ranges(rs []timeRange) {
	parts := make([]string, len(rs))
	var args []any
	for i, r := range rs {
		parts[i] = "(ts >= toDateTime(?) AND ts < toDateTime(?) AND ts_ms >= ? AND ts_ms < ?)"
		args = append(args, r.from/1000, ceilDiv(r.to, 1000), r.from, r.to)
	}
	w.add("("+strings.Join(parts, " OR ")+")", args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return "1"
	}
	return strings.Join(w.conds, " AND ")
}

// fragment is the conditions for a {name:Fragment} parameter; empty when
// there are none (a section gated on it is left out).
func (w *where) fragment() chstorage.Fragment {
	if len(w.conds) == 0 {
		return chstorage.Fragment{}
	}
	return chstorage.Fragment{SQL: w.sql(), Args: w.args}
}

// args adds the range's parameters (from_s, to_s, from_ms, to_ms) to a.
func (r timeRange) args(a chstorage.Args) chstorage.Args {
	a["from_s"], a["to_s"], a["from_ms"], a["to_ms"] = r.from/1000, ceilDiv(r.to, 1000), r.from, r.to
	return a
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// source is where an event query reads: a table and the conditions that
// narrow it to the selection (including index-friendly ones the lookups add).
type source struct {
	table string
	w     where
	empty bool // the selection matches nothing
}

// maxLookup bounds the keys a lookup may turn into an index condition.
const maxLookup = 1000

// plan chooses the table for a selection and adds its filter conditions:
// a subject filter reads the subject-ordered copy; a credential or device
// filter is resolved to subjects first; everything else reads access_events,
// ordered by (site_id, ts): a time range is an index range within each site,
// and a door or lock without a site is resolved to its sites first.
func (s *Service) plan(ctx context.Context, sel selection) (source, error) {
	src := source{table: tableEvents}
	subjects := sel["subject"]
	if len(subjects) == 0 && (len(sel["credential"]) > 0 || len(sel["device"]) > 0) {
		var w where
		if c := sel["credential"]; len(c) > 0 {
			w.in("credential_id", c)
		}
		if d := sel["device"]; len(d) > 0 {
			w.in("device_id", d)
		}
		found, err := s.lookup(ctx, lookupSubjectsSQL, w)
		if err != nil {
			return src, err
		}
		if len(found) > 0 && len(found) <= maxLookup && !contains(found, "") {
			subjects = found
		}
		// Every stored event with a credential or device left a row in
		// access_identities (kept with its month), so none means no events.
		src.empty = len(found) == 0
	}
	if len(subjects) > 0 {
		src.table = tableBySubject
		src.w.in("subject_id", subjects)
	} else if len(sel["site"]) == 0 && (len(sel["door"]) > 0 || len(sel["lock"]) > 0) {
		var w where
		if d := sel["door"]; len(d) > 0 {
			w.in("door_id", d)
		}
		if l := sel["lock"]; len(l) > 0 {
			w.in("lock_id", l)
		}
		sites, err := s.lookup(ctx, lookupSitesSQL, w)
		if err != nil {
			return src, err
		}
		if len(sites) > 0 && len(sites) <= maxLookup {
			src.w.in("site_id", sites)
		}
		src.empty = src.empty || len(sites) == 0
	}
	if src.empty {
		src.w.add("0") // nothing can match: let ClickHouse skip the read
	}
	for _, f := range filters {
		vals := sel[f.param]
		if len(vals) == 0 || (f.param == "subject" && src.table == tableBySubject) {
			continue
		}
		src.w.in(f.column, vals)
	}
	return src, nil
}

// lookup returns the distinct values a lookup statement finds.
func (s *Service) lookup(ctx context.Context, q *chstorage.Statement, w where) ([]string, error) {
	table := q.Name
	rows, err := q.Query(ctx, s.opts.Conn, chstorage.Args{"where": w.fragment(), "limit": maxLookup + 1})
	if err != nil {
		return nil, fmt.Errorf("lookup %s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("lookup %s: %w", table, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func contains(vals []string, v string) bool {
	for _, x := range vals {
		if x == v {
			return true
		}
	}
	return false
}

// scanEvent reads one row of the event columns the statements select:
// event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id,
// subject_id, credential_id, device_id, attested, action, outcome, method,
// reason, vendor_code, break_glass, raw_ref.
func scanEvent(rows driver.Rows, e *event.Access) error {
	var id uuid.UUID
	var bg uint8
	if err := rows.Scan(&id, &e.TsMs, &e.ReceivedMs, &e.Vendor, &e.SiteID, &e.ZoneID, &e.DoorID,
		&e.LockID, &e.SubjectID, &e.CredentialID, &e.DeviceID, &e.Attested, &e.Action, &e.Outcome, &e.Method,
		&e.Reason, &e.VendorCode, &bg, &e.RawRef); err != nil {
		return err
	}
	e.EventID = id.String()
	e.BreakGlass = bg != 0
	return nil
}

func timeMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

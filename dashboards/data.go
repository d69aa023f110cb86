package dashboards

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

func unknownParams(c *fiber.Ctx) error {
	_, err := httpapi.QueryParams(c)
	return err
}

// timeParam reads an RFC 3339 time or epoch milliseconds; def when absent.
func timeParam(v map[string]string, name string, def time.Time) (time.Time, error) {
	s, ok := v[name]
	if !ok {
		return def, nil
	}
	t, err := openapi.ParseTime(s, time.Now())
	if err != nil || t.UnixMilli() <= 0 {
		return time.Time{}, httpapi.BadRequest(name, name+" must be an RFC 3339 time, a date (2026-12-01), positive epoch milliseconds or now-<duration>")
	}
	return t, nil
}

func limitParam(v map[string]string, def, max int) (int, error) {
	s, ok := v["limit"]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, httpapi.BadRequest("limit", fmt.Sprintf("limit must be an integer in 1..%d", max))
	}
	return n, nil
}

// rangeParams reads from/to with defaults, at most 400 days apart.
func (d *Dashboards) rangeParams(v map[string]string, back time.Duration) (time.Time, time.Time, error) {
	now := d.opts.Now()
	from, err := timeParam(v, "from", now.Add(-back))
	if err != nil {
		return from, now, err
	}
	to, err := timeParam(v, "to", now.Add(time.Minute))
	if err != nil {
		return from, to, err
	}
	if !from.Before(to) {
		return from, to, httpapi.BadRequest("from", "from must be before to")
	}
	if to.Sub(from) > 400*24*time.Hour {
		return from, to, httpapi.BadRequest("from", "the time range is longer than 400 days")
	}
	return from, to, nil
}

func (d *Dashboards) ctx(c *fiber.Ctx) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(c.UserContext(), d.opts.Timeout)
	secs := max(1, int(d.opts.Timeout.Seconds()))
	return clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_execution_time": secs})), cancel
}

var (
	alertCountsSQL      = chstorage.Query("dashboards/alert_counts")
	alertEvidenceIDsSQL = chstorage.Query("dashboards/alert_evidence_ids")
	evidenceEventsSQL   = chstorage.Query("dashboards/evidence_events")
	revocationsSQL      = chstorage.Query("dashboards/revocations")
	requestsSQL         = chstorage.Query("dashboards/requests")
)

func secs(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }

// AlertCount is the number of alerts of one detector, severity and status.
type AlertCount struct {
	Detector string `json:"detector"`
	Severity string `json:"severity"`
	Status   string `json:"status"`
	Count    uint64 `json:"count"`
}

// alertCounts serves GET /v1/dashboards/alerts: alert counts (current
// versions, FINAL) by detector, severity and status.
func (d *Dashboards) alertCounts(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "status", "site", "from", "to")
	if err != nil {
		return err
	}
	from, to, err := d.rangeParams(v, 30*24*time.Hour)
	if err != nil {
		return err
	}
	// A token limited to sites counts its sites' alerts only: one query
	// per site, summed (sites are disjoint).
	sites, err := httpapi.Caller(c).SiteFilter(v["site"])
	if err != nil {
		return err
	}
	if len(sites) == 0 {
		sites = []string{""}
	}
	args := chstorage.Args{"from": secs(from), "to": secs(to), "from_ms": from.UnixMilli(), "to_ms": to.UnixMilli()}
	if s, ok := v["status"]; ok {
		statuses := strings.Split(s, ",")
		for _, st := range statuses {
			if !slices.Contains([]string{"open", "acknowledged", "resolved", "false_positive"}, st) {
				return httpapi.BadRequest("status", "status must be a list of open, acknowledged, resolved, false_positive")
			}
		}
		args["statuses"] = statuses
	}
	ctx, cancel := d.ctx(c)
	defer cancel()
	out := []AlertCount{}
	var total uint64
	for _, site := range sites {
		args["site"] = site
		counts, err := queryAlertCounts(ctx, d.opts.Conn, args)
		if err != nil {
			return err
		}
		for _, a := range counts {
			total += a.Count
			i := slices.IndexFunc(out, func(o AlertCount) bool {
				return o.Detector == a.Detector && o.Severity == a.Severity && o.Status == a.Status
			})
			if i < 0 {
				out = append(out, a)
			} else {
				out[i].Count += a.Count
			}
		}
	}
	if len(sites) > 1 {
		slices.SortFunc(out, func(x, y AlertCount) int {
			return cmp.Or(cmp.Compare(x.Detector, y.Detector), cmp.Compare(x.Severity, y.Severity), cmp.Compare(x.Status, y.Status))
		})
	}
	return c.JSON(fiber.Map{"counts": out, "total": total, "from_ms": from.UnixMilli(), "to_ms": to.UnixMilli()})
}

// queryAlertCounts runs the alert-count statement of one site (or all: "").
func queryAlertCounts(ctx context.Context, conn driver.Conn, args chstorage.Args) ([]AlertCount, error) {
	rows, err := alertCountsSQL.Query(ctx, conn, args)
	if err != nil {
		return nil, fmt.Errorf("alert counts: %w", err)
	}
	defer rows.Close()
	var out []AlertCount
	for rows.Next() {
		var a AlertCount
		if err := rows.Scan(&a.Detector, &a.Severity, &a.Status, &a.Count); err != nil {
			return nil, fmt.Errorf("alert counts: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("alert counts: %w", err)
	}
	return out, nil
}

func validAlertID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return false
		}
	}
	return true
}

// evidence serves GET /v1/alerts/:id/evidence: the access events an alert
// cites, oldest first, each once (access_events may still hold re-delivered
// duplicates). Events are looked up around the alert's window and site.
func (d *Dashboards) evidence(c *fiber.Ctx) error {
	id, err := httpapi.PathParam(c, "id")
	if err != nil {
		return err
	}
	if !validAlertID(id) {
		return httpapi.BadRequest("id", "id must be an alert id (UUID)")
	}
	if err := unknownParams(c); err != nil {
		return err
	}
	ctx, cancel := d.ctx(c)
	defer cancel()
	var ids []string
	var site string
	var tsMs, startMs, endMs int64
	rows, err := alertEvidenceIDsSQL.Query(ctx, d.opts.Conn, chstorage.Args{"alert_id": id})
	if err != nil {
		return fmt.Errorf("alert evidence: %w", err)
	}
	found := rows.Next()
	if found {
		err = rows.Scan(&ids, &site, &tsMs, &startMs, &endMs)
	}
	rows.Close()
	if err != nil {
		return fmt.Errorf("alert evidence: %w", err)
	}
	if !found || !httpapi.Caller(c).InScope(site) {
		// another site's alert does not exist for a token limited to sites
		return httpapi.NewProblem(fiber.StatusNotFound, "alert_not_found", "no alert "+id)
	}
	out := []event.Access{}
	var want []string
	for _, e := range ids {
		if len(e) == 36 && validAlertID(e) {
			want = append(want, e)
		}
	}
	if len(want) > 0 {
		lo := min(tsMs, startMs) - 24*3_600_000
		hi := max(tsMs, endMs) + 24*3_600_000
		if startMs <= 0 {
			lo = tsMs - 30*24*3_600_000
		}
		rows, err := evidenceEventsSQL.Query(ctx, d.opts.Conn, chstorage.Args{"from": secs(time.UnixMilli(lo)),
			"to": secs(time.UnixMilli(hi)), "ids": want, "site": site})
		if err != nil {
			return fmt.Errorf("alert evidence events: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var e event.Access
			var bg uint8
			if err := rows.Scan(&e.EventID, &e.TsMs, &e.ReceivedMs, &e.Vendor, &e.SiteID, &e.ZoneID, &e.DoorID, &e.LockID,
				&e.SubjectID, &e.CredentialID, &e.DeviceID, &e.Attested, &e.Action, &e.Outcome, &e.Method, &e.Reason,
				&e.VendorCode, &bg, &e.RawRef); err != nil {
				return fmt.Errorf("alert evidence events: %w", err)
			}
			e.BreakGlass = bg == 1
			out = append(out, e)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("alert evidence events: %w", err)
		}
	}
	return c.JSON(fiber.Map{"alert_id": id, "evidence_ids": ids, "events": out, "missing": len(want) - len(out)})
}

// Revocation is one row of the revocation tracker.
type Revocation struct {
	RevocationID string `json:"revocation_id"`
	Scope        string `json:"scope"`
	SubjectID    string `json:"subject_id"`
	RequestedMs  int64  `json:"requested_ms"`
	Credentials  uint64 `json:"credentials"`
	Locks        uint64 `json:"locks"`
	Confirmed    uint64 `json:"confirmed"`
	Pending      uint64 `json:"pending"`
	LastAckMs    int64  `json:"last_ack_ms"`
	// EscalatedMs is when it passed the revocation SLA with locks
	// unconfirmed (alert revocation_overdue); 0 when it did not.
	EscalatedMs int64 `json:"escalated_ms"`
}

// revocations serves GET /v1/dashboards/revocations: recent revocations
// with how many locks were told and how many confirmed, and when each was
// escalated past the SLA (pending=true: only those still waiting for a
// lock; escalated=true: only escalated ones). GET /v1/revocations/{id}
// names the locks.
func (d *Dashboards) revocations(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "from", "to", "pending", "escalated", "limit")
	if err != nil {
		return err
	}
	from, to, err := d.rangeParams(v, 7*24*time.Hour)
	if err != nil {
		return err
	}
	limit, err := limitParam(v, 50, 1000)
	if err != nil {
		return err
	}
	flag := func(name string) (bool, error) {
		s, ok := v[name]
		if !ok {
			return false, nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return false, httpapi.BadRequest(name, name+" must be true or false")
		}
		return b, nil
	}
	pendingOnly, err := flag("pending")
	if err != nil {
		return err
	}
	escalatedOnly, err := flag("escalated")
	if err != nil {
		return err
	}
	ctx, cancel := d.ctx(c)
	defer cancel()
	rows, err := revocationsSQL.Query(ctx, d.opts.Conn, chstorage.Args{"from": secs(from), "to": secs(to),
		"from_ms": from.UnixMilli(), "to_ms": to.UnixMilli(), "pending": pendingOnly, "escalated": escalatedOnly, "limit": limit})
	if err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	defer rows.Close()
	out := []Revocation{}
	for rows.Next() {
		var r Revocation
		if err := rows.Scan(&r.RevocationID, &r.Scope, &r.SubjectID, &r.RequestedMs, &r.Credentials, &r.Locks,
			&r.Confirmed, &r.LastAckMs, &r.EscalatedMs); err != nil {
			return fmt.Errorf("revocations: %w", err)
		}
		if r.Locks > r.Confirmed {
			r.Pending = r.Locks - r.Confirmed
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("revocations: %w", err)
	}
	return c.JSON(fiber.Map{"revocations": out, "count": len(out)})
}

// Request is one provisioning request with its items' status counts.
type Request struct {
	RequestID string `json:"request_id"`
	Kind      string `json:"kind"`
	Caller    string `json:"caller"`
	CreatedMs int64  `json:"created_ms"`
	Total     uint64 `json:"total"`
	Pending   uint64 `json:"pending"`
	Done      uint64 `json:"done"`
	Failed    uint64 `json:"failed"`
}

// requests serves GET /v1/dashboards/requests: provisioning requests
// (single and bulk) with pending, done and failed item counts;
// status=pending (the default) keeps those with items still pending.
// GET /v1/requests/{id} has each item's status and why.
func (d *Dashboards) requests(c *fiber.Ctx) error {
	v, err := httpapi.QueryParams(c, "from", "to", "status", "limit")
	if err != nil {
		return err
	}
	from, to, err := d.rangeParams(v, 30*24*time.Hour)
	if err != nil {
		return err
	}
	limit, err := limitParam(v, 50, 1000)
	if err != nil {
		return err
	}
	status := "pending"
	if s, ok := v["status"]; ok {
		if s != "pending" && s != "all" {
			return httpapi.BadRequest("status", "status must be pending or all")
		}
		status = s
	}
	ctx, cancel := d.ctx(c)
	defer cancel()
	rows, err := requestsSQL.Query(ctx, d.opts.Conn, chstorage.Args{"from": secs(from), "to": secs(to),
		"from_ms": from.UnixMilli(), "to_ms": to.UnixMilli(), "pending": status == "pending", "limit": limit})
	if err != nil {
		return fmt.Errorf("requests: %w", err)
	}
	defer rows.Close()
	out := []Request{}
	for rows.Next() {
		var r Request
		if err := rows.Scan(&r.RequestID, &r.Kind, &r.Caller, &r.CreatedMs, &r.Total, &r.Pending, &r.Done, &r.Failed); err != nil {
			return fmt.Errorf("requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("requests: %w", err)
	}
	return c.JSON(fiber.Map{"requests": out, "count": len(out)})
}

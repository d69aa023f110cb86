package report

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// DefaultExceptionWarn is how long before its expiry an exception is
// listed as expiring (serve's --exception-warn default).
const DefaultExceptionWarn = 7 * 24 * time.Hour

// ExceptionSection is the exception register as it stood at the end of the
// week (or when the report was generated, for a week not over): its KPIs
// (exceptions per 1,000 live credentials by reason and site, age), what was
// recorded and closed in the week, and the exceptions that need attention
// (expiring, expired but open, past their review date), soonest expiry first.
type ExceptionSection struct {
	AsOfMs         int64          `json:"as_of_ms"`
	KPIs           exception.KPIs `json:"kpis"`
	RecordedInWeek int            `json:"recorded_in_week"`
	ClosedInWeek   int            `json:"closed_in_week"`
	AttentionTotal int            `json:"attention_total"`
	Attention      []ExceptionRow `json:"attention"`
}

// ExceptionRow is one exception in the report.
type ExceptionRow struct {
	ID                  string   `json:"id"`
	Kind                string   `json:"kind"`
	Scope               string   `json:"scope"`
	Reason              string   `json:"reason"`
	State               string   `json:"state"`
	ReviewDue           bool     `json:"review_due"`
	Approvers           []string `json:"approvers"`
	CompensatingControl string   `json:"compensating_control"`
	StartMs             int64    `json:"start_ms"`
	ExpiryMs            int64    `json:"expiry_ms"`
	ReviewMs            int64    `json:"review_ms"`
}

var (
	reportExceptionsSQL = chstorage.Query("report/exceptions")
	liveBySiteSQL       = chstorage.Query("report/live_by_site")
)

func (g *gen) exceptions(ctx context.Context, from, to time.Time) (*ExceptionSection, error) {
	asOf := to
	if g.q.Now.Before(to) {
		asOf = g.q.Now
	}
	recs, err := registerAt(ctx, g.conn, asOf, g.q.Site)
	if err != nil {
		return nil, err
	}
	creds, err := liveBySite(ctx, g.conn, asOf)
	if err != nil {
		return nil, err
	}
	if g.q.Site != "" {
		creds = exception.Credentials{Total: creds.BySite[g.q.Site], BySite: map[string]int{g.q.Site: creds.BySite[g.q.Site]}}
	}
	now := asOf.UnixMilli()
	sec := &ExceptionSection{AsOfMs: now, KPIs: exception.ComputeKPIs(recs, creds, now, g.q.ExceptionWarn), Attention: []ExceptionRow{}}
	var attention []ExceptionRow
	for _, r := range recs {
		if r.CreatedMs >= from.UnixMilli() && r.CreatedMs < to.UnixMilli() {
			sec.RecordedInWeek++
		}
		if r.Status == exception.StatusClosed && r.TsMs >= from.UnixMilli() && r.TsMs < to.UnixMilli() {
			sec.ClosedInWeek++
		}
		st := r.StateAt(now, g.q.ExceptionWarn)
		due := st != exception.StateClosed && st != exception.StatePending && r.ReviewAt() <= now
		if st == exception.StateExpiring || st == exception.StateExpired || due {
			attention = append(attention, ExceptionRow{ID: r.ID, Kind: string(r.Kind), Scope: scopeWords(r.Scope), Reason: r.Reason,
				State: string(st), ReviewDue: due, Approvers: r.Approvers, CompensatingControl: r.CompensatingControl,
				StartMs: r.StartMs, ExpiryMs: r.ExpiryMs, ReviewMs: r.ReviewAt()})
		}
	}
	slices.SortFunc(attention, func(a, b ExceptionRow) int {
		if a.ExpiryMs != b.ExpiryMs {
			return int(min(max(a.ExpiryMs-b.ExpiryMs, -1), 1))
		}
		return strings.Compare(a.ID, b.ID)
	})
	sec.AttentionTotal = len(attention)
	sec.Attention = append(sec.Attention, attention[:min(len(attention), g.q.ListLimit)]...)
	return sec, nil
}

// registerAt is the register as it stood at t (of one site, or all).
func registerAt(ctx context.Context, conn driver.Conn, t time.Time, site string) ([]exception.Record, error) {
	rows, err := reportExceptionsSQL.Query(ctx, conn, chstorage.Args{"to_ms": t.UnixMilli(), "site": site})
	if err != nil {
		return nil, fmt.Errorf("exception register: %w", err)
	}
	defer rows.Close()
	var out []exception.Record
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return nil, fmt.Errorf("exception register: %w", err)
		}
		r, err := exception.DecodeRecord([]byte(raw))
		if err != nil {
			return nil, fmt.Errorf("exception register: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// liveBySite counts the credentials live at t (the control plane's live
// states, as GET /v1/kpis counts them), by site.
func liveBySite(ctx context.Context, conn driver.Conn, t time.Time) (exception.Credentials, error) {
	out := exception.Credentials{BySite: map[string]int{}}
	rows, err := liveBySiteSQL.Query(ctx, conn, chstorage.Args{"to_ms": t.UnixMilli(), "live": lifecycle.Live})
	if err != nil {
		return out, fmt.Errorf("live credentials: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var site string
		var n uint64
		if err := rows.Scan(&site, &n); err != nil {
			return out, fmt.Errorf("live credentials: %w", err)
		}
		out.BySite[site] = int(n)
		out.Total += int(n)
	}
	return out, rows.Err()
}

// scopeWords is a scope in words: "site s1, lock seam/k-boiler".
func scopeWords(s exception.Scope) string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, name+" "+v)
		}
	}
	add("site", s.SiteID)
	add("door", s.DoorID)
	if s.Vendor != "" || s.LockID != "" {
		add("lock", s.Vendor+"/"+s.LockID)
	}
	add("subject", s.SubjectID)
	add("credential", s.CredentialID)
	add("role", s.Role)
	add("capability", s.Capability)
	return strings.Join(parts, ", ")
}

// exceptionSummary is the section's one-paragraph summary.
func exceptionSummary(e *ExceptionSection) string {
	k := e.KPIs
	s := fmt.Sprintf("%d open exceptions (%.2f per 1,000 of %d live credentials); %d recorded and %d closed in the period.",
		k.Open, k.Per1000, k.Credentials, e.RecordedInWeek, e.ClosedInWeek)
	if k.Open > 0 {
		s += fmt.Sprintf(" Age: median %.1f days, oldest %.1f days (%s).", k.Age.MedianDays, k.Age.MaxDays, k.Age.OldestID)
	}
	s += fmt.Sprintf(" %d expiring within the warning period, %d expired but still open, %d past their review date.",
		k.ByState[exception.StateExpiring], k.ByState[exception.StateExpired], k.ReviewOverdue)
	return s
}

// exceptionHead are the columns of the attention table.
var exceptionHead = []string{"exception", "kind", "scope", "reason", "state", "expiry", "review", "approvers", "compensating control"}

func exceptionCells(r ExceptionRow) []string {
	review := date(r.ReviewMs)
	if r.ReviewDue {
		review += " (due)"
	}
	return []string{r.ID, r.Kind, r.Scope, r.Reason, r.State, date(r.ExpiryMs), review, strings.Join(r.Approvers, ", "), r.CompensatingControl}
}

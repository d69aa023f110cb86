package report

import (
	"bytes"
	_ "embed"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate"
)

// Formats a report renders to.
var Formats = []string{"json", "md", "csv", "html"}

// ContentType returns the media type of a format.
func ContentType(format string) string {
	switch format {
	case "md":
		return "text/markdown; charset=utf-8"
	case "csv":
		return "text/csv; charset=utf-8"
	case "html":
		return "text/html; charset=utf-8"
	}
	return "application/json"
}

// Render writes r in the given format (json, md, csv, html).
func Render(w io.Writer, r *Report, format string) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if r.SiteScoped {
			doc, err := scopedDoc(r)
			if err != nil {
				return err
			}
			return enc.Encode(doc)
		}
		return enc.Encode(r)
	case "md":
		return renderMarkdown(w, r)
	case "csv":
		return renderCSV(w, r)
	case "html":
		return renderHTML(w, r)
	}
	return fmt.Errorf("unknown report format %q (want json, md, csv or html)", format)
}

// kpi is one headline KPI: how to read it from a week and how to show it.
type kpi struct {
	Key    string
	Label  string
	Better string // "higher", "lower" or "" (context only)
	Value  func(*WeekKPI) (float64, bool)
	Format func(float64) string
}

func pct(v float64) string { return strconv.FormatFloat(100*v, 'f', 1, 64) + "%" }

func pct3(v float64) string { return strconv.FormatFloat(100*v, 'f', 3, 64) + "%" }

func count(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

func dec1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func dec2(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// dur shows seconds as a readable duration.
func dur(s float64) string {
	switch {
	case s < 1:
		return strconv.FormatFloat(s*1000, 'f', 0, 64) + " ms"
	case s < 120:
		return strconv.FormatFloat(s, 'f', 1, 64) + " s"
	case s < 2*3600:
		return strconv.FormatFloat(s/60, 'f', 1, 64) + " min"
	case s < 3*86400:
		return strconv.FormatFloat(s/3600, 'f', 1, 64) + " h"
	}
	return strconv.FormatFloat(s/86400, 'f', 1, 64) + " d"
}

var kpis = []kpi{
	{"activation_success_rate", "Activation success rate", "higher",
		func(k *WeekKPI) (float64, bool) { return k.Activation.SuccessRate, k.Activation.Issued > 0 }, pct},
	{"time_to_issue_p50_s", "Time to issue p50", "lower",
		func(k *WeekKPI) (float64, bool) { return k.TimeToIssue.P50, k.TimeToIssue.Count > 0 }, dur},
	{"time_to_issue_p95_s", "Time to issue p95", "lower",
		func(k *WeekKPI) (float64, bool) { return k.TimeToIssue.P95, k.TimeToIssue.Count > 0 }, dur},
	{"revocation_latency_p50_s", "Revocation latency p50", "lower",
		func(k *WeekKPI) (float64, bool) { return k.RevocationLatency.P50, k.RevocationLatency.Confirmed > 0 }, dur},
	{"revocation_latency_p95_s", "Revocation latency p95", "lower",
		func(k *WeekKPI) (float64, bool) { return k.RevocationLatency.P95, k.RevocationLatency.Confirmed > 0 }, dur},
	{"revocation_latency_p99_s", "Revocation latency p99", "lower",
		func(k *WeekKPI) (float64, bool) { return k.RevocationLatency.P99, k.RevocationLatency.Confirmed > 0 }, dur},
	{"leaver_latency_p50_s", "Leaver → all locks confirmed p50", "lower",
		func(k *WeekKPI) (float64, bool) { return k.LeaverLatency.P50, k.LeaverLatency.Confirmed > 0 }, dur},
	{"leaver_latency_p99_s", "Leaver → all locks confirmed p99", "lower",
		func(k *WeekKPI) (float64, bool) { return k.LeaverLatency.P99, k.LeaverLatency.Confirmed > 0 }, dur},
	{"exceptions_per_1000_credentials", "Exceptions per 1,000 credentials", "lower",
		func(k *WeekKPI) (float64, bool) { return k.Exceptions.PerThousand, k.Exceptions.Live > 0 }, dec1},
	{"stale_credentials", "Stale credentials", "lower",
		func(k *WeekKPI) (float64, bool) { return float64(k.StaleCredentials), true }, count},
	{"dlq_rate", "DLQ rate", "lower",
		func(k *WeekKPI) (float64, bool) { return k.DLQRate, k.Events+k.DeadLetters > 0 }, pct3},
	{"events", "Access events", "",
		func(k *WeekKPI) (float64, bool) { return float64(k.Events), true }, count},
	{"denied", "Denied accesses", "",
		func(k *WeekKPI) (float64, bool) { return float64(k.Denied), true }, count},
	{"alerts", "Alerts raised", "",
		func(k *WeekKPI) (float64, bool) { return float64(k.Alerts), true }, count},
	{"pending_locks", "Lock revocations past the SLA", "lower",
		func(k *WeekKPI) (float64, bool) { return float64(k.PendingLocks), true }, count},
	{"escalations", "Revocations escalated past the SLA", "lower",
		func(k *WeekKPI) (float64, bool) { return float64(k.Escalations), true }, count},
	{"acl_drifts", "Lock ACL drift resyncs", "lower",
		func(k *WeekKPI) (float64, bool) { return float64(k.ACLDrifts), true }, count},
	{"drills", "Revocation drills run", "",
		func(k *WeekKPI) (float64, bool) { return float64(k.Drills), true }, count},
	{"drill_confirmed_rate", "Drill: locks confirmed", "higher",
		func(k *WeekKPI) (float64, bool) {
			return float64(k.DrillConfirmed) / float64(max(k.DrillLocks, 1)), k.DrillLocks > 0
		}, pct},
	{"drill_confirm_p99_s", "Drill: time to confirm p99, per lock", "lower",
		func(k *WeekKPI) (float64, bool) {
			return float64(k.DrillConfirmP99Ms) / 1000, k.DrillConfirmP99Ms >= 0 && k.Drills > 0
		}, dur},
}

// kpiLine is a KPI across the report's weeks.
type kpiLine struct {
	kpi
	Cells   []string // per week: "—" without a value, "no data" before the history
	Avg     string   // average of the previous weeks with their whole history
	Change  string   // this week against that average, or why there is none
	Verdict string   // better, worse, same or ""
	Bars    []bar
}

// Why a change is not given.
const (
	noHistory  = "not enough history"
	inProgress = "week in progress"
)

func kpiLines(r *Report) []kpiLine {
	var out []kpiLine
	cur := r.Current()
	running := r.GeneratedMs < r.ToMs
	for _, k := range reportKPIs(r) {
		l := kpiLine{kpi: k}
		var prev []float64
		for i := range r.Weeks {
			w := &r.Weeks[i]
			v, ok := k.Value(w)
			cell := "—"
			switch {
			case w.History == HistoryNone:
				ok, cell = false, "no data"
			case ok:
				cell = k.Format(v)
			}
			l.Cells = append(l.Cells, cell)
			l.Bars = append(l.Bars, bar{Label: w.Week, Value: v, OK: ok, Text: cell})
			if ok && i < len(r.Weeks)-1 && w.History == HistoryFull {
				prev = append(prev, v)
			}
		}
		l.Avg, l.Change = "—", "—"
		avg := 0.0
		for _, p := range prev {
			avg += p
		}
		if len(prev) > 0 {
			avg /= float64(len(prev))
			l.Avg = k.Format(avg)
		}
		v, ok := k.Value(cur)
		switch {
		case cur.History != HistoryFull || len(prev) == 0:
			l.Change = noHistory
		case running && isFlow(k):
			l.Change = inProgress
		case ok:
			l.Change, l.Verdict = change(k, v, avg)
		}
		out = append(out, l)
	}
	return out
}

// isCount reports whether a KPI is a plain count (shown as an integer).
func isCount(k kpi) bool {
	switch k.Key {
	case "stale_credentials", "events", "denied", "alerts", "pending_locks", "escalations", "acl_drifts", "drills":
		return true
	}
	return false
}

// isFlow reports whether a KPI counts what happened during the week (so a
// week in progress has only part of it), as opposed to a rate or a state at
// the week's end.
func isFlow(k kpi) bool {
	switch k.Key {
	case "events", "denied", "alerts":
		return true
	}
	return false
}

// change describes cur against avg: a signed difference in the KPI's own
// unit (percentage points for rates, whole numbers for counts) and whether
// it is better or worse.
func change(k kpi, cur, avg float64) (string, string) {
	d := cur - avg
	if math.Abs(d) < 1e-9 || isCount(k) && math.Abs(d) < 0.5 {
		return "no change", map[bool]string{true: "", false: "same"}[k.Better == ""]
	}
	var s string
	switch {
	case strings.HasSuffix(k.Key, "_rate"):
		s = strconv.FormatFloat(100*d, 'f', 2, 64) + " pts"
	case strings.HasSuffix(k.Key, "_s"):
		s = dur(math.Abs(d))
		if d < 0 {
			s = "-" + s
		}
	case isCount(k):
		s = strconv.FormatFloat(math.Round(d), 'f', 0, 64)
	default:
		s = strconv.FormatFloat(d, 'f', 1, 64)
	}
	if d > 0 {
		s = "+" + s
	}
	switch {
	case k.Better == "":
		return s, ""
	case (d > 0) == (k.Better == "higher"):
		return s, "better"
	}
	return s, "worse"
}

// weekHead is a week's column heading: its name, marked when the history
// covers only part of it.
func weekHead(w WeekKPI) string {
	if w.History == HistoryPartial {
		return w.Week + " (partial)"
	}
	return w.Week
}

// sliceCell shows one value of a slice table.
func sliceCell(v *float64) string {
	if v == nil {
		return "—"
	}
	if *v == math.Trunc(*v) && math.Abs(*v) < 1e15 {
		return strconv.FormatFloat(*v, 'f', 0, 64)
	}
	return strings.TrimRight(strconv.FormatFloat(*v, 'f', 3, 64), "0") // 11.300 → 11.3
}

// sliceHead returns a slice table's column headings.
func sliceHead(sl Slices) []string {
	head := []string{sl.Dimension}
	for i, c := range sl.Columns {
		if i < len(sl.Labels) && sl.Labels[i] != "" {
			c = sl.Labels[i]
		}
		head = append(head, c)
	}
	return head
}

func expiredKind(c CredRow) string {
	switch {
	case c.BreakGlass:
		return "break-glass"
	case c.Exception:
		return "exception"
	}
	return "time-bound"
}

// expiredSummary is the sentence above the exception list.
func expiredSummary(r *Report) string {
	return fmt.Sprintf("%s still live past their end date as of %s UTC (the expired_exception "+
		"detector's check: an end date, or for break-glass without one its activation plus the break-glass maximum, "+
		"more than the grace period ago).", credentials(r.Expired.Total), ts(r.ExpiredAsOfMs))
}

// credentials says "1 credential was", "3 credentials were".
func credentials(n int) string {
	if n == 1 {
		return "1 credential was"
	}
	return strconv.Itoa(n) + " credentials were"
}

// credCount says "1 credential", "3 credentials".
func credCount(n int) string {
	if n == 1 {
		return "1 credential"
	}
	return strconv.Itoa(n) + " credentials"
}

func ts(ms int64) string {
	if ms <= 0 {
		return "never"
	}
	return time.UnixMilli(ms).UTC().Format("2006-01-02 15:04")
}

func date(ms int64) string {
	if ms <= 0 {
		return "—"
	}
	return time.UnixMilli(ms).UTC().Format(time.DateOnly)
}

// unit is what the report's period is called: week, month or quarter.
func unit(r *Report) string {
	if r.Period != "" {
		return r.Period
	}
	return KindWeek
}

func title(r *Report) string {
	t := "Fleet health — " + unit(r) + " " + r.Week
	if r.Site != "" {
		t += " — site " + r.Site
	}
	return t
}

func period(r *Report) string {
	return time.UnixMilli(r.FromMs).UTC().Format("Mon 2 Jan 2006") + " – " +
		time.UnixMilli(r.ToMs-1).UTC().Format("Mon 2 Jan 2006") + " (UTC)"
}

func keyCounts(kc []KeyCount) string {
	if len(kc) == 0 {
		return "—"
	}
	parts := make([]string, len(kc))
	for i, k := range kc {
		parts[i] = fmt.Sprintf("%s (%d)", k.Key, k.Count)
	}
	return strings.Join(parts, ", ")
}

func severities(m map[string]uint64) string {
	var parts []string
	for _, s := range []string{"critical", "high", "medium", "low"} {
		if n := m[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	var other []string
	for s := range m {
		switch s {
		case "critical", "high", "medium", "low":
		default:
			other = append(other, s)
		}
	}
	sort.Strings(other)
	for _, s := range other {
		parts = append(parts, fmt.Sprintf("%s %d", s, m[s]))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// mdCell escapes a Markdown table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func mdTable(w *bytes.Buffer, head []string, rows [][]string) {
	w.WriteString("| " + strings.Join(head, " | ") + " |\n|")
	for range head {
		w.WriteString("---|")
	}
	w.WriteString("\n")
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = mdCell(c)
		}
		w.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
}

func renderMarkdown(out io.Writer, r *Report) error {
	var w bytes.Buffer
	fmt.Fprintf(&w, "# %s\n\n%s. Generated %s UTC.\n\n", title(r), period(r), ts(r.GeneratedMs))
	for _, n := range r.Notes {
		fmt.Fprintf(&w, "> %s\n\n", n)
	}
	fmt.Fprintf(&w, "## KPIs against the previous four %ss\n\n", unit(r))
	head := []string{"KPI"}
	for _, wk := range r.Weeks {
		head = append(head, weekHead(wk))
	}
	head = append(head, "4-"+unit(r)+" avg", "change")
	var rows [][]string
	for _, l := range kpiLines(r) {
		change := l.Change
		if l.Verdict == "better" || l.Verdict == "worse" {
			change += " (" + l.Verdict + ")"
		}
		rows = append(rows, append(append([]string{l.Label}, l.Cells...), l.Avg, change))
	}
	mdTable(&w, head, rows)
	cur := r.Current()
	if r.SiteScoped {
		fmt.Fprintf(&w, "\nStale means active and neither used nor changed for %d days.\n", r.StaleDays)
	} else {
		fmt.Fprintf(&w, "\nRevocations requested: %d (%d confirmed by every lock). Credentials issued: %d, activated: %d. "+
			"Live credentials: %d, of which exceptions: %d. Stale means active and neither used nor changed for %d days. "+
			"Revocation SLA: %s.\n", cur.RevocationLatency.Count, cur.RevocationLatency.Confirmed, cur.Activation.Issued,
			cur.Activation.Activated, cur.Exceptions.Live, cur.Exceptions.LiveExceptions, r.StaleDays, dur(r.SLASeconds))
	}
	for _, sl := range r.Slices {
		fmt.Fprintf(&w, "\n## KPIs by %s\n\n", sl.Dimension)
		rows = nil
		for _, row := range sl.Rows {
			cells := []string{row.Key}
			for _, v := range row.Values {
				cells = append(cells, sliceCell(v))
			}
			rows = append(rows, cells)
		}
		if len(rows) == 0 {
			w.WriteString("No data.\n")
		} else {
			mdTable(&w, sliceHead(sl), rows)
		}
	}

	fmt.Fprintf(&w, "\n## Anomalies by detector\n\n%d alerts raised this %s.\n\n", r.Anomalies.Total, unit(r))
	rows = nil
	for _, d := range r.Anomalies.Detectors {
		rows = append(rows, []string{d.Detector, strconv.FormatUint(d.Alerts, 10), strconv.FormatUint(d.Open, 10),
			severities(d.BySeverity), keyCounts(d.TopSubjects), keyCounts(d.TopDoors)})
	}
	if len(rows) == 0 {
		w.WriteString("No alerts.\n")
	} else {
		mdTable(&w, []string{"detector", "alerts", "still open", "by severity", "top subjects", "top doors"}, rows)
	}
	if len(r.Regressions) > 0 {
		fmt.Fprintf(&w, "\n## Regressions\n\n%d device or lock slices whose denial share jumped (alert regression).\n\n", len(r.Regressions))
		rows = nil
		for _, a := range r.Regressions {
			rows = append(rows, []string{ts(a.TsMs), a.Severity, a.Status, strconv.FormatFloat(100*a.DeniedShare, 'f', 1, 64) + "%",
				strconv.FormatFloat(100*a.BaselineShare, 'f', 1, 64) + "%", a.Explanation, a.SuggestedAction})
		}
		mdTable(&w, []string{"raised", "severity", "status", "denied", "before", "what regressed", "suggested action"}, rows)
	}

	if !r.SiteScoped {
		fmt.Fprintf(&w, "\n## Revocations escalated past the SLA\n\n%d revocations of the week were still unconfirmed by a lock after %s "+
			"(alert revocation_overdue).\n\n", len(r.Escalated), dur(r.SLASeconds))
		rows = nil
		for _, e := range r.Escalated {
			still := "confirmed since"
			if e.PendingLocks > 0 {
				still = strconv.Itoa(e.PendingLocks) + " locks unconfirmed"
			}
			rows = append(rows, []string{e.RevocationID, e.Scope, e.SubjectID, ts(e.RequestedMs), ts(e.EscalatedMs), still, e.AlertID})
		}
		if len(rows) > 0 {
			mdTable(&w, []string{"revocation", "scope", "subject", "requested", "escalated", "now", "alert"}, rows)
		}

		fmt.Fprintf(&w, "\n## Revocation drills\n\n%d drills this week (the trend is in the KPIs above).\n\n", len(r.Drills))
		rows = nil
		for _, d := range r.Drills {
			rows = append(rows, drillCells(d))
		}
		if len(rows) > 0 {
			mdTable(&w, drillHead, rows)
		}
	}

	fmt.Fprintf(&w, "\n## Credentials active but unused for %d days\n\n%s", r.StaleDays, credCount(r.Stale.Total))
	if len(r.Stale.Credentials) < r.Stale.Total {
		fmt.Fprintf(&w, " (the %d idle longest are listed)", len(r.Stale.Credentials))
	}
	w.WriteString(".\n\n")
	rows = nil
	for _, c := range r.Stale.Credentials {
		rows = append(rows, []string{c.CredentialID, c.SubjectID, c.Role, c.SiteID, ts(c.LastUseMs), dec1(c.Days)})
	}
	if len(rows) > 0 {
		mdTable(&w, []string{"credential", "subject", "role", "site", "last used", "idle days"}, rows)
	}

	fmt.Fprintf(&w, "\n## Open exceptions past their end date\n\n%s", expiredSummary(r))
	if len(r.Expired.Credentials) < r.Expired.Total {
		fmt.Fprintf(&w, " The %d longest past their end date are listed.", len(r.Expired.Credentials))
	}
	w.WriteString("\n\n")
	rows = nil
	for _, c := range r.Expired.Credentials {
		rows = append(rows, []string{c.CredentialID, c.SubjectID, c.Role, c.SiteID, c.State, expiredKind(c), ts(c.SinceMs),
			dec1(c.Days), ts(c.LastUseMs), c.Severity})
	}
	if len(rows) > 0 {
		mdTable(&w, []string{"credential", "subject", "role", "site", "state", "kind", "ended", "days past end", "last used", "severity"}, rows)
	}

	w.WriteString("\n## Vendor and lock health\n\n")
	rows = nil
	for _, v := range r.LockHealth.Vendors {
		rows = append(rows, []string{v.Vendor, u(v.BatteryLow), u(v.Offline), u(v.LockJammed), u(v.LocksAffect)})
	}
	if len(rows) == 0 {
		w.WriteString("No battery, connectivity or jam events.\n")
	} else {
		mdTable(&w, []string{"vendor", "battery_low", "offline", "lock_jammed", "locks affected"}, rows)
		w.WriteString("\nLocks with the most health events:\n\n")
		rows = nil
		for _, l := range r.LockHealth.Locks {
			rows = append(rows, []string{l.Vendor, l.SiteID, l.DoorID, l.LockID, u(l.BatteryLow), u(l.Offline), u(l.LockJammed)})
		}
		mdTable(&w, []string{"vendor", "site", "door", "lock", "battery_low", "offline", "lock_jammed"}, rows)
	}
	if e := r.Register; e != nil {
		w.WriteString("\n## Exception register\n\n")
		fmt.Fprintf(&w, "%s\n\n", exceptionSummary(e))
		rows = nil
		for _, g := range e.KPIs.ByReason {
			rows = append(rows, []string{"reason", g.Key, strconv.Itoa(g.Count), dec2(g.Per1000)})
		}
		for _, g := range e.KPIs.BySite {
			rows = append(rows, []string{"site", g.Key, strconv.Itoa(g.Count), dec2(g.Per1000)})
		}
		if len(rows) > 0 {
			mdTable(&w, []string{"by", "key", "open", "per 1,000 credentials"}, rows)
		}
		if len(e.Attention) > 0 {
			fmt.Fprintf(&w, "\nNeeding attention (%d; expiring, expired or due for review):\n\n", e.AttentionTotal)
			rows = nil
			for _, x := range e.Attention {
				rows = append(rows, exceptionCells(x))
			}
			mdTable(&w, exceptionHead, rows)
		}
	}
	if e := r.Estate; e != nil {
		w.WriteString("\n## Weak links and the upgrade plan\n\n")
		fmt.Fprintf(&w, "%s\n\n", estateSummary(e))
		if len(e.Plan) > 0 {
			rows = nil
			for i, l := range e.Plan {
				rows = append(rows, weakLinkCells(i+1, l))
			}
			mdTable(&w, weakLinkHead, rows)
		}
	}
	_, err := out.Write(w.Bytes())
	return err
}

// weakLinkHead are the columns of the upgrade plan's table.
var weakLinkHead = []string{"#", "tier", "site", "door", "lock", "judged as", "missing", "uses", "risk", "upgrade"}

func weakLinkCells(rank int, l estate.WeakLink) []string {
	gaps := make([]string, len(l.Gaps))
	for i, g := range l.Gaps {
		gaps[i] = g.Capability + " (" + g.Severity.String() + ": needs " + g.Need + ", has " + g.Have + ")"
	}
	up := "none in the matrix"
	if l.Upgrade != nil {
		up = l.Upgrade.String()
	}
	tier := strconv.Itoa(l.Lock.Tier)
	if l.Lock.Tier == estate.Unclassified {
		tier = "unclassified"
	}
	return []string{strconv.Itoa(rank), tier, l.Lock.SiteID, l.Lock.DoorID, l.Lock.Vendor + "/" + l.Lock.LockID, l.Profile,
		strings.Join(gaps, "; "), strconv.Itoa(l.Uses), strconv.FormatInt(l.Risk, 10), up}
}

// estateSummary is the section's one-paragraph summary.
func estateSummary(e *EstateSection) string {
	s := fmt.Sprintf("%d of %d locks in service are weak links: their door's tier demands more than the lock can do", e.WeakLinks, e.Locks)
	if len(e.ByTier) > 0 {
		parts := make([]string, len(e.ByTier))
		for i, t := range e.ByTier {
			name := "tier " + strconv.Itoa(t.Tier)
			if t.Tier == estate.Unclassified {
				name = "unclassified"
			}
			parts[i] = fmt.Sprintf("%s: %d", name, t.WeakLinks)
		}
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	s += "."
	if e.Unclassified > 0 {
		s += fmt.Sprintf(" %d locks have no recorded tier and are judged as the least critical one.", e.Unclassified)
	}
	if len(e.Plan) > 0 {
		s += fmt.Sprintf(" Upgrade critical doors first: the plan below lists the first %d, ranked by tier, then risk (tier weight × gap severity × (uses this week + 1)).", len(e.Plan))
	}
	return s
}

func u(v uint64) string { return strconv.FormatUint(v, 10) }

var drillHead = []string{"run", "scenario", "started", "subjects", "locks confirmed", "time to disable p50/p99",
	"time to confirm p50/p99 (per lock)", "device sessions", "ticket closed after", "stragglers"}

// drillCells is a drill run's row.
func drillCells(d control.DrillRun) []string {
	ms := func(v int64) string {
		if v < 0 {
			return "n/a"
		}
		return dur(float64(v) / 1000)
	}
	ticket := "no ticket system"
	if d.TicketCloseMs >= 0 {
		ticket = ms(d.TicketCloseMs)
	}
	return []string{d.RunID, d.Scenario, ts(d.StartedMs), strconv.Itoa(d.Subjects),
		fmt.Sprintf("%d of %d", d.Confirmed, d.Locks), ms(d.DisableP50Ms) + " / " + ms(d.DisableP99Ms),
		ms(d.ConfirmP50Ms) + " / " + ms(d.ConfirmP99Ms), strings.ReplaceAll(d.SessionState, "_", " "), ticket,
		strconv.Itoa(d.Stragglers)}
}

// renderCSV writes the report as one long table: section, week, item, key,
// value (a value per row, so any tool can pivot it).
func renderCSV(out io.Writer, r *Report) error {
	w := csv.NewWriter(out)
	row := func(cells ...string) { _ = w.Write(cells) }
	row("section", "week", "item", "key", "value")
	for _, wk := range r.Weeks {
		row("history", wk.Week, "coverage", "", wk.History)
	}
	for _, k := range reportKPIs(r) {
		for i := range r.Weeks {
			wk := &r.Weeks[i]
			v, ok := k.Value(wk)
			val := ""
			if ok && wk.History != HistoryNone {
				val = strconv.FormatFloat(v, 'f', -1, 64)
			}
			row("kpi", wk.Week, k.Key, "", val)
		}
	}
	for _, sl := range r.Slices {
		for _, sr := range sl.Rows {
			for i, c := range sl.Columns {
				val := ""
				if i < len(sr.Values) && sr.Values[i] != nil {
					val = strconv.FormatFloat(*sr.Values[i], 'f', -1, 64)
				}
				row("by_"+sl.Dimension, r.Week, sr.Key, c, val)
			}
		}
	}
	for _, d := range r.Anomalies.Detectors {
		row("anomalies", r.Week, d.Detector, "alerts", u(d.Alerts))
		row("anomalies", r.Week, d.Detector, "open", u(d.Open))
		sevs := make([]string, 0, len(d.BySeverity))
		for s := range d.BySeverity {
			sevs = append(sevs, s)
		}
		sort.Strings(sevs)
		for _, s := range sevs {
			row("anomalies", r.Week, d.Detector, "severity:"+s, u(d.BySeverity[s]))
		}
		for _, k := range d.TopSubjects {
			row("anomalies", r.Week, d.Detector, "top_subject:"+k.Key, u(k.Count))
		}
		for _, k := range d.TopDoors {
			row("anomalies", r.Week, d.Detector, "top_door:"+k.Key, u(k.Count))
		}
	}
	for _, a := range r.Regressions {
		row("regressions", r.Week, a.AlertID, "denied_share", strconv.FormatFloat(a.DeniedShare, 'f', -1, 64))
		row("regressions", r.Week, a.AlertID, "baseline_share", strconv.FormatFloat(a.BaselineShare, 'f', -1, 64))
		row("regressions", r.Week, a.AlertID, "explanation", a.Explanation)
	}
	for _, c := range r.Stale.Credentials {
		row("stale_credentials", r.Week, c.CredentialID, "subject_id", c.SubjectID)
		row("stale_credentials", r.Week, c.CredentialID, "role", c.Role)
		row("stale_credentials", r.Week, c.CredentialID, "site_id", c.SiteID)
		row("stale_credentials", r.Week, c.CredentialID, "last_use_ms", strconv.FormatInt(c.LastUseMs, 10))
		row("stale_credentials", r.Week, c.CredentialID, "idle_days", strconv.FormatFloat(c.Days, 'f', -1, 64))
	}
	row("stale_credentials", r.Week, "total", "", strconv.Itoa(r.Stale.Total))
	for _, c := range r.Expired.Credentials {
		row("expired_exceptions", r.Week, c.CredentialID, "subject_id", c.SubjectID)
		row("expired_exceptions", r.Week, c.CredentialID, "state", c.State)
		row("expired_exceptions", r.Week, c.CredentialID, "valid_until_ms", strconv.FormatInt(c.SinceMs, 10))
		row("expired_exceptions", r.Week, c.CredentialID, "days_past_end", strconv.FormatFloat(c.Days, 'f', -1, 64))
		row("expired_exceptions", r.Week, c.CredentialID, "break_glass", strconv.FormatBool(c.BreakGlass))
		row("expired_exceptions", r.Week, c.CredentialID, "last_use_ms", strconv.FormatInt(c.LastUseMs, 10))
		row("expired_exceptions", r.Week, c.CredentialID, "severity", c.Severity)
	}
	row("expired_exceptions", r.Week, "total", "", strconv.Itoa(r.Expired.Total))
	for _, e := range r.Escalated {
		row("escalated_revocations", r.Week, e.RevocationID, "scope", e.Scope)
		row("escalated_revocations", r.Week, e.RevocationID, "subject_id", e.SubjectID)
		row("escalated_revocations", r.Week, e.RevocationID, "requested_ms", strconv.FormatInt(e.RequestedMs, 10))
		row("escalated_revocations", r.Week, e.RevocationID, "escalated_ms", strconv.FormatInt(e.EscalatedMs, 10))
		row("escalated_revocations", r.Week, e.RevocationID, "pending_locks", strconv.Itoa(e.PendingLocks))
		row("escalated_revocations", r.Week, e.RevocationID, "alert_id", e.AlertID)
	}
	for _, d := range r.Drills {
		row("drills", r.Week, d.RunID, "scenario", d.Scenario)
		row("drills", r.Week, d.RunID, "started_ms", strconv.FormatInt(d.StartedMs, 10))
		row("drills", r.Week, d.RunID, "subjects", strconv.Itoa(d.Subjects))
		row("drills", r.Week, d.RunID, "locks", strconv.Itoa(d.Locks))
		row("drills", r.Week, d.RunID, "confirmed", strconv.Itoa(d.Confirmed))
		row("drills", r.Week, d.RunID, "confirm_p50_ms", strconv.FormatInt(d.ConfirmP50Ms, 10))
		row("drills", r.Week, d.RunID, "confirm_p99_ms", strconv.FormatInt(d.ConfirmP99Ms, 10))
		row("drills", r.Week, d.RunID, "session_state", d.SessionState)
		row("drills", r.Week, d.RunID, "ticket_close_ms", strconv.FormatInt(d.TicketCloseMs, 10))
	}
	for _, v := range r.LockHealth.Vendors {
		row("vendor_health", r.Week, v.Vendor, "battery_low", u(v.BatteryLow))
		row("vendor_health", r.Week, v.Vendor, "offline", u(v.Offline))
		row("vendor_health", r.Week, v.Vendor, "lock_jammed", u(v.LockJammed))
		row("vendor_health", r.Week, v.Vendor, "locks_affected", u(v.LocksAffect))
	}
	for _, l := range r.LockHealth.Locks {
		item := l.Vendor + "/" + l.LockID
		row("lock_health", r.Week, item, "site_id", l.SiteID)
		row("lock_health", r.Week, item, "battery_low", u(l.BatteryLow))
		row("lock_health", r.Week, item, "offline", u(l.Offline))
		row("lock_health", r.Week, item, "lock_jammed", u(l.LockJammed))
	}
	if e := r.Register; e != nil {
		row("exception_register", r.Week, "open", "", strconv.Itoa(e.KPIs.Open))
		row("exception_register", r.Week, "per_1000_credentials", "", strconv.FormatFloat(e.KPIs.Per1000, 'f', -1, 64))
		row("exception_register", r.Week, "recorded_in_week", "", strconv.Itoa(e.RecordedInWeek))
		row("exception_register", r.Week, "closed_in_week", "", strconv.Itoa(e.ClosedInWeek))
		row("exception_register", r.Week, "median_age_days", "", strconv.FormatFloat(e.KPIs.Age.MedianDays, 'f', -1, 64))
		row("exception_register", r.Week, "review_overdue", "", strconv.Itoa(e.KPIs.ReviewOverdue))
		for _, g := range e.KPIs.ByReason {
			row("exception_register", r.Week, "reason:"+g.Key, "open", strconv.Itoa(g.Count))
			row("exception_register", r.Week, "reason:"+g.Key, "per_1000_credentials", strconv.FormatFloat(g.Per1000, 'f', -1, 64))
		}
		for _, g := range e.KPIs.BySite {
			row("exception_register", r.Week, "site:"+g.Key, "open", strconv.Itoa(g.Count))
			row("exception_register", r.Week, "site:"+g.Key, "per_1000_credentials", strconv.FormatFloat(g.Per1000, 'f', -1, 64))
		}
		for _, x := range e.Attention {
			cells := exceptionCells(x)
			for j := 1; j < len(cells); j++ {
				row("exceptions_attention", r.Week, cells[0], exceptionHead[j], cells[j])
			}
		}
	}
	if e := r.Estate; e != nil {
		row("weak_links", r.Week, "total", "", strconv.Itoa(e.WeakLinks))
		row("weak_links", r.Week, "locks", "", strconv.Itoa(e.Locks))
		row("weak_links", r.Week, "unclassified", "", strconv.Itoa(e.Unclassified))
		for _, t := range e.ByTier {
			row("weak_links", r.Week, "tier:"+strconv.Itoa(t.Tier), "", strconv.Itoa(t.WeakLinks))
		}
		for i, l := range e.Plan {
			cells := weakLinkCells(i+1, l)
			for j := 1; j < len(cells); j++ {
				row("upgrade_plan", r.Week, cells[0], weakLinkHead[j], cells[j])
			}
		}
	}
	w.Flush()
	return w.Error()
}

//go:embed report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"ts": ts, "date": date, "dec1": dec1, "u": u, "keyCounts": keyCounts, "severities": severities, "dur": dur, "unit": unit,
	"weekHead": weekHead, "sliceHead": sliceHead, "sliceCell": sliceCell, "expiredKind": expiredKind,
	"expiredSummary": expiredSummary, "credCount": credCount,
	"drillCells": drillCells, "drillHead": func() []string { return drillHead },
}).Parse(htmlSource))

// htmlView is what the HTML template reads.
type htmlView struct {
	R         *Report
	Title     string
	Period    string
	Lines     []kpiLine
	Trends    []template.HTML
	Anomalies template.HTML
	Vendors   template.HTML
	Estate    string
	Plan      [][]string
	PlanHead  []string
	// The exception register's section.
	Register      string
	RegisterRates [][]string
	Attention     [][]string
	AttentionHead []string
}

func renderHTML(out io.Writer, r *Report) error {
	v := htmlView{R: r, Title: title(r), Period: period(r), Lines: kpiLines(r), PlanHead: weakLinkHead, AttentionHead: exceptionHead}
	if e := r.Register; e != nil {
		v.Register = exceptionSummary(e)
		for _, g := range e.KPIs.ByReason {
			v.RegisterRates = append(v.RegisterRates, []string{"reason", g.Key, strconv.Itoa(g.Count), dec2(g.Per1000)})
		}
		for _, g := range e.KPIs.BySite {
			v.RegisterRates = append(v.RegisterRates, []string{"site", g.Key, strconv.Itoa(g.Count), dec2(g.Per1000)})
		}
		for _, x := range e.Attention {
			v.Attention = append(v.Attention, exceptionCells(x))
		}
	}
	if r.Estate != nil {
		v.Estate = estateSummary(r.Estate)
		for i, l := range r.Estate.Plan {
			v.Plan = append(v.Plan, weakLinkCells(i+1, l))
		}
	}
	for _, l := range v.Lines {
		switch l.Key {
		case "activation_success_rate", "time_to_issue_p50_s", "revocation_latency_p95_s",
			"exceptions_per_1000_credentials", "stale_credentials", "dlq_rate", "escalations", "drill_confirm_p99_s":
			// The SVG is built from escaped text only.
			v.Trends = append(v.Trends, template.HTML(trendSVG(l.Label, l.Bars))) //nolint:gosec
		}
	}
	if len(r.Anomalies.Detectors) > 0 {
		var cats []string
		all, open := series{Name: "alerts", Colour: colBlue}, series{Name: "still open", Colour: colOrange}
		for _, d := range r.Anomalies.Detectors {
			cats = append(cats, d.Detector)
			all.Values = append(all.Values, float64(d.Alerts))
			open.Values = append(open.Values, float64(d.Open))
		}
		v.Anomalies = template.HTML(hbarSVG("Alerts by detector", cats, []series{all, open})) //nolint:gosec
	}
	if len(r.LockHealth.Vendors) > 0 {
		var cats []string
		bl := series{Name: "battery_low", Colour: colOrange}
		off := series{Name: "offline", Colour: colSky}
		jam := series{Name: "lock_jammed", Colour: colVermilion}
		for _, vh := range r.LockHealth.Vendors {
			cats = append(cats, vh.Vendor)
			bl.Values = append(bl.Values, float64(vh.BatteryLow))
			off.Values = append(off.Values, float64(vh.Offline))
			jam.Values = append(jam.Values, float64(vh.LockJammed))
		}
		v.Vendors = template.HTML(hbarSVG("Health events by vendor", cats, []series{bl, off, jam})) //nolint:gosec
	}
	return htmlTemplate.Execute(out, v)
}

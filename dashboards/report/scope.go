package report

import (
	"encoding/json"
	"strings"
)

// ScopedNote is the note a site-scoped report carries (issue 19: a token
// limited to sites sees a report of its sites only, never a fleet-wide
// figure).
const ScopedNote = "Site-scoped report: every section is limited to site %s. Left out because they cannot be cut by site: " +
	"the control plane's credential KPIs (activation, time to issue, revocation and leaver latency, exceptions per 1,000 " +
	"credentials, pending locks, escalations, ACL drifts), revocation drills, escalated revocations, the DLQ rate and " +
	"regression alerts (device and lock slices of the whole fleet)."

// fleetNote is the note of a site report for an unscoped caller.
const fleetNote = "Credential KPIs (activation, time to issue, revocation latency, exceptions, "

// fleetKPIs are the KPI keys (and WeekKPI JSON names) that are fleet-wide
// and so left out of a site-scoped report.
var fleetKPIs = map[string]bool{
	"activation_success_rate": true, "time_to_issue_p50_s": true, "time_to_issue_p95_s": true,
	"revocation_latency_p50_s": true, "revocation_latency_p95_s": true, "revocation_latency_p99_s": true,
	"leaver_latency_p50_s": true, "leaver_latency_p99_s": true, "exceptions_per_1000_credentials": true,
	"dlq_rate": true, "pending_locks": true, "escalations": true, "acl_drifts": true, "drills": true,
	"drill_confirmed_rate": true, "drill_confirm_p99_s": true,
}

// fleetWeekFields are WeekKPI's JSON fields a site-scoped report omits.
var fleetWeekFields = []string{"activation", "time_to_issue", "revocation_latency", "leaver_latency", "exceptions",
	"pending_locks", "dead_letters", "dlq_rate", "escalations", "acl_drifts", "drills", "drill_locks", "drill_confirmed",
	"drill_confirm_p99_ms"}

// Scope turns a report of one site into the site-scoped report a token
// limited to sites gets: the fleet-wide figures are cleared (and left out
// of every format), the note says which. A report of the whole fleet
// cannot be scoped: callers check Site first.
func (r *Report) Scope() {
	r.SiteScoped = true
	for i := range r.Weeks {
		w := &r.Weeks[i]
		*w = WeekKPI{Week: w.Week, FromMs: w.FromMs, ToMs: w.ToMs, History: w.History, StaleCredentials: w.StaleCredentials,
			Events: w.Events, Denied: w.Denied, Alerts: w.Alerts, BatteryLow: w.BatteryLow, Offline: w.Offline,
			LockJammed: w.LockJammed, DrillConfirmP99Ms: -1}
	}
	r.Escalated, r.Drills, r.Regressions = nil, nil, nil
	notes := []string{strings.Replace(ScopedNote, "%s", r.Site, 1)}
	for _, n := range r.Notes {
		if !strings.HasPrefix(n, fleetNote) {
			notes = append(notes, n)
		}
	}
	r.Notes = notes
}

// reportKPIs are the KPIs a report shows: all, or for a site-scoped one
// those that are cut by site.
func reportKPIs(r *Report) []kpi {
	if !r.SiteScoped {
		return kpis
	}
	var out []kpi
	for _, k := range kpis {
		if !fleetKPIs[k.Key] {
			out = append(out, k)
		}
	}
	return out
}

// scopedDoc is a site-scoped report's JSON document: the fleet-wide fields
// are left out (rather than shown as zeros that read as figures).
func scopedDoc(r *Report) (map[string]any, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	delete(m, "escalated_revocations")
	delete(m, "drills")
	delete(m, "regressions")
	if weeks, ok := m["weeks"].([]any); ok {
		for _, w := range weeks {
			if wm, ok := w.(map[string]any); ok {
				for _, f := range fleetWeekFields {
					delete(wm, f)
				}
			}
		}
	}
	return m, nil
}

package detect

import (
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/internal/event"
)

// LastUseFunc returns the last granted use of a credential known outside the
// engine (epoch ms; 0 when none). The stream service reads it from
// ClickHouse, where every partition's events are; replays pass nil and the
// engine's own record of uses is used.
type LastUseFunc func(credentialID string) int64

// CredentialView is what the batch checks see of one credential.
type CredentialView struct {
	CredentialID  string
	SubjectID     string
	Role          string
	SiteID        string
	State         string // latest lifecycle state
	StateSinceMs  int64  // when it entered it
	ActiveSinceMs int64  // first activation (0 if never active)
	LastUseMs     int64  // last granted use seen by this engine
	ValidUntilMs  int64
	BreakGlass    bool
}

// Credentials returns the engine's view of every credential it knows from
// lifecycle records, sorted by id.
func (e *Engine) Credentials() []CredentialView {
	if len(e.credIDs) != len(e.creds) {
		e.credIDs = e.credIDs[:0]
		for id := range e.creds {
			e.credIDs = append(e.credIDs, id)
		}
		sort.Strings(e.credIDs)
	}
	out := make([]CredentialView, 0, len(e.credIDs))
	for _, id := range e.credIDs {
		c := e.creds[id]
		if len(c.states) == 0 {
			continue
		}
		l := c.latest()
		out = append(out, CredentialView{
			CredentialID: c.id, SubjectID: c.subject, Role: c.role, SiteID: c.site,
			State: l.state, StateSinceMs: l.ts, ActiveSinceMs: c.activeSinceMs, LastUseMs: c.lastUseMs,
			ValidUntilMs: c.validUntilMs, BreakGlass: c.breakGlass,
		})
	}
	return out
}

// Batch runs the batch checks (stale_credential, expired_exception) as of
// event time now over every credential the engine knows. lastUse, when not
// nil, adds last uses the engine did not see itself, and usesSince says from
// when on those uses are known (the oldest event in the store). With a nil
// lastUse the engine's own record of uses counts, known since its first
// access event.
func (e *Engine) Batch(dst []Alert, now int64, lastUse LastUseFunc, usesSince int64) []Alert {
	d := &e.rules.Detectors
	if lastUse == nil {
		usesSince = e.firstTs
		if usesSince == 0 {
			return dst // no access events yet: nothing to judge uses by
		}
	}
	if !d.StaleCredential.Enabled && !d.ExpiredException.Enabled {
		return dst
	}
	for _, c := range e.Credentials() {
		if lastUse != nil {
			c.LastUseMs = max(c.LastUseMs, lastUse(c.CredentialID))
		}
		if d.StaleCredential.Enabled {
			if a, ok := CheckStale(&d.StaleCredential, c, now, usesSince); ok {
				dst = e.raiseOnce(dst, a, "credential:"+c.CredentialID, d.StaleCredential.Suppress.Ms())
			}
		}
		if d.ExpiredException.Enabled {
			if a, ok := CheckExpired(&d.ExpiredException, c, now); ok {
				dst = e.raiseOnce(dst, a, "credential:"+c.CredentialID, d.ExpiredException.Suppress.Ms())
			}
		}
	}
	return dst
}

// raiseOnce raises a batch-check alert unless one is open for the key: a
// condition that persists is found again by every run, which is not a
// repeat worth counting.
func (e *Engine) raiseOnce(dst []Alert, a Alert, key string, suppress int64) []Alert {
	if o := e.open[a.Detector+"\x00"+key]; o != nil && a.TsMs < o.until {
		return dst
	}
	return e.raise(dst, a, key, suppress)
}

// CheckStale is stale_credential for one credential: active, and neither
// used nor (re)activated for UnusedDays as far as the use data shows (uses
// are known from usesSince on, so a credential whose idle period began
// earlier counts as idle only since then: a fresh install or a replay does
// not flag every credential at once). The alert id derives from the
// credential and the start of the idle period, so every run that finds the
// same stale credential yields the same alert.
func CheckStale(r *StaleRules, c CredentialView, now, usesSince int64) (Alert, bool) {
	if c.State != event.StateActive || usesSince <= 0 {
		return Alert{}, false
	}
	since := max(c.LastUseMs, c.ActiveSinceMs, c.StateSinceMs)
	idle := now - max(since, usesSince)
	if since <= 0 || idle < int64(r.UnusedDays)*dayMs {
		return Alert{}, false
	}
	days := float64(idle) / dayMs
	last := "never used"
	if c.LastUseMs > 0 {
		last = "last used " + time.UnixMilli(c.LastUseMs).UTC().Format(time.DateOnly)
	}
	return Alert{
		AlertID:  AlertID(StaleCredential, c.CredentialID, since, period(now, r.Suppress)),
		Detector: StaleCredential, Severity: r.Severity,
		SubjectID: c.SubjectID, CredentialID: c.CredentialID, SiteID: c.SiteID,
		TsMs: now, WindowStartMs: since, WindowEndMs: now,
		Observed: float64(int(days*10)) / 10, Threshold: float64(r.UnusedDays),
		Evidence: []string{},
		Explanation: fmt.Sprintf("Credential %s is active but has not been used for %.0f days (%s; threshold %d days).",
			c.CredentialID, days, last, r.UnusedDays),
		SuggestedAction: "Confirm the holder still needs access; otherwise revoke the credential (least privilege).",
	}, true
}

// CheckExpired is expired_exception for one credential. An exception is a
// credential with an end date (valid_until_ms) or a break-glass credential;
// a break-glass credential without an end date ends MaxBreakGlass after its
// activation. It is past its end date when now > end + Grace while its
// latest state is still live (issued, pending_activation, active or
// suspended: not revoked or archived). A use after the end date raises the
// severity one step.
func CheckExpired(r *ExpiredRules, c CredentialView, now int64) (Alert, bool) {
	switch c.State {
	case event.StateIssued, event.StatePendingActivation, event.StateActive, event.StateSuspended:
	default:
		return Alert{}, false
	}
	end := c.ValidUntilMs
	kind := "time-bound credential"
	if c.BreakGlass {
		kind = "break-glass credential"
		if end == 0 && c.ActiveSinceMs > 0 {
			end = c.ActiveSinceMs + r.MaxBreakGlass.Ms()
		}
	}
	if end <= 0 || now <= end+r.Grace.Ms() {
		return Alert{}, false
	}
	sev := r.Severity
	used := ""
	if c.LastUseMs > end {
		sev = escalate(sev)
		used = fmt.Sprintf(" and was used %s after it", humanDuration(time.Duration(c.LastUseMs-end)*time.Millisecond))
	}
	over := time.Duration(now-end) * time.Millisecond
	return Alert{
		AlertID:  AlertID(ExpiredException, c.CredentialID, end, period(now, r.Suppress)),
		Detector: ExpiredException, Severity: sev,
		SubjectID: c.SubjectID, CredentialID: c.CredentialID, SiteID: c.SiteID,
		TsMs: now, WindowStartMs: end, WindowEndMs: now,
		Observed: float64(int(over.Hours()*10)) / 10, Threshold: r.Grace.D().Hours(),
		Evidence: []string{},
		Explanation: fmt.Sprintf("%s %s ended %s ago (%s) but is still %s%s.",
			capitalize(kind), c.CredentialID, humanDuration(over), time.UnixMilli(end).UTC().Format(time.RFC3339), c.State, used),
		SuggestedAction: "Revoke the credential (or extend it through an approved request) and record why it outlived its end date.",
	}, true
}

// period names the suppression period now falls in, so a batch alert's id
// is the same for every run (and every instance) that finds the condition
// within one period, and a new alert is raised once the period has passed.
func period(now int64, suppress Duration) string {
	if suppress <= 0 {
		return strconv.FormatInt(now, 10)
	}
	return strconv.FormatInt(now/suppress.Ms(), 10)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

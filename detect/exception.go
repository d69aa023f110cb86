package detect

import (
	"fmt"
	"time"
)

// RegisteredException is an exception of the exception register as
// expired_exception judges it (the register's records carry more; detect
// needs only these).
type RegisteredException struct {
	ID           string
	Kind         string // credential, door, lock, policy
	Reason       string
	Scope        string // the scope in words, for the explanation
	SiteID       string
	DoorID       string
	SubjectID    string
	CredentialID string
	ExpiryMs     int64
}

// Register-exception alert stages: an exception about to expire and one
// past its expiry that is still open.
const (
	StageExpiring = "expiring"
	StageExpired  = "expired"
)

// CheckRegisteredException is expired_exception for one open exception of
// the register at now: past its expiry by more than Grace it is expired
// (the rules' severity); within warn before its expiry it is expiring
// (low: a reminder to close or renew it). The alert id derives from the
// exception, the stage, its expiry and the suppression period now falls
// in, and its event time is the later of the stage's start and that
// period's start, so every run (on any instance) in one period yields the
// same alert.
func CheckRegisteredException(r *ExpiredRules, x RegisteredException, now int64, warn time.Duration) (Alert, bool) {
	if !r.Enabled || x.ExpiryMs <= 0 {
		return Alert{}, false
	}
	stage, from, sev := "", int64(0), r.Severity
	switch {
	case now > x.ExpiryMs+r.Grace.Ms():
		stage, from = StageExpired, x.ExpiryMs+r.Grace.Ms()
	case warn > 0 && now >= x.ExpiryMs-warn.Milliseconds() && now <= x.ExpiryMs+r.Grace.Ms():
		stage, from, sev = StageExpiring, x.ExpiryMs-warn.Milliseconds(), SeverityLow
	default:
		return Alert{}, false
	}
	ts := now
	if s := r.Suppress.Ms(); s > 0 {
		ts = max(from, now/s*s)
	}
	var text string
	if stage == StageExpired {
		over := time.Duration(now-x.ExpiryMs) * time.Millisecond
		text = fmt.Sprintf("Exception %s (%s, %s; %s) expired %s ago (%s) but is still open.", x.ID, x.Kind, x.Reason, x.Scope,
			humanDuration(over), time.UnixMilli(x.ExpiryMs).UTC().Format(time.RFC3339))
	} else {
		left := time.Duration(x.ExpiryMs-now) * time.Millisecond
		text = fmt.Sprintf("Exception %s (%s, %s; %s) expires in %s (%s).", x.ID, x.Kind, x.Reason, x.Scope,
			humanDuration(left), time.UnixMilli(x.ExpiryMs).UTC().Format(time.RFC3339))
	}
	return Alert{
		AlertID:  AlertID(ExpiredException, "exception:"+x.ID+":"+stage, x.ExpiryMs, period(now, r.Suppress)),
		Detector: ExpiredException, Severity: sev,
		SubjectID: x.SubjectID, CredentialID: x.CredentialID, DoorID: x.DoorID, SiteID: x.SiteID,
		TsMs: ts, WindowStartMs: from, WindowEndMs: now,
		Observed:    float64(int(float64(now-x.ExpiryMs)/float64(time.Hour/time.Millisecond)*10)) / 10,
		Threshold:   r.Grace.D().Hours(),
		Evidence:    []string{"exception:" + x.ID},
		Explanation: text,
		SuggestedAction: "Close the exception (the policy applies again) or renew it with its approvers: a new expiry, " +
			"review date and compensating control (PUT /v1/exceptions/" + x.ID + ").",
	}, true
}

package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A register exception raises expired_exception once it is about to expire
// (low) and again once it is past its expiry and grace (the rules'
// severity); runs within one suppression period yield the same alert.
func TestCheckRegisteredException(t *testing.T) {
	r := DefaultRules().Detectors.ExpiredException // grace 1 h, suppress 7 days
	expiry := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	x := RegisteredException{ID: "ex-1", Kind: "lock", Reason: "legacy_hardware", Scope: "lock legacy/P1 at s1",
		SiteID: "s1", ExpiryMs: expiry.UnixMilli()}
	warn := 7 * 24 * time.Hour
	f := func(now time.Time, wantOK bool, wantSev, wantText string) Alert {
		t.Helper()
		a, ok := CheckRegisteredException(&r, x, now.UnixMilli(), warn)
		require.Equal(t, wantOK, ok, "at %s", now)
		if ok {
			assert.Equal(t, ExpiredException, a.Detector)
			assert.Equal(t, wantSev, a.Severity)
			assert.Contains(t, a.Explanation, wantText)
			assert.Equal(t, []string{"exception:ex-1"}, a.Evidence)
			assert.Equal(t, "s1", a.SiteID)
		}
		return a
	}
	f(expiry.Add(-8*24*time.Hour), false, "", "")
	e1 := f(expiry.Add(-6*24*time.Hour), true, SeverityLow, "expires in 6 days")
	e2 := f(expiry.Add(-6*24*time.Hour+time.Hour), true, SeverityLow, "expires in")
	assert.Equal(t, e1.AlertID, e2.AlertID, "one alert per suppression period")
	assert.Equal(t, e1.TsMs, e2.TsMs, "an alert's event time never changes")
	f(expiry.Add(30*time.Minute), true, SeverityLow, "expires in") // within grace: still a reminder
	x1 := f(expiry.Add(2*time.Hour), true, r.Severity, "expired 2 h ago (2026-06-01T12:00:00Z) but is still open")
	assert.NotEqual(t, e1.AlertID, x1.AlertID)
	assert.GreaterOrEqual(t, x1.TsMs, expiry.Add(time.Hour).UnixMilli())
	x2 := f(expiry.Add(20*24*time.Hour), true, r.Severity, "expired 20 days ago")
	assert.NotEqual(t, x1.AlertID, x2.AlertID, "a new alert once the period has passed")

	off := r
	off.Enabled = false
	_, ok := CheckRegisteredException(&off, x, expiry.Add(time.Hour*48).UnixMilli(), warn)
	assert.False(t, ok, "disabled")
}

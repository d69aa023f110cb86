package detect

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Explanations give durations as a person says them ("180 days ago"), not
// as Go prints them ("4329h23m0s").
func TestExpiredExplanationDurations(t *testing.T) {
	r := &DefaultRules().Detectors.ExpiredException
	end := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	f := func(now time.Time, lastUse time.Time, want string) {
		t.Helper()
		c := CredentialView{CredentialID: "c1", SubjectID: "s1", State: event.StateActive, ValidUntilMs: end.UnixMilli()}
		if !lastUse.IsZero() {
			c.LastUseMs = lastUse.UnixMilli()
		}
		a, ok := CheckExpired(r, c, now.UnixMilli())
		require.True(t, ok)
		assert.Contains(t, a.Explanation, want)
		assert.NotRegexp(t, `\dh\d+m\d`, a.Explanation)
	}
	f(end.Add(4329*time.Hour+23*time.Minute), time.Time{}, "ended 180 days ago (2025-06-01T12:00:00Z)")
	f(end.Add(3*time.Hour), time.Time{}, "ended 3 h ago")
	f(end.Add(3*time.Hour+20*time.Minute), end.Add(95*time.Minute), "ended 3 h 20 min ago (2025-06-01T12:00:00Z) but is still active and was used 1 h 35 min after it.")
}

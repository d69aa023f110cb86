package stream

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/keyfleet/keyfleet/control/session"
)

func TestSessionRetryWait(t *testing.T) {
	base, maxWait := 30*time.Second, 10*time.Minute
	for _, tc := range []struct {
		rounds int
		jitter float64
		want   time.Duration
	}{
		{1, 1, 30 * time.Second},
		{2, 1, time.Minute},
		{3, 1, 2 * time.Minute},
		{6, 1, 10 * time.Minute}, // 16 min capped
		{40, 1, 10 * time.Minute},
		{1, 0.8, 24 * time.Second},
		{6, 1.2, 12 * time.Minute},
	} {
		assert.Equal(t, tc.want, sessionRetryWait(base, maxWait, tc.rounds, tc.jitter), "round %d jitter %v", tc.rounds, tc.jitter)
	}
}

// TestSessionFailure: a provider failing transiently is retried until the
// give-up; a refusal (4xx) fails at once; the error says which and why.
func TestSessionFailure(t *testing.T) {
	down := &session.Error{Attempts: 3, Err: errors.New("HTTP 503: busy")}
	refused := &session.Error{Attempts: 1, Permanent: true, Err: errors.New("HTTP 400: unknown device")}
	now := int64(1_000_000)
	giveUp := now + time.Hour.Milliseconds()

	outcome, why := sessionFailure(down, sessionRounds{rounds: 2, attempts: 6}, now, time.Minute, giveUp)
	assert.Equal(t, "retrying", outcome)
	assert.Equal(t, "retrying in 1m0s (round 2): after 3 attempt(s): HTTP 503: busy", why)

	outcome, why = sessionFailure(down, sessionRounds{rounds: 9, attempts: 27}, giveUp-time.Minute.Milliseconds(), time.Minute, giveUp)
	assert.Equal(t, "failed", outcome, "the next round would start at the give-up")
	assert.Equal(t, "gave up after 9 round(s), 27 call(s): after 3 attempt(s): HTTP 503: busy", why)

	outcome, why = sessionFailure(refused, sessionRounds{rounds: 1, attempts: 1}, now, time.Minute, giveUp)
	assert.Equal(t, "failed", outcome)
	assert.Equal(t, "after 1 attempt(s): HTTP 400: unknown device", why)

	outcome, _ = sessionFailure(errors.New("wrapped elsewhere"), sessionRounds{rounds: 1, attempts: 1}, now, time.Minute, giveUp)
	assert.Equal(t, "retrying", outcome, "an error without a verdict is treated as transient")
}

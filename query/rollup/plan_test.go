package rollup

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 3, 20, 12, 30, 0, 0, time.UTC)
	hour := func(h int) int64 { return time.Date(2026, 3, 20, h, 0, 0, 0, time.UTC).UnixMilli() }
	at := func(d time.Duration) time.Time { return now.Add(d) }
	wm := at(-time.Hour)
	marks := []mark{
		{hour(9), at(-2 * time.Hour)},     // before the watermark: nothing new
		{hour(10), at(-10 * time.Minute)}, // closed, marked after its recompute: due at once
		{hour(11), at(-5 * time.Minute)},  // closed, recomputed since its mark (beyond the slack): nothing new
		{hour(12), at(-time.Second)},      // open, recomputed 30 s ago: deferred
	}
	ds := map[int64]done{
		hour(10): done2(at(-15 * time.Minute)),
		hour(11): {server: at(-2 * time.Minute), at: at(-2 * time.Minute)},
		hour(12): {server: at(-30 * time.Second), at: at(-30 * time.Second)},
	}
	due, deferred := plan(marks, hourMs, wm, ds, now, time.Minute)
	assert.Equal(t, []int64{hour(10)}, due)
	assert.Equal(t, 1, deferred)

	// A minute after its recompute the open hour is due.
	due, deferred = plan(marks, hourMs, wm, ds, now.Add(31*time.Second), time.Minute)
	assert.Equal(t, []int64{hour(10), hour(12)}, due)
	assert.Zero(t, deferred)

	// An open hour never recomputed by this job is due at once.
	delete(ds, hour(12))
	due, deferred = plan(marks, hourMs, wm, ds, now, time.Minute)
	assert.Equal(t, []int64{hour(10), hour(12)}, due)
	assert.Zero(t, deferred)

	// A mark within the slack of a recompute's start may not be in it.
	ds[hour(11)] = done2(at(-5*time.Minute + Slack - time.Second))
	due, _ = plan(marks, hourMs, wm, ds, now, time.Minute)
	assert.Contains(t, due, hour(11))

	// Days: the latest mark of a day's hours.
	assert.Equal(t, []mark{{hour(0), at(-time.Second)}}, byDay(marks))

	// forget keeps open units (when they are due) and drops closed ones the
	// watermark covers.
	ds = map[int64]done{hour(10): done2(at(-time.Minute)), hour(12): done2(at(-time.Minute)), hour(11): done2(at(time.Minute))}
	forget(ds, hourMs, now, now)
	assert.Len(t, ds, 2)
	assert.Contains(t, ds, hour(12))
	assert.Contains(t, ds, hour(11))
}

func done2(t time.Time) done { return done{server: t, at: t} }

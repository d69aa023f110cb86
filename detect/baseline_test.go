package detect

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
)

// A restart restores the saved baselines and then replays the last hour of
// access events (detect/stream's warm-up). What the engine learns must be
// what an uninterrupted engine learns: the replayed uses are not counted
// again in the hour-of-day histogram, and when the hour straddles midnight
// the day before it (completed and saved already) stays one day of history.
func TestRestoreThenReplayAcrossMidnight(t *testing.T) {
	day0 := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	n := 0
	unlock := func(at time.Time, door string) *event.Access {
		n++
		return &event.Access{EventID: fmt.Sprintf("e%d", n), TsMs: at.UnixMilli(), ReceivedMs: at.UnixMilli(),
			Vendor: "matter", SiteID: "site-1", DoorID: door, LockID: "l-" + door, SubjectID: "r1", CredentialID: "c1",
			DeviceID: "p1", Attested: "true", Action: "unlock", Outcome: "granted", Method: "phone_nfc"}
	}
	var history []*event.Access
	for d := range 14 {
		morning := day0.AddDate(0, 0, d).Add(8 * time.Hour)
		history = append(history, unlock(morning, "front"), unlock(morning.Add(5*time.Minute), "garage"))
	}
	lastHour := []*event.Access{ // 23:30 on day 14, then 00:10 on day 15
		unlock(day0.AddDate(0, 0, 14).Add(23*time.Hour+30*time.Minute), "front"),
		unlock(day0.AddDate(0, 0, 14).Add(23*time.Hour+35*time.Minute), "garage"),
		unlock(day0.AddDate(0, 0, 15).Add(10*time.Minute), "front"),
	}

	completeDay15 := unlock(day0.AddDate(0, 0, 16).Add(8*time.Hour), "front")

	// The reference: one engine that never stopped.
	uninterrupted, err := NewEngine(DefaultRules(), Options{})
	require.NoError(t, err)
	for _, ev := range append(append(history, lastHour...), completeDay15) {
		uninterrupted.Access(nil, ev)
	}
	want := uninterrupted.DirtyBaselines()
	require.Len(t, want, 1)

	// Stopped after the last hour, with its baselines saved.
	before, err := NewEngine(DefaultRules(), Options{})
	require.NoError(t, err)
	for _, ev := range append(history, lastHour...) {
		before.Access(nil, ev)
	}
	saved := before.DirtyBaselines()
	require.Len(t, saved, 1)

	// Restarted: baselines restored, the last hour replayed, then live.
	after, err := NewEngine(DefaultRules(), Options{})
	require.NoError(t, err)
	after.RestoreBaselines(saved)
	after.SetReplay(true)
	for _, ev := range lastHour {
		after.Access(nil, ev)
	}
	after.SetReplay(false)
	after.Access(nil, completeDay15)
	got := after.DirtyBaselines()
	require.Len(t, got, 1)
	assert.Equal(t, want[0], got[0], "restart + replay learns what an uninterrupted run learns")
	for name, peaks := range got[0].Peaks {
		days := map[int64]bool{}
		for _, p := range peaks {
			assert.False(t, days[p[0]], "%s: day %d twice", name, p[0])
			days[p[0]] = true
		}
	}

	// A save right after the restore (a role change, say) keeps the
	// reopened day.
	restored, err := NewEngine(DefaultRules(), Options{})
	require.NoError(t, err)
	restored.RestoreBaselines(saved)
	restored.MarkDirty(saved)
	assert.Equal(t, saved, restored.DirtyBaselines())
}

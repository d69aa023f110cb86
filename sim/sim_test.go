package sim_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/activity"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/payload"
)

var key = []byte("sim-test-pseudonym-key")

// end is a fixed end of backfills, so runs are reproducible.
var end = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC).UnixMilli()

const dayMs = int64(24 * time.Hour / time.Millisecond)

type capture struct {
	raw   []sim.RawRecord
	creds []event.Credential
}

func (c *capture) Raw(_ context.Context, r *sim.RawRecord) error {
	cp := *r
	cp.Payload = append([]byte(nil), r.Payload...)
	cp.Envelope.Payload = append([]byte(nil), r.Envelope.Payload...)
	c.raw = append(c.raw, cp)
	return nil
}
func (c *capture) Credential(_ context.Context, rec *event.Credential) error {
	c.creds = append(c.creds, *rec)
	return nil
}
func (c *capture) Close(context.Context) error { return nil }

type run struct {
	fleet  *fleet.Fleet
	stats  sim.Stats
	labels []backtest.Label
	cap    *capture
	replay *bytes.Buffer
	rawOut *bytes.Buffer
	check  []string // normalizer disagreements
}

func backfill(t *testing.T, seed uint64, subjects int, days int64, scale float64) *run {
	t.Helper()
	return backfillUntil(t, seed, subjects, days, scale, end)
}

func backfillUntil(t *testing.T, seed uint64, subjects int, days int64, scale float64, end int64) *run {
	t.Helper()
	f, err := fleet.Generate(fleet.Options{Seed: seed, Sites: 3, DoorsPerSite: 60, Subjects: subjects, SpareDevices: 2})
	require.NoError(t, err)
	r := &run{fleet: f, cap: &capture{}, replay: &bytes.Buffer{}, rawOut: &bytes.Buffer{}}
	replay := sim.NewReplay(r.replay, normalize.New(vendors.Adapters(), sim.Resolver(f, key), key))
	replay.Check = func(e *event.Access, exp sim.Expect) {
		if exp.SubjectID != "" && (exp.Op == payload.OpUnlock || exp.Op == payload.OpUnlatch || exp.Op == payload.OpDenied) &&
			e.SubjectID != exp.SubjectID {
			r.check = append(r.check, e.Vendor+" "+e.Action+": subject "+e.SubjectID+", want "+exp.SubjectID)
		}
		if exp.Op == payload.OpUnlock && e.Outcome != "granted" || exp.Op == payload.OpDenied && e.Outcome != "denied" {
			r.check = append(r.check, e.Vendor+" "+exp.Op.String()+": outcome "+e.Outcome)
		}
	}
	s, err := sim.New(sim.Options{Fleet: f, Seed: seed, PseudonymKey: key, Mode: sim.ModeBackfill,
		StartMs: end - days*dayMs, EndMs: end, AnomalyScale: scale,
		Sinks:  []sim.Sink{r.cap, replay, sim.NewRawFile(r.rawOut)},
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	r.stats, r.labels, err = s.Run(context.Background())
	require.NoError(t, err)
	require.Empty(t, replay.Errors, "normalizer rejections: %v", replay.FirstError)
	require.Empty(t, r.check)
	return r
}

func TestSameSeedSameFleetAndEvents(t *testing.T) {
	a := backfill(t, 42, 300, 3, 1)
	b := backfill(t, 42, 300, 3, 1)
	require.Greater(t, a.stats.Records, int64(5000))
	require.Equal(t, a.rawOut.String(), b.rawOut.String(), "raw records differ between runs of the same seed")
	require.Equal(t, a.replay.String(), b.replay.String())
	require.Equal(t, a.labels, b.labels)
	require.Equal(t, a.cap.creds, b.cap.creds)

	c := backfill(t, 43, 300, 3, 1)
	require.NotEqual(t, a.rawOut.String(), c.rawOut.String(), "another seed gives another fleet")
}

func TestRecordsAreTimeOrderedAndInWindow(t *testing.T) {
	r := backfill(t, 5, 300, 2, 1)
	var last int64
	for i, rec := range r.cap.raw {
		ts := rec.Expect.TsMs
		if v := recordTime(t, &rec); v != 0 {
			require.Equal(t, ts, v, "the payload carries the event time")
		}
		require.GreaterOrEqual(t, ts, last, "record %d out of order", i)
		require.Less(t, ts, end)
		require.GreaterOrEqual(t, rec.Envelope.ReceivedMs, ts, "received before it happened")
		require.NotEmpty(t, rec.Key)
		last = ts
	}
	// The replay file is ordered by ts_ms too, credential records included.
	last = 0
	lines := replayLines(t, r)
	for _, line := range lines {
		require.Contains(t, []string{"access", "credential"}, line.Record)
		require.GreaterOrEqual(t, line.TsMs, last)
		last = line.TsMs
	}
	require.NotEmpty(t, lines)
}

// replayLine is what the tests read of a replay file's line.
type replayLine struct {
	Record  string `json:"record"`
	TsMs    int64  `json:"ts_ms"`
	EventID string `json:"event_id"`
	Vendor  string `json:"vendor"`
}

// replayLines decodes a run's replay file.
func replayLines(t *testing.T, r *run) []replayLine {
	t.Helper()
	var out []replayLine
	sc := bufio.NewScanner(bytes.NewReader(r.replay.Bytes()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line replayLine
		require.NoError(t, json.Unmarshal(sc.Bytes(), &line))
		out = append(out, line)
	}
	require.NoError(t, sc.Err())
	return out
}

// recordTime decodes the event time of a raw record through the matter
// adapter for Matter, else takes it from the simulation (events are
// queued by time).
func recordTime(t *testing.T, rec *sim.RawRecord) int64 {
	t.Helper()
	n := normalize.New(vendors.Adapters(), nil, key)
	if !n.Has(rec.Envelope.Vendor) {
		return 0
	}
	p, err := rec.Envelope.PayloadBytes()
	require.NoError(t, err)
	ev, err := n.Normalize(nil, rec.Envelope.Vendor, rec.Envelope.ReceivedMs, "", p)
	require.NoError(t, err)
	return ev[0].TsMs
}

func TestLabels(t *testing.T) {
	r := backfill(t, 7, 600, 14, 3)
	byType := map[string]int{}
	for _, l := range r.labels {
		byType[l.Type]++
		require.Contains(t, activity.LabelTypes, l.Type)
		require.LessOrEqual(t, l.StartMs, l.EndMs)
		require.GreaterOrEqual(t, l.StartMs, end-14*dayMs)
		require.Less(t, l.EndMs, end)
		switch l.Type {
		case activity.LabelDeniedStorm, activity.LabelDoorForced:
			require.NotEmpty(t, l.DoorID, "%+v", l)
		default:
			require.NotEmpty(t, l.SubjectID, "%+v", l)
			require.NotEmpty(t, l.CredentialID, "%+v", l)
		}
	}
	t.Logf("labels: %v (stats %v)", byType, r.stats.Labels)
	for _, typ := range activity.LabelTypes {
		require.Positive(t, byType[typ], "no %s label", typ)
	}
	subtle := 0
	for _, l := range r.labels {
		if l.Subtle {
			subtle++
		}
	}
	require.Positive(t, subtle, "no subtle unlock bursts")
}

// TestUseAfterRevocationIsGroundTruth: every use_after_revocation label is a
// granted access of a credential after its revocation record, and every
// such granted access is inside a label.
func TestUseAfterRevocationIsGroundTruth(t *testing.T) {
	r := backfill(t, 9, 600, 14, 3)
	revoked := map[string]int64{} // subject → revocation time
	for _, c := range r.cap.creds {
		if c.State == event.StateRevoked {
			revoked[c.SubjectID] = c.TsMs
		}
	}
	var uses []sim.RawRecord
	for _, rec := range r.cap.raw {
		exp := rec.Expect
		if exp.Granted && (exp.Op == payload.OpUnlock || exp.Op == payload.OpUnlatch) && exp.SubjectID != "" {
			if at, ok := revoked[exp.SubjectID]; ok && exp.TsMs > at {
				uses = append(uses, rec)
			}
		}
	}
	var labels []backtest.Label
	for _, l := range r.labels {
		if l.Type == activity.LabelUseAfterRevocaton {
			labels = append(labels, l)
			require.Contains(t, revoked, l.SubjectID)
			require.Greater(t, l.StartMs, revoked[l.SubjectID])
		}
	}
	require.NotEmpty(t, labels)
	require.NotEmpty(t, uses)
	for _, u := range uses {
		found := false
		for _, l := range labels {
			if l.SubjectID == u.Expect.SubjectID && u.Expect.TsMs >= l.StartMs && u.Expect.TsMs <= l.EndMs {
				found = true
			}
		}
		assert.True(t, found, "granted use after revocation by %s at %d has no label", u.Expect.SubjectID, u.Expect.TsMs)
	}
}

// TestBenignCrewsAreBusyAndUnlabelled: cleaning and maintenance crews open
// many distinct doors per hour, and none of that is labelled an anomaly.
func TestBenignCrewsAreBusyAndUnlabelled(t *testing.T) {
	r := backfill(t, 11, 600, 7, 1)
	f := r.fleet
	role := map[string]string{}
	for _, s := range f.Subjects {
		role[s.ID] = s.Role
	}
	lockDoor := map[string]string{}
	for _, l := range f.Locks {
		lockDoor[l.LockID] = l.DoorID
	}
	// distinct doors per subject per hour, from what the locks reported
	doors := map[[2]string]map[string]bool{}
	for _, rec := range r.cap.raw {
		if !rec.Expect.Granted || rec.Expect.SubjectID == "" || rec.Expect.Op > payload.OpUnlatch {
			continue
		}
		h := time.UnixMilli(rec.Expect.TsMs).UTC().Format("2006-01-02T15")
		k := [2]string{rec.Expect.SubjectID, h}
		if doors[k] == nil {
			doors[k] = map[string]bool{}
		}
		doors[k][rec.Key] = true
	}
	maxByRole := map[string]int{}
	busyHours := map[string]int{}
	for k, d := range doors {
		rl := role[k[0]]
		maxByRole[rl] = max(maxByRole[rl], len(d))
		if len(d) >= 8 {
			busyHours[rl]++
		}
	}
	t.Logf("max distinct doors in an hour by role: %v; hours with >= 8 doors: %v", maxByRole, busyHours)
	require.GreaterOrEqual(t, maxByRole[fleet.RoleCleaning], 8)
	require.GreaterOrEqual(t, maxByRole[fleet.RoleMaintenance], 8)
	require.Greater(t, busyHours[fleet.RoleCleaning]+busyHours[fleet.RoleMaintenance], 10)
	for _, l := range r.labels {
		if l.Type == activity.LabelUnlockBurst {
			require.NotContains(t, []string{fleet.RoleCleaning, fleet.RoleMaintenance}, role[l.SubjectID], "%+v", l)
		}
	}
}

func TestDailyAndWeeklyRhythm(t *testing.T) {
	r := backfill(t, 3, 600, 14, 1)
	st := r.stats
	night := st.AttemptsByHour[2] + st.AttemptsByHour[3] + st.AttemptsByHour[4]
	evening := st.AttemptsByHour[17] + st.AttemptsByHour[18] + st.AttemptsByHour[19]
	require.Greater(t, evening, 10*night, "nights are quiet: %v", st.AttemptsByHour)
	var weekday, weekend []int64
	for d, n := range st.RecordsByDay {
		day, err := time.Parse("2006-01-02", d)
		require.NoError(t, err)
		if day.Weekday() == time.Saturday || day.Weekday() == time.Sunday {
			weekend = append(weekend, n)
		} else {
			weekday = append(weekday, n)
		}
	}
	sort.Slice(weekday, func(i, j int) bool { return weekday[i] < weekday[j] })
	sort.Slice(weekend, func(i, j int) bool { return weekend[i] < weekend[j] })
	require.Less(t, weekend[len(weekend)/2], weekday[len(weekday)/2], "weekends are quieter (crews, commuters): %v", st.RecordsByDay)
	res := st.Roles[fleet.RoleResident]
	require.InDelta(t, 3.5, res.AttemptsPerSubjectDay, 1.5)
	require.Greater(t, st.Roles[fleet.RoleCleaning].AttemptsPerSubjectDay, 3*res.AttemptsPerSubjectDay)
}

func TestRealTimeRateStopsByCount(t *testing.T) {
	f, err := fleet.Generate(fleet.Options{Seed: 1, Sites: 2, DoorsPerSite: 40, Subjects: 200})
	require.NoError(t, err)
	c := &capture{}
	start := time.Now()
	s, err := sim.New(sim.Options{Fleet: f, Seed: 1, PseudonymKey: key, Mode: sim.ModeRate, Rate: 2000, Count: 1000,
		StartMs: start.UnixMilli(), Sinks: []sim.Sink{c}, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	st, _, err := s.Run(context.Background())
	require.NoError(t, err)
	require.GreaterOrEqual(t, st.Records, int64(1000))
	require.Less(t, st.Records, int64(1100))
	for _, rec := range c.raw {
		// stamped with the wall clock
		require.InDelta(t, time.Now().UnixMilli(), rec.Envelope.ReceivedMs, float64(time.Minute.Milliseconds()))
	}
}

func TestOptionsValidate(t *testing.T) {
	f, err := fleet.Generate(fleet.Options{Seed: 1, Sites: 1, DoorsPerSite: 10, Subjects: 20})
	require.NoError(t, err)
	for name, o := range map[string]sim.Options{
		"no window":          {Fleet: f, PseudonymKey: key, Mode: sim.ModeBackfill},
		"no key":             {Fleet: f, Mode: sim.ModeBackfill, StartMs: 1, EndMs: 2},
		"rate without stop":  {Fleet: f, PseudonymKey: key, Mode: sim.ModeRate, Rate: 10},
		"rate zero":          {Fleet: f, PseudonymKey: key, Mode: sim.ModeRate, Count: 10},
		"natural never ends": {Fleet: f, PseudonymKey: key, Mode: sim.ModeNatural},
	} {
		_, err := sim.New(o)
		require.Error(t, err, name)
	}
}

// TestEventIDsAreUnique: no two records normalize to the same event id
// (which would silently merge them in ClickHouse) — legacy panel lines,
// which have no id of their own, included — neither within a run nor across
// two runs of the same fleet and seed (a backfill, then the next day's
// traffic: Matter event numbers and the other vendors' ids keep growing).
func TestEventIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for i, r := range []*run{backfill(t, 7, 600, 7, 2), backfillUntil(t, 7, 600, 1, 2, end+dayMs)} {
		n := 0
		for _, e := range replayLines(t, r) {
			if e.Record != "access" {
				continue
			}
			require.False(t, seen[e.EventID], "run %d: duplicate %s event id %s", i+1, e.Vendor, e.EventID)
			seen[e.EventID] = true
			n++
		}
		require.Positive(t, n)
	}
}

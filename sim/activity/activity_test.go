package activity_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/sim/activity"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

var end = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC).UnixMilli()

const day = int64(24 * time.Hour / time.Millisecond)

func items(t *testing.T, seed uint64, days int64) ([]activity.Item, *activity.Generator, *fleet.Fleet) {
	return itemsOf(t, seed, days, fleet.Scenarios{})
}

func itemsOf(t *testing.T, seed uint64, days int64, sc fleet.Scenarios) ([]activity.Item, *activity.Generator, *fleet.Fleet) {
	t.Helper()
	f, err := fleet.Generate(fleet.Options{Seed: seed, Sites: 2, DoorsPerSite: 60, Subjects: 400, SpareDevices: 2, Scenarios: sc})
	require.NoError(t, err)
	g := activity.New(activity.Options{Fleet: f, Seed: seed, StartMs: end - days*day, EndMs: end})
	var out []activity.Item
	for {
		it, ok := g.Next()
		if !ok {
			return out, g, f
		}
		out = append(out, it)
	}
}

func TestSameSeedSameItems(t *testing.T) {
	a, ga, _ := items(t, 1, 4)
	b, gb, _ := items(t, 1, 4)
	require.Equal(t, a, b)
	require.Equal(t, ga.Labels(), gb.Labels())
	require.Equal(t, ga.Initial(), gb.Initial())
	c, _, _ := items(t, 2, 4)
	require.NotEqual(t, len(a), len(c))
}

func TestItemsOrderedInWindowByEveryRole(t *testing.T) {
	its, g, f := itemsOf(t, 3, 7, fleet.Scenarios{NewCrew: true}) // the inspection role is only a scenario's
	var last int64
	roles := map[string]int{}
	kinds := map[activity.Kind]int{}
	for _, it := range its {
		require.GreaterOrEqual(t, it.TsMs, last)
		require.GreaterOrEqual(t, it.TsMs, end-7*day)
		require.Less(t, it.TsMs, end)
		last = it.TsMs
		kinds[it.Kind]++
		if it.Kind == activity.KindAttempt && it.Cred >= 0 {
			roles[f.Credentials[it.Cred].Role]++
		}
	}
	for _, r := range fleet.Roles {
		if r == fleet.RoleEmergency {
			continue // a handful of call-outs a month per site
		}
		require.Positive(t, roles[r], "no attempts by %s", r)
	}
	require.Positive(t, kinds[activity.KindLockEvent])
	require.Positive(t, kinds[activity.KindChange])
	// Everyone but the residents still to move in starts issued and active.
	initial := g.Initial()
	incoming := 0
	for c := range f.Credentials {
		if !g.Provisioned(c) {
			incoming++
		}
	}
	require.Equal(t, 2*(len(f.Credentials)-incoming), len(initial))
	for _, it := range initial {
		require.Less(t, it.TsMs, end-7*day)
	}
}

// The scenarios' newcomers start on their days and add labelled bursts;
// the base estate's plan is the same with or without them.
func TestScenarios(t *testing.T) {
	base, gb, _ := items(t, 5, 12)
	all, ga, f := itemsOf(t, 5, 12, fleet.Scenarios{NewCrew: true, NewBuilding: true})
	start := end - 12*day
	firstDay := start / day
	labelled := func(it activity.Item) activity.Item {
		if it.Label != activity.NoLabel {
			it.Label = 0
		}
		return it
	}
	var kept []activity.Item
	firstUse := map[string]int64{}
	for _, it := range all {
		newcomer := it.Cred >= int32(f.Base.Credentials) || (it.Cred < 0 && it.Lock >= int32(f.Base.Locks))
		if !newcomer {
			kept = append(kept, labelled(it))
			continue
		}
		if it.Kind == activity.KindAttempt {
			subj := &f.Subjects[f.Credentials[it.Cred].Subject]
			if _, ok := firstUse[subj.Cohort]; !ok {
				firstUse[subj.Cohort] = it.TsMs
			}
		}
	}
	for i := range base {
		base[i] = labelled(base[i])
	}
	require.Equal(t, base, kept, "the base estate's plan changed")
	var baseLabels []backtest.Label
	scenario := map[string]int{}
	for _, l := range ga.Labels() {
		if l.Scenario == "" {
			baseLabels = append(baseLabels, l)
			continue
		}
		require.Equal(t, activity.LabelUnlockBurst, l.Type)
		scenario[l.Scenario]++
	}
	require.Equal(t, gb.Labels(), baseLabels)
	require.Equal(t, 2, scenario[fleet.CohortNewCrew])
	require.Equal(t, 2, scenario[fleet.CohortNewBuilding])
	// The crew from its 4th day, the building from its 6th.
	require.Equal(t, firstDay+3, firstUse[fleet.CohortNewCrew]/day)
	require.Equal(t, firstDay+5, firstUse[fleet.CohortNewBuilding]/day)
	require.Len(t, ga.Initial(), len(gb.Initial()), "newcomers are not issued before their day")
}

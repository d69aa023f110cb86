package fleet_test

import (
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

// Every lock has a model and a tier; judged by the shipped policy, the
// weak links of the simulated estate are the planted ones and nothing else.
func TestEstateWeakLinksArePlanted(t *testing.T) {
	o := opts()
	o.Scenarios = fleet.Scenarios{NewBuilding: true}
	f, err := fleet.Generate(o)
	require.NoError(t, err)
	var locks []estate.Lock
	tiers := map[int]int{}
	for _, l := range f.Locks {
		require.NotEmpty(t, l.Model, l.LockID)
		require.Contains(t, []int{1, 2, 3}, l.Tier, l.LockID)
		tiers[l.Tier]++
		locks = append(locks, estate.Lock{Vendor: l.Vendor, LockID: l.LockID, Model: l.Model, Firmware: l.Firmware,
			Door: estate.Door{SiteID: l.SiteID, DoorID: l.DoorID}, Tier: l.Tier})
	}
	for tier := 1; tier <= 3; tier++ {
		assert.Positive(t, tiers[tier], "tier %d", tier)
	}
	links, err := estate.DefaultPolicy().WeakLinks(locks, nil)
	require.NoError(t, err)
	var got, want []string
	for _, l := range links {
		got = append(got, l.Lock.Vendor+"/"+l.Lock.LockID)
		for _, g := range l.Gaps {
			assert.Contains(t, []string{estate.CapAttestation, estate.CapAudit}, g.Capability,
				"planted weak links never refuse grants (%s)", l.Lock.LockID)
		}
	}
	planted := f.PlantedWeakLinks()
	require.Len(t, planted, 4, "every kind of plant found a lock in this estate")
	for _, p := range planted {
		want = append(want, p.Vendor+"/"+p.LockID)
		assert.Equal(t, 1, p.Tier)
		assert.NotEmpty(t, p.Why)
	}
	sort.Strings(got)
	sort.Strings(want)
	assert.Equal(t, want, got)

	reg := f.Registry()
	for i, l := range reg.Locks {
		assert.Equal(t, f.Locks[i].Tier, l.Tier)
		assert.Equal(t, f.Locks[i].Model, l.Model)
	}
}

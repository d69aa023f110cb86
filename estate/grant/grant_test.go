package grant_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/estate/grant"
	"github.com/keyfleet/keyfleet/internal/registry"
)

func site() *registry.Registry {
	r := registry.New()
	lock := func(vendor, id, model, fw, door string, tier int, groups ...string) registry.Lock {
		return registry.Lock{Vendor: vendor, LockID: id, Model: model, Firmware: fw, Tier: tier, Groups: groups,
			LockInfo: registry.LockInfo{SiteID: "s1", DoorID: door}}
	}
	r.Apply(registry.File{Locks: []registry.Lock{
		lock("matter", "m-lobby", "door-lock-aliro", "", "lobby", 1, "entrance"),
		lock("nuki", "n-staff", "smart-lock-4-pro", "4.1", "staff", 2, "service"),
		lock("seam", "k-boiler", "generic-keypad-lock", "", "boiler", 2, "service"),
		lock("seam", "k-gym", "generic-keypad-lock", "", "gym", 3, "amenity"),
		lock("legacy", "P1/R1", "osdp-panel", "1.2", "back", 1, "back"),
		lock("nuki", "n-odd", "smart-lock-4-pro", "4.1", "odd", 7, "odd"),
	}})
	return r
}

var weekdays = []control.Window{{Days: []string{"mon", "tue"}, Start: "07:00", End: "19:00"}}

func TestRefusals(t *testing.T) {
	c := grant.New(estate.DefaultPolicy(), site(), nil)
	f := func(name string, spec control.Spec, want []string) {
		t.Helper()
		spec.SiteID = "s1"
		rs, err := c.Refusals(context.Background(), spec)
		require.NoError(t, err)
		var got []string
		for _, r := range rs {
			got = append(got, r.Vendor+"/"+r.LockID+" "+r.Capability)
			assert.Equal(t, grant.NoExceptionRegister, r.Exception)
		}
		assert.Equal(t, want, got, name)
	}
	f("a scheduled key on the service doors: the keypad lock has no schedules", control.Spec{DoorGroups: []string{"service"}, Windows: weekdays},
		[]string{"seam/k-boiler schedules"})
	f("an expiring key on the service doors: the keypad lock has no expiry", control.Spec{DoorGroups: []string{"service"}, ValidUntilMs: 1},
		[]string{"seam/k-boiler expiring_keys"})
	f("tier 3 carries it weaker instead", control.Spec{DoorGroups: []string{"amenity"}, Windows: weekdays, ValidUntilMs: 1}, nil)
	f("a tier-1 door on a nightly panel refuses every grant", control.Spec{DoorGroups: []string{"back"}}, []string{"legacy/P1/R1 revocation_delay"})
	f("a tier the policy does not define", control.Spec{DoorGroups: []string{"odd"}}, []string{"nuki/n-odd tier"})
	f("capable doors", control.Spec{DoorGroups: []string{"entrance"}, Windows: weekdays, ValidUntilMs: 1}, nil)

	rs, err := c.Refusals(context.Background(), control.Spec{SiteID: "s1", DoorGroups: []string{"service"}, Windows: weekdays})
	require.NoError(t, err)
	require.Len(t, rs, 1)
	assert.Equal(t, "lock seam/k-boiler (door s1/boiler, tier 2) lacks schedules: needs 1 weekly window(s) at the lock "+
		"(tier 2 demands schedules), has none", rs[0].String())
}

type register map[string]string // capability → exception id

func (r register) Exception(_ context.Context, q grant.ExceptionQuery) (grant.Exception, error) {
	if id, ok := r[q.Lock.LockID+" "+q.Capability]; ok {
		return grant.Exception{ID: id}, nil
	}
	return grant.Exception{Why: "no matching exception"}, nil
}

func TestExceptionsLiftRefusals(t *testing.T) {
	c := grant.New(estate.DefaultPolicy(), site(), register{"k-boiler schedules": "ex-1"})
	rs, err := c.Refusals(context.Background(), control.Spec{SiteID: "s1", DoorGroups: []string{"service"}, Windows: weekdays, ValidUntilMs: 1})
	require.NoError(t, err)
	require.Len(t, rs, 1, "the schedule refusal is lifted, the expiry one is not")
	assert.Equal(t, "expiring_keys", rs[0].Capability)
	assert.Equal(t, "no matching exception", rs[0].Exception)
}

func TestCarry(t *testing.T) {
	c := grant.New(estate.DefaultPolicy(), site(), nil)
	r := &control.Record{Windows: weekdays}
	r.ValidUntilMs = 5
	assert.Equal(t, control.Carry{Windows: true, Expiry: true}, c.Carry(r, control.LockRef{Vendor: "nuki", LockID: "n-staff"}))
	assert.Equal(t, control.Carry{Weaker: &control.WeakerLock{Vendor: "seam", LockID: "k-gym", Schedule: estate.DetectOnly,
		Expiry: estate.ByRevocation, ExpiryLateS: 3600}}, c.Carry(r, control.LockRef{Vendor: "seam", LockID: "k-gym"}))
	assert.Equal(t, control.Carry{Windows: true, Expiry: true}, c.Carry(&control.Record{}, control.LockRef{Vendor: "seam", LockID: "k-gym"}),
		"nothing asked, nothing weaker")
	assert.Equal(t, control.Carry{Windows: true, Expiry: true}, c.Carry(r, control.LockRef{Vendor: "seam", LockID: "unknown"}))
}

// The checker's index answers what registry.Matching answers.
func TestMatchingAgreesWithRegistry(t *testing.T) {
	r := site()
	r.Apply(registry.File{Locks: []registry.Lock{
		{Vendor: "matter", LockID: "m-s2", Groups: []string{"entrance"}, Tier: 1, LockInfo: registry.LockInfo{SiteID: "s2"}},
		{Vendor: "legacy", LockID: "shared", Groups: []string{"entrance", "service"}, Tier: 3},
	}})
	c := grant.New(estate.DefaultPolicy(), r, nil)
	for _, q := range []struct {
		site   string
		groups []string
	}{{"s1", []string{"entrance"}}, {"s1", []string{"*"}}, {"", []string{"entrance"}}, {"s2", []string{"service", "entrance"}}, {"s9", []string{"x"}}} {
		want := r.Matching(q.site, q.groups)
		got := grant.MatchingForTest(c, q.site, q.groups)
		assert.Equal(t, want, got, "%v", q)
	}
}

func BenchmarkRefusals(b *testing.B) {
	r := registry.New()
	var locks []registry.Lock
	for s := range 200 {
		for d := range 100 {
			g := []string{"entrance", "service", "amenity", "garage"}[d%4]
			locks = append(locks, registry.Lock{Vendor: "nuki", LockID: fmt.Sprintf("n-%d-%d", s, d), Model: "smart-lock-4-pro", Tier: 2,
				Groups: []string{g}, LockInfo: registry.LockInfo{SiteID: fmt.Sprintf("s%d", s), DoorID: fmt.Sprint(d)}})
		}
	}
	r.Apply(registry.File{Locks: locks})
	c := grant.New(estate.DefaultPolicy(), r, nil)
	spec := control.Spec{SiteID: "s7", DoorGroups: []string{"entrance", "amenity", "garage"}, Windows: weekdays, ValidUntilMs: 1}
	b.ResetTimer()
	for range b.N {
		if _, err := c.Refusals(context.Background(), spec); err != nil {
			b.Fatal(err)
		}
	}
}

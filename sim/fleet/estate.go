package fleet

import (
	"hash/fnv"

	"github.com/keyfleet/keyfleet/estate"
)

// PlantedWeakLink is a door the simulator made a weak link on purpose:
// its tier demands more than its lock can do (by the shipped estate
// policy). Nothing else in the simulated estate is one.
type PlantedWeakLink struct {
	Vendor string
	LockID string
	SiteID string
	DoorID string
	Tier   int
	Why    string
}

// kindTier is a door kind's risk tier: building entrances are critical,
// staff-only rooms, garages and units restricted, amenities the least.
var kindTier = map[string]int{KindEntrance: 1, KindService: 2, KindGarage: 2, KindUnit: 2, KindAmenity: 3}

// models are the matrix models the simulator fits per vendor, with a
// firmware version (the first is fitted to entrances).
var models = map[string][][2]string{
	"matter":  {{"door-lock-aliro", "1.4.2"}, {"door-lock", "1.3.0"}},
	"nuki":    {{"smart-lock-4-pro", "4.2.1"}, {"smart-lock-3-pro", "3.8.2"}},
	"schlage": {{"encode-plus", "2.1.0"}},
	"seam":    {{"generic-keypad-lock", ""}},
	"legacy":  {{"osdp-panel", "2.3"}},
}

// buildEstate gives every lock a model, firmware and tier, then plants the
// weak links in the base estate. Nothing is drawn from the fleet's random
// streams (a lock's model follows a hash of its id), so the rest of the
// estate is exactly what it was before locks had models.
//
// A door's tier follows its kind, lowered to the strictest tier its lock
// meets: the simulated operator put every door on hardware that can do
// what its tier demands. The planted weak links break that on purpose, with
// gaps that do not refuse grants (a missing device key, records that do
// not say who), so provisioning, the drill and the bench still issue every
// key; the policy tests plant refusing ones through the registry API.
func (f *Fleet) buildEstate() {
	policy := estate.DefaultPolicy()
	for i := range f.Locks {
		l := &f.Locks[i]
		choices := models[l.Vendor]
		pick := choices[0]
		if l.Kind != KindEntrance && len(choices) > 1 {
			h := fnv.New32a()
			h.Write([]byte(l.LockID))
			pick = choices[h.Sum32()%uint32(len(choices))]
		}
		l.Model, l.Firmware = pick[0], pick[1]
		l.Tier = max(kindTier[l.Kind], metTier(policy, l))
	}
	f.plantWeakLinks(policy)
}

// metTier is the strictest tier whose demands the lock meets.
func metTier(p estate.Policy, l *Lock) int {
	m, err := p.Matrix.Lookup(l.Vendor, l.Model, l.Firmware)
	if err != nil {
		return len(p.Tiers)
	}
	for _, t := range p.Tiers {
		if len(estate.TierGaps(t, m.Capabilities)) == 0 {
			return t.Tier
		}
	}
	return len(p.Tiers)
}

// plant is one kind of planted weak link: the first lock of the base estate
// it fits (in lock order, not yet planted; a door kind earlier in kinds
// first) is changed.
type plant struct {
	why   string
	kinds []string
	fits  func(l *Lock) bool
	apply func(l *Lock)
}

var plants = []plant{{
	why:   "an entrance on a Matter lock without Aliro: the lock does not verify the phone's device key",
	kinds: []string{KindEntrance},
	fits:  func(l *Lock) bool { return l.Vendor == "matter" },
	apply: func(l *Lock) { l.Model, l.Firmware, l.Tier = "door-lock", "1.3.0", 1 },
}, {
	why:   "an entrance on a Nuki Smart Lock: app keys, not attested device keys",
	kinds: []string{KindEntrance},
	fits:  func(l *Lock) bool { return l.Vendor == "nuki" },
	apply: func(l *Lock) { l.Model, l.Firmware, l.Tier = "smart-lock-4-pro", "4.2.1", 1 },
}, {
	why:   "an entrance or garage gate classified critical on a Schlage Encode Plus: its records name the credential, not the person",
	kinds: []string{KindEntrance, KindGarage},
	fits:  func(l *Lock) bool { return l.Vendor == "schlage" },
	apply: func(l *Lock) { l.Model, l.Firmware, l.Tier = "encode-plus", "2.1.0", 1 },
}, {
	why:   "a plant room classified critical on a lock without device keys",
	kinds: []string{KindService},
	fits: func(l *Lock) bool {
		return (l.Name == "boiler" || l.Name == "electrical") && (l.Vendor == "matter" || l.Vendor == "nuki")
	},
	apply: func(l *Lock) {
		if l.Vendor == "matter" {
			l.Model, l.Firmware = "door-lock", "1.3.0"
		}
		l.Tier = 1
	},
}}

func (f *Fleet) plantWeakLinks(p estate.Policy) {
	f.planted = nil
	used := map[int]bool{}
	why := map[int]string{}
	for _, pl := range plants {
		if i := f.plantSite(pl, used); i >= 0 {
			pl.apply(&f.Locks[i])
			used[i], why[i] = true, pl.why
		}
	}
	for i := range f.Locks[:f.Base.Locks] {
		if l := &f.Locks[i]; used[i] && l.Tier < metTier(p, l) {
			f.planted = append(f.planted, PlantedWeakLink{Vendor: l.Vendor, LockID: l.LockID, SiteID: l.SiteID,
				DoorID: l.DoorID, Tier: l.Tier, Why: why[i]})
		}
	}
}

// plantSite is the lock a plant changes (-1: none fits).
func (f *Fleet) plantSite(pl plant, used map[int]bool) int {
	for _, kind := range pl.kinds {
		for i := 0; i < f.Base.Locks; i++ {
			if l := &f.Locks[i]; !used[i] && l.Kind == kind && pl.fits(l) {
				return i
			}
		}
	}
	return -1
}

// PlantedWeakLinks lists the planted weak links, in lock order.
func (f *Fleet) PlantedWeakLinks() []PlantedWeakLink {
	return append([]PlantedWeakLink(nil), f.planted...)
}

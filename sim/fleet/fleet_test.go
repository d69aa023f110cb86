package fleet_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

func opts() fleet.Options {
	return fleet.Options{Seed: 7, Sites: 3, DoorsPerSite: 80, Subjects: 600, SpareDevices: 2}
}

func TestSameSeedSameFleet(t *testing.T) {
	a, err := fleet.Generate(opts())
	require.NoError(t, err)
	b, err := fleet.Generate(opts())
	require.NoError(t, err)
	require.Equal(t, a, b)
	o := opts()
	o.Seed = 8
	c, err := fleet.Generate(o)
	require.NoError(t, err)
	require.NotEqual(t, a.Locks[0].LockID, c.Locks[0].LockID)
}

func TestEstate(t *testing.T) {
	f, err := fleet.Generate(opts())
	require.NoError(t, err)
	require.Len(t, f.Locks, 3*80)
	require.Len(t, f.Subjects, 600)
	ids := map[string]bool{}
	vendors := map[string]int{}
	for _, l := range f.Locks {
		require.False(t, ids[l.LockID], "duplicate lock id %s", l.LockID)
		ids[l.LockID] = true
		vendors[l.Vendor]++
		got, ok := f.LockByID(l.LockID)
		require.True(t, ok)
		require.Equal(t, l.DoorID, got.DoorID)
		require.Len(t, l.Groups, 1)
		if l.Kind == fleet.KindUnit {
			require.Equal(t, "unit:"+l.Unit, l.Groups[0])
		} else {
			require.Equal(t, l.Kind, l.Groups[0])
		}
		switch l.Vendor {
		case "matter":
			require.True(t, strings.HasPrefix(l.LockID, l.MatterNode))
		case "legacy":
			require.Equal(t, l.Panel+"/"+l.Reader, l.LockID)
		}
	}
	for _, v := range []string{"matter", "nuki", "schlage", "seam", "legacy"} {
		require.Positive(t, vendors[v], v)
	}
	roles := map[string]int{}
	for _, s := range f.Subjects {
		roles[s.Role]++
		c := &f.Credentials[s.Credential]
		require.Equal(t, s.Index, c.Subject)
		require.Len(t, c.Devices, 3)
		acc := f.Access(s.Credential)
		require.NotEmpty(t, acc, "%s %s opens nothing", s.Role, s.ID)
		for _, l := range acc {
			require.Equal(t, s.Site, f.Locks[l].Site)
		}
		if s.Role == fleet.RoleResident {
			require.Contains(t, acc, s.UnitLock, "a resident opens their own unit")
		}
	}
	for _, r := range fleet.Roles {
		if r == fleet.RoleInspection {
			require.Zero(t, roles[r], "the base estate has no inspection crew (Scenarios.NewCrew)")
			continue
		}
		require.Positive(t, roles[r], r)
	}
	require.Greater(t, roles[fleet.RoleResident], 400)
}

// Scenarios add newcomers after the base estate, which stays exactly as it
// is: the same locks, people and keys.
func TestScenarios(t *testing.T) {
	base, err := fleet.Generate(opts())
	require.NoError(t, err)
	o := opts()
	o.Scenarios = fleet.Scenarios{NewCrew: true, NewBuilding: true}
	f, err := fleet.Generate(o)
	require.NoError(t, err)
	require.Equal(t, base.Sites, f.Sites[:f.Base.Sites])
	require.Equal(t, base.Locks, f.Locks[:f.Base.Locks])
	require.Equal(t, base.Subjects, f.Subjects[:f.Base.Subjects])
	require.Equal(t, base.Credentials, f.Credentials[:f.Base.Credentials])
	require.Len(t, f.Sites, 4)
	require.Len(t, f.Locks, 4*80)

	ids := map[string]bool{}
	for _, l := range f.Locks {
		require.False(t, ids[l.LockID], "duplicate lock id %s", l.LockID)
		ids[l.LockID] = true
	}
	cards := map[string]bool{}
	cohorts := map[string]int{}
	for _, s := range f.Subjects {
		c := &f.Credentials[s.Credential]
		for _, d := range c.Devices {
			require.False(t, cards[d.Card], "duplicate card %s", d.Card)
			cards[d.Card] = true
		}
		if !f.Newcomer(s.Index) {
			require.Empty(t, s.Cohort)
			continue
		}
		cohorts[s.Cohort]++
		require.True(t, s.Incoming, "%s starts on no lock", s.ID)
		switch s.Cohort {
		case fleet.CohortNewCrew:
			require.Equal(t, fleet.RoleInspection, s.Role)
			require.Equal(t, 0, s.Site)
			require.Len(t, f.Access(s.Credential), len(f.Sites[0].Units)+len(f.Sites[0].Entrances)+len(f.Sites[0].Services))
		case fleet.CohortNewBuilding:
			require.Equal(t, 3, s.Site)
			require.NotEmpty(t, f.Access(s.Credential))
		default:
			t.Fatalf("cohort %q", s.Cohort)
		}
	}
	require.Equal(t, 4, cohorts[fleet.CohortNewCrew])
	require.Equal(t, 200, cohorts[fleet.CohortNewBuilding])

	sc, err := fleet.ParseScenarios("new-crew, new-building")
	require.NoError(t, err)
	require.Equal(t, o.Scenarios, sc)
	_, err = fleet.ParseScenarios("new-moon")
	require.Error(t, err)
}

// TestRegistryFileResolves: the registry file the simulator writes loads in
// internal/registry and resolves every device's vendor references to the
// right subject, credential and device.
func TestRegistryFileResolves(t *testing.T) {
	f, err := fleet.Generate(opts())
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "registry.json")
	require.NoError(t, sim.WriteRegistry(path, f.Registry()))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), `"groups":["unit:`)
	key := []byte("fleet-test-key")
	reg, err := registry.Load(path, key)
	require.NoError(t, err)
	locks, _ := reg.Len()
	require.Equal(t, len(f.Locks), locks)
	for c := range f.Credentials {
		cred := &f.Credentials[c]
		subject := f.Subjects[cred.Subject].ID
		for _, l := range f.Access(c) {
			lock := &f.Locks[l]
			info, ok := reg.Lock(lock.Vendor, lock.LockID)
			require.True(t, ok)
			require.Equal(t, lock.DoorID, info.DoorID)
			for d := range cred.Devices {
				ref := f.UserRef(c, d, lock.Vendor)
				got, ok := reg.Credential(lock.Vendor, lock.LockID, event.RefHash(key, lock.Vendor, ref))
				require.True(t, ok, "%s device %d at %s", cred.ID, d, lock.LockID)
				require.Equal(t, subject, got.SubjectID)
				require.Equal(t, cred.ID, got.CredentialID)
				require.Equal(t, cred.Devices[d].ID, got.DeviceID)
			}
		}
	}
	// Credential records carry the same identities, hashed.
	rec := f.Record(key, 0, 1, "active", true, 1)
	require.Equal(t, f.Credentials[0].Devices[1].ID, rec.DeviceID)
	require.NotEmpty(t, rec.Refs)
	for _, r := range rec.Refs {
		require.Len(t, r.UserRefHash, 32)
	}
}

func TestValidate(t *testing.T) {
	for name, mod := range map[string]func(*fleet.Options){
		"no sites":        func(o *fleet.Options) { o.Sites = 0 },
		"too few doors":   func(o *fleet.Options) { o.DoorsPerSite = 3 },
		"too few people":  func(o *fleet.Options) { o.Subjects = 5 },
		"unknown vendor":  func(o *fleet.Options) { o.VendorMix = map[string]float64{"acme": 1} },
		"all zero":        func(o *fleet.Options) { o.VendorMix = map[string]float64{"nuki": 0} },
		"negative weight": func(o *fleet.Options) { o.VendorMix = map[string]float64{"nuki": -1} },
	} {
		o := opts()
		mod(&o)
		_, err := fleet.Generate(o)
		require.Error(t, err, name)
	}
}

func TestParseVendorMix(t *testing.T) {
	mix, err := fleet.ParseVendorMix("matter=30, nuki=20,legacy=0.5")
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"matter": 30, "nuki": 20, "legacy": 0.5}, mix)
	for _, bad := range []string{"matter", "acme=3", "nuki=x", "nuki=-1"} {
		_, err := fleet.ParseVendorMix(bad)
		require.Error(t, err, bad)
	}
	only, err := fleet.Generate(fleet.Options{Seed: 1, Sites: 1, DoorsPerSite: 20, Subjects: 40,
		VendorMix: map[string]float64{"legacy": 1}})
	require.NoError(t, err)
	for _, l := range only.Locks {
		require.Equal(t, "legacy", l.Vendor)
	}
}

package migrate_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate/migrate"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

func reg() *registry.Registry {
	r := registry.New()
	lock := func(vendor, id, door string, groups ...string) registry.Lock {
		return registry.Lock{Vendor: vendor, LockID: id, Groups: groups, Tier: 2, Model: "generic-keypad-lock",
			LockInfo: registry.LockInfo{SiteID: "s1", DoorID: door}}
	}
	r.Apply(registry.File{Locks: []registry.Lock{
		lock("seam", "k1", "boiler", "service"), lock("seam", "k2", "gym", "amenity"), lock("seam", "k3", "roof", "amenity"),
		lock("nuki", "n9", "lobby", "entrance"),
	}})
	r.Put(registry.Record{Lock: lock("seam", "k3", "roof"), Version: 5, Retired: true})
	return r
}

func TestParseLocks(t *testing.T) {
	csv := "from_lock_id,to_lock_id,model,firmware,tier\nk1,m1,door-lock,1.2,1\nk2, m2 ,,,\n"
	got, err := migrate.ParseLocks([]byte(csv))
	require.NoError(t, err)
	assert.Equal(t, []migrate.LockMap{{From: "k1", To: "m1", Model: "door-lock", Firmware: "1.2", Tier: 1}, {From: "k2", To: "m2"}}, got)
	got, err = migrate.ParseLocks([]byte(` [{"from_lock_id":"k1","to_lock_id":"m1","model":"door-lock"}]`))
	require.NoError(t, err)
	assert.Equal(t, []migrate.LockMap{{From: "k1", To: "m1", Model: "door-lock"}}, got)

	for in, want := range map[string]string{
		"from_lock_id\nk1\n":                        "header lacks to_lock_id",
		"from_lock_id,to_lock_id,colour\n":          `unknown column "colour"`,
		"from_lock_id,to_lock_id,tier\nk1,m1,one\n": `line 2: tier "one"`,
		`[{"from_lock_id":"k1","to":"m1"}]`:         `unknown field "to"`,
		"from_lock_id,to_lock_id\n\"k1,m1\n":        "locks file",
	} {
		_, err := migrate.ParseLocks([]byte(in))
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), want, in)
	}
}

func FuzzParseLocks(f *testing.F) {
	f.Add([]byte("from_lock_id,to_lock_id,model,firmware,tier\nk1,m1,door-lock,1.2,1\n"))
	f.Add([]byte(`[{"from_lock_id":"k1","to_lock_id":"m1"}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = migrate.ParseLocks(data)
	})
}

func TestNewPlan(t *testing.T) {
	r := reg()
	req := migrate.Request{FromVendor: "seam", ToVendor: "matter", Locks: []migrate.LockMap{
		{From: "k1", To: "m1", Model: "door-lock"}, {From: "k2", To: "m2", Model: "door-lock", Tier: 3}}}
	p, err := migrate.NewPlan(req, r.Get)
	require.NoError(t, err)
	require.Len(t, p.New, 2)
	assert.Equal(t, registry.Lock{Vendor: "matter", LockID: "m1", Groups: []string{"service"}, Model: "door-lock", Tier: 2,
		LockInfo: registry.LockInfo{SiteID: "s1", DoorID: "boiler"}}, p.New[0], "the new lock takes the old one's door")
	assert.Equal(t, 3, p.New[1].Tier)
	assert.Equal(t, "k1", p.Old[0].LockID)
	assert.Equal(t, control.LockMove{From: control.LockRef{Vendor: "seam", LockID: "k1"}, To: control.LockRef{Vendor: "matter", LockID: "m1"}}, p.Moves[0])

	_, err = migrate.NewPlan(migrate.Request{FromVendor: "seam", ToVendor: "seam", Locks: req.Locks}, r.Get)
	assert.ErrorContains(t, err, "the same")
	_, err = migrate.NewPlan(migrate.Request{FromVendor: "seam", ToVendor: "acme", Locks: req.Locks}, r.Get)
	assert.ErrorContains(t, err, `vendor "acme"`)
	_, err = migrate.NewPlan(migrate.Request{FromVendor: "seam", ToVendor: "nuki", Locks: []migrate.LockMap{
		{From: "k1", To: "x"}, {From: "k1", To: "y"}, {From: "k9", To: "z"}, {From: "k3", To: "w"}, {From: "k2", To: "n9"}}}, r.Get)
	require.Error(t, err)
	for _, want := range []string{"locks[1]: old lock k1 is also locks[0]", "locks[2]: lock seam/k9 is not registered",
		"locks[3]: lock seam/k3 is retired", "locks[4]: lock nuki/n9 is in service on another door (s1/lobby)"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestAffected(t *testing.T) {
	p, err := migrate.NewPlan(migrate.Request{FromVendor: "seam", ToVendor: "matter",
		Locks: []migrate.LockMap{{From: "k1", To: "m1"}, {From: "k2", To: "m2"}}}, reg().Get)
	require.NoError(t, err)
	rec := func(id, state string, locks ...string) *control.Record {
		r := &control.Record{}
		r.CredentialID, r.State = id, state
		for _, l := range locks {
			r.Locks = append(r.Locks, control.LockRef{Vendor: "seam", LockID: l})
		}
		return r
	}
	all := []*control.Record{rec("c3", event.StateActive, "k2", "k1"), rec("c1", event.StateSuspended, "k1"),
		rec("c2", event.StateRevoked, "k1"), rec("c4", event.StateActive, "k7"), rec("c5", event.StateRequested)}
	got := p.Affected(func(fn func(r *control.Record)) {
		for _, r := range all {
			fn(r)
		}
	})
	require.Len(t, got, 2)
	assert.Equal(t, "c1", got[0].CredentialID)
	assert.Equal(t, event.StateSuspended, got[0].State)
	assert.Equal(t, "c3", got[1].CredentialID)
	assert.Len(t, got[1].Moves, 2)
}

func TestProgress(t *testing.T) {
	k1, m1 := control.LockRef{Vendor: "seam", LockID: "k1"}, control.LockRef{Vendor: "matter", LockID: "m1"}
	k2, m2 := control.LockRef{Vendor: "seam", LockID: "k2"}, control.LockRef{Vendor: "matter", LockID: "m2"}
	h := migrate.Head{MigrationID: "mg", RequestedMs: 1_000_000}
	moves := []migrate.Move{
		{CredentialID: "c1", State: event.StateActive, From: k1, To: m1},
		{CredentialID: "c1", State: event.StateActive, From: k2, To: m2},
		{CredentialID: "c2", State: event.StateActive, From: k1, To: m1},
		{CredentialID: "c3", State: event.StateSuspended, From: k1, To: m1},
	}
	acks := []migrate.Ack{
		{CredentialID: "c1", Lock: m1, Type: "grant", AppliedMs: 1_000_500},
		{CredentialID: "c1", Lock: k1, Type: "revoke", AppliedMs: 1_000_700},
		{CredentialID: "c1", Lock: m2, Type: "grant", AppliedMs: 1_000_900},
		{CredentialID: "c1", Lock: k2, Type: "revoke", AppliedMs: 1_002_000},
		{CredentialID: "c2", Lock: m1, Type: "grant", AppliedMs: 1_000_600},
	}
	now := time.UnixMilli(1_000_000 + 20*60_000)
	st := migrate.Progress(h, moves, acks, now, 15*time.Minute)
	assert.Equal(t, migrate.StatusPending, st.Status)
	assert.Equal(t, 1, st.Moved)
	assert.Equal(t, 2, st.Total)
	assert.Equal(t, 1, st.Deferred)
	require.Len(t, st.Locks, 2)
	assert.Equal(t, migrate.LockProgress{From: k1, To: m1, Credentials: 3, Granted: 2, Revoked: 1, Status: migrate.StatusPending}, st.Locks[0])
	assert.Equal(t, migrate.StatusConfirmed, st.Locks[1].Status)
	assert.Equal(t, []migrate.Straggler{{CredentialID: "c2", Vendor: "seam", LockID: "k1", Command: "revoke", AgeMs: 20 * 60_000, Overdue: true}},
		st.Stragglers)
	assert.Zero(t, st.TimeToConfirmMs)

	acks = append(acks, migrate.Ack{CredentialID: "c2", Lock: k1, Type: "revoke", AppliedMs: 1_003_000})
	st = migrate.Progress(h, moves, acks, now, 15*time.Minute)
	assert.Equal(t, migrate.StatusConfirmed, st.Status)
	assert.Equal(t, int64(3000), st.TimeToConfirmMs)
	assert.Empty(t, st.Stragglers)
}

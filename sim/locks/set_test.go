package locks_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	gw "github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
)

const t0 = int64(1_795_000_000_000)

func testFleet(t *testing.T) *fleet.Fleet {
	t.Helper()
	f, err := fleet.Generate(fleet.Options{Seed: 3, Sites: 1, DoorsPerSite: 40, Subjects: 60,
		VendorMix: map[string]float64{"matter": 1, "nuki": 1, "schlage": 1, "seam": 1, "legacy": 1}})
	require.NoError(t, err)
	return f
}

// fixed profiles: no spread, nobody offline, nothing lost.
func fixed() map[string]locks.Profile {
	return map[string]locks.Profile{
		"nuki": {LatencyMedian: 200 * time.Millisecond}, "schlage": {LatencyMedian: 300 * time.Millisecond},
		"seam": {LatencyMedian: 400 * time.Millisecond}, "matter": {LatencyMedian: time.Second},
		"legacy": {LatencyMedian: 20 * time.Second},
	}
}

// lockWith returns a lock of vendor and a credential on its list.
func lockWith(t *testing.T, f *fleet.Fleet, vendor string) (*fleet.Lock, *fleet.Credential) {
	t.Helper()
	for i := range f.Locks {
		if f.Locks[i].Vendor == vendor && len(f.ACL(i)) > 0 {
			for _, c := range f.ACL(i) {
				if f.Credentials[c].Schedule == nil {
					return &f.Locks[i], &f.Credentials[c]
				}
			}
		}
	}
	t.Fatalf("no %s lock with an unscheduled credential", vendor)
	return nil, nil
}

func revoke(l *fleet.Lock, c *fleet.Credential, id string) gw.Command {
	return gw.Command{CommandID: id, Type: gw.CommandRevoke, Vendor: l.Vendor, LockID: l.LockID, CredentialID: c.ID,
		RevocationID: "rev-" + id, IssuedMs: t0}
}

func TestRevocationAppliedAfterVendorLatency(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true})
	for _, tc := range []struct {
		vendor  string
		latency int64
	}{{"nuki", 200}, {"schlage", 300}, {"seam", 400}, {"matter", 1000}, {"legacy", 20000}} {
		l, c := lockWith(t, f, tc.vendor)
		require.True(t, set.Decide(l.LockID, c.ID, t0).Granted, tc.vendor)
		applied := set.Submit(revoke(l, c, tc.vendor), t0, locks.SubmitOptions{})
		require.Equal(t, t0+tc.latency, applied, tc.vendor)
		// Until the lock applies it, the key still opens the door: the
		// grant carries the revocation request as ground truth.
		d := set.Decide(l.LockID, c.ID, applied-1)
		require.True(t, d.Granted, tc.vendor)
		require.Equal(t, t0, d.RevokeRequestedMs, tc.vendor)
		d = set.Decide(l.LockID, c.ID, applied)
		require.False(t, d.Granted, tc.vendor)
		require.Equal(t, "revoked", d.Reason, tc.vendor)
	}
	require.Empty(t, set.DueAcks(t0+199))
	acks := set.DueAcks(t0 + 20000)
	require.Len(t, acks, 5)
	for _, a := range acks {
		require.Equal(t, gw.AckApplied, a.Status)
		require.Equal(t, t0, a.ReceivedMs)
		require.Equal(t, "rev-"+a.Vendor, a.RevocationID)
	}
	require.True(t, sort.SliceIsSorted(acks, func(i, j int) bool { return acks[i].AppliedMs < acks[j].AppliedMs }))
}

func TestCommandsToOneLockApplyInOrder(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, Provision: true})
	l, c := lockWith(t, f, "legacy")
	first := set.Submit(revoke(l, c, "a"), t0, locks.SubmitOptions{})
	grant := gw.Command{CommandID: "b", Type: gw.CommandGrant, Vendor: l.Vendor, LockID: l.LockID, CredentialID: c.ID}
	second := set.Submit(grant, t0+1000, locks.SubmitOptions{})
	require.Equal(t, t0+20000, first)
	require.Equal(t, first+20000, second, "a panel works through its queue one command at a time")
	require.Equal(t, "revoked", set.Decide(l.LockID, c.ID, first+1).Reason)
	require.True(t, set.Decide(l.LockID, c.ID, second).Granted)
}

func TestOfflineLockAppliesOnReconnect(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true})
	l, c := lockWith(t, f, "nuki")
	back := t0 + int64(10*time.Minute/time.Millisecond)
	require.NoError(t, set.ForceOffline(l.LockID, t0, back))
	online, at := set.Online(l.LockID, t0+5)
	require.False(t, online)
	require.Equal(t, back, at)
	applied := set.Submit(revoke(l, c, "x"), t0+1000, locks.SubmitOptions{})
	require.Equal(t, back+200, applied)
	require.True(t, set.Decide(l.LockID, c.ID, back).Granted, "the offline lock still holds the old list")
	require.False(t, set.Decide(l.LockID, c.ID, back+200).Granted)
	acks := set.DueAcks(back + 200)
	require.Len(t, acks, 1)
	require.Equal(t, t0+1000, acks[0].ReceivedMs)
	require.Equal(t, back+200, acks[0].AppliedMs)
}

func TestLostRevocationKeepsGranting(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true})
	l, c := lockWith(t, f, "legacy")
	require.Equal(t, locks.Never, set.Submit(revoke(l, c, "lost"), t0, locks.SubmitOptions{Lose: true}))
	d := set.Decide(l.LockID, c.ID, t0+int64(48*time.Hour/time.Millisecond))
	require.True(t, d.Granted)
	require.Equal(t, t0, d.RevokeRequestedMs)
	require.True(t, d.RevokeExternal, "submitted as a command from lock.commands")
	require.Empty(t, set.DueAcks(locks.Never-1), "a lost command is never acknowledged")
	// Sent again, it is applied.
	applied := set.Submit(revoke(l, c, "again"), t0+1000, locks.SubmitOptions{})
	require.False(t, set.Decide(l.LockID, c.ID, applied).Granted)
	st := set.Stats()["legacy"]
	require.Equal(t, 2, st.Commands)
	require.Equal(t, 1, st.Lost)
}

func TestMissRateLosesSomeCommands(t *testing.T) {
	f := testFleet(t)
	p := fixed()
	p["legacy"] = locks.Profile{LatencyMedian: 20 * time.Second, LatencySpread: 0.4, MissRate: 0.2}
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: p, Seed: 1, OriginMs: t0, Provision: true})
	l, c := lockWith(t, f, "legacy")
	lost := 0
	var delays []int64
	for i := 0; i < 500; i++ {
		at := t0 + int64(i)*int64(time.Hour/time.Millisecond)
		applied := set.Submit(revoke(l, c, fmt.Sprintf("r-%d", i)), at, locks.SubmitOptions{})
		if applied == locks.Never {
			lost++
		} else {
			delays = append(delays, applied-at)
		}
	}
	require.InDelta(t, 100, lost, 35)
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	median := delays[len(delays)/2]
	require.InDelta(t, 20000, median, 3000, "log-normal around the median")
	require.Less(t, delays[0], median)
	require.Greater(t, delays[len(delays)-1], median)
}

func TestACLPushReplacesTheList(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, Provision: true})
	l, c := lockWith(t, f, "seam")
	push := gw.Command{CommandID: "p", Type: gw.CommandACLPush, Vendor: "seam", LockID: l.LockID, ACL: []string{"cred-new"}}
	applied := set.Submit(push, t0, locks.SubmitOptions{})
	require.Equal(t, "revoked", set.Decide(l.LockID, c.ID, applied).Reason)
	require.True(t, set.Decide(l.LockID, "cred-new", applied).Granted)
	require.Equal(t, "invalid_credential", set.Decide(l.LockID, "cred-new", applied-1).Reason)
}

func TestScheduleAndExpiry(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, Provision: true})
	l, _ := lockWith(t, f, "nuki")
	grant := gw.Command{CommandID: "g", Type: gw.CommandGrant, Vendor: "nuki", LockID: l.LockID, CredentialID: "cred-guest",
		ValidUntilMs: t0 + 3_600_000}
	weekdays := &fleet.Schedule{Days: 0b0111110, FromMin: 7 * 60, UntilMin: 18 * 60}
	applied := set.Submit(grant, t0, locks.SubmitOptions{Schedule: weekdays})
	at := time.UnixMilli(applied).UTC()
	d := set.Decide(l.LockID, "cred-guest", applied)
	if weekdays.Allows(int(at.Weekday()), at.Hour()*60+at.Minute()) {
		require.True(t, d.Granted)
	} else {
		require.Equal(t, "outside_schedule", d.Reason)
	}
	require.Equal(t, "expired", set.Decide(l.LockID, "cred-guest", t0+3_600_000).Reason)
}

// In rate mode the fleet's days are compressed: a credential's schedule is
// judged on the simulated clock (localMs), whatever the wall clock says.
func TestDecideAtSimulatedClock(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, Provision: true})
	l, _ := lockWith(t, f, "nuki")
	weekdays := &fleet.Schedule{Days: 0b0111110, FromMin: 7 * 60, UntilMin: 18 * 60}
	applied := set.Submit(gw.Command{CommandID: "c", Type: gw.CommandGrant, Vendor: "nuki", LockID: l.LockID,
		CredentialID: "cred-crew"}, t0, locks.SubmitOptions{Schedule: weekdays, NoAck: true})
	saturdayNight := time.UnixMilli(applied).UTC().Truncate(24 * time.Hour)
	for saturdayNight.Weekday() != time.Saturday {
		saturdayNight = saturdayNight.Add(24 * time.Hour)
	}
	saturdayNight = saturdayNight.Add(21 * time.Hour)
	mondayMorning := saturdayNight.Add(35 * time.Hour) // 08:00
	wall := saturdayNight.UnixMilli()
	require.Equal(t, "outside_schedule", set.Decide(l.LockID, "cred-crew", wall).Reason)
	require.True(t, set.DecideAt(l.LockID, "cred-crew", wall, mondayMorning.UnixMilli()).Granted,
		"a Monday-morning visit of the simulated world on a Saturday-night wall clock")
	require.Equal(t, "outside_schedule", set.DecideAt(l.LockID, "cred-crew", mondayMorning.UnixMilli(), wall).Reason)
}

// A grant from the control plane carries weekly windows; the lock holds
// them and decides by them (its local time is UTC).
func TestGrantWindows(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, Provision: true})
	l, _ := lockWith(t, f, "schlage")
	grant := gw.Command{CommandID: "w", Type: gw.CommandGrant, Vendor: "schlage", LockID: l.LockID, CredentialID: "cred-crew",
		Windows: []gw.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri"}, Start: "07:00", End: "19:00"}}}
	applied := set.Submit(grant, t0, locks.SubmitOptions{})
	// The next Monday 08:00 and 20:00 and the Saturday before, all after the grant.
	monday := time.UnixMilli(applied).UTC().Truncate(24 * time.Hour)
	for monday.Weekday() != time.Monday {
		monday = monday.Add(24 * time.Hour)
	}
	require.True(t, set.Decide(l.LockID, "cred-crew", monday.Add(8*time.Hour).UnixMilli()).Granted)
	require.Equal(t, "outside_schedule", set.Decide(l.LockID, "cred-crew", monday.Add(20*time.Hour).UnixMilli()).Reason)
	if sat := monday.Add(-36 * time.Hour); sat.UnixMilli() > applied {
		require.Equal(t, "outside_schedule", set.Decide(l.LockID, "cred-crew", sat.UnixMilli()).Reason)
	}
}

func TestUnknownLockFails(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true})
	set.Submit(gw.Command{CommandID: "u", Type: gw.CommandRevoke, Vendor: "nuki", LockID: "no-such-lock"}, t0, locks.SubmitOptions{})
	acks := set.DueAcks(t0)
	require.Len(t, acks, 1)
	require.Equal(t, gw.AckFailed, acks[0].Status)
	require.Equal(t, "unknown lock", acks[0].Error)
}

func TestOfflineFractionAndTransitions(t *testing.T) {
	f, err := fleet.Generate(fleet.Options{Seed: 3, Sites: 4, DoorsPerSite: 100, Subjects: 100,
		VendorMix: map[string]float64{"schlage": 1}})
	require.NoError(t, err)
	p := map[string]locks.Profile{"schlage": {LatencyMedian: 300 * time.Millisecond, OfflineFraction: 0.1, OfflineMean: 20 * time.Minute}}
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: p, Seed: 1, OriginMs: t0})
	offline, samples := 0, 0
	for h := int64(0); h < 48; h++ {
		for i := range f.Locks {
			if on, _ := set.Online(f.Locks[i].LockID, t0+h*3_600_000); !on {
				offline++
			}
			samples++
		}
	}
	require.InDelta(t, 0.1, float64(offline)/float64(samples), 0.04)
	tr := set.Transitions(t0, t0+48*3_600_000)
	require.NotEmpty(t, tr)
	require.True(t, sort.SliceIsSorted(tr, func(i, j int) bool { return tr[i].AtMs < tr[j].AtMs }))
}

func TestParseProfiles(t *testing.T) {
	p, err := locks.ParseProfiles(locks.DefaultProfiles(), "legacy.latency=40s,legacy.miss=0.1,nuki.offline=0.05,matter.spread=0,seam.offline-mean=5m")
	require.NoError(t, err)
	require.Equal(t, 40*time.Second, p["legacy"].LatencyMedian)
	require.Equal(t, 0.1, p["legacy"].MissRate)
	require.Equal(t, 0.05, p["nuki"].OfflineFraction)
	require.Zero(t, p["matter"].LatencySpread)
	require.Equal(t, 5*time.Minute, p["seam"].OfflineMean)
	require.Equal(t, 25*time.Second, locks.DefaultProfiles()["legacy"].LatencyMedian, "the base is not modified")
	for _, bad := range []string{"legacy", "acme.latency=1s", "legacy.speed=1", "legacy.latency=fast", "nuki.offline=1.5", "nuki.miss=-1"} {
		_, err := locks.ParseProfiles(locks.DefaultProfiles(), bad)
		require.Error(t, err, bad)
	}
}

func TestAResentCommandIsAppliedOnceAndAcknowledgedAgain(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true})
	l, c := lockWith(t, f, "nuki")
	cmd := revoke(l, c, "once")
	cmd.Seq, cmd.Attempt = 5, 1
	first := set.Submit(cmd, t0, locks.SubmitOptions{})
	cmd.Attempt = 2
	again := set.Submit(cmd, t0+5000, locks.SubmitOptions{})
	assert.Greater(t, again, first)
	acks := set.DueAcks(again)
	require.Len(t, acks, 2, "each send is acknowledged")
	assert.Equal(t, []int{1, 2}, []int{acks[0].Attempt, acks[1].Attempt})
	assert.Equal(t, acks[0].ACLVersion, acks[1].ACLVersion, "applied once: the list did not change")
	st := set.Stats()["nuki"]
	assert.Equal(t, 1, st.Applied)
	assert.Equal(t, 1, st.Repeats)
}

func TestAnOlderSeqNeverUndoesANewerOne(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true})
	l, c := lockWith(t, f, "seam")
	grant := gw.Command{CommandID: "g", Type: gw.CommandGrant, Vendor: l.Vendor, LockID: l.LockID, CredentialID: c.ID, Seq: 5}
	rev := revoke(l, c, "r")
	rev.Seq = 6
	set.Submit(rev, t0, locks.SubmitOptions{})
	at := set.Submit(grant, t0+1000, locks.SubmitOptions{}) // a late re-send of an older grant
	assert.Equal(t, "revoked", set.Decide(l.LockID, c.ID, at+1000).Reason)
	acks := set.DueAcks(at + 1000)
	require.Len(t, acks, 2)
	assert.Equal(t, gw.AckApplied, acks[1].Status, "superseded, acknowledged")
	ids, _ := set.ACL(l.LockID, at+1000)
	assert.NotContains(t, ids, c.ID)
}

func TestAcksReportTheACLVersion(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true})
	l, c := lockWith(t, f, "matter")
	before, _ := set.ACL(l.LockID, t0)
	require.Contains(t, before, c.ID)
	cmd := revoke(l, c, "v")
	var expected []string
	for _, id := range before {
		if id != c.ID {
			expected = append(expected, id)
		}
	}
	cmd.ACLVersion = gw.ACLVersion(expected)
	applied := set.Submit(cmd, t0, locks.SubmitOptions{})
	acks := set.DueAcks(applied)
	require.Len(t, acks, 1)
	assert.Equal(t, gw.ACLVersion(expected), acks[0].ACLVersion)
	assert.Equal(t, cmd.ACLVersion, acks[0].ExpectedACLVersion)
	assert.False(t, acks[0].Drifted())
}

func TestACLPushEntriesKeepSchedulesAndNewerChanges(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true})
	l, c := lockWith(t, f, "nuki")
	ids, _ := set.ACL(l.LockID, t0)
	// A newer revoke of another credential than the push knows of.
	var other string
	for _, id := range ids {
		if id != c.ID {
			other = id
		}
	}
	require.NotEmpty(t, other)
	rev := gw.Command{CommandID: "r", Type: gw.CommandRevoke, Vendor: l.Vendor, LockID: l.LockID, CredentialID: other, Seq: 9}
	set.Submit(rev, t0, locks.SubmitOptions{})
	push := gw.Command{CommandID: "p", Type: gw.CommandACLPush, Vendor: l.Vendor, LockID: l.LockID,
		ACL: []string{c.ID, other, "cred-new"}, Entries: []gw.ACLEntry{{CredentialID: c.ID, Seq: 3}, {CredentialID: other, Seq: 8},
			{CredentialID: "cred-new", Seq: 1}}}
	push.ACLVersion = gw.ACLVersion(push.ACL)
	applied := set.Submit(push, t0+10, locks.SubmitOptions{})
	after, version := set.ACL(l.LockID, applied)
	assert.Equal(t, []string{c.ID, "cred-new"}, after, "every other credential removed; the stale entry does not re-grant")
	assert.Equal(t, gw.ACLVersion(after), version)
	assert.True(t, set.Decide(l.LockID, c.ID, applied).Granted)
	assert.Equal(t, "revoked", set.Decide(l.LockID, other, applied).Reason)
}

func TestDropOfflineAndReconnectReports(t *testing.T) {
	f := testFleet(t)
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: t0, KeepAcks: true, Provision: true,
		DropOffline: true})
	l, c := lockWith(t, f, "schlage")
	back := t0 + 60_000
	require.NoError(t, set.ForceOffline(l.LockID, t0, back))
	assert.Equal(t, locks.Never, set.Submit(revoke(l, c, "x"), t0+10, locks.SubmitOptions{}), "an offline lock misses it")
	assert.Empty(t, set.Reconnects(t0, back))
	reports := set.Reconnects(t0, back+1)
	require.Len(t, reports, 1)
	r := reports[0]
	assert.Equal(t, gw.Ack{Type: gw.TypeStatus, Status: gw.StatusOnline, Vendor: "schlage", LockID: l.LockID, ReceivedMs: back,
		AppliedMs: back, ACLVersion: r.ACLVersion}, r)
	_, version := set.ACL(l.LockID, back)
	assert.Equal(t, version, r.ACLVersion)
	// The re-send after it is back is applied.
	assert.NotEqual(t, locks.Never, set.Submit(revoke(l, c, "x"), back+10, locks.SubmitOptions{}))
}

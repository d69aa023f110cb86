package exception_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/exception"
)

const day = int64(24 * time.Hour / time.Millisecond)

// t0 is a fixed clock: 2026-03-02T00:00:00Z.
var t0 = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).UnixMilli()

func lockException() exception.Exception {
	return exception.Exception{Kind: exception.KindLock,
		Scope:  exception.Scope{SiteID: "s1", Vendor: "legacy", LockID: "P1/R1", Capability: "schedule"},
		Reason: "legacy_hardware", Approvers: []string{"ciso", "facilities"},
		CompensatingControl: "guard patrol checks the door every 2 h", StartMs: t0, ExpiryMs: t0 + 90*day}
}

func TestValidate(t *testing.T) {
	f := func(name string, edit func(e *exception.Exception), want string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			e := lockException()
			edit(&e)
			err := e.Validate()
			if want == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
	f("valid", func(e *exception.Exception) {}, "")
	f("no compensating control", func(e *exception.Exception) { e.CompensatingControl = "  " }, "compensating_control: required")
	f("unknown kind", func(e *exception.Exception) { e.Kind = "room" }, `kind "room"`)
	f("lock without lock id", func(e *exception.Exception) { e.Scope.LockID = "" }, "a lock exception names a vendor and a lock_id")
	f("door without door", func(e *exception.Exception) { e.Kind = exception.KindDoor }, "a door exception names a door_id")
	f("door", func(e *exception.Exception) {
		e.Kind, e.Scope = exception.KindDoor, exception.Scope{SiteID: "s1", DoorID: "d1"}
	}, "")
	f("credential without whom", func(e *exception.Exception) { e.Kind = exception.KindCredential }, "credential_id or a subject_id")
	f("credential", func(e *exception.Exception) {
		e.Kind, e.Scope = exception.KindCredential, exception.Scope{CredentialID: "c1"}
	}, "")
	f("fleet-wide policy", func(e *exception.Exception) {
		e.Kind, e.Scope = exception.KindPolicy, exception.Scope{Capability: "schedule"}
	}, "no fleet-wide exceptions")
	f("policy of a role at a site", func(e *exception.Exception) {
		e.Kind, e.Scope = exception.KindPolicy, exception.Scope{SiteID: "s1", Role: "contractor", Capability: "expiry"}
	}, "")
	f("reason in words", func(e *exception.Exception) { e.Reason = "Old Lock" }, "a short code")
	f("no approver", func(e *exception.Exception) { e.Approvers = nil }, "approvers: at least one")
	f("approver twice", func(e *exception.Exception) { e.Approvers = []string{"a", "a"} }, `"a" twice`)
	f("no start", func(e *exception.Exception) { e.StartMs = 0 }, "start_ms: required")
	f("expiry before start", func(e *exception.Exception) { e.ExpiryMs = e.StartMs }, "expiry_ms: required and after start_ms")
	f("for ever", func(e *exception.Exception) { e.ExpiryMs = e.StartMs + 4*366*day }, "renew it instead")
	f("review after expiry", func(e *exception.Exception) { e.ReviewMs = e.ExpiryMs + 1 }, "review_ms")
	f("review inside", func(e *exception.Exception) { e.ReviewMs = e.StartMs + 30*day }, "")
}

func TestStateAt(t *testing.T) {
	r := exception.Record{ID: "x1", Exception: lockException(), Status: exception.StatusOpen, Version: 1}
	warn := 7 * 24 * time.Hour
	f := func(now int64, status exception.Status, want exception.State) {
		t.Helper()
		rr := r
		rr.Status = status
		assert.Equal(t, want, rr.StateAt(now, warn), "now %d", now)
		assert.Equal(t, want == exception.StateActive || want == exception.StateExpiring, rr.InForce(now))
	}
	f(t0-1, exception.StatusOpen, exception.StatePending)
	f(t0, exception.StatusOpen, exception.StateActive)
	f(t0+83*day-1, exception.StatusOpen, exception.StateActive)
	f(t0+83*day, exception.StatusOpen, exception.StateExpiring)
	f(t0+90*day-1, exception.StatusOpen, exception.StateExpiring)
	f(t0+90*day, exception.StatusOpen, exception.StateExpired)
	f(t0+10*day, exception.StatusClosed, exception.StateClosed)
}

func TestRegisterLifts(t *testing.T) {
	g := exception.NewRegister()
	lock := exception.Record{ID: "lock-1", Exception: lockException(), Status: exception.StatusOpen, Version: 1}
	require.True(t, g.Put(lock))
	require.False(t, g.Put(lock), "the same version applies once")
	q := exception.Query{SubjectID: "u1", Role: "resident", SiteID: "s1", DoorID: "d1", Vendor: "legacy", LockID: "P1/R1", Capability: "schedule"}
	f := func(name string, q exception.Query, now int64, want string) {
		t.Helper()
		got, ok := g.Lifts(q, now)
		assert.Equal(t, want != "", ok, name)
		assert.Equal(t, want, got.ID, name)
	}
	f("in force", q, t0+day, "lock-1")
	f("before start", q, t0-1, "")
	f("after expiry", q, t0+90*day, "")
	other := q
	other.Capability = "expiry"
	f("other capability", other, t0+day, "")
	other = q
	other.LockID = "P1/R2"
	f("other lock", other, t0+day, "")

	closed := lock
	closed.Status, closed.Version, closed.Op = exception.StatusClosed, 2, exception.OpClose
	require.True(t, g.Put(closed))
	require.False(t, g.Put(lock), "an older version does not come back")
	f("closed", q, t0+day, "")

	site := exception.Record{ID: "site-1", Status: exception.StatusOpen, Version: 1, Exception: exception.Exception{
		Kind: exception.KindPolicy, Scope: exception.Scope{SiteID: "s1", Capability: "schedule"}, Reason: "business_need",
		Approvers: []string{"ciso"}, CompensatingControl: "reception logs visitors", StartMs: t0, ExpiryMs: t0 + 30*day}}
	require.True(t, g.Put(site))
	f("site-wide policy", q, t0+day, "site-1")
	kinds := q
	kinds.Kinds = []exception.Kind{exception.KindLock, exception.KindCredential}
	f("not a kind asked for", kinds, t0+day, "")
	other = q
	other.SiteID = "s2"
	f("other site", other, t0+day, "")
	assert.Equal(t, 2, g.Len())
	assert.Equal(t, uint64(3), g.Version())
}

func TestComputeKPIs(t *testing.T) {
	rec := func(id, site, reason string, start, expiry int64, status exception.Status) exception.Record {
		e := lockException()
		e.Scope.SiteID, e.Reason, e.StartMs, e.ExpiryMs = site, reason, start, expiry
		return exception.Record{ID: id, Exception: e, Status: status, Version: 1}
	}
	now := t0 + 40*day
	recs := []exception.Record{
		rec("a", "s1", "legacy_hardware", t0, t0+90*day, exception.StatusOpen),        // active, 40 days
		rec("b", "s1", "business_need", t0+30*day, t0+45*day, exception.StatusOpen),   // expiring, 10 days
		rec("c", "s2", "legacy_hardware", t0-20*day, t0+10*day, exception.StatusOpen), // expired, 60 days, review overdue
		rec("d", "s2", "legacy_hardware", t0, t0+90*day, exception.StatusClosed),      // closed
		rec("e", "", "vendor_limitation", t0+50*day, t0+90*day, exception.StatusOpen), // pending
	}
	k := exception.ComputeKPIs(recs, exception.Credentials{Total: 2000, BySite: map[string]int{"s1": 1500, "s2": 500}}, now, 7*24*time.Hour)
	assert.Equal(t, 3, k.Open)
	assert.Equal(t, 1.5, k.Per1000)
	assert.Equal(t, map[exception.State]int{"pending": 1, "active": 1, "expiring": 1, "expired": 1, "closed": 1}, k.ByState)
	assert.Equal(t, []exception.Group{{Key: "legacy_hardware", Count: 2, Per1000: 1}, {Key: "business_need", Count: 1, Per1000: 0.5}}, k.ByReason)
	assert.Equal(t, []exception.Group{{Key: "s1", Count: 2, Credentials: 1500, Per1000: 1.33}, {Key: "s2", Count: 1, Credentials: 500, Per1000: 2}}, k.BySite)
	assert.Equal(t, exception.Age{MeanDays: 36.7, MedianDays: 40, MaxDays: 60, OldestID: "c"}, k.Age)
	assert.Equal(t, 1, k.ReviewOverdue)

	empty := exception.ComputeKPIs(nil, exception.Credentials{}, now, time.Hour)
	assert.Zero(t, empty.Per1000)
	assert.Empty(t, empty.ByReason)
}

func FuzzDecodeRecord(f *testing.F) {
	good, err := json.Marshal(exception.Record{ID: "x1", Exception: lockException(), Status: exception.StatusOpen, Version: 1})
	require.NoError(f, err)
	f.Add(good)
	f.Add([]byte(`{"id":"x","status":"open","version":1}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := exception.DecodeRecord(data)
		if err != nil {
			return
		}
		require.NoError(t, r.Validate())
		b, err := json.Marshal(r)
		require.NoError(t, err)
		again, err := exception.DecodeRecord(b)
		require.NoError(t, err)
		assert.Equal(t, r, again)
	})
}

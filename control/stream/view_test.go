package stream

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/event"
)

func viewRecord(id, subject, state string, seq uint64, locks ...string) *control.Record {
	r := &control.Record{Credential: event.Credential{CredentialID: id, SubjectID: subject, State: state}, Seq: seq}
	for _, l := range locks {
		r.Locks = append(r.Locks, control.LockRef{Vendor: "nuki", LockID: l})
	}
	return r
}

func viewIDs(recs []*control.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.CredentialID)
	}
	return out
}

// The view's indexes (a subject's credentials, a lock's access list) follow
// every record, sorted by credential id.
func TestViewIndexes(t *testing.T) {
	v := newView(nil, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"state"}))
	nuki := func(id string) control.LockRef { return control.LockRef{Vendor: "nuki", LockID: id} }
	assert.True(t, v.put(viewRecord("c3", "s1", event.StateActive, 1, "l1", "l2")))
	assert.True(t, v.put(viewRecord("c1", "s1", event.StateActive, 1, "l1", "l1")))
	assert.True(t, v.put(viewRecord("c2", "s2", event.StatePendingActivation, 1, "l1")))
	assert.False(t, v.put(viewRecord("c1", "s1", event.StateRevoked, 1)), "not newer")
	assert.Equal(t, []string{"c1", "c3"}, viewIDs(v.subject("s1")))
	assert.Equal(t, []string{"c1", "c3"}, viewIDs(v.acl(nuki("l1"))))
	assert.Equal(t, []string{"c3"}, viewIDs(v.acl(nuki("l2"))))
	assert.Equal(t, map[string]bool{"c1": true, "c3": true}, v.aclIDs(nuki("l1")))

	assert.True(t, v.put(viewRecord("c2", "s2", event.StateActive, 2, "l2")))
	assert.True(t, v.put(viewRecord("c3", "s2", event.StateActive, 2, "l3")), "moved to another subject and lock")
	assert.True(t, v.put(viewRecord("c1", "s1", event.StateSuspended, 2, "l1")))
	assert.Equal(t, []string{"c1"}, viewIDs(v.subject("s1")), "suspended: still the subject's")
	assert.Equal(t, []string{"c2", "c3"}, viewIDs(v.subject("s2")))
	assert.Equal(t, []string{}, viewIDs(v.acl(nuki("l1"))))
	assert.NotNil(t, v.acl(nuki("l1")))
	assert.Equal(t, []string{"c2"}, viewIDs(v.acl(nuki("l2"))))
	assert.Equal(t, []string{"c3"}, viewIDs(v.acl(nuki("l3"))))
	assert.Equal(t, 3, v.size())
}

// BenchmarkViewIndexes reports the live bytes per credential of the view
// holding a fleet's active credentials (records shared, not counted: the
// indexes' own cost).
func BenchmarkViewIndexes(b *testing.B) {
	const n = 20000
	recs := make([]*control.Record, n)
	for i := range recs {
		var locks []string
		for l := range 24 {
			locks = append(locks, fmt.Sprintf("0x%016X/%d", (i/400)*40+l, l%3))
		}
		recs[i] = viewRecord(fmt.Sprintf("cred-%06d", i), fmt.Sprintf("subj-%06d", i/2), event.StateActive, 1, locks...)
	}
	live := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	states := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"state"})
	b.ReportAllocs()
	var per float64
	for range b.N {
		b.StopTimer()
		before := live()
		b.StartTimer()
		v := newView(nil, states)
		for _, r := range recs {
			v.put(r)
		}
		b.StopTimer()
		per = (float64(live()) - float64(before)) / n
		runtime.KeepAlive(v)
		b.StartTimer()
	}
	b.ReportMetric(per, "live-B/credential")
}

// share leaves a record's values as they were, with recurring strings
// shared between records.
func TestViewShare(t *testing.T) {
	v := newView(nil, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"state"}))
	a, b := viewRecord("c1", "s1", event.StateActive, 1, "l1", "l2"), viewRecord("c2", "s2", event.StateActive, 1, "l2")
	b.Locks[0].LockID = string([]byte("l2")) // its own copy, as decoding makes
	b.Role, b.DoorGroups = "resident", []string{"entrance"}
	want := *b
	want.Locks = slices.Clone(b.Locks)
	v.share(a)
	v.share(b)
	assert.Equal(t, want, *b)
	assert.Same(t, unsafe.StringData(a.Locks[1].LockID), unsafe.StringData(b.Locks[0].LockID))
}

// BenchmarkViewRecords reports the live bytes per credential of the view
// holding a fleet's records as serve does: decoded from credential.events
// (JSON), then stored; the view's copy is all that stays.
func BenchmarkViewRecords(b *testing.B) {
	const n = 20000
	msgs := make([][]byte, n)
	for i := range msgs {
		r := viewRecord(fmt.Sprintf("cred-%06d", i), fmt.Sprintf("subj-%06d", i/2), event.StateActive, uint64(i+1))
		for l := range 12 {
			r.Locks = append(r.Locks, control.LockRef{Vendor: "matter", LockID: fmt.Sprintf("0x%016X/%d", (i/400)*40+l, l%3)})
		}
		for d := range 19 {
			r.Refs = append(r.Refs, event.CredentialRef{Vendor: event.Vendors[d%len(event.Vendors)],
				UserRefHash: fmt.Sprintf("%016x%016x", uint64(i)*7919+uint64(d), uint64(d)*104729)})
		}
		for c := range 8 {
			r.Recent = append(r.Recent, fmt.Sprintf("%08x-1c2b-4d3e-8f90-%012x", c, i))
		}
		r.CommandID, r.RequestID = r.Recent[7], fmt.Sprintf("%08x-aaaa-4bbb-8ccc-%012x", 1, i)
		r.DeviceID, r.Role, r.SiteID, r.Op = fmt.Sprintf("dev-%012x", i), "resident", fmt.Sprintf("site-%02d", i/400), "activate"
		r.DoorGroups, r.Approvers, r.ApprovalRule = []string{"entrance", "amenity", fmt.Sprintf("unit:%d", i/2)}, []string{"ops"}, "auto"
		r.Device = &event.Device{PhoneModel: "Pixel 8", OSName: "android", OSVersion: "15", AppVersion: "4.2.0"}
		r.TsMs, r.IssuedMs, r.ActivatedMs, r.RequestedMs, r.ValidFromMs = 1764547200000, 1764547200001, 1764547200002, 1764547200000, 1764547200000
		data, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = data
	}
	live := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	states := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"state"})
	b.ReportAllocs()
	var per float64
	for range b.N {
		b.StopTimer()
		before := live()
		b.StartTimer()
		v := newView(nil, states)
		for _, m := range msgs {
			r, err := control.DecodeRecord(m)
			if err != nil {
				b.Fatal(err)
			}
			v.put(r)
		}
		b.StopTimer()
		per = (float64(live()) - float64(before)) / n
		runtime.KeepAlive(v)
		b.StartTimer()
	}
	b.ReportMetric(per, "live-B/credential")
}

// expiring finds the live credentials whose validity ended, from the slots'
// own fields, and gives back their whole records.
func TestViewExpiring(t *testing.T) {
	v := newView(nil, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "x"}, []string{"state"}))
	put := func(id, state string, seq uint64, validUntil int64) {
		r := viewRecord(id, "s1", state, seq, "l1")
		r.ValidUntilMs, r.Role = validUntil, "guest"
		assert.True(t, v.put(r))
	}
	put("c1", event.StateActive, 1, 1000)
	put("c2", event.StateActive, 1, 2000)
	put("c3", event.StateRevoked, 1, 500)
	put("c4", event.StateSuspended, 1, 900)
	put("c5", event.StateActive, 1, 0)
	assert.Equal(t, []string{"c1", "c4"}, viewIDs(v.expiring(1000)))
	put("c1", event.StateRevoked, 2, 1000)
	got := v.expiring(2000)
	assert.Equal(t, []string{"c2", "c4"}, viewIDs(got))
	assert.Equal(t, "guest", got[0].Role)
	assert.Equal(t, []control.LockRef{{Vendor: "nuki", LockID: "l1"}}, got[0].Locks)
}

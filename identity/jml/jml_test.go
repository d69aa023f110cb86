package jml

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/identity"
)

// fakeControl is the control plane's API as a small in-memory model: what
// the automation asked for, and a view it answers from. The real path is
// tested in service (identity_test.go) on ClickHouse and Kafka.
type fakeControl struct {
	mu      sync.Mutex
	creds   map[string]*control.Record
	calls   []string
	keys    map[string]string // idempotency key → credential id
	refuse  map[string]bool   // subjects the issuance check refuses
	confirm bool              // revocations are confirmed
	hidden  bool              // new credentials are not in the view yet
	seq     int
}

func newFake() *fakeControl {
	return &fakeControl{creds: map[string]*control.Record{}, keys: map[string]string{}, refuse: map[string]bool{}}
}

func (f *fakeControl) call(format string, args ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeControl) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func (f *fakeControl) add(subject, role, site, state string, extra ...string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	id := fmt.Sprintf("c%d", f.seq)
	r := &control.Record{ExtraGroups: extra}
	r.CredentialID, r.SubjectID, r.Role, r.SiteID, r.State = id, subject, role, site, state
	f.creds[id] = r
	return id
}

func (f *fakeControl) Credentials(_ context.Context, subject string) ([]*control.Record, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*control.Record
	for _, r := range f.creds {
		if r.SubjectID == subject && !(f.hidden && strings.HasPrefix(r.CredentialID, "new")) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeControl) Request(_ context.Context, key string, req control.CredentialRequest) (*control.ProvisionResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse[req.SubjectID] {
		return nil, &APIError{Status: http.StatusUnprocessableEntity, Code: "subject_not_verified", Detail: "unknown"}
	}
	id, ok := f.keys[key]
	if !ok {
		f.seq++
		id = fmt.Sprintf("new%d", f.seq)
		f.keys[key] = id
		r := &control.Record{ExtraGroups: req.DoorGroups}
		r.CredentialID, r.SubjectID, r.Role, r.SiteID, r.State = id, req.SubjectID, req.Role, req.SiteID, "pending_activation"
		f.creds[id] = r
		f.call("request %s %s %s %v", req.SubjectID, req.Role, req.SiteID, req.DoorGroups)
	}
	return &control.ProvisionResponse{Accepted: 1, CredentialIDs: []string{id}}, nil
}

func (f *fakeControl) Revoke(_ context.Context, id, _ string) (*control.OpResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.creds[id]
	if r.State == "revoked" {
		return nil, &APIError{Status: http.StatusConflict, Code: "illegal_transition"}
	}
	r.State = "revoked"
	f.call("revoke %s", id)
	return &control.OpResponse{}, nil
}

func (f *fakeControl) RevokeSubject(_ context.Context, subject, reason string) (*control.SubjectRevokeResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var ids []string
	for _, r := range f.creds {
		if r.SubjectID == subject && r.State != "revoked" {
			r.State = "revoked"
			ids = append(ids, r.CredentialID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	f.call("revoke-subject %s (%d) %s", subject, len(ids), reason)
	return &control.SubjectRevokeResponse{RevocationID: "rv-" + subject, CredentialIDs: ids}, nil
}

func (f *fakeControl) Revocation(_ context.Context, id string) (*control.Revocation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rv := &control.Revocation{RevocationID: id, Status: "pending", RequestedMs: t0.Add(time.Second).UnixMilli()}
	if f.confirm {
		rv.Status, rv.TimeToConfirmMs = "confirmed", 2500
	}
	return rv, nil
}

var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func change(kind identity.ChangeKind, subject, reason, site string, groups ...string) identity.Change {
	c := identity.Change{Kind: kind, SubjectID: subject, Reason: reason, Site: site, At: t0, Active: kind != identity.Left}
	for _, g := range groups {
		c.Groups = append(c.Groups, identity.Group{ID: "id-" + g, DisplayName: g})
	}
	return c
}

func TestJoinerMoverLeaver(t *testing.T) {
	f := newFake()
	var leavers []identity.Leaver
	reg := prometheus.NewRegistry()
	m, err := ParseMapping([]byte(`{"rules":[{"group":"Residents","role":"resident"},
		{"group":"Facilities","role":"maintenance","door_groups":["garage"]},{"group":"Front desk","role":"concierge"}]}`))
	require.NoError(t, err)
	a, err := New(Options{Control: f, Mapping: m, Settle: 50 * time.Millisecond, Registerer: reg,
		Now:     func() time.Time { return t0.Add(time.Minute) },
		Leavers: func(_ context.Context, l identity.Leaver) error { leavers = append(leavers, l); return nil }})
	require.NoError(t, err)
	ctx := context.Background()
	step := func(name string, c identity.Change, want ...string) {
		t.Helper()
		require.NoError(t, a.Handle(ctx, c), name)
		got := f.take()
		if want == nil {
			want = []string{}
		}
		if got == nil {
			got = []string{}
		}
		assert.Equal(t, want, got, name)
	}

	step("joiner: one credential per mapped group", change(identity.Joined, "s1", "created", "site-a", "Residents", "Book club"),
		"request s1 resident site-a []")
	step("the same change again: nothing", change(identity.Joined, "s1", "created", "site-a", "Residents", "Book club"))
	step("a resync: nothing", change(identity.Joined, "s1", "resync", "site-a", "Residents"))
	step("a group added: only added to", change(identity.Moved, "s1", "membership", "site-a", "Residents", "Facilities"),
		"request s1 maintenance site-a [garage]")
	left := change(identity.Moved, "s1", "membership", "site-a", "Facilities")
	left.Removed = []identity.Group{{ID: "id-Residents", DisplayName: "Residents"}}
	step("mover: a group left, its credential revoked", left, "revoke new1")
	// Unmanaged roles stay; a site change is a move.
	f.add("s1", "guest", "site-a", "active")
	step("updated: site changed", change(identity.Updated, "s1", "attributes", "site-b", "Facilities"),
		"request s1 maintenance site-b [garage]", "revoke new2")
	// A new person whose groups have not arrived yet keeps credentials
	// issued before identity sync; a resync takes away what no group grants.
	old := f.add("s4", "resident", "site-a", "active")
	step("joined without groups", change(identity.Joined, "s4", "created", "site-a"))
	step("resync", change(identity.Joined, "s4", "resync", "site-a"), "revoke "+old)
	step("leaver: everything live, guest pass included", change(identity.Left, "s1", "deactivated", "site-b"),
		"revoke-subject s1 (2) identity sync: left (deactivated)")
	step("leaver again: nothing left", change(identity.Left, "s1", "deactivated", "site-b"))
	require.Len(t, leavers, 1)
	assert.Equal(t, identity.Leaver{SubjectID: "s1", ChangeMs: t0.UnixMilli(), Reason: "deactivated", RevocationID: "rv-s1",
		Credentials: 2, RequestedMs: t0.Add(time.Minute).UnixMilli()}, leavers[0])

	// A credential requested moments before the leave (not in the view
	// yet) is waited for, then revoked with the rest.
	f.hidden = true
	step("joiner", change(identity.Joined, "s2", "created", "site-a", "Front desk"), "request s2 concierge site-a []")
	f.mu.Lock()
	f.hidden = false
	f.mu.Unlock()
	end := change(identity.Left, "s2", "end_date", "site-a")
	end.EndDate = t0.Add(-time.Hour)
	step("end-date leaver", end, "revoke-subject s2 (1) identity sync: left (end_date)")
	assert.Equal(t, t0.Add(-time.Hour).UnixMilli(), leavers[1].ChangeMs, "an end-date leaver counts from the end date")

	// The issuance check refuses: counted, logged, the change is done.
	f.refuse["s3"] = true
	step("refused joiner", change(identity.Joined, "s3", "created", "site-a", "Residents"))
	assert.Equal(t, 1.0, testutil.ToFloat64(a.requested.WithLabelValues("resident", "refused")))
	assert.Equal(t, 1.0, testutil.ToFloat64(a.changes.WithLabelValues("joined", "failed")))

	// Leaver latency: change → last lock confirmation.
	a.TrackOnce(ctx)
	assert.Equal(t, 2, len(a.tracked), "unconfirmed revocations stay tracked")
	f.confirm = true
	a.mu.Lock()
	for i := range a.tracked {
		a.tracked[i].next = t0
	}
	a.mu.Unlock()
	a.TrackOnce(ctx)
	assert.Empty(t, a.tracked)
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "keyfleet_identity_leaver_latency_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			assert.Equal(t, uint64(2), h.GetSampleCount())
			// s1: change t0, last ack t0+1s+2.5s; s2: change t0-1h.
			assert.InDelta(t, 3.5+3603.5, h.GetSampleSum(), 1e-9)
		}
	}
}

func TestMapping(t *testing.T) {
	for _, tc := range []struct{ name, doc, err string }{
		{"unknown role", `{"rules":[{"group":"x","role":"janitor"}]}`, "unknown role"},
		{"break-glass", `{"rules":[{"group":"x","role":"emergency_responder"}]}`, "break-glass"},
		{"no group", `{"rules":[{"role":"staff"}]}`, "group is required"},
		{"empty", `{"rules":[]}`, "no rules"},
		{"unknown field", `{"rules":[{"group":"x","role":"staff","doors":["a"]}]}`, "unknown field"},
	} {
		_, err := ParseMapping([]byte(tc.doc))
		assert.ErrorContains(t, err, tc.err, tc.name)
	}
	m := DefaultMapping()
	require.NoError(t, m.Validate())
	assert.False(t, m.Managed("emergency_responder"))
	assert.True(t, m.Managed("guest"))
	wants := m.Wants([]identity.Group{{ID: "g1", DisplayName: "STAFF"}, {ID: "g2", ExternalID: "resident"}, {ID: "g3", DisplayName: "other"}}, "s")
	assert.Equal(t, []Want{{Role: "resident", Site: "s"}, {Role: "staff", Site: "s"}}, wants)
}

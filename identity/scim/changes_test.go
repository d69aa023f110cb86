package scim

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity"
)

// brief is a change reduced to what the tests compare.
type brief struct {
	Kind    identity.ChangeKind
	Subject string
	Reason  string
	Groups  string // group names, comma-separated
	Added   string
	Removed string
	Site    string
}

func briefs(cs []identity.Change) []brief {
	names := func(gs []identity.Group) string {
		var out []string
		for _, g := range gs {
			out = append(out, g.DisplayName)
		}
		return strings.Join(out, ",")
	}
	out := []brief{}
	for _, c := range cs {
		out = append(out, brief{Kind: c.Kind, Subject: c.SubjectID, Reason: c.Reason, Groups: names(c.Groups),
			Added: names(c.Added), Removed: names(c.Removed), Site: c.Site})
	}
	return out
}

func TestJoinerMoverLeaver(t *testing.T) {
	f := newFixture(t)
	step := func(name string, do func(), want ...brief) {
		t.Helper()
		do()
		if want == nil {
			want = []brief{}
		}
		assert.Equal(t, want, briefs(f.takeChanges()), name)
	}
	patch := func(typ, id string, ops ...string) func() {
		return func() { f.mustDo(http.StatusOK, http.MethodPatch, "/"+typ+"/"+id, patchBody(ops...)) }
	}
	var alice, bob, g string
	step("created active: joined", func() {
		alice = f.user(`{"userName":"alice@example.com","emails":[{"value":"alice@example.com"}],"active":true}`)
	}, brief{Kind: identity.Joined, Subject: "subj:id-001", Reason: "created"})
	step("created inactive: nothing", func() { bob = f.user(`{"userName":"bob","active":false}`) })
	step("group with both: only the entitled one moves", func() {
		g = f.group(`{"displayName":"Residents","members":[{"value":"` + alice + `"},{"value":"` + bob + `"}]}`)
	}, brief{Kind: identity.Moved, Subject: "subj:id-001", Reason: "membership", Groups: "Residents", Added: "Residents"})
	step("bob activated joins with his groups", patch("Users", bob, `{"op":"Replace","path":"active","value":"True"}`),
		brief{Kind: identity.Joined, Subject: "subj:id-002", Reason: "activated", Groups: "Residents"})
	step("second group", func() { f.group(`{"displayName":"Staff","members":[{"value":"` + bob + `"}]}`) },
		brief{Kind: identity.Moved, Subject: "subj:id-002", Reason: "membership", Groups: "Residents,Staff", Added: "Staff"})
	step("member removed (Entra value list)", patch("Groups", g, `{"op":"Remove","path":"members","value":[{"value":"`+alice+`"}]}`),
		brief{Kind: identity.Moved, Subject: "subj:id-001", Reason: "membership", Removed: "Residents"})
	step("renamed group moves its members", patch("Groups", g, `{"op":"replace","path":"displayName","value":"Tenants"}`),
		brief{Kind: identity.Moved, Subject: "subj:id-002", Reason: "renamed", Groups: "Staff,Tenants"})
	step("site changed: updated", patch("Users", alice, `{"op":"add","path":"urn:keyfleet:params:scim:schemas:extension:access:2.0:User:site","value":"site-a"}`),
		brief{Kind: identity.Updated, Subject: "subj:id-001", Reason: "attributes", Site: "site-a"})
	step("other attributes: nothing", patch("Users", alice, `{"op":"replace","path":"displayName","value":"Alice"}`))
	step("end date in the past: left", patch("Users", alice, `{"op":"add","value":{"urn:keyfleet:params:scim:schemas:extension:access:2.0:User:end_date":"2026-02-01T00:00:00Z"}}`),
		brief{Kind: identity.Left, Subject: "subj:id-001", Reason: "end_date", Site: "site-a"})
	step("end date moved on: joined", patch("Users", alice, `{"op":"replace","path":"urn:keyfleet:params:scim:schemas:extension:access:2.0:User:end_date","value":"2026-03-01T12:00:00Z"}`),
		brief{Kind: identity.Joined, Subject: "subj:id-001", Reason: "end_date", Site: "site-a"})
	step("deactivated (Okta, no path): left", patch("Users", alice, `{"op":"replace","value":{"active":false}}`),
		brief{Kind: identity.Left, Subject: "subj:id-001", Reason: "deactivated", Site: "site-a"})
	step("deleted: left", func() { f.mustDo(http.StatusNoContent, http.MethodDelete, "/Users/"+bob, nil) },
		brief{Kind: identity.Left, Subject: "subj:id-002", Reason: "deleted"})
	step("group deleted: nobody entitled left in it", func() { f.mustDo(http.StatusNoContent, http.MethodDelete, "/Groups/"+g, nil) })

	assert.Equal(t, 1.0, testutil.ToFloat64(f.svc.changes.WithLabelValues("updated")))
}

func TestEndDateSweep(t *testing.T) {
	f := newFixture(t)
	f.user(`{"userName":"a","urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"end_date":"2026-03-01T10:00:00Z"}}`)
	f.user(`{"userName":"b","urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"end_date":"2026-03-01T12:00:00Z"}}`)
	f.user(`{"userName":"c","active":false,"urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"end_date":"2026-03-01T10:00:00Z"}}`)
	f.user(`{"userName":"d"}`)
	f.takeChanges()

	n, err := f.svc.Expire(t.Context(), t0, t0.Add(90*time.Minute))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Equal(t, []brief{{Kind: identity.Left, Subject: "subj:id-001", Reason: "end_date"}}, briefs(f.takeChanges()))

	// Run sweeps once at start (everything up to now), then every interval.
	f.advance(4 * time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, f.svc.Run(ctx))
	assert.Equal(t, []brief{
		{Kind: identity.Left, Subject: "subj:id-001", Reason: "end_date"},
		{Kind: identity.Left, Subject: "subj:id-002", Reason: "end_date"},
	}, briefs(f.takeChanges()))

	require.NoError(t, f.svc.Resync(t.Context()))
	assert.Equal(t, []brief{
		{Kind: identity.Left, Subject: "subj:id-001", Reason: "resync"},
		{Kind: identity.Left, Subject: "subj:id-002", Reason: "resync"},
		{Kind: identity.Left, Subject: "subj:id-003", Reason: "resync"},
		{Kind: identity.Joined, Subject: "subj:id-004", Reason: "resync"},
	}, briefs(f.takeChanges()))
}

func TestSubjectFromExternalID(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.SubjectFromExternalID = true })
	u := f.user(`{"userName":"alice@example.com","externalId":"HR-1"}`)
	f.mustDo(http.StatusOK, http.MethodPatch, "/Users/"+u, patchBody(`{"op":"replace","path":"externalId","value":"HR-2"}`))
	f.mustDo(http.StatusOK, http.MethodPatch, "/Users/"+u, patchBody(`{"op":"remove","path":"externalId"}`))
	assert.Equal(t, []brief{
		{Kind: identity.Joined, Subject: "subj:HR-1", Reason: "created"},
		{Kind: identity.Left, Subject: "subj:HR-1", Reason: "subject_changed"},
		{Kind: identity.Joined, Subject: "subj:HR-2", Reason: "subject_changed"},
		{Kind: identity.Left, Subject: "subj:HR-2", Reason: "subject_changed"},
		{Kind: identity.Joined, Subject: "subj:" + u, Reason: "subject_changed"},
	}, briefs(f.takeChanges()))
}

func TestNotifyFailureKeepsTheWrite(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Notify = func(context.Context, identity.Change) error { return errors.New("queue down") }
	})
	u := f.user(`{"userName":"alice"}`)
	f.mustDo(http.StatusOK, http.MethodGet, "/Users/"+u, nil)
	assert.Equal(t, 1.0, testutil.ToFloat64(f.svc.failed))
}

func TestOptions(t *testing.T) {
	_, err := New(Options{Subject: func(s string) string { return s }})
	require.Error(t, err)
	_, err = New(Options{Store: NewMemoryStore()})
	require.Error(t, err)
	_, err = New(Options{Store: NewMemoryStore(), Subject: func(s string) string { return s }, MaxResults: -1})
	require.Error(t, err)
}

package scim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity"
)

func TestExplicitSubjectID(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.SubjectFromExternalID = true })
	access := `"` + SchemaAccess + `"`
	id := f.user(`{"userName":"pat","externalId":"emp-7","schemas":["` + SchemaUser + `",` + access + `],` +
		access + `:{"subject_id":"subj-000042","site":"site-01"}}`)
	other := f.user(`{"userName":"quinn","externalId":"emp-8"}`)
	assert.Equal(t, []brief{
		{Kind: identity.Joined, Subject: "subj-000042", Reason: "created", Site: "site-01"},
		{Kind: identity.Joined, Subject: "subj:emp-8", Reason: "created"},
	}, briefs(f.takeChanges()))

	// subject_id is unique, and must be a pseudonymous id.
	r := f.do(http.MethodPost, "/Users", `{"userName":"dup",`+access+`:{"subject_id":"subj-000042"}}`)
	assert.Equal(t, http.StatusConflict, r.status, r.raw)
	assert.Equal(t, "uniqueness", r.str("scimType"))
	for _, bad := range []string{"a b", "pat@example.com"} {
		r := f.do(http.MethodPost, "/Users", `{"userName":"bad",`+access+`:{"subject_id":"`+bad+`"}}`)
		assert.Equal(t, http.StatusBadRequest, r.status, r.raw)
	}

	ctx := context.Background()
	rec, err := f.store.Get(ctx, TypeUser, id)
	require.NoError(t, err)
	assert.Equal(t, "subj-000042", f.svc.Subject(rec))
	st := f.svc.Status(rec, t0)
	assert.Equal(t, identity.Status{SubjectID: "subj-000042", Known: true, Entitled: true, Active: true, Site: "site-01"}, st)

	// The programmatic writes take the same path as requests.
	g, err := f.svc.Create(ctx, TypeGroup, map[string]any{"displayName": "staff",
		"members": []any{map[string]any{"value": other}}})
	require.NoError(t, err)
	assert.Equal(t, []brief{{Kind: identity.Moved, Subject: "subj:emp-8", Reason: "membership", Groups: "staff", Added: "staff"}},
		briefs(f.takeChanges()))
	orec, err := f.store.Get(ctx, TypeUser, other)
	require.NoError(t, err)
	doc := copyDoc(orec.Doc)
	doc["active"] = false
	_, err = f.svc.Replace(ctx, TypeUser, other, Etag(orec), doc)
	require.NoError(t, err)
	_, err = f.svc.Replace(ctx, TypeUser, other, Etag(orec), doc) // stale ETag
	var se *Error
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, http.StatusPreconditionFailed, se.Status)
	orec, err = f.store.Get(ctx, TypeUser, other)
	require.NoError(t, err)
	st, err = f.svc.StatusWithGroups(ctx, orec, t0.Add(time.Hour))
	require.NoError(t, err)
	assert.Equal(t, identity.Status{SubjectID: "subj:emp-8", Known: true, Reason: "deactivated",
		Groups: []identity.Group{{ID: g.ID, DisplayName: "staff"}}}, st)
	require.NoError(t, f.svc.Delete(ctx, TypeUser, other))
	users, err := f.svc.Records(ctx, TypeUser)
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, id, users[0].ID)
	assert.Equal(t, []brief{
		{Kind: identity.Left, Subject: "subj:emp-8", Reason: "deactivated", Groups: ""},
		{Kind: identity.Left, Subject: "subj:emp-8", Reason: "deleted"},
	}, briefs(f.takeChanges())[:2])
}

func TestSubjectIDIsKeyed(t *testing.T) {
	a := identity.SubjectID([]byte("key-one"), "emp-7")
	assert.Equal(t, a, identity.SubjectID([]byte("key-one"), "emp-7"))
	assert.NotEqual(t, a, identity.SubjectID([]byte("key-two"), "emp-7"))
	assert.NotEqual(t, a, identity.SubjectID([]byte("key-one"), "emp-8"))
	assert.Regexp(t, `^sub_[0-9a-f]{24}$`, a)
}

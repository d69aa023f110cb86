package scim

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestETags(t *testing.T) {
	f := newFixture(t)
	u := f.user(`{"userName":"alice","title":"A"}`)
	r := f.mustDo(http.StatusOK, http.MethodGet, "/Users/"+u, nil)
	assert.Equal(t, `W/"1"`, r.header.Get("ETag"))
	assert.Equal(t, `W/"1"`, r.str("meta", "version"))

	for _, tc := range []struct {
		name, method, header, value string
		body                        any
		want                        int
	}{
		{"If-None-Match current", http.MethodGet, "If-None-Match", `W/"1"`, nil, http.StatusNotModified},
		{"If-None-Match strong form", http.MethodGet, "If-None-Match", `"1"`, nil, http.StatusNotModified},
		{"If-None-Match any", http.MethodGet, "If-None-Match", `*`, nil, http.StatusNotModified},
		{"If-None-Match stale", http.MethodGet, "If-None-Match", `W/"0"`, nil, http.StatusOK},
		{"If-None-Match list", http.MethodGet, "If-None-Match", `W/"7", W/"1"`, nil, http.StatusNotModified},
		{"If-Match stale PUT", http.MethodPut, "If-Match", `W/"9"`, `{"userName":"alice"}`, http.StatusPreconditionFailed},
		{"If-Match stale PATCH", http.MethodPatch, "If-Match", `W/"9"`, patchBody(`{"op":"remove","path":"title"}`), http.StatusPreconditionFailed},
		{"If-Match stale DELETE", http.MethodDelete, "If-Match", `W/"9"`, nil, http.StatusPreconditionFailed},
		{"If-Match current PATCH", http.MethodPatch, "If-Match", `W/"1"`, patchBody(`{"op":"replace","path":"title","value":"B"}`), http.StatusOK},
		{"If-Match old version after change", http.MethodPut, "If-Match", `W/"1"`, `{"userName":"alice"}`, http.StatusPreconditionFailed},
		{"If-Match any PUT", http.MethodPut, "If-Match", `*`, `{"userName":"alice","title":"C"}`, http.StatusOK},
	} {
		r := f.do(tc.method, "/Users/"+u, tc.body, tc.header, tc.value)
		assert.Equal(t, tc.want, r.status, "%s: %s", tc.name, r.raw)
		if tc.want == http.StatusPreconditionFailed {
			assert.Equal(t, "412", r.str("status"), tc.name)
			assert.Equal(t, []any{msgError}, r.body["schemas"], tc.name)
			assert.Empty(t, r.header.Get("ETag"), tc.name)
		}
		if tc.want == http.StatusNotModified {
			assert.Empty(t, r.raw, tc.name)
		}
	}
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users/"+u, nil)
	assert.Equal(t, `W/"3"`, r.header.Get("ETag"))
	assert.Equal(t, "C", r.str("title"))
	f.mustDo(http.StatusNoContent, http.MethodDelete, "/Users/"+u, nil, "If-Match", `W/"3"`)
	f.mustDo(http.StatusNotFound, http.MethodGet, "/Users/"+u, nil)
}

func TestResourceLifecycle(t *testing.T) {
	f := newFixture(t)
	r := f.mustDo(http.StatusCreated, http.MethodPost, "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],
		"userName":"Alice@Example.com","externalId":"E-1","password":"never kept","phoneNumbers":[{"value":"+1"}],
		"groups":[{"value":"ignored"}],"id":"client-chosen","meta":{"version":"x"},"active":"true",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7","unknown":1}}`)
	assert.Equal(t, ContentType, r.header.Get("Content-Type"))
	assert.Equal(t, "https://keyfleet.test/scim/v2/Users/id-001", r.header.Get("Location"))
	assert.JSONEq(t, `{"id":"id-001","userName":"Alice@Example.com","externalId":"E-1","active":true,
		"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"7"},
		"meta":{"resourceType":"User","created":"2026-03-01T09:00:00Z","lastModified":"2026-03-01T09:00:00Z",
			"location":"https://keyfleet.test/scim/v2/Users/id-001","version":"W/\"1\""}}`, r.raw)

	conflict := func(body string) {
		t.Helper()
		r := f.mustDo(http.StatusConflict, http.MethodPost, "/Users", body)
		assert.Equal(t, errUniqueness, r.str("scimType"))
		assert.Equal(t, "409", r.str("status"))
		assert.NotContains(t, r.raw, "alice", "errors carry no attribute values")
	}
	conflict(`{"userName":"alice@example.COM"}`) // userName is case-insensitive
	conflict(`{"userName":"other","externalId":"E-1"}`)
	other := f.user(`{"userName":"other","externalId":"e-1"}`) // externalId is case-exact

	// PUT replaces: what it leaves out is gone; read-only input is ignored.
	r = f.mustDo(http.StatusOK, http.MethodPut, "/Users/id-001", `{"userName":"alice@example.com","displayName":"Alice","id":"x"}`)
	assert.NotContains(t, r.body, "externalId")
	assert.NotContains(t, r.body, SchemaEnterprise)
	assert.Equal(t, "id-001", r.str("id"))
	assert.Equal(t, `W/"2"`, r.str("meta", "version"))
	r = f.mustDo(http.StatusConflict, http.MethodPut, "/Users/id-001", `{"userName":"OTHER"}`)
	assert.Equal(t, errUniqueness, r.str("scimType"))
	r = f.mustDo(http.StatusBadRequest, http.MethodPut, "/Users/id-001", `{"displayName":"no userName"}`)
	assert.Equal(t, errInvalidValue, r.str("scimType"))
	f.mustDo(http.StatusBadRequest, http.MethodPost, "/Users", `{"userName":"x","emails":[{"value":"a","primary":true},{"value":"b","primary":true}]}`)
	f.mustDo(http.StatusBadRequest, http.MethodPost, "/Users", `{"userName":"x","name":"not an object"}`)
	f.mustDo(http.StatusBadRequest, http.MethodPost, "/Users", `{"userName":"x"} trailing`)
	f.mustDo(http.StatusBadRequest, http.MethodPost, "/Users", ``)
	f.mustDo(http.StatusNotFound, http.MethodPut, "/Users/nope", `{"userName":"x"}`)

	// Deleting a user takes it out of its groups.
	g := f.group(`{"displayName":"G","members":[{"value":"id-001","type":"User"},{"value":"` + other + `"}]}`)
	f.mustDo(http.StatusNoContent, http.MethodDelete, "/Users/id-001", nil)
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Groups/"+g, nil)
	assert.Equal(t, []any{map[string]any{"value": other}}, r.body["members"])
	f.mustDo(http.StatusNotFound, http.MethodDelete, "/Users/id-001", nil)
	f.mustDo(http.StatusNoContent, http.MethodDelete, "/Groups/"+g, nil)
}

func TestDiscoveryAndErrors(t *testing.T) {
	f := newFixture(t)
	r := f.mustDo(http.StatusOK, http.MethodGet, "/ServiceProviderConfig", nil)
	assert.Equal(t, true, r.body["etag"].(map[string]any)["supported"])
	assert.Equal(t, float64(200), r.body["filter"].(map[string]any)["maxResults"])

	r = f.mustDo(http.StatusOK, http.MethodGet, "/ResourceTypes", nil)
	assert.Equal(t, []string{"User", "Group"}, ids(r))
	r = f.mustDo(http.StatusOK, http.MethodGet, "/ResourceTypes/User", nil)
	assert.Equal(t, []any{
		map[string]any{"schema": SchemaEnterprise, "required": false},
		map[string]any{"schema": SchemaAccess, "required": false},
	}, r.body["schemaExtensions"])

	r = f.mustDo(http.StatusOK, http.MethodGet, "/Schemas", nil)
	assert.Equal(t, []string{SchemaUser, SchemaEnterprise, SchemaAccess, SchemaGroup}, ids(r))
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Schemas/"+SchemaAccess, nil)
	assert.Equal(t, "KeyfleetAccess", r.str("name"))
	assert.Len(t, r.body["attributes"], 4) // site, end_date, subject_id, source

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/Schemas/urn:nope", http.StatusNotFound},
		{http.MethodGet, "/ResourceTypes/Device", http.StatusNotFound},
		{http.MethodGet, "/Devices", http.StatusNotFound},
		{http.MethodDelete, "/Users/x/y", http.StatusNotFound},
		{http.MethodPost, "/Schemas", http.StatusMethodNotAllowed},
		{http.MethodDelete, "/Users", http.StatusMethodNotAllowed},
		{http.MethodPost, "/Groups/x", http.StatusMethodNotAllowed},
		{http.MethodPost, "/Bulk", http.StatusNotImplemented},
		{http.MethodGet, "/Me", http.StatusNotImplemented},
		{http.MethodGet, "/Users/nope", http.StatusNotFound},
	} {
		r := f.do(tc.method, tc.path, nil)
		assert.Equal(t, tc.want, r.status, "%s %s", tc.method, tc.path)
		assert.Equal(t, ContentType, r.header.Get("Content-Type"), "%s %s", tc.method, tc.path)
		assert.Equal(t, []any{msgError}, r.body["schemas"], "%s %s", tc.method, tc.path)
	}

	assert.Equal(t, "GET, POST", f.do(http.MethodDelete, "/users", nil).header.Get("Allow"))
	assert.Equal(t, "GET, PUT, PATCH, DELETE", f.do(http.MethodPost, "/Groups/x", nil).header.Get("Allow"))
	assert.Equal(t, "POST", f.do(http.MethodGet, "/.search", nil).header.Get("Allow"))

	// The role is enforced by httpapi: other roles are refused.
	req := httptest.NewRequest(http.MethodGet, Prefix+"/Users", nil)
	req.Header.Set("Authorization", "Bearer analyst")
	resp, err := f.srv.App().Test(req)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestMemoryStore(t *testing.T) {
	ctx := t.Context()
	s := NewMemoryStore()
	rec := func(id, userName, ext string) Record {
		doc := map[string]any{"userName": userName}
		if ext != "" {
			doc["externalId"] = ext
		}
		return Record{Type: "User", ID: id, Version: 1, Created: t0, Modified: t0, Doc: doc}
	}
	require.NoError(t, s.Create(ctx, rec("a", "Alice", "E1")))
	assert.ErrorIs(t, s.Create(ctx, rec("a", "other", "")), ErrConflict)
	assert.ErrorIs(t, s.Create(ctx, rec("b", "ALICE", "")), ErrConflict)
	assert.ErrorIs(t, s.Create(ctx, rec("b", "bob", "E1")), ErrConflict)
	require.NoError(t, s.Create(ctx, rec("b", "bob", "e1")))
	require.NoError(t, s.Create(ctx, Record{Type: "Group", ID: "a", Version: 1, Doc: map[string]any{"displayName": "Alice"}}), "keys are per type")

	got, err := s.Get(ctx, "User", "a")
	require.NoError(t, err)
	got.Doc["userName"] = "mutated"
	again, err := s.Get(ctx, "User", "a")
	require.NoError(t, err)
	assert.Equal(t, "Alice", again.Doc["userName"], "records do not alias the store")

	next := rec("a", "alice2", "E1")
	next.Version = 2
	assert.ErrorIs(t, s.Replace(ctx, next, 5), ErrVersion)
	require.NoError(t, s.Replace(ctx, next, 1))
	taken := rec("b", "ALICE2", "")
	taken.Version = 2
	assert.ErrorIs(t, s.Replace(ctx, taken, 1), ErrConflict)
	assert.ErrorIs(t, s.Replace(ctx, rec("zz", "z", ""), 1), ErrNotFound)

	list, err := s.List(ctx, Query{Type: "User", Key: KeyUserName, Value: "alice2"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, "a", list[0].ID)

	assert.ErrorIs(t, s.Delete(ctx, "User", "a", 1), ErrVersion)
	require.NoError(t, s.Delete(ctx, "User", "a", 2))
	assert.ErrorIs(t, s.Delete(ctx, "User", "a", 0), ErrNotFound)
	_, err = s.Get(ctx, "User", "a")
	assert.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, s.Create(ctx, rec("c", "alice2", "E1")), "a deleted record's keys are free again")
}

// TestConcurrentPatches: unconditional writes that race are retried, none is lost.
func TestConcurrentPatches(t *testing.T) {
	f := newFixture(t)
	var users []string
	for i := range 8 {
		users = append(users, f.user(`{"userName":"u`+string(rune('a'+i))+`"}`))
	}
	g := f.group(`{"displayName":"G"}`)
	var wg sync.WaitGroup
	statuses := make([]int, len(users))
	for i, u := range users {
		wg.Go(func() {
			statuses[i] = f.do(http.MethodPatch, "/Groups/"+g, patchBody(`{"op":"add","path":"members","value":[{"value":"`+u+`"}]}`)).status
		})
	}
	wg.Wait()
	for i, st := range statuses {
		assert.Equal(t, http.StatusOK, st, "patch %d", i)
	}
	r := f.mustDo(http.StatusOK, http.MethodGet, "/Groups/"+g, nil)
	assert.Len(t, r.body["members"], len(users))
	assert.Equal(t, `W/"9"`, r.str("meta", "version"))
}

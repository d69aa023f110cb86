package query_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/query"
)

// Identities are recorded, replaced, imported in bulk and erased through
// the API, admin only; the audit log names the subject and the fields, never
// their values; the re-identified export follows.
func TestIdentityLifecycle(t *testing.T) {
	e := newEnv(t)
	e.load(500, 0)
	path := "/v1/subjects/subj-3/identity"

	for _, role := range []httpapi.Role{httpapi.RoleAnalyst, httpapi.RoleResponder, httpapi.RoleManager, httpapi.RoleIngest} {
		require.Equal(t, 403, e.do("PUT", path, role, `{"subject_ref":"hr:3"}`).status, role)
	}
	r := e.do("PUT", path, httpapi.RoleAdmin, `{"subject_ref":"hr:0003","display_name":"Person Three"}`)
	require.Equal(t, 200, r.status, string(r.body))
	var got query.Identity
	r.json(t, &got)
	assert.Equal(t, "hr:0003", got.SubjectRef)
	assert.Positive(t, got.UpdatedMs)

	r = e.do("GET", path, httpapi.RoleAdmin, "")
	require.Equal(t, 200, r.status, string(r.body))
	r.json(t, &got)
	assert.Equal(t, query.Identity{SubjectID: "subj-3", SubjectRef: "hr:0003", DisplayName: "Person Three", UpdatedMs: got.UpdatedMs}, got)

	// Replaced by a newer version.
	e.now = e.now.Add(time.Second)
	require.Equal(t, 200, e.do("PUT", path, httpapi.RoleAdmin, `{"subject_ref":"hr:0003-b"}`).status)
	r = e.do("GET", path, httpapi.RoleAdmin, "")
	r.json(t, &got)
	assert.Equal(t, "hr:0003-b", got.SubjectRef)
	assert.Empty(t, got.DisplayName)

	sets := e.audit.entries(t, "subject.identity.set")
	require.Len(t, sets, 2)
	assert.Equal(t, "subj-3", sets[0].Target)
	assert.Equal(t, map[string]string{"fields": "subject_ref,display_name"}, sets[0].Details)
	for _, a := range sets {
		assert.NotContains(t, fmt.Sprint(a.Details), "hr:0003", "no identity values in the audit log")
	}

	// Bulk import: all validated first.
	var items []string
	for i := range 50 {
		items = append(items, fmt.Sprintf(`{"subject_id":"subj-%d","subject_ref":"hr:%04d","display_name":"P %d"}`, 100+i, 100+i, i))
	}
	bad := append(append([]string(nil), items...), `{"subject_id":"subj-x","subject_ref":""}`)
	r = e.do("POST", "/v1/subjects/identities", httpapi.RoleAdmin, "["+strings.Join(bad, ",")+"]")
	require.Equal(t, 400, r.status, string(r.body))
	assert.Contains(t, r.problem(t).Detail, "subject_ref")
	require.Equal(t, 404, e.do("GET", "/v1/subjects/subj-100/identity", httpapi.RoleAdmin, "").status, "nothing stored from a refused body")
	r = e.do("POST", "/v1/subjects/identities", httpapi.RoleAdmin, "["+items[3]+","+items[3]+"]")
	require.Equal(t, 400, r.status, string(r.body))
	assert.Equal(t, "[1].subject_id", r.problem(t).Field)
	r = e.do("POST", "/v1/subjects/identities", httpapi.RoleAdmin, "["+strings.Join(items, ",")+"]")
	require.Equal(t, 200, r.status, string(r.body))
	assert.JSONEq(t, `{"stored":50}`, string(r.body))
	r = e.do("GET", "/v1/subjects/subj-149/identity", httpapi.RoleAdmin, "")
	require.Equal(t, 200, r.status)
	r.json(t, &got)
	assert.Equal(t, "hr:0149", got.SubjectRef)
	imports := e.audit.entries(t, "subject.identity.import")
	require.Len(t, imports, 1)
	assert.Equal(t, "50", imports[0].Details["count"])

	// Bad bodies.
	for _, body := range []string{``, `{"subject_ref":"x","extra":1}`, `{"subject_ref":"a\u0000b"}`,
		`{"subject_ref":"` + strings.Repeat("x", 257) + `"}`, `{"subject_ref":"x"} {}`} {
		r := e.do("PUT", path, httpapi.RoleAdmin, body)
		require.Equal(t, 400, r.status, "body %q: %s", body, r.body)
	}

	// Erasure: the identity is gone from the API and the export, its values
	// from the table's active data.
	e.now = e.now.Add(time.Second)
	r = e.do("DELETE", path, httpapi.RoleAdmin, "")
	require.Equal(t, 204, r.status, string(r.body))
	r = e.do("GET", path, httpapi.RoleAdmin, "")
	require.Equal(t, 404, r.status)
	assert.Equal(t, "identity_not_found", r.problem(t).Code)
	var n uint64
	require.NoError(t, e.conn.QueryRow(context.Background(),
		"SELECT count() FROM subject_identities WHERE subject_ref LIKE 'hr:0003%'").Scan(&n))
	assert.Zero(t, n, "the erased values are merged away")
	rows := readArrow(t, e.do("GET", "/v1/export/events/reidentified?format=arrow&subject=subj-3&from=now-7d", httpapi.RoleAdmin, "").body)
	require.NotEmpty(t, rows)
	for _, row := range rows {
		assert.Empty(t, row["subject_ref"])
	}
	require.Len(t, e.audit.entries(t, "subject.identity.erase"), 1)
}

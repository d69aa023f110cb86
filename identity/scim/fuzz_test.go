package scim

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// Filters and PATCH bodies come from identity providers: untrusted input.
// Whatever arrives, the engine answers a 400 SCIM error or a result; it
// never panics, and what PATCH produces is already in canonical form.

func requireBadRequest(t *testing.T, err error, input string) {
	t.Helper()
	var se *Error
	require.True(t, errors.As(err, &se), "input %q: got %v, want a SCIM error", input, err)
	require.Equal(t, http.StatusBadRequest, se.Status, "input %q", input)
}

func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`userName eq "ALICE@example.com"`, `emails[type eq "work" and value co "example.com"]`,
		`not (title pr)`, `title eq null`, `meta.created gt "2026-03-01T09:30:00Z"`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d"`,
		`(title eq "Engineer" or title eq "Technician") and active eq false`, `userName eq "a\"b"`,
		`groups[display eq "residents"]`, `members[value eq "id-001"]`, `active gt true`, `name eq "x"`,
		`emails.type ne "home"`, `urn:keyfleet:params:scim:schemas:extension:access:2.0:User:end_date lt "2026-06-01T00:00:00Z"`,
		`userName[value eq "x"]`, `((((a pr))))`, `a eq 1.5e3 or b le -2`,
	} {
		f.Add(s)
	}
	views := sampleViews(f)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseFilter(s)
		if err != nil {
			requireBadRequest(t, err, s)
			return
		}
		rts := []*ResourceType{userType, groupType}
		if err := checkFilter(rts, e); err != nil {
			requireBadRequest(t, err, s)
			return
		}
		for _, rt := range rts {
			for _, v := range views {
				scope{rt: rt}.matches(e, v)
			}
			hint(rt, e)
		}
	})
}

func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`[{"op":"Replace","path":"active","value":"False"}]`,
		`[{"op":"add","value":{"name.givenName":"Ali","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42"}}]`,
		`[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@work.test"}]`,
		`[{"op":"add","path":"emails[type eq \"other\" and primary eq true].value","value":"o@x.test"}]`,
		`[{"op":"remove","path":"emails[type eq \"home\"]"}]`,
		`[{"op":"add","path":"emails","value":[{"value":"n@x.test","primary":true}]}]`,
		`[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m-2"}]`,
		`[{"op":"add","path":"urn:keyfleet:params:scim:schemas:extension:access:2.0:User","value":{"site":"s","end_date":"2027-01-01T00:00:00Z"}}]`,
		`[{"op":"remove","path":"members","value":[{"value":"u-1"}]}]`,
		`[{"op":"replace","path":"members[value eq \"u-2\"].display","value":"Two"}]`,
		`[{"op":"remove","path":"name.givenName"},{"op":"replace","path":"name","value":{"middleName":"B"}}]`,
		`[{"op":"replace","value":{"emails":[{"value":"x","primary":"true"}],"active":null}}]`,
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	user, err := decodeObject([]byte(patchStart))
	require.NoError(f, err)
	group, err := decodeObject([]byte(`{"displayName":"G","members":[{"value":"u-1","display":"One"},{"value":"u-2"}]}`))
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, ops string, onGroup bool) {
		var in []patchOpIn
		if json.Unmarshal([]byte(ops), &in) != nil {
			return
		}
		rt, doc := userType, user
		if onGroup {
			rt, doc = groupType, group
		}
		out, _, err := applyPatch(rt, doc, in)
		if err != nil {
			requireBadRequest(t, err, ops)
			return
		}
		data, err := json.Marshal(out)
		require.NoError(t, err)
		back, err := decodeObject(data)
		require.NoError(t, err)
		again, _, err := normDoc(rt, back)
		require.NoError(t, err, "a patched document normalises: %s", data)
		require.Equal(t, back, again, "a patched document is canonical: %s", data)
		_ = checkDoc(rt, out)
	})
}

// sampleViews are full views of the filter fixture's resources.
func sampleViews(tb testing.TB) []map[string]any {
	var out []map[string]any
	for _, s := range []string{
		`{"id":"id-001","userName":"alice@example.com","externalId":"E-1","active":true,"title":"Engineer",
		  "name":{"givenName":"Alice"},"emails":[{"value":"alice@example.com","type":"work","primary":true}],
		  "groups":[{"value":"g","display":"Residents","type":"direct"}],
		  "meta":{"created":"2026-03-01T09:00:00Z","lastModified":"2026-03-01T09:00:00Z","resourceType":"User","version":"W/\"1\""},
		  "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"m"}},
		  "urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"end_date":"2026-12-31T00:00:00Z"}}`,
		`{"id":"g","displayName":"Residents","members":[{"value":"id-001"}],"meta":{"created":"bad date"}}`,
		`{}`,
	} {
		v, err := decodeObject([]byte(s))
		require.NoError(tb, err)
		out = append(out, v)
	}
	return out
}

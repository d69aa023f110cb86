package scim

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const patchStart = `{"userName":"alice","active":true,"displayName":"Alice",
	"name":{"givenName":"Alice","familyName":"Archer"},
	"emails":[{"value":"a@work.test","type":"work","primary":true},{"value":"a@home.test","type":"home"}],
	"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"m-1"}}}`

func TestApplyPatch(t *testing.T) {
	for _, tc := range []struct {
		name string
		ops  string // the Operations array
		rt   *ResourceType
		// want lists the attributes expected after the patch (JSON object of
		// top-level keys to compare); absent names those that must be gone.
		want    string
		absent  []string
		errType string
	}{
		{name: "replace simple", ops: `[{"op":"replace","path":"displayName","value":"Al"}]`, want: `{"displayName":"Al"}`},
		{name: "op case and string boolean (Entra)", ops: `[{"op":"Replace","path":"active","value":"False"}]`, want: `{"active":false}`},
		{name: "replace without path (Okta)", ops: `[{"op":"replace","value":{"active":false,"id":"ignored","displayName":"A."}}]`,
			want: `{"active":false,"displayName":"A."}`},
		{name: "add without path, dotted and URN keys (Entra)", ops: `[{"op":"add","value":{"name.givenName":"Ali","nickName":"Al",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber":"42"}}]`,
			want: `{"name":{"givenName":"Ali","familyName":"Archer"},"nickName":"Al",
			"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"m-1"},"employeeNumber":"42"}}`},
		{name: "replace complex merges", ops: `[{"op":"replace","path":"name","value":{"middleName":"B"}}]`,
			want: `{"name":{"givenName":"Alice","familyName":"Archer","middleName":"B"}}`},
		{name: "sub-attribute", ops: `[{"op":"replace","path":"name.familyName","value":"Brown"},{"op":"remove","path":"name.givenName"}]`,
			want: `{"name":{"familyName":"Brown"}}`},
		{name: "remove last sub-attribute drops the complex", ops: `[{"op":"remove","path":"name.givenName"},{"op":"remove","path":"name.familyName"}]`,
			absent: []string{"name"}},
		{name: "filtered sub-attribute", ops: `[{"op":"replace","path":"emails[type eq \"work\"].value","value":"new@work.test"}]`,
			want: `{"emails":[{"value":"new@work.test","type":"work","primary":true},{"value":"a@home.test","type":"home"}]}`},
		{name: "filter without match creates (Entra)", ops: `[{"op":"add","path":"emails[type eq \"other\"].value","value":"o@x.test"}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work","primary":true},{"value":"a@home.test","type":"home"},{"type":"other","value":"o@x.test"}]}`},
		{name: "replace with unmatched eq filter creates", ops: `[{"op":"replace","path":"emails[type eq \"other\" and primary eq true].value","value":"o@x.test"}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work","primary":false},{"value":"a@home.test","type":"home"},{"type":"other","primary":true,"value":"o@x.test"}]}`},
		{name: "unmatched non-eq filter", ops: `[{"op":"replace","path":"emails[type ne \"work\" and type ne \"home\"].value","value":"x"}]`, errType: errNoTarget},
		{name: "remove filtered values", ops: `[{"op":"remove","path":"emails[type eq \"home\"]"}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work","primary":true}]}`},
		{name: "remove unmatched is a no-op", ops: `[{"op":"remove","path":"emails[type eq \"other\"]"}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work","primary":true},{"value":"a@home.test","type":"home"}]}`},
		{name: "remove filtered sub-attribute", ops: `[{"op":"remove","path":"emails[type eq \"work\"].primary"}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work"},{"value":"a@home.test","type":"home"}]}`},
		{name: "replace filtered value whole", ops: `[{"op":"replace","path":"emails[value eq \"A@HOME.test\"]","value":{"value":"b@home.test","type":"home"}}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work","primary":true},{"value":"b@home.test","type":"home"}]}`},
		{name: "add to multi-valued appends, dedupes, moves primary", ops: `[{"op":"add","path":"emails","value":[{"value":"a@home.test","type":"home"},{"value":"n@x.test","primary":true}]}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work","primary":false},{"value":"a@home.test","type":"home"},{"value":"n@x.test","primary":true}]}`},
		{name: "add a single object to multi-valued", ops: `[{"op":"add","path":"emails","value":{"value":"n@x.test"}}]`,
			want: `{"emails":[{"value":"a@work.test","type":"work","primary":true},{"value":"a@home.test","type":"home"},{"value":"n@x.test"}]}`},
		{name: "replace multi-valued", ops: `[{"op":"replace","path":"emails","value":[{"value":"only@x.test"}]}]`, want: `{"emails":[{"value":"only@x.test"}]}`},
		{name: "remove multi-valued", ops: `[{"op":"remove","path":"emails"}]`, absent: []string{"emails"}},
		{name: "extension attribute", ops: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Ops"}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Ops","manager":{"value":"m-1"}}}`},
		{name: "manager as bare id (Entra)", ops: `[{"op":"replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"m-2"}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D","manager":{"value":"m-2"}}}`},
		{name: "extension sub-attribute path", ops: `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value"}]`,
			want: `{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"}}`},
		{name: "whole extension", ops: `[{"op":"add","path":"urn:keyfleet:params:scim:schemas:extension:access:2.0:User","value":{"site":"s-1","end_date":"2027-01-01T00:00:00Z"}}]`,
			want: `{"urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"site":"s-1","end_date":"2027-01-01T00:00:00Z"}}`},
		{name: "remove whole extension", ops: `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]`,
			absent: []string{SchemaEnterprise}},
		{name: "emptied extension disappears", ops: `[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"},
			{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager"}]`, absent: []string{SchemaEnterprise}},
		{name: "null replaces to unassigned", ops: `[{"op":"replace","path":"displayName","value":null}]`, absent: []string{"displayName"}},
		{name: "unknown attributes are ignored", ops: `[{"op":"add","path":"phoneNumbers[type eq \"work\"].value","value":"+1"},{"op":"replace","path":"addresses","value":[]}]`,
			want: `{"displayName":"Alice"}`},
		{name: "externalId", ops: `[{"op":"add","path":"externalId","value":"E-9"}]`, want: `{"externalId":"E-9"}`},
		{name: "remove needs a path", ops: `[{"op":"remove"}]`, errType: errNoTarget},
		{name: "add needs a value", ops: `[{"op":"add","path":"title"}]`, errType: errInvalidValue},
		{name: "unknown op", ops: `[{"op":"move","path":"title","value":"x"}]`, errType: errInvalidSyntax},
		{name: "bad path", ops: `[{"op":"replace","path":"emails[type eq","value":"x"}]`, errType: errInvalidPath},
		{name: "filter on a simple attribute", ops: `[{"op":"replace","path":"title[value eq \"x\"]","value":"x"}]`, errType: errInvalidPath},
		{name: "bad filter in path", ops: `[{"op":"replace","path":"emails[nosuch eq \"x\"].value","value":"x"}]`, errType: errInvalidPath},
		{name: "read-only", ops: `[{"op":"replace","path":"groups","value":[]}]`, errType: errMutability},
		{name: "read-only id", ops: `[{"op":"replace","path":"id","value":"x"}]`, errType: errMutability},
		{name: "wrong type", ops: `[{"op":"replace","path":"active","value":"maybe"}]`, errType: errInvalidValue},
		{name: "wrong date", ops: `[{"op":"replace","path":"urn:keyfleet:params:scim:schemas:extension:access:2.0:User:end_date","value":"next week"}]`, errType: errInvalidValue},
		{name: "no path needs an object", ops: `[{"op":"replace","value":"x"}]`, errType: errInvalidValue},
		{name: "members remove by value list (Entra)", rt: groupType,
			ops: `[{"op":"Remove","path":"members","value":[{"value":"u-1"}]}]`, want: `{"members":[{"value":"u-2"}]}`},
		{name: "members remove by filter", rt: groupType,
			ops: `[{"op":"remove","path":"members[value eq \"u-2\"]"}]`, want: `{"members":[{"value":"u-1","display":"One"}]}`},
		{name: "members add dedupes by value", rt: groupType,
			ops: `[{"op":"add","path":"members","value":[{"value":"u-1"},{"value":"u-3"}]}]`, want: `{"members":[{"value":"u-1","display":"One"},{"value":"u-2"},{"value":"u-3"}]}`},
		{name: "member value is immutable", rt: groupType,
			ops: `[{"op":"replace","path":"members[value eq \"u-1\"].value","value":"u-9"}]`, errType: errMutability},
		{name: "member display is not", rt: groupType,
			ops: `[{"op":"replace","path":"members[value eq \"u-2\"].display","value":"Two"}]`, want: `{"members":[{"value":"u-1","display":"One"},{"value":"u-2","display":"Two"}]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt, start := userType, patchStart
			if tc.rt == groupType {
				rt, start = groupType, `{"displayName":"G","members":[{"value":"u-1","display":"One"},{"value":"u-2"}]}`
			}
			doc, err := decodeObject([]byte(start))
			require.NoError(t, err)
			var ops []patchOpIn
			require.NoError(t, json.Unmarshal([]byte(tc.ops), &ops))
			got, _, err := applyPatch(rt, doc, ops)
			if tc.errType != "" {
				var se *Error
				require.True(t, errors.As(err, &se), "got %v, want a %s error", err, tc.errType)
				assert.Equal(t, tc.errType, se.ScimType, se.Detail)
				assert.Equal(t, http.StatusBadRequest, se.Status)
				return
			}
			require.NoError(t, err)
			if tc.want != "" {
				want, err := decodeObject([]byte(tc.want))
				require.NoError(t, err)
				for k, v := range want {
					assert.Equal(t, mustJSON(t, v), mustJSON(t, got[k]), "attribute %s", k)
				}
			}
			for _, k := range tc.absent {
				assert.NotContains(t, got, k)
			}
			before, _ := decodeObject([]byte(start))
			assert.Equal(t, before, doc, "the input document is not modified")
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

// TestPatchHTTP covers what only the service checks: required attributes,
// member references, unchanged documents keeping their version.
func TestPatchHTTP(t *testing.T) {
	f := newFixture(t)
	u := f.user(`{"userName":"alice","active":true}`)
	r := f.mustDo(http.StatusOK, http.MethodPatch, "/Users/"+u, patchBody(`{"op":"replace","path":"title","value":"Boss"}`))
	assert.Equal(t, "Boss", r.str("title"))
	assert.Equal(t, `W/"2"`, r.str("meta", "version"))
	assert.Equal(t, `W/"2"`, r.header.Get("ETag"))

	r = f.mustDo(http.StatusOK, http.MethodPatch, "/Users/"+u, patchBody(`{"op":"replace","path":"title","value":"Boss"}`))
	assert.Equal(t, `W/"2"`, r.str("meta", "version"), "a patch that changes nothing makes no version")

	r = f.mustDo(http.StatusBadRequest, http.MethodPatch, "/Users/"+u, patchBody(`{"op":"remove","path":"userName"}`))
	assert.Equal(t, errInvalidValue, r.str("scimType"))
	f.mustDo(http.StatusBadRequest, http.MethodPatch, "/Users/"+u, `{"schemas":["urn:wrong"],"Operations":[{"op":"remove","path":"title"}]}`)
	f.mustDo(http.StatusBadRequest, http.MethodPatch, "/Users/"+u, patchBody())
	f.mustDo(http.StatusBadRequest, http.MethodPatch, "/Users/"+u, `not json`)
	f.mustDo(http.StatusNotFound, http.MethodPatch, "/Users/nope", patchBody(`{"op":"remove","path":"title"}`))

	g := f.group(`{"displayName":"G"}`)
	r = f.mustDo(http.StatusBadRequest, http.MethodPatch, "/Groups/"+g, patchBody(`{"op":"add","path":"members","value":[{"value":"ghost"}]}`))
	assert.Equal(t, errInvalidValue, r.str("scimType"))
	f.mustDo(http.StatusBadRequest, http.MethodPatch, "/Groups/"+g, patchBody(`{"op":"add","path":"members","value":[{"value":"`+u+`","type":"Group"}]}`))
	r = f.mustDo(http.StatusOK, http.MethodPatch, "/Groups/"+g, patchBody(`{"op":"add","path":"members","value":[{"value":"`+u+`"}]}`))
	assert.Equal(t, []any{map[string]any{"value": u}}, r.body["members"])
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users/"+u, nil)
	assert.Equal(t, []any{map[string]any{"value": g, "display": "G", "type": "direct",
		"$ref": "https://keyfleet.test/scim/v2/Groups/" + g}}, r.body["groups"])
}

package scim

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/scim2/filter-parser/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// filterFixture holds three users and a group:
//
//	id-001 alice: active, Engineer, work+home e-mails, externalId E-1, R&D, site-a, ends 2026-12-31
//	id-002 Bob:   inactive, Technician, work e-mail, externalId e-1, Facilities, site-b
//	id-003 carol: active, Contractor, no e-mails, ends 2026-04-01
//	id-004 group "Residents" with alice
func filterFixture(t *testing.T) *fixture {
	f := newFixture(t)
	f.user(`{"userName":"alice@example.com","externalId":"E-1","displayName":"Alice Archer","title":"Engineer","active":true,
		"name":{"givenName":"Alice","familyName":"Archer"},
		"emails":[{"value":"alice@example.com","type":"work","primary":true},{"value":"alice@home.test","type":"home"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"1001","department":"R&D"},
		"urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"site":"site-a","end_date":"2026-12-31T00:00:00Z"}}`)
	f.advance(time.Hour)
	f.user(`{"userName":"Bob","externalId":"e-1","displayName":"Bob Baker","title":"Technician","active":false,
		"emails":[{"value":"bob@example.org","type":"work"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Facilities"},
		"urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"site":"site-b"}}`)
	f.advance(time.Hour)
	f.user(`{"userName":"carol","active":"True","userType":"Contractor",
		"urn:keyfleet:params:scim:schemas:extension:access:2.0:User":{"end_date":"2026-04-01T00:00:00Z"}}`)
	f.group(`{"displayName":"Residents","members":[{"value":"id-001"}]}`)
	return f
}

func TestFilterUsers(t *testing.T) {
	f := filterFixture(t)
	check := func(filter string, want ...string) {
		t.Helper()
		r := f.mustDo(http.StatusOK, http.MethodGet, "/Users?filter="+url.QueryEscape(filter), nil)
		if want == nil {
			want = []string{}
		}
		assert.Equal(t, want, ids(r), "filter %s", filter)
		assert.Equal(t, float64(len(want)), r.body["totalResults"], "filter %s", filter)
	}
	check(`userName eq "ALICE@example.com"`, "id-001")
	check(`userName eq "bob"`, "id-002")
	check(`USERNAME Eq "carol"`, "id-003")
	check(`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "carol"`, "id-003")
	check(`externalId eq "E-1"`, "id-001") // caseExact
	check(`id eq "id-002"`, "id-002")
	check(`userName ne "bob"`, "id-001", "id-003")
	check(`displayName co "Ba"`, "id-002")
	check(`userName sw "A"`, "id-001")
	check(`userName ew ".COM"`, "id-001")
	check(`userName lt "bob"`, "id-001")
	check(`userName ge "bob"`, "id-002", "id-003")
	check(`title pr`, "id-001", "id-002")
	check(`not (title pr)`, "id-003")
	check(`title eq null`, "id-003")
	check(`title ne null`, "id-001", "id-002")
	check(`emails pr`, "id-001", "id-002")
	check(`emails.value ew "example.org"`, "id-002")
	check(`emails co "home.test"`, "id-001") // complex: its value sub-attribute
	check(`emails[type eq "work" and value co "example.com"]`, "id-001")
	check(`emails[type eq "home"]`, "id-001")
	check(`emails.type ne "home"`, "id-002", "id-003") // no value equals "home"
	check(`active eq true`, "id-001", "id-003")
	check(`active eq false`, "id-002")
	check(`meta.created gt "2026-03-01T09:30:00Z"`, "id-002", "id-003")
	check(`meta.created le "2026-03-01T10:00:00Z"`, "id-001", "id-002")
	check(`meta.lastModified ge "2026-03-01T11:00:00+01:00"`, "id-002", "id-003")
	check(`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq "r&d"`, "id-001")
	check(`urn:keyfleet:params:scim:schemas:extension:access:2.0:User:end_date lt "2026-06-01T00:00:00Z"`, "id-003")
	check(`urn:keyfleet:params:scim:schemas:extension:access:2.0:User:site pr and active eq true`, "id-001")
	check(`title eq "Engineer" or userType eq "Contractor"`, "id-001", "id-003")
	check(`title eq "Engineer" or title eq "Technician" and active eq true`, "id-001") // and binds tighter
	check(`(title eq "Engineer" or title eq "Technician") and active eq false`, "id-002")
	check(`userName eq "a\"b"`)
	check(`groups.value eq "id-004"`, "id-001")
	check(`groups[display eq "residents"]`, "id-001")
}

func TestFilterGroups(t *testing.T) {
	f := filterFixture(t)
	r := f.mustDo(http.StatusOK, http.MethodGet, "/Groups?filter="+url.QueryEscape(`members[value eq "id-001"]`), nil)
	assert.Equal(t, []string{"id-004"}, ids(r))
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Groups?excludedAttributes=members&filter="+url.QueryEscape(`displayName eq "RESIDENTS"`), nil)
	assert.Equal(t, []string{"id-004"}, ids(r))
	assert.NotContains(t, r.body["Resources"].([]any)[0], "members")
}

func TestFilterInvalid(t *testing.T) {
	f := filterFixture(t)
	for _, filter := range []string{
		`userName eq`,
		`userName xx "a"`,
		`(userName eq "a"`,
		`nosuch eq "a"`,
		`active gt true`,
		`active co "t"`,
		`userName eq 5`,
		`title co 5`,
		`name eq "x"`, // complex without a value sub-attribute: pr only
		`meta.created gt "yesterday"`,
		`meta.created sw "2026"`,
		`emails[nosuch eq "x"]`,
		`userName[value eq "x"]`,
		`userName.first eq "x"`,
		`emails.value eq "a" and bogus pr`,
		`userName gt null`,
		`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User eq "x"`,
	} {
		r := f.do(http.MethodGet, "/Users?filter="+url.QueryEscape(filter), nil)
		assert.Equal(t, http.StatusBadRequest, r.status, "filter %s: %s", filter, r.raw)
		assert.Contains(t, []string{"invalidFilter", "invalidPath"}, r.str("scimType"), "filter %s", filter)
		assert.Equal(t, ContentType, r.header.Get("Content-Type"))
	}
}

// numbersType exercises the types the served schemas do not use.
var numbersType = &ResourceType{Name: "Thing", Endpoint: "/Things", Schema: &Schema{ID: "urn:test:Thing", Attributes: []*Attribute{
	newAttr("n", TypeInteger, ""),
	newAttr("d", TypeDecimal, ""),
	newAttr("b", TypeBinary, ""),
	newAttr("tags", TypeString, "", multi, caseExact),
}}}

func TestFilterTypes(t *testing.T) {
	obj := func(s string) map[string]any {
		m, err := decodeObject([]byte(s))
		require.NoError(t, err)
		return m
	}
	thing := obj(`{"n":7,"d":1.25,"b":"AAEC","tags":["Red","blue"]}`)
	empty := obj(`{}`)
	for _, tc := range []struct {
		filter     string
		thing, nil bool
		err        bool
	}{
		{filter: `n eq 7`, thing: true},
		{filter: `n gt 6 and n lt 8`, thing: true},
		{filter: `n ge 7.5`},
		{filter: `d le 1.25`, thing: true},
		{filter: `d gt 1`, thing: true},
		{filter: `b eq "AAEC"`, thing: true},
		{filter: `b eq "aaec"`},
		{filter: `tags eq "red"`},
		{filter: `tags eq "Red"`, thing: true},
		{filter: `tags sw "bl"`, thing: true},
		{filter: `tags ne "Red"`, nil: true},
		{filter: `n ne 8`, thing: true, nil: true},
		{filter: `not (n pr)`, nil: true},
		{filter: `n co 1`, err: true},
		{filter: `n eq "7"`, err: true},
		{filter: `b gt "x"`, err: true},
		{filter: `d eq true`, err: true},
	} {
		e, err := parseFilter(tc.filter)
		require.NoError(t, err, tc.filter)
		err = checkFilter([]*ResourceType{numbersType}, e)
		if tc.err {
			var se *Error
			require.True(t, errors.As(err, &se), "filter %s: got %v", tc.filter, err)
			assert.Equal(t, errInvalidFilter, se.ScimType)
			continue
		}
		require.NoError(t, err, tc.filter)
		s := scope{rt: numbersType}
		assert.Equal(t, tc.thing, s.matches(e, thing), "filter %s on thing", tc.filter)
		assert.Equal(t, tc.nil, s.matches(e, empty), "filter %s on empty", tc.filter)
	}
}

func TestListPagingSortingProjection(t *testing.T) {
	f := filterFixture(t)
	r := f.mustDo(http.StatusOK, http.MethodGet, "/Users?startIndex=2&count=1", nil)
	assert.Equal(t, []string{"id-002"}, ids(r))
	assert.Equal(t, float64(3), r.body["totalResults"])
	assert.Equal(t, float64(2), r.body["startIndex"])
	assert.Equal(t, float64(1), r.body["itemsPerPage"])
	assert.Equal(t, []any{msgListResponse}, r.body["schemas"])

	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users?count=0", nil)
	assert.Equal(t, []string{}, ids(r))
	assert.Equal(t, float64(3), r.body["totalResults"])

	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users?startIndex=9", nil)
	assert.Equal(t, []string{}, ids(r))

	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users?startIndex=0&count=-3", nil) // clamped (RFC 7644 §3.4.2.4)
	assert.Equal(t, []string{}, ids(r))

	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users?sortBy=userName", nil)
	assert.Equal(t, []string{"id-001", "id-002", "id-003"}, ids(r)) // alice, Bob, carol: case-insensitive
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users?sortBy=title&sortOrder=descending", nil)
	assert.Equal(t, []string{"id-002", "id-001", "id-003"}, ids(r)) // no title sorts last either way
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users?sortBy=emails", nil)
	assert.Equal(t, []string{"id-001", "id-002", "id-003"}, ids(r)) // by primary e-mail
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users?sortBy=meta.created&sortOrder=descending&count=2", nil)
	assert.Equal(t, []string{"id-003", "id-002"}, ids(r))
	f.mustDo(http.StatusBadRequest, http.MethodGet, "/Users?sortOrder=sideways", nil)
	f.mustDo(http.StatusBadRequest, http.MethodGet, "/Users?count=many", nil)

	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users/id-001?attributes=userName,emails.value,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", nil)
	assert.JSONEq(t, `{"id":"id-001","schemas":["urn:ietf:params:scim:schemas:core:2.0:User",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User","urn:keyfleet:params:scim:schemas:extension:access:2.0:User"],
		"userName":"alice@example.com","emails":[{"value":"alice@example.com"},{"value":"alice@home.test"}],
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"R&D"}}`, r.raw)
	r = f.mustDo(http.StatusOK, http.MethodGet, "/Users/id-001?excludedAttributes=emails,name.givenName,id,meta,groups,"+
		"urn:keyfleet:params:scim:schemas:extension:access:2.0:User,urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", nil)
	assert.Equal(t, "id-001", r.str("id")) // returned always
	assert.NotContains(t, r.body, "emails")
	assert.NotContains(t, r.body, "meta")
	assert.NotContains(t, r.body, "groups")
	assert.NotContains(t, r.body, SchemaAccess)
	assert.Equal(t, map[string]any{"familyName": "Archer"}, r.body["name"])
	assert.Equal(t, map[string]any{"department": "R&D"}, r.body[SchemaEnterprise])
	f.mustDo(http.StatusBadRequest, http.MethodGet, "/Users?attributes=userName&excludedAttributes=emails", nil)

	// Search across both types, and per type, with a SearchRequest body.
	search := func(path, body string) response {
		return f.mustDo(http.StatusOK, http.MethodPost, path, body)
	}
	r = search("/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"displayName sw \"R\" or userName eq \"carol\"","attributes":["displayName"]}`)
	assert.Equal(t, []string{"id-003", "id-004"}, ids(r))
	r = search("/Users/.search", `{"filter":"active eq true","sortBy":"userName","sortOrder":"descending","startIndex":1,"count":1}`)
	assert.Equal(t, []string{"id-003"}, ids(r))
	assert.Equal(t, float64(2), r.body["totalResults"])
	f.mustDo(http.StatusBadRequest, http.MethodPost, "/.search", `{"filter":"nosuch eq 1"}`)
	f.mustDo(http.StatusBadRequest, http.MethodPost, "/.search", `{"schemas":["urn:wrong"]}`)
}

func TestUnescapeFilter(t *testing.T) {
	// JSON escapes in compare values are decoded (the parser keeps them as
	// written; it does not accept \u escapes at all).
	e, err := parseFilter(`userName eq "a\"b\\c\/é"`)
	require.NoError(t, err)
	assert.Equal(t, `a"b\c/é`, e.(*filter.AttributeExpression).CompareValue)
}

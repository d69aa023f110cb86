package query_test

import (
	"encoding/json"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// samplePath fills a route's path parameters.
func samplePath(path string) string {
	r := strings.NewReplacer(":id", "subj-1", ":vendor", "matter", "*", "cmdline")
	return r.Replace(path)
}

// Every route × every role, no token and a bad token: 401 without a valid
// token, 403 for a role the route does not admit, neither for one it does.
func TestRouteRoleMatrix(t *testing.T) {
	e := newEnv(t)
	e.load(200, 0)
	for _, rt := range e.server.Routes() {
		path := samplePath(rt.Path)
		if rt.Method == "DELETE" {
			path = strings.Replace(rt.Path, ":id", "tok_doesnotexist", 1)
		}
		body := ""
		if rt.Method == "POST" {
			body = "{}"
		}
		r := e.doToken(rt.Method, path, "", body)
		require.Equal(t, 401, r.status, "%s %s without a token", rt.Method, rt.Path)
		assert.Equal(t, "unauthenticated", r.problem(t).Code)
		r = e.doToken(rt.Method, path, "kf_not-a-real-token", body)
		require.Equal(t, 401, r.status, "%s %s with a bad token", rt.Method, rt.Path)
		assert.Equal(t, "invalid_token", r.problem(t).Code)
		for _, role := range httpapi.AllRoles {
			r := e.do(rt.Method, path, role, body)
			if rt.Allows(role) {
				require.NotContains(t, []int{401, 403}, r.status, "%s %s as %s: %s", rt.Method, rt.Path, role, r.body)
			} else {
				require.Equal(t, 403, r.status, "%s %s as %s", rt.Method, rt.Path, role)
				assert.Equal(t, "forbidden", r.problem(t).Code)
			}
		}
	}
}

var matrixRow = regexp.MustCompile("^\\| `([A-Z]+) (\\S+)` \\| ([a-z, ]+) \\|$")

// docsMatrix reads the route × role table of docs/api.md.
func docsMatrix(t *testing.T, path string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		m := matrixRow.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		roles := strings.Split(m[3], ",")
		for i := range roles {
			roles[i] = strings.TrimSpace(roles[i])
		}
		sort.Strings(roles)
		out[m[1]+" "+m[2]] = roles
	}
	return out
}

func TestDocsMatrixDescribesEveryRoute(t *testing.T) {
	e := newEnv(t)
	docs := docsMatrix(t, "../docs/api.md")
	for _, rt := range e.server.Routes() {
		want := openapi.Roles(rt)
		sort.Strings(want)
		got, ok := docs[rt.Method+" "+rt.Path]
		require.True(t, ok, "docs/api.md has no row for %s %s", rt.Method, rt.Path)
		assert.Equal(t, want, got, "roles of %s %s", rt.Method, rt.Path)
	}
}

type openAPIDoc struct {
	OpenAPI string `json:"openapi"`
	Paths   map[string]map[string]struct {
		Summary    string   `json:"summary"`
		Roles      []string `json:"x-roles"`
		Parameters []struct {
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"parameters"`
		Responses map[string]any `json:"responses"`
		Security  *[]any         `json:"security"`
	} `json:"paths"`
}

// The document is built from the served routes: every route is described,
// every description is a route, and every declared parameter is one the
// handler accepts.
func TestOpenAPIDescribesEveryRouteAndNothingElse(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/v1/openapi.json", httpapi.RoleIngest, "")
	require.Equal(t, 200, r.status, string(r.body))
	var doc openAPIDoc
	require.NoError(t, json.Unmarshal(r.body, &doc))
	require.Equal(t, "3.0.3", doc.OpenAPI)
	routes := map[string]httpapi.Route{}
	for _, rt := range e.server.Routes() {
		tmpl, _ := openapi.Path(rt.Path)
		key := strings.ToLower(rt.Method) + " " + tmpl
		routes[key] = rt
		op, ok := doc.Paths[tmpl][strings.ToLower(rt.Method)]
		require.True(t, ok, "%s %s is not in the document", rt.Method, rt.Path)
		assert.Equal(t, rt.Summary, op.Summary)
		assert.ElementsMatch(t, openapi.Roles(rt), op.Roles)
		assert.Contains(t, op.Responses, "401")
		assert.Contains(t, op.Responses, "403")
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			_, ok := routes[method+" "+path]
			require.True(t, ok, "the document describes %s %s, which is not served", method, path)
		}
	}
	// Declared query parameters are accepted (and only they: see
	// TestInputValidationNamesTheField for unknown ones).
	samples := map[string]string{"from": "now-1h", "to": "now", "limit": "5", "order": "asc", "bucket": "hour",
		"by": "site", "top": "3", "format": "csv", "max_rows": "100000", "kind": "access"}
	for key, op := range e.ops {
		method, path, _ := strings.Cut(key, " ")
		for _, p := range op.Params {
			if p.In == "path" || p.Name == "cursor" {
				continue
			}
			v := samples[p.Name]
			if v == "" {
				v = "x"
				if len(p.Enum) > 0 {
					v = p.Enum[0]
				}
			}
			r := e.do(method, samplePath(path)+"?"+p.Name+"="+v, httpapi.RoleAdmin, "")
			require.NotEqual(t, 400, r.status, "%s with %s=%s: %s", key, p.Name, v, r.body)
		}
	}
}

func TestOpenAPIBuildRejectsStaleDescriptions(t *testing.T) {
	routes := []httpapi.Route{{Method: "GET", Path: "/v1/a/:id", Summary: "a", Roles: httpapi.ReadRoles}}
	_, err := openapi.Build(openapi.Info{}, routes, map[string]openapi.Operation{"GET /v1/b": {}})
	require.ErrorContains(t, err, "GET /v1/b")
	_, err = openapi.Build(openapi.Info{}, routes, map[string]openapi.Operation{
		"GET /v1/a/:id": {Params: []openapi.Param{{Name: "nope", In: "path"}}}})
	require.ErrorContains(t, err, "not in the path")
	b, err := openapi.Build(openapi.Info{}, routes, nil)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"/v1/a/{id}"`)
	assert.Contains(t, string(b), `"in": "path"`)
}

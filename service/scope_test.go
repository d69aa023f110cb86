package service

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

var scopedRow = regexp.MustCompile("^- `([A-Z]+) (\\S+)`")

// Every route of serve's OpenAPI document with site-scoped tokens of each
// role that can be scoped: a route that does not honour the scope answers
// 403 scope_unsupported (nothing leaks by default), one that does answers
// as for an unscoped token of the role, and docs/api.md lists exactly the
// routes that honour it. Then what the scoped routes show: only the
// token's site, and writes outside it refused.
func TestServeScopeMatrix(t *testing.T) {
	base, admin := serveForTest(t)
	tokens := map[httpapi.Role]string{}
	for _, role := range []httpapi.Role{httpapi.RoleAnalyst, httpapi.RoleResponder, httpapi.RoleManager} {
		code, body := call(t, "POST", base+"/v1/tokens", admin, `{"name":"scoped","role":"`+string(role)+`","sites":["s1"]}`)
		require.Equal(t, 201, code, string(body))
		var out struct{ Secret string }
		require.NoError(t, json.Unmarshal(body, &out))
		tokens[role] = out.Secret
	}
	code, body := call(t, "POST", base+"/v1/tokens", admin, `{"name":"scoped","role":"admin","sites":["s1"]}`)
	require.Equal(t, 400, code, "an admin token cannot be scoped: %s", body)

	code, body = call(t, "GET", base+"/v1/openapi.json", admin, "")
	require.Equal(t, 200, code, string(body))
	var doc struct {
		Paths map[string]map[string]struct {
			Roles  []string `json:"x-roles"`
			Scoped *bool    `json:"x-site-scoped"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	readme, err := os.ReadFile("../docs/api.md")
	require.NoError(t, err)
	documented := map[string]bool{}
	_, section, ok := strings.Cut(string(readme), "## Property-scoped tokens")
	require.True(t, ok, "docs/api.md has a Property-scoped tokens section")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, line := range strings.Split(section, "\n") {
		if m := scopedRow.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			documented[m[1]+" "+openAPIPath(m[2])] = true
		}
	}

	fill := strings.NewReplacer("{id}", "does-not-exist", "{vendor}", "matter", "{path}", "cmdline")
	scoped, n := map[string]bool{}, 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			if len(op.Roles) == 1 && op.Roles[0] == "public" {
				continue
			}
			require.NotNil(t, op.Scoped, "%s %s says whether it honours scoped tokens", method, path)
			key := method + " " + path
			if *op.Scoped {
				scoped[key] = true
			}
			assert.Equal(t, *op.Scoped, documented[key], "docs/api.md's scoped-route list and %s", key)
			body := ""
			if method == "POST" || method == "PATCH" || method == "PUT" {
				body = "{}"
			}
			for role, token := range tokens {
				n++
				code, b := call(t, method, base+fill.Replace(path), token, body)
				allowed := false
				for _, r := range op.Roles {
					allowed = allowed || r == string(role)
				}
				switch {
				case !allowed:
					assert.Equal(t, 403, code, "%s as scoped %s", key, role)
				case !*op.Scoped:
					assert.Equal(t, 403, code, "%s as scoped %s: %s", key, role, b)
					assert.Contains(t, string(b), `"code":"scope_unsupported"`, key)
				default:
					assert.NotContains(t, []int{401, 403}, code, "%s as scoped %s: %s", key, role, b)
				}
			}
		}
	}
	for key := range documented {
		assert.True(t, scoped[key], "docs/api.md lists %s as site-scoped, which it is not (or is not served)", key)
	}
	t.Logf("%d routes, %d site-scoped; %d scoped calls", len(doc.Paths), len(scoped), n)

	// The exception register with a scoped manager (each exception expires
	// within the warning period, so each raises an expired_exception alert
	// of its site).
	now := time.Now()
	exc := func(site string) string {
		return fmt.Sprintf(`{"kind":"door","scope":{"site_id":%q,"door_id":"d1"},"reason":"manual_override","approvers":["ciso"],`+
			`"compensating_control":"guard","start_ms":%d,"expiry_ms":%d}`, site, now.UnixMilli(), now.Add(3*24*time.Hour).UnixMilli())
	}
	var s1, s2 struct{ ID string }
	require.Eventually(t, func() bool {
		code, body = call(t, "POST", base+"/v1/exceptions", admin, exc("s1"))
		return code == 201
	}, 60*time.Second, 200*time.Millisecond, "the register is ready")
	require.NoError(t, json.Unmarshal(body, &s1))
	code, body = call(t, "POST", base+"/v1/exceptions", admin, exc("s2"))
	require.Equal(t, 201, code, string(body))
	require.NoError(t, json.Unmarshal(body, &s2))
	mgr := tokens[httpapi.RoleManager]

	var list struct {
		Exceptions []struct {
			ID string `json:"id"`
		} `json:"exceptions"`
	}
	code, body = call(t, "GET", base+"/v1/exceptions", mgr, "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Exceptions, 1)
	assert.Equal(t, s1.ID, list.Exceptions[0].ID)
	code, _ = call(t, "GET", base+"/v1/exceptions?site=s2", mgr, "")
	assert.Equal(t, 403, code)
	code, _ = call(t, "GET", base+"/v1/exceptions/"+s2.ID, mgr, "")
	assert.Equal(t, 404, code, "another site's exception does not exist for the token")
	code, _ = call(t, "GET", base+"/v1/exceptions/"+s1.ID, mgr, "")
	assert.Equal(t, 200, code)
	code, body = call(t, "POST", base+"/v1/exceptions", mgr, exc("s2"))
	assert.Equal(t, 403, code)
	assert.Contains(t, string(body), `"code":"out_of_scope"`)
	code, _ = call(t, "POST", base+"/v1/exceptions/"+s2.ID+":close", mgr, `{"reason":"not mine"}`)
	assert.Equal(t, 404, code)
	var k struct {
		Open   int `json:"open"`
		BySite []struct {
			Key string `json:"key"`
		} `json:"by_site"`
	}
	code, body = call(t, "GET", base+"/v1/exceptions:kpis", mgr, "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &k))
	assert.Equal(t, 1, k.Open)
	require.Len(t, k.BySite, 1)
	assert.Equal(t, "s1", k.BySite[0].Key)

	// Alerts: the scoped token sees its site's.
	type alertList struct {
		Alerts []struct {
			AlertID string `json:"alert_id"`
			SiteID  string `json:"site_id"`
		} `json:"alerts"`
	}
	var all, mine alertList
	require.Eventually(t, func() bool {
		code, body := call(t, "GET", base+"/v1/alerts?detector=expired_exception", admin, "")
		return code == 200 && json.Unmarshal(body, &all) == nil && len(all.Alerts) == 2
	}, 60*time.Second, 200*time.Millisecond, "both exceptions raise an alert")
	code, body = call(t, "GET", base+"/v1/alerts?detector=expired_exception", mgr, "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &mine))
	require.Len(t, mine.Alerts, 1)
	assert.Equal(t, "s1", mine.Alerts[0].SiteID)
	code, _ = call(t, "GET", base+"/v1/alerts?site=s2", mgr, "")
	assert.Equal(t, 403, code)
	for _, a := range all.Alerts {
		code, _ = call(t, "GET", base+"/v1/alerts/"+a.AlertID, mgr, "")
		if a.SiteID == "s1" {
			assert.Equal(t, 200, code)
		} else {
			assert.Equal(t, 404, code, "another site's alert does not exist for the token")
			code, _ = call(t, "PATCH", base+"/v1/alerts/"+a.AlertID, tokens[httpapi.RoleResponder], `{"status":"resolved"}`)
			assert.Equal(t, 404, code, "nor can it be changed")
		}
	}

	// Estate: the scoped token sees its site's locks.
	for _, l := range []struct{ id, site string }{{"n-s1", "s1"}, {"n-s2", "s2"}} {
		code, body = call(t, "POST", base+"/v1/locks", admin, fmt.Sprintf(`{"vendor":"nuki","lock_id":%q,"site_id":%q,"door_id":"front","groups":["entrance"],"model":"smart-lock-4-pro","tier":2}`, l.id, l.site))
		require.Equal(t, 201, code, string(body))
	}
	var locks struct {
		Locks []struct {
			LockID string `json:"lock_id"`
		} `json:"locks"`
	}
	code, body = call(t, "GET", base+"/v1/locks", tokens[httpapi.RoleAnalyst], "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &locks))
	require.Len(t, locks.Locks, 1)
	assert.Equal(t, "n-s1", locks.Locks[0].LockID)
	code, _ = call(t, "GET", base+"/v1/locks/nuki/n-s2", tokens[httpapi.RoleAnalyst], "")
	assert.Equal(t, 404, code)
	code, _ = call(t, "GET", base+"/v1/locks/nuki/n-s1", tokens[httpapi.RoleAnalyst], "")
	assert.Equal(t, 200, code)
	code, body = call(t, "GET", base+"/v1/locks:export?format=csv", tokens[httpapi.RoleAnalyst], "")
	require.Equal(t, 200, code)
	assert.Contains(t, string(body), "n-s1")
	assert.NotContains(t, string(body), "n-s2")
	code, _ = call(t, "GET", base+"/v1/estate/weak-links?site=s2", tokens[httpapi.RoleAnalyst], "")
	assert.Equal(t, 403, code)
	var links struct {
		Site string `json:"site"`
	}
	code, body = call(t, "GET", base+"/v1/estate/weak-links", tokens[httpapi.RoleAnalyst], "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &links))
	assert.Equal(t, "s1", links.Site, "limited to the token's site")

	// Credentials: requested by the scoped manager only at its site; listed
	// and read only there.
	code, body = call(t, "POST", base+"/v1/credentials", mgr, `{"subject_id":"u2","role":"resident","site_id":"s2"}`)
	assert.Equal(t, 403, code, string(body))
	assert.Contains(t, string(body), `"code":"out_of_scope"`)
	code, body = call(t, "POST", base+"/v1/credentials:bulk", mgr, `[{"subject_id":"u1","role":"resident","site_id":"s1"},{"subject_id":"u2","role":"resident","site_id":"s2"}]`)
	assert.Equal(t, 403, code, string(body))
	var pr struct {
		CredentialIDs []string `json:"credential_ids"`
	}
	var ids [2]string
	for i, site := range []string{"s1", "s2"} {
		tok := admin
		if site == "s1" {
			tok = mgr
		}
		code, body = call(t, "POST", base+"/v1/credentials", tok, fmt.Sprintf(`{"subject_id":"u-%s","role":"resident","site_id":%q}`, site, site))
		require.Equal(t, 202, code, string(body))
		require.NoError(t, json.Unmarshal(body, &pr))
		ids[i] = pr.CredentialIDs[0]
	}
	require.Eventually(t, func() bool {
		code, _ := call(t, "GET", base+"/v1/credentials/"+ids[1], admin, "")
		return code == 200
	}, 60*time.Second, 200*time.Millisecond)
	var creds struct {
		Credentials []struct {
			CredentialID string `json:"credential_id"`
			SiteID       string `json:"site_id"`
		} `json:"credentials"`
	}
	require.Eventually(t, func() bool {
		code, body := call(t, "GET", base+"/v1/credentials", mgr, "")
		return code == 200 && json.Unmarshal(body, &creds) == nil && len(creds.Credentials) == 1
	}, 60*time.Second, 200*time.Millisecond)
	assert.Equal(t, ids[0], creds.Credentials[0].CredentialID)
	code, _ = call(t, "GET", base+"/v1/credentials/"+ids[1], mgr, "")
	assert.Equal(t, 404, code)
	code, _ = call(t, "POST", base+"/v1/credentials/"+ids[1]+":revoke", mgr, `{"reason":"not mine"}`)
	assert.Equal(t, 404, code)
	code, _ = call(t, "GET", base+"/v1/credentials/"+ids[0], mgr, "")
	assert.Equal(t, 200, code)

	// Reports and the dashboards: the token's site only, nothing fleet-wide.
	var rep map[string]any
	code, body = call(t, "GET", base+"/v1/reports/weekly", mgr, "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.Equal(t, "s1", rep["site"])
	assert.Equal(t, true, rep["site_scoped"])
	assert.NotContains(t, rep, "drills")
	code, body = call(t, "GET", base+"/v1/reports/monthly?site=s2", mgr, "")
	assert.Equal(t, 403, code)
	assert.Contains(t, string(body), `"code":"out_of_scope"`)
	var counts struct{ Total int }
	code, body = call(t, "GET", base+"/v1/dashboards/alerts?status=open", mgr, "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &counts))
	assert.Equal(t, 1, counts.Total, "s1's expired_exception alert only")
	var sess struct {
		Sites   []string        `json:"sites"`
		Actions map[string]bool `json:"actions"`
	}
	code, body = call(t, "GET", base+"/v1/dashboards/session", mgr, "")
	require.Equal(t, 200, code, string(body))
	require.NoError(t, json.Unmarshal(body, &sess))
	assert.Equal(t, []string{"s1"}, sess.Sites)
	assert.False(t, sess.Actions["read_ingest_health"])
	assert.True(t, sess.Actions["read_reports"])
}

package report

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// principals is a fixed token → principal table (site-scoped tokens).
type principals map[string]httpapi.Principal

func (p principals) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if pr, ok := p[token]; ok {
		return pr, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

// The report a token limited to site-b gets: site-b's figures only, the
// fleet-wide ones left out of every format (goldens site-b-scoped.*).
func TestScopedReport(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	ctx := context.Background()
	_, err := Generate(ctx, conn, Query{Week: fixtureWeek, Scoped: true, Now: fixtureNow})
	require.Error(t, err, "a scoped report needs a site")

	site, err := Generate(ctx, conn, Query{Week: fixtureWeek, Site: "site-b", Now: fixtureNow})
	require.NoError(t, err)
	r, err := Generate(ctx, conn, Query{Week: fixtureWeek, Site: "site-b", Scoped: true, Now: fixtureNow})
	require.NoError(t, err)
	for _, format := range Formats {
		var b bytes.Buffer
		require.NoError(t, Render(&b, r, format))
		golden(t, "site-b-scoped."+format, b.Bytes())
	}
	assert.True(t, r.SiteScoped)
	assert.Equal(t, site.Current().Events, r.Current().Events, "the site's own figures are kept")
	assert.Equal(t, site.Current().Alerts, r.Current().Alerts)
	assert.Equal(t, site.Stale, r.Stale)
	assert.Equal(t, site.Expired, r.Expired)
	assert.Equal(t, site.Anomalies, r.Anomalies)
	assert.Equal(t, site.Register, r.Register)
	assert.Equal(t, site.Slices, r.Slices)
	for _, sl := range r.Slices {
		if sl.Dimension == "site" {
			for _, row := range sl.Rows {
				assert.Equal(t, "site-b", row.Key)
			}
		}
	}

	var b bytes.Buffer
	require.NoError(t, Render(&b, r, "json"))
	var doc map[string]any
	require.NoError(t, json.Unmarshal(b.Bytes(), &doc))
	for _, k := range []string{"escalated_revocations", "drills", "regressions"} {
		assert.NotContains(t, doc, k)
	}
	for _, w := range doc["weeks"].([]any) {
		for _, k := range fleetWeekFields {
			assert.NotContains(t, w, k)
		}
		assert.Contains(t, w, "events")
	}
	assert.Equal(t, true, doc["site_scoped"])
	require.NotEmpty(t, r.Notes)
	assert.Contains(t, r.Notes[0], "Site-scoped report")
	for _, n := range r.Notes {
		assert.NotContains(t, n, "are fleet-wide; the other sections")
	}
	var md bytes.Buffer
	require.NoError(t, Render(&md, r, "md"))
	for _, s := range []string{"Activation success rate", "| DLQ rate |", "## Revocation drills", "escalated past the SLA", "Revocations requested"} {
		assert.NotContains(t, md.String(), s)
	}
	var csv bytes.Buffer
	require.NoError(t, Render(&csv, r, "csv"))
	assert.NotContains(t, csv.String(), "activation_success_rate")
	assert.Contains(t, csv.String(), "kpi,2026-W47,events")
}

// The report routes with site-scoped tokens.
func TestScopedReportAPI(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	ctx := context.Background()
	store := NewStore(conn)
	now := func() time.Time { return fixtureNow }
	s, err := NewScheduler(SchedulerOptions{Conn: conn, Store: store, Day: time.Monday, At: 6 * time.Hour,
		Sites: []string{"site-a", "site-b"}, Now: now, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	require.NoError(t, s.Tick(ctx))
	api, err := NewAPI(APIOptions{Conn: conn, Store: store, Now: now, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: principals{
		"b":  {TokenID: "b", Name: "b", Role: httpapi.RoleManager, Sites: []string{"site-b"}},
		"ab": {TokenID: "ab", Name: "ab", Role: httpapi.RoleManager, Sites: []string{"site-a", "site-b"}},
	}, Logger: testenv.Logger(t)}, api.Routes())
	require.NoError(t, err)
	get := func(path, token string) (int, string) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.App().Test(req, 60_000)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	golden := func(name string) string {
		b, err := os.ReadFile("testdata/" + name)
		require.NoError(t, err)
		return string(b)
	}

	for _, tc := range []struct {
		path, token string
		code        int
		golden      string
		contains    string
	}{
		{"/v1/reports/weekly?week=2026-W47&format=md", "b", 200, "site-b-scoped.md", ""},
		{"/v1/reports/weekly?week=2026-W47&site=site-b&format=csv", "b", 200, "site-b-scoped.csv", ""},
		{"/v1/reports/weekly?week=2026-W47&site=site-a", "b", 403, "", `"code":"out_of_scope"`},
		{"/v1/reports/weekly?week=2026-W47", "ab", 400, "", `"code":"invalid_site"`},
		{"/v1/reports/weekly?week=2026-W47&site=site-b&format=html", "ab", 200, "site-b-scoped.html", ""},
		{"/v1/reports/monthly?month=2026-11", "b", 200, "", `"site_scoped": true`},
		{"/v1/reports/quarterly?quarter=2026-Q4&site=site-a", "b", 403, "", `"code":"out_of_scope"`},
		{"/v1/reports/2026-W47", "b", 404, "", `"code":"report_not_found"`},
		{"/v1/reports/2026-W47~site-a", "b", 404, "", `"code":"report_not_found"`},
		{"/v1/reports/2026-W47~site-b", "b", 200, "", `"site_scoped": true`},
		{"/v1/reports?site=site-a", "b", 403, "", `"code":"out_of_scope"`},
	} {
		code, body := get(tc.path, tc.token)
		require.Equal(t, tc.code, code, "%s: %s", tc.path, body)
		if tc.golden != "" {
			assert.Equal(t, golden(tc.golden), body, tc.path)
		}
		assert.Contains(t, body, tc.contains, tc.path)
	}
	_, body := get("/v1/reports/2026-W47~site-b", "b")
	assert.NotContains(t, body, `"activation"`)

	for token, want := range map[string][]string{"b": {"2026-W47~site-b"}, "ab": {"2026-W47~site-a", "2026-W47~site-b"}} {
		code, body := get("/v1/reports", token)
		require.Equal(t, 200, code, body)
		var out struct {
			Reports []Stored `json:"reports"`
		}
		require.NoError(t, json.Unmarshal([]byte(body), &out))
		var ids []string
		for _, r := range out.Reports {
			ids = append(ids, r.ID)
		}
		assert.ElementsMatch(t, want, ids, token)
	}
}

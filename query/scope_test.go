package query_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/event"
)

// A site-scoped token's event search, summary and export see only its
// sites; asking for another site is 403 out_of_scope; the fleet-wide KPIs
// and the timeline are not for it (403 scope_unsupported).
func TestScopedTokenEvents(t *testing.T) {
	e := newEnv(t)
	e.load(3000, 0)
	secret, err := auth.NewSecret()
	require.NoError(t, err)
	_, err = e.store.Put(context.Background(), auth.Spec{Name: "site-1 analyst", Role: httpapi.RoleAnalyst,
		Sites: []string{"site-1", "site-2"}}, secret)
	require.NoError(t, err)
	get := func(path string, q url.Values) response {
		t.Helper()
		return e.doToken("GET", path+"?"+q.Encode(), secret, "")
	}
	var page struct {
		Events []event.Access `json:"events"`
	}
	r := get("/v1/events", url.Values{"from": {"now-8d"}, "limit": {"1000"}})
	require.Equal(t, 200, r.status, string(r.body))
	r.json(t, &page)
	require.NotEmpty(t, page.Events)
	seen := map[string]bool{}
	for _, ev := range page.Events {
		seen[ev.SiteID] = true
	}
	assert.Equal(t, map[string]bool{"site-1": true, "site-2": true}, seen)

	r = get("/v1/events", url.Values{"from": {"now-8d"}, "site": {"site-3"}})
	require.Equal(t, 403, r.status)
	assert.Equal(t, "out_of_scope", r.problem(t).Code)
	r = get("/v1/events", url.Values{"from": {"now-8d"}, "site": {"site-1,site-3"}})
	require.Equal(t, 403, r.status)

	var sum struct {
		Series []struct {
			Key string `json:"key"`
		} `json:"series"`
	}
	r = get("/v1/events/summary", url.Values{"from": {"now-8d"}, "by": {"site"}, "bucket": {"day"}})
	require.Equal(t, 200, r.status, string(r.body))
	r.json(t, &sum)
	require.NotEmpty(t, sum.Series)
	for _, g := range sum.Series {
		assert.Contains(t, []string{"site-1", "site-2"}, g.Key)
	}

	r = get("/v1/export/events", url.Values{"from": {"now-8d"}, "format": {"csv"}})
	require.Equal(t, 200, r.status, string(r.body))
	assert.NotContains(t, string(r.body), "site-3")
	assert.Contains(t, string(r.body), "site-1")

	r = get("/v1/subjects/subject-1/timeline", url.Values{})
	assert.Equal(t, 403, r.status)
	assert.Equal(t, "scope_unsupported", r.problem(t).Code)
}

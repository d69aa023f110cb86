package query_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/query/querytest"
)

// A site-scoped token's event search, summary, export and timelines see
// only its sites; asking for another site is 403 out_of_scope.
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

	// A subject's timeline: only what happened at the token's sites (the
	// fixture's subjects also visit other sites now and then).
	type timeline struct {
		Items []struct {
			Access *event.Access `json:"access"`
		} `json:"items"`
	}
	outside := 0
	for i := uint64(0); i < 20; i++ {
		var all, mine timeline
		all2 := e.do("GET", "/v1/subjects/"+querytest.Subject(i)+"/timeline?kind=access&limit=1000", httpapi.RoleAnalyst, "")
		require.Equal(t, 200, all2.status, string(all2.body))
		all2.json(t, &all)
		r = get("/v1/subjects/"+querytest.Subject(i)+"/timeline", url.Values{"kind": {"access"}, "limit": {"1000"}})
		require.Equal(t, 200, r.status, string(r.body))
		r.json(t, &mine)
		in := 0
		for _, it := range all.Items {
			if it.Access.SiteID == "site-1" || it.Access.SiteID == "site-2" {
				in++
			} else {
				outside++
			}
		}
		assert.Len(t, mine.Items, in, querytest.Subject(i))
		for _, it := range mine.Items {
			assert.Contains(t, []string{"site-1", "site-2"}, it.Access.SiteID)
		}
	}
	assert.Positive(t, outside, "the unscoped timelines do reach other sites")

}

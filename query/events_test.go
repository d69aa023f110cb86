package query_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/query/querytest"
)

type eventsPage struct {
	Events     []event.Access `json:"events"`
	NextCursor string         `json:"next_cursor"`
}

// walk pages through GET /v1/events and returns every event in order.
func (e *env) walk(params url.Values, onPage func(int)) []event.Access {
	e.t.Helper()
	var all []event.Access
	for page := 0; ; page++ {
		resp := e.get("/v1/events", params)
		require.Equal(e.t, 200, resp.status, string(resp.body))
		var p eventsPage
		resp.json(e.t, &p)
		all = append(all, p.Events...)
		if onPage != nil {
			onPage(page)
		}
		if p.NextCursor == "" {
			return all
		}
		params = cloneValues(params)
		params.Set("cursor", p.NextCursor)
		require.Less(e.t, page, 10000, "runaway pagination")
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vals := range v {
		out[k] = append([]string(nil), vals...)
	}
	return out
}

// matches is the reference filter.
func matches(a event.Access, filters map[string]string, from, to int64) bool {
	if a.TsMs < from || a.TsMs >= to {
		return false
	}
	field := map[string]string{"site": a.SiteID, "zone": a.ZoneID, "door": a.DoorID, "lock": a.LockID,
		"vendor": a.Vendor, "subject": a.SubjectID, "credential": a.CredentialID, "device": a.DeviceID,
		"action": a.Action, "outcome": a.Outcome, "method": a.Method, "reason": a.Reason, "attested": a.Attested}
	for k, v := range filters {
		if !slices.Contains(strings.Split(v, ","), field[k]) {
			return false
		}
	}
	return true
}

func ids(events []event.Access) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.EventID
	}
	return out
}

func TestEventsFiltersMatchTheReference(t *testing.T) {
	e := newEnv(t)
	e.load(20000, 0)
	require.NoError(t, querytest.Redeliver(context.Background(), e.conn, 7))
	truth := e.truth()
	require.Len(t, truth, 20000)
	from, to := e.now.Add(-3*24*time.Hour), e.now.Add(-12*time.Hour)
	f := func(name string, filters map[string]string, wantTable string) {
		t.Run(name, func(t *testing.T) {
			e.t = t
			params := url.Values{"from": {from.Format(time.RFC3339)}, "to": {ms(to)}, "limit": {"500"}}
			for k, v := range filters {
				params.Set(k, v)
			}
			got := e.walk(params, nil)
			var want []string
			for i := len(truth) - 1; i >= 0; i-- {
				if matches(truth[i], filters, from.UnixMilli(), to.UnixMilli()) {
					want = append(want, truth[i].EventID)
				}
			}
			require.NotEmpty(t, want, "the case selects something")
			assert.ElementsMatch(t, want, ids(got))
			for i := 1; i < len(got); i++ {
				require.GreaterOrEqual(t, got[i-1].TsMs, got[i].TsMs, "newest first")
			}
			if wantTable != "" {
				params.Del("cursor")
				assert.Equal(t, wantTable, e.get("/v1/events", params).header.Get("X-Query-Table"))
			}
		})
	}
	f("no filter", nil, "access_events")
	f("site", map[string]string{"site": "site-2"}, "access_events")
	f("door without site", map[string]string{"door": "door-3-4"}, "access_events")
	f("lock", map[string]string{"lock": "lock-1-2,lock-4-7"}, "access_events")
	f("zone", map[string]string{"zone": "zone-5-1"}, "access_events")
	f("vendor", map[string]string{"vendor": "nuki"}, "access_events")
	f("subject", map[string]string{"subject": "subj-17"}, "access_events_by_subject")
	f("two subjects", map[string]string{"subject": "subj-17,subj-200"}, "access_events_by_subject")
	f("credential", map[string]string{"credential": "cred-42-1"}, "access_events_by_subject")
	f("device", map[string]string{"device": "dev-99"}, "access_events_by_subject")
	f("action", map[string]string{"action": "access_denied,lock_jammed"}, "")
	f("outcome", map[string]string{"outcome": "denied"}, "access_events")
	f("method", map[string]string{"method": "aliro"}, "")
	f("reason", map[string]string{"reason": "revoked"}, "")
	f("attested", map[string]string{"attested": "unattested"}, "")
	f("door and outcome", map[string]string{"door": "door-1-1", "outcome": "granted"}, "")
	f("site subject action", map[string]string{"site": "site-5", "subject": "subj-5", "action": "unlock"}, "")
}

func TestEventsAscendingAndLimits(t *testing.T) {
	e := newEnv(t)
	e.load(3000, 0)
	truth := e.truth()
	params := url.Values{"from": {"now-7d"}, "order": {"asc"}, "limit": {"1000"}}
	got := e.walk(params, nil)
	require.Equal(t, ids(truth), ids(got)[:len(truth)], "oldest first, every event once")

	resp := e.get("/v1/events", url.Values{"limit": {"7"}, "from": {"now-7d"}})
	var p eventsPage
	resp.json(t, &p)
	require.Len(t, p.Events, 7)
	require.NotEmpty(t, p.NextCursor)
}

// Pages walked while new events, late events and re-deliveries arrive:
// every event that existed when the walk started comes exactly once.
func TestEventsPaginationUnderConcurrentInserts(t *testing.T) {
	e := newEnv(t)
	e.load(6000, 0)
	before := e.truth()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(0); ctx.Err() == nil && i < 200; i++ {
			// New events across the whole week (late ones land behind the
			// cursor, early ones ahead of it) and re-deliveries.
			_ = querytest.Load(ctx, e.conn, querytest.Fleet{Events: 150, Offset: 1_000_000 + i*150,
				Start: e.now.Add(-7 * 24 * time.Hour), Span: 7 * 24 * time.Hour, Subjects: 300, Sites: 6, Doors: 8})
			_ = querytest.Redeliver(ctx, e.conn, 50)
		}
	}()
	for _, order := range []string{"asc", "desc"} {
		params := url.Values{"from": {"now-7d"}, "to": {"now"}, "order": {order}, "limit": {"150"}}
		got := e.walk(params, func(int) { time.Sleep(5 * time.Millisecond) })
		seen := map[string]bool{}
		for i, ev := range got {
			require.False(t, seen[ev.EventID], "event %s returned twice (%s)", ev.EventID, order)
			seen[ev.EventID] = true
			if i > 0 && order == "asc" {
				require.LessOrEqual(t, got[i-1].TsMs, ev.TsMs)
			}
			if i > 0 && order == "desc" {
				require.GreaterOrEqual(t, got[i-1].TsMs, ev.TsMs)
			}
		}
		for _, ev := range before {
			require.True(t, seen[ev.EventID], "event %s existed before the walk but was not returned (%s)", ev.EventID, order)
		}
		t.Logf("%s: %d events returned, %d existed at the start", order, len(got), len(before))
	}
	cancel()
	wg.Wait()
}

func TestEventsCursorKeepsItsQuery(t *testing.T) {
	e := newEnv(t)
	e.load(500, 0)
	resp := e.get("/v1/events", url.Values{"limit": {"5"}, "from": {"now-7d"}, "site": {"site-1"}})
	var p eventsPage
	resp.json(t, &p)
	require.NotEmpty(t, p.NextCursor)
	// The cursor with other filters is refused.
	r := e.get("/v1/events", url.Values{"limit": {"5"}, "cursor": {p.NextCursor}, "site": {"site-2"}})
	require.Equal(t, 400, r.status)
	assert.Equal(t, "cursor", r.problem(t).Field)
	r = e.get("/v1/events", url.Values{"cursor": {"garbage"}})
	require.Equal(t, 400, r.status)
	assert.Equal(t, "invalid_cursor", r.problem(t).Code)
}

func TestInputValidationNamesTheField(t *testing.T) {
	e := newEnv(t)
	f := func(path string, params url.Values, wantField, wantCode string) {
		t.Helper()
		r := e.get(path, params)
		require.Equal(t, 400, r.status, "%s %v: %s", path, params, r.body)
		p := r.problem(t)
		assert.Equal(t, wantField, p.Field, "%s %v", path, params)
		assert.Equal(t, wantCode, p.Code, "%s %v", path, params)
	}
	f("/v1/events", url.Values{"from": {"now"}, "to": {"now-1h"}}, "from", "invalid_from")
	f("/v1/events", url.Values{"from": {"yesterday"}}, "from", "invalid_from")
	f("/v1/events", url.Values{"to": {"2026-13-01T00:00:00Z"}}, "to", "invalid_to")
	f("/v1/events", url.Values{"from": {"now-500d"}}, "from", "invalid_from")
	f("/v1/events", url.Values{"limit": {"1001"}}, "limit", "invalid_limit")
	f("/v1/events", url.Values{"limit": {"0"}}, "limit", "invalid_limit")
	f("/v1/events", url.Values{"limit": {"ten"}}, "limit", "invalid_limit")
	f("/v1/events", url.Values{"sight": {"site-1"}}, "sight", "unknown_parameter")
	f("/v1/events", url.Values{"action": {"unlock,teleport"}}, "action", "invalid_action")
	f("/v1/events", url.Values{"outcome": {"maybe"}}, "outcome", "invalid_outcome")
	f("/v1/events", url.Values{"vendor": {"acme"}}, "vendor", "invalid_vendor")
	f("/v1/events", url.Values{"order": {"sideways"}}, "order", "invalid_order")
	f("/v1/events", url.Values{"site": {"a," + strings.Repeat("s", 129)}}, "site", "invalid_site")
	f("/v1/events", url.Values{"cursor": {strings.Repeat("c", 513)}}, "cursor", "invalid_cursor")
	f("/v1/events", url.Values{"subject": {"a\x00b"}}, "subject", "invalid_subject")
	f("/v1/events", url.Values{"site": {"a,,b"}}, "site", "invalid_site")
	f("/v1/events/summary", url.Values{"bucket": {"week"}}, "bucket", "invalid_bucket")
	f("/v1/events/summary", url.Values{"bucket": {"minute"}, "from": {"now-30d"}}, "bucket", "invalid_bucket")
	f("/v1/events/summary", url.Values{"by": {"colour"}}, "by", "invalid_by")
	f("/v1/events/summary", url.Values{"top": {"100000"}}, "top", "invalid_top")
	f("/v1/subjects/subj-1/timeline", url.Values{"kind": {"alarm"}}, "kind", "invalid_kind")
	f("/v1/events", url.Values{"from": {"2026-02-30"}}, "from", "invalid_from")
	f("/v1/export/events", url.Values{"format": {"xlsx"}}, "format", "invalid_format")
	f("/v1/openapi.json", url.Values{"pretty": {"1"}}, "pretty", "unknown_parameter")
	// repeated parameters are refused, not silently merged
	f("/v1/events", url.Values{"site": {"a", "b"}}, "site", "invalid_site")
}

func TestEventsUnknownDoorOrCredentialIsEmpty(t *testing.T) {
	e := newEnv(t)
	e.load(500, 0)
	for _, p := range []url.Values{{"door": {"no-such-door"}}, {"credential": {"no-such-cred"}}, {"lock": {"x"}, "outcome": {"denied"}}} {
		p.Set("from", "now-7d")
		r := e.get("/v1/events", p)
		require.Equal(t, 200, r.status, string(r.body))
		var page eventsPage
		r.json(t, &page)
		assert.Empty(t, page.Events)
		p.Set("by", "site")
		r = e.get("/v1/events/summary", p)
		require.Equal(t, 200, r.status, string(r.body))
		assert.Contains(t, string(r.body), `"series":[]`)
	}
}

// A date is the start of that day, UTC: from=2026-03-15 is from=2026-03-15T00:00:00Z.
func TestEventsRangeAcceptsDates(t *testing.T) {
	e := newEnv(t)
	e.load(500, 0)
	day := e.now.Add(-3 * 24 * time.Hour).Format(time.DateOnly)
	byDate := e.get("/v1/events", url.Values{"from": {day}, "limit": {"1000"}})
	require.Equal(t, 200, byDate.status, string(byDate.body))
	byTime := e.get("/v1/events", url.Values{"from": {day + "T00:00:00Z"}, "limit": {"1000"}})
	require.Equal(t, 200, byTime.status, string(byTime.body))
	var a, b eventsPage
	byDate.json(t, &a)
	byTime.json(t, &b)
	require.NotEmpty(t, a.Events)
	assert.Equal(t, b.Events, a.Events)
}

package dashboards

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

type tokens map[string]httpapi.Role

// Authenticate admits a token of the table, or one limited to sites:
// "an@site-a,site-b" is the analyst token "an" limited to those sites.
func (t tokens) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	name, sites, scoped := strings.Cut(token, "@")
	if r, ok := t[name]; ok {
		p := httpapi.Principal{TokenID: token, Name: name, Role: r}
		if scoped {
			p.Sites = strings.Split(sites, ",")
		}
		return p, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

type client struct {
	t   *testing.T
	srv *httpapi.Server
}

func (c client) get(path, token string) (int, map[string][]string, string) {
	c.t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.srv.App().Test(req, 30_000)
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (c client) json(path, token string, out any) {
	c.t.Helper()
	code, _, body := c.get(path, token)
	require.Equal(c.t, 200, code, "%s: %s", path, body)
	require.NoError(c.t, json.Unmarshal([]byte(body), out), body)
}

// pipelineMetrics registers the pipeline metrics ingest health reads.
type pipelineMetrics struct {
	lag                      *prometheus.GaugeVec
	consumed, dead, inserted *prometheus.CounterVec
}

func newPipelineMetrics(reg *prometheus.Registry) *pipelineMetrics {
	m := &pipelineMetrics{
		lag:      prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricLag}, []string{"group", "topic"}),
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricConsumed}, []string{"vendor"}),
		dead:     prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricDeadLettered}, []string{"vendor", "reason"}),
		inserted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricInserted}, []string{"vendor"}),
	}
	reg.MustRegister(m.lag, m.consumed, m.dead, m.inserted)
	return m
}

func setup(t *testing.T) (client, *Dashboards, *pipelineMetrics, *time.Time) {
	t.Helper()
	conn, _ := testenv.ClickHouse(t)
	reg := prometheus.NewRegistry()
	pm := newPipelineMetrics(reg)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clock := &now
	d, err := New(Options{Conn: conn, Gatherer: reg, Now: func() time.Time { return *clock }})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: tokens{"an": httpapi.RoleAnalyst, "mg": httpapi.RoleManager, "in": httpapi.RoleIngest},
		Logger: testenv.Logger(t)}, d.Routes())
	require.NoError(t, err)
	loadData(t, conn, now)
	return client{t: t, srv: srv}, d, pm, clock
}

var evidenceIDs = []string{
	uuid.NewSHA1(uuid.NameSpaceOID, []byte("ev-1")).String(),
	uuid.NewSHA1(uuid.NameSpaceOID, []byte("ev-2")).String(),
	uuid.NewSHA1(uuid.NameSpaceOID, []byte("ev-missing")).String(),
}

const alertID = "0b3d8a5e-0000-5000-8000-000000000001"

func loadData(t *testing.T, conn driver.Conn, now time.Time) {
	t.Helper()
	ctx := context.Background()
	at := now.Add(-2 * time.Hour)
	sec := func(t time.Time) time.Time { return t.UTC().Truncate(time.Second) }
	// Two versions of the evidence alert (open, then acknowledged) and
	// two other open alerts.
	alert := func(id string, version uint64, det, sev, status string, ev []string, ts time.Time) []any {
		return []any{id, version, det, sev, "subj-1", "cred-1", "door-1", "site-a", sec(ts), ts.UnixMilli(),
			ts.Add(-time.Hour).UnixMilli(), ts.UnixMilli(), ev, status}
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "alerts",
		[]string{"alert_id", "version", "detector", "severity", "subject_id", "credential_id", "door_id", "site_id",
			"ts", "ts_ms", "window_start_ms", "window_end_ms", "evidence", "status"},
		alert(alertID, 1, "unlock_burst", "high", "open", evidenceIDs, at),
		alert(alertID, 2, "unlock_burst", "high", "acknowledged", evidenceIDs, at),
		alert("0b3d8a5e-0000-5000-8000-000000000002", 1, "unlock_burst", "high", "open", nil, at),
		alert("0b3d8a5e-0000-5000-8000-000000000003", 1, "denied_storm", "medium", "open", nil, at),
		alert("0b3d8a5e-0000-5000-8000-000000000004", 1, "denied_storm", "medium", "open", nil, now.Add(-60*24*time.Hour)),
	))
	ev := func(id string, ts time.Time, outcome string) []any {
		u := uuid.MustParse(id)
		return []any{u, sec(ts), ts.UnixMilli(), ts.UnixMilli() + 5, "matter", "site-a", "z", "door-1", "lock-1", "subj-1",
			"cred-1", "dev-1", "attested", "unlock", outcome, "phone_nfc", "", "", uint8(0), "raw/0/1", ts.UnixMilli()}
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", pipeline.AccessColumns,
		ev(evidenceIDs[1], at.Add(-10*time.Minute), "denied"),
		ev(evidenceIDs[0], at.Add(-20*time.Minute), "granted"),
		ev(evidenceIDs[0], at.Add(-20*time.Minute), "granted"), // a re-delivery
		ev(uuid.NewSHA1(uuid.NameSpaceOID, []byte("other")).String(), at, "granted"),
	))
	// Two revocations: r1 confirmed by both locks, r2 waiting for one.
	req := now.Add(-time.Hour)
	require.NoError(t, chstorage.InsertRows(ctx, conn, "revocations",
		[]string{"revocation_id", "credential_id", "subject_id", "scope", "ts", "requested_ms", "locks_total"},
		[]any{"r1", "cred-1", "subj-1", "credential", sec(req), req.UnixMilli(), uint32(2)},
		[]any{"r2", "cred-2", "subj-2", "subject", sec(req.Add(time.Minute)), req.Add(time.Minute).UnixMilli(), uint32(2)},
		[]any{"r2", "cred-2", "subj-2", "subject", sec(req.Add(time.Minute)), req.Add(time.Minute).UnixMilli(), uint32(2)},
	))
	var locks, acks [][]any
	for _, r := range []string{"r1", "r2"} {
		for _, l := range []string{"lock-1", "lock-2"} {
			locks = append(locks, []any{r, "cred", "matter", l, r + l, sec(req), req.UnixMilli()})
			if r == "r2" && l == "lock-2" {
				continue
			}
			acks = append(acks, []any{r + l, r, "revoke", "matter", l, "cred", "applied", sec(req), req.UnixMilli() + 900})
		}
	}
	for i := range locks {
		locks[i][1] = map[string]string{"r1": "cred-1", "r2": "cred-2"}[locks[i][0].(string)]
	}
	for i := range acks {
		acks[i][5] = map[string]string{"r1": "cred-1", "r2": "cred-2"}[acks[i][1].(string)]
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "revocation_locks",
		[]string{"revocation_id", "credential_id", "vendor", "lock_id", "command_id", "ts", "issued_ms"}, locks...))
	require.NoError(t, chstorage.InsertRows(ctx, conn, "lock_acks",
		[]string{"command_id", "revocation_id", "type", "vendor", "lock_id", "credential_id", "status", "ts", "applied_ms"}, acks...))
	// r2 passed the SLA with lock-2 unconfirmed: escalated.
	require.NoError(t, chstorage.InsertRows(ctx, conn, "revocation_escalations",
		[]string{"revocation_id", "credential_id", "alert_id", "requested_ms", "escalated_ms", "pending_locks", "ts"},
		[]any{"r2", "cred-2", "alert-r2", req.Add(time.Minute).UnixMilli(), req.Add(16 * time.Minute).UnixMilli(), uint32(1),
			sec(req.Add(time.Minute))}))
	// Provisioning: q1 has a pending item, q2 is done.
	require.NoError(t, chstorage.InsertRows(ctx, conn, "control_requests",
		[]string{"request_id", "kind", "caller", "ts", "created_ms", "total"},
		[]any{"q1", "bulk", "mgr", sec(req), req.UnixMilli(), uint32(3)},
		[]any{"q2", "single", "mgr", sec(req.Add(time.Minute)), req.Add(time.Minute).UnixMilli(), uint32(1)}))
	require.NoError(t, chstorage.InsertRows(ctx, conn, "control_request_items",
		[]string{"request_id", "item", "credential_id", "status", "version"},
		[]any{"q1", uint32(0), "c1", "pending", uint64(1)}, []any{"q1", uint32(0), "c1", "issued", uint64(2)},
		[]any{"q1", uint32(1), "c2", "pending", uint64(1)},
		[]any{"q1", uint32(2), "c3", "failed", uint64(1)},
		[]any{"q2", uint32(0), "c4", "pending", uint64(1)}, []any{"q2", uint32(0), "c4", "issued", uint64(2)}))
}

// The static shell is public and locked down; data routes need a token.
func TestShell(t *testing.T) {
	c, _, _, _ := setup(t)
	code, h, body := c.get("/", "")
	require.Equal(t, 200, code)
	assert.Equal(t, "text/html; charset=utf-8", h["Content-Type"][0])
	assert.Contains(t, h["Content-Security-Policy"][0], "script-src 'self'")
	assert.Equal(t, "nosniff", h["X-Content-Type-Options"][0])
	assert.Contains(t, body, `src="/assets/app.js"`)
	assert.NotContains(t, body, "<script>", "no inline script")
	for path, ctype := range map[string]string{
		"/assets/app.js": "text/javascript; charset=utf-8", "/assets/app.css": "text/css; charset=utf-8",
		"/assets/vendor/uplot.iife.min.js": "text/javascript; charset=utf-8",
	} {
		code, h, body := c.get(path, "")
		assert.Equal(t, 200, code, path)
		assert.Equal(t, ctype, h["Content-Type"][0], path)
		assert.NotEmpty(t, body, path)
	}
	for _, path := range []string{"/assets/nope.js", "/assets/../dashboards.go", "/assets/", "/assets/index.html"} {
		code, _, _ := c.get(path, "")
		assert.Equal(t, 404, code, path)
	}
	for _, path := range []string{PathIngestHealth, PathAlertCounts, "/v1/alerts/" + alertID + "/evidence", PathRevocations, PathRequests} {
		code, _, _ := c.get(path, "")
		assert.Equal(t, 401, code, path)
		code, _, _ = c.get(path, "in")
		assert.Equal(t, 403, code, path)
	}
	code, _, _ = c.get(PathRequests, "an")
	assert.Equal(t, 403, code, "provisioning requests are for managers")
}

func TestAlertCounts(t *testing.T) {
	c, _, _, _ := setup(t)
	var out struct {
		Counts []AlertCount `json:"counts"`
		Total  uint64       `json:"total"`
	}
	c.json(PathAlertCounts+"?status=open", "an", &out)
	assert.Equal(t, []AlertCount{{"denied_storm", "medium", "open", 1}, {"unlock_burst", "high", "open", 1}}, out.Counts,
		"current versions only (FINAL), last 30 days")
	assert.EqualValues(t, 2, out.Total)
	c.json(PathAlertCounts+"?from=2026-09-01T00:00:00Z", "an", &out)
	assert.EqualValues(t, 4, out.Total)
	for _, bad := range []string{"?status=closed", "?from=yesterday", "?x=1", "?from=2026-11-21T00:00:00Z", "?site="} {
		code, _, body := c.get(PathAlertCounts+bad, "an")
		assert.Equal(t, 400, code, "%s: %s", bad, body)
	}

	// Tokens limited to sites count their sites' alerts only.
	c.json(PathAlertCounts+"?status=open", "an@site-a", &out)
	assert.EqualValues(t, 2, out.Total)
	c.json(PathAlertCounts+"?status=open", "an@site-b,site-a", &out)
	assert.Equal(t, []AlertCount{{"denied_storm", "medium", "open", 1}, {"unlock_burst", "high", "open", 1}}, out.Counts)
	c.json(PathAlertCounts+"?status=open", "an@site-b", &out)
	assert.Empty(t, out.Counts)
	assert.EqualValues(t, 0, out.Total)
	code, _, body := c.get(PathAlertCounts+"?site=site-a", "an@site-b")
	assert.Equal(t, 403, code, body)
	assert.Contains(t, body, `"code":"out_of_scope"`)
	for _, fleetWide := range []string{PathIngestHealth, PathRevocations, PathRequests} {
		code, _, body := c.get(fleetWide, "mg@site-a")
		assert.Equal(t, 403, code, "%s: %s", fleetWide, body)
		assert.Contains(t, body, `"code":"scope_unsupported"`, fleetWide)
	}
}

func TestEvidence(t *testing.T) {
	c, _, _, _ := setup(t)
	var out struct {
		Events []struct {
			EventID string `json:"event_id"`
			Outcome string `json:"outcome"`
		} `json:"events"`
		Missing int `json:"missing"`
	}
	c.json("/v1/alerts/"+alertID+"/evidence", "an", &out)
	require.Len(t, out.Events, 2, "each event once, the re-delivery collapsed")
	assert.Equal(t, evidenceIDs[0], out.Events[0].EventID, "oldest first")
	assert.Equal(t, "denied", out.Events[1].Outcome)
	assert.Equal(t, 1, out.Missing)
	code, _, _ := c.get("/v1/alerts/0b3d8a5e-0000-5000-8000-00000000ffff/evidence", "an")
	assert.Equal(t, 404, code)
	code, _, _ = c.get("/v1/alerts/not-an-id!/evidence", "an")
	assert.Equal(t, 400, code)
	c.json("/v1/alerts/"+alertID+"/evidence", "an@site-a", &out)
	assert.Len(t, out.Events, 2, "the alert's site is the token's")
	code, _, _ = c.get("/v1/alerts/"+alertID+"/evidence", "an@site-b")
	assert.Equal(t, 404, code, "another site's alert does not exist for the token")
}

func TestRevocationsAndRequests(t *testing.T) {
	c, _, _, _ := setup(t)
	var revs struct {
		Revocations []Revocation `json:"revocations"`
	}
	c.json(PathRevocations, "an", &revs)
	require.Len(t, revs.Revocations, 2)
	r2, r1 := revs.Revocations[0], revs.Revocations[1]
	assert.Equal(t, "r2", r2.RevocationID, "newest first")
	assert.Equal(t, Revocation{RevocationID: "r2", Scope: "subject", SubjectID: "subj-2", RequestedMs: r2.RequestedMs,
		Credentials: 1, Locks: 2, Confirmed: 1, Pending: 1, LastAckMs: r2.LastAckMs, EscalatedMs: r2.RequestedMs + 15*60_000}, r2)
	assert.EqualValues(t, 0, r1.Pending)
	assert.Zero(t, r1.EscalatedMs)
	c.json(PathRevocations+"?pending=true", "an", &revs)
	require.Len(t, revs.Revocations, 1)
	assert.Equal(t, "r2", revs.Revocations[0].RevocationID)
	c.json(PathRevocations+"?escalated=true", "an", &revs)
	require.Len(t, revs.Revocations, 1, "the dashboard names the escalated revocations")
	assert.Equal(t, "r2", revs.Revocations[0].RevocationID)

	var reqs struct {
		Requests []Request `json:"requests"`
	}
	c.json(PathRequests, "mg", &reqs)
	require.Len(t, reqs.Requests, 1)
	assert.Equal(t, Request{RequestID: "q1", Kind: "bulk", Caller: "mgr", CreatedMs: reqs.Requests[0].CreatedMs, Total: 3,
		Pending: 1, Done: 1, Failed: 1}, reqs.Requests[0])
	c.json(PathRequests+"?status=all", "mg", &reqs)
	assert.Len(t, reqs.Requests, 2)
	for _, bad := range []string{PathRevocations + "?pending=maybe", PathRevocations + "?escalated=1x", PathRevocations + "?limit=0",
		PathRequests + "?status=done"} {
		code, _, _ := c.get(bad, "mg")
		assert.Equal(t, 400, code, bad)
	}
}

func TestIngestHealth(t *testing.T) {
	c, d, pm, clock := setup(t)
	pm.lag.WithLabelValues("keyfleet-normalize", "lock.events.raw").Set(120)
	pm.lag.WithLabelValues("keyfleet-clickhouse", "access.events").Set(30)
	d.ingest.Sample()
	for i := 0; i < 3; i++ {
		*clock = clock.Add(10 * time.Second)
		pm.consumed.WithLabelValues("matter").Add(1000)
		pm.inserted.WithLabelValues("matter").Add(990)
		pm.dead.WithLabelValues("legacy", "unparseable_payload").Add(10)
		d.ingest.Sample()
	}
	var h Health
	c.json(PathIngestHealth, "an", &h)
	assert.EqualValues(t, 150, h.LagTotal)
	assert.Equal(t, []LagEntry{{"keyfleet-clickhouse", "access.events", 30}, {"keyfleet-normalize", "lock.events.raw", 120}}, h.Lag)
	assert.InDelta(t, 30, h.WindowS, 1e-9)
	assert.InDelta(t, 100, h.ConsumedPerS, 1e-9)
	assert.InDelta(t, 99, h.InsertedPerS, 1e-9)
	assert.InDelta(t, 1, h.DeadPerS, 1e-9)
	assert.InDelta(t, 0.01, h.DLQRate, 1e-9)
	assert.InDelta(t, 1, h.DeadByReason["unparseable_payload"], 1e-9)
	assert.Len(t, h.History, 3)
	code, _, _ := c.get(PathIngestHealth+"?x=1", "an")
	assert.Equal(t, 400, code)
	assert.True(t, strings.HasPrefix(h.Scope, "lag is per consumer group"))
}

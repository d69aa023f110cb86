package alertstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func alert(id, det string, ts int64) detect.Alert {
	return detect.Alert{
		AlertID: id, Detector: det, Severity: detect.SeverityHigh, SubjectID: "s1", CredentialID: "c1",
		DoorID: "d1", SiteID: "site-1", TsMs: ts, WindowStartMs: ts - 1000, WindowEndMs: ts,
		Observed: 12, Threshold: 6, Baseline: 2, Evidence: []string{"e1", "e2"},
		Explanation: "x", SuggestedAction: "y", Status: detect.StatusOpen,
	}
}

func TestStore(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	s := alertstore.New(conn)
	ts := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	id1 := detect.AlertID("x", "1", ts, "")
	id2 := detect.AlertID("x", "2", ts, "")
	a1, a2 := alert(id1, detect.UnlockBurst, ts), alert(id2, detect.DoorForced, ts+60_000)
	a2.SubjectID, a2.Severity = "", detect.SeverityMedium
	require.NoError(t, s.Put(ctx, []detect.Alert{a1, a2}))

	got, err := s.Get(ctx, id1)
	require.NoError(t, err)
	assert.Equal(t, a1, got.Alert)

	// An analyst acknowledges it; then the detector's suppression update
	// arrives (and a re-delivery of the original): the status survives, the
	// update's counts are taken, the stale re-delivery changes nothing.
	rec, prev, err := s.SetStatus(ctx, id1, detect.StatusAcknowledged, "looking", "alice")
	require.NoError(t, err)
	assert.Equal(t, detect.StatusOpen, prev)
	assert.Equal(t, detect.StatusAcknowledged, rec.Status)
	upd := a1
	upd.Revision, upd.SuppressedCount, upd.Observed = 1, 5, 17
	upd.TsMs = ts + 5 // batch checks re-find a condition later: the first ts is kept
	require.NoError(t, s.Put(ctx, []detect.Alert{upd}))
	require.NoError(t, s.Put(ctx, []detect.Alert{a1}))
	got, err = s.Get(ctx, id1)
	require.NoError(t, err)
	assert.Equal(t, detect.StatusAcknowledged, got.Status)
	assert.Equal(t, "looking", got.StatusNote)
	assert.Equal(t, "alice", got.StatusBy)
	assert.Equal(t, 1, got.Revision)
	assert.Equal(t, 5, got.SuppressedCount)
	assert.Equal(t, float64(17), got.Observed)
	assert.Equal(t, ts, got.TsMs)

	// Dedup-safe reads: one row per alert whatever the versions.
	all, err := s.List(ctx, alertstore.Filter{})
	require.NoError(t, err)
	require.Len(t, all, 2)
	assert.Equal(t, id2, all[0].AlertID, "newest first")

	f := func(flt alertstore.Filter, want ...string) {
		t.Helper()
		recs, err := s.List(ctx, flt)
		require.NoError(t, err)
		var ids []string
		for _, r := range recs {
			ids = append(ids, r.AlertID)
		}
		assert.Equal(t, want, ids, "%+v", flt)
	}
	f(alertstore.Filter{Status: detect.StatusAcknowledged}, id1)
	f(alertstore.Filter{Status: detect.StatusOpen}, id2)
	f(alertstore.Filter{Detector: detect.DoorForced}, id2)
	f(alertstore.Filter{Severity: detect.SeverityHigh}, id1)
	f(alertstore.Filter{Subject: "s1"}, id1)
	f(alertstore.Filter{Door: "d1", Site: "site-1"}, id2, id1)
	f(alertstore.Filter{FromMs: ts + 1}, id2)
	f(alertstore.Filter{ToMs: ts + 1}, id1)
	f(alertstore.Filter{Limit: 1}, id2)
	f(alertstore.Filter{Subject: "nobody"})

	_, err = s.Get(ctx, detect.AlertID("none", "", 0, ""))
	require.ErrorIs(t, err, alertstore.ErrNotFound)
}

type auditLog struct {
	mu      sync.Mutex
	entries []audit.Entry
	fail    bool
}

func (l *auditLog) Append(_ context.Context, e audit.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail {
		return errors.New("audit store down")
	}
	l.entries = append(l.entries, e)
	return nil
}

type tokens map[string]httpapi.Principal

func (tk tokens) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if p, ok := tk[token]; ok {
		return p, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

func TestAPI(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	s := alertstore.New(conn)
	ts := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	id := detect.AlertID("x", "1", ts, "")
	require.NoError(t, s.Put(ctx, []detect.Alert{alert(id, detect.UseAfterRevocation, ts)}))
	log := &auditLog{}
	api, err := alertstore.NewAPI(s, log)
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: tokens{
		"an": {TokenID: "t1", Name: "alice", Role: httpapi.RoleAnalyst},
		"re": {TokenID: "t2", Name: "bob", Role: httpapi.RoleResponder},
		"ma": {TokenID: "t3", Name: "carol", Role: httpapi.RoleManager},
		"in": {TokenID: "t4", Name: "gw", Role: httpapi.RoleIngest},
	}}, api.Routes())
	require.NoError(t, err)

	do := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, bytes.NewBufferString(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := srv.App().Test(req, 10_000)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return resp.StatusCode, m
	}

	code, m := do("GET", "/v1/alerts?status=open&detector=use_after_revocation&limit=10", "ma", "")
	require.Equal(t, 200, code, m)
	require.EqualValues(t, 1, m["count"])
	code, m = do("GET", "/v1/alerts/"+id, "an", "")
	require.Equal(t, 200, code, m)
	require.Equal(t, "use_after_revocation", m["detector"])
	require.Equal(t, []any{"e1", "e2"}, m["evidence"])

	for _, tc := range []struct {
		path, code string
	}{
		{"/v1/alerts?status=closed", "invalid_status"},
		{"/v1/alerts?detector=nope", "invalid_detector"},
		{"/v1/alerts?limit=5000", "invalid_limit"},
		{"/v1/alerts?from=yesterday", "invalid_from"},
		{"/v1/alerts?from=2025-03-02T00:00:00Z&to=2025-03-01T00:00:00Z", "invalid_to"},
		{"/v1/alerts?colour=red", "invalid_colour"},
		{"/v1/alerts/not-an-id!", "invalid_id"},
	} {
		code, m := do("GET", tc.path, "an", "")
		assert.Equal(t, 400, code, tc.path)
		assert.Equal(t, tc.code, m["code"], tc.path)
	}
	code, m = do("GET", "/v1/alerts/"+detect.AlertID("none", "", 0, ""), "an", "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "alert_not_found", m["code"])

	// Roles: managers read but do not triage; ingest tokens do neither.
	code, _ = do("PATCH", "/v1/alerts/"+id, "ma", `{"status":"resolved"}`)
	assert.Equal(t, 403, code)
	code, _ = do("GET", "/v1/alerts", "in", "")
	assert.Equal(t, 403, code)
	code, _ = do("GET", "/v1/alerts", "", "")
	assert.Equal(t, 401, code)

	code, m = do("PATCH", "/v1/alerts/"+id, "an", `{"status":"closed"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "invalid_status", m["code"])
	code, _ = do("PATCH", "/v1/alerts/"+id, "an", `{"status":"resolved","extra":1}`)
	assert.Equal(t, 400, code)

	code, m = do("PATCH", "/v1/alerts/"+id, "an", `{"status":"acknowledged","note":"on it"}`)
	require.Equal(t, 200, code, m)
	assert.Equal(t, "acknowledged", m["status"])
	assert.Equal(t, "alice", m["status_by"])
	code, m = do("PATCH", "/v1/alerts/"+id, "re", `{"status":"false_positive","note":"drill"}`)
	require.Equal(t, 200, code, m)
	require.Len(t, log.entries, 2)
	e := log.entries[1]
	assert.Equal(t, "bob", e.Actor)
	assert.Equal(t, "alert.status", e.Action)
	assert.Equal(t, id, e.Target)
	assert.Equal(t, "acknowledged", e.Details["from"])
	assert.Equal(t, "false_positive", e.Details["to"])
	assert.NotContains(t, e.Details, "note", "free text stays out of the audit log (hashed)")

	// No audit, no change.
	log.fail = true
	code, m = do("PATCH", "/v1/alerts/"+id, "an", `{"status":"open"}`)
	assert.Equal(t, 503, code)
	assert.Equal(t, "audit_unavailable", m["code"])
	got, err := s.Get(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, detect.StatusFalsePositive, got.Status)
	code, m = do("GET", "/v1/alerts?status=false_positive", "re", "")
	require.Equal(t, 200, code)
	assert.EqualValues(t, 1, m["count"])
}

// The open-alerts set follows every status change and detector update, and
// holds only open alerts once merged; a sum a repeated back-fill left wrong
// is mended by the next write of the alert.
func TestOpenAlerts(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	s := alertstore.New(conn)
	ts := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	var ids []string
	var alerts []detect.Alert
	for i := range 6 {
		id := detect.AlertID("open", strconv.Itoa(i), ts, "")
		a := alert(id, detect.UnlockBurst, ts+int64(i)*60_000)
		a.SiteID = []string{"site-1", "site-2"}[i%2]
		if i == 4 {
			a.Detector = detect.DoorForced
		}
		ids, alerts = append(ids, id), append(alerts, a)
	}
	require.NoError(t, s.Put(ctx, alerts))
	require.NoError(t, s.Put(ctx, alerts), "a re-delivery adds nothing")

	openSet := func() map[string]int64 {
		t.Helper()
		rows, err := conn.Query(ctx, "SELECT alert_id, toInt64(sum(sign)) FROM alerts_open GROUP BY alert_id HAVING sum(sign) != 0")
		require.NoError(t, err)
		defer rows.Close()
		out := map[string]int64{}
		for rows.Next() {
			var id string
			var n int64
			require.NoError(t, rows.Scan(&id, &n))
			out[id] = n
		}
		require.NoError(t, rows.Err())
		return out
	}
	listed := func(flt alertstore.Filter) []string {
		t.Helper()
		flt.Status = detect.StatusOpen
		recs, err := s.List(ctx, flt)
		require.NoError(t, err)
		out := []string{}
		for _, r := range recs {
			assert.Equal(t, detect.StatusOpen, r.Status)
			out = append(out, r.AlertID)
		}
		return out
	}
	assert.Equal(t, map[string]int64{ids[0]: 1, ids[1]: 1, ids[2]: 1, ids[3]: 1, ids[4]: 1, ids[5]: 1}, openSet())
	assert.Equal(t, []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, listed(alertstore.Filter{}))

	_, _, err := s.SetStatus(ctx, ids[1], detect.StatusAcknowledged, "", "alice")
	require.NoError(t, err)
	_, _, err = s.SetStatus(ctx, ids[2], detect.StatusResolved, "", "alice")
	require.NoError(t, err)
	_, _, err = s.SetStatus(ctx, ids[2], detect.StatusResolved, "", "alice")
	require.NoError(t, err, "resolving twice takes nothing more away")
	_, _, err = s.SetStatus(ctx, ids[3], detect.StatusFalsePositive, "", "alice")
	require.NoError(t, err)
	_, _, err = s.SetStatus(ctx, ids[3], detect.StatusOpen, "", "alice")
	require.NoError(t, err, "reopened")
	// A detector update of an open alert: severity changes, still open once.
	upd := alerts[5]
	upd.Revision, upd.Severity = 1, detect.SeverityLow
	require.NoError(t, s.Put(ctx, []detect.Alert{upd}))
	// A detector update of an acknowledged alert keeps it out of the set.
	upd1 := alerts[1]
	upd1.Revision = 1
	require.NoError(t, s.Put(ctx, []detect.Alert{upd1}))

	want := map[string]int64{ids[0]: 1, ids[3]: 1, ids[4]: 1, ids[5]: 1}
	assert.Equal(t, want, openSet())
	assert.Equal(t, []string{ids[5], ids[4], ids[3], ids[0]}, listed(alertstore.Filter{}))
	assert.Equal(t, []string{ids[5], ids[3]}, listed(alertstore.Filter{Site: "site-2"}))
	assert.Equal(t, []string{ids[4], ids[0]}, listed(alertstore.Filter{Sites: []string{"site-1"}}))
	assert.Equal(t, []string{ids[4]}, listed(alertstore.Filter{Detector: detect.DoorForced}))
	assert.Equal(t, []string{ids[5]}, listed(alertstore.Filter{Severity: detect.SeverityLow}))
	assert.Equal(t, []string{ids[4], ids[3], ids[0]}, listed(alertstore.Filter{Severity: detect.SeverityHigh}))
	assert.Equal(t, []string{ids[4], ids[3]}, listed(alertstore.Filter{FromMs: ts + 3*60_000, ToMs: ts + 5*60_000}))
	assert.Equal(t, []string{ids[5], ids[4]}, listed(alertstore.Filter{Limit: 2}))

	// Merged, the table holds the open alerts and nothing else.
	require.NoError(t, conn.Exec(ctx, "OPTIMIZE TABLE alerts_open FINAL"))
	var rowsLeft uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM alerts_open").Scan(&rowsLeft))
	assert.EqualValues(t, len(want), rowsLeft)

	// A second back-fill (two instances migrating at once) doubles the open
	// rows; the list still shows each once, and closing takes them all away.
	require.NoError(t, conn.Exec(ctx, "INSERT INTO alerts_open (site_id, alert_id, ts, ts_ms, detector, severity, version, sign) "+
		"SELECT site_id, alert_id, ts, ts_ms, detector, severity, version, 1 FROM alerts FINAL WHERE status = 'open'"))
	assert.Equal(t, []string{ids[5], ids[4], ids[3], ids[0]}, listed(alertstore.Filter{}))
	_, _, err = s.SetStatus(ctx, ids[0], detect.StatusResolved, "", "alice")
	require.NoError(t, err)
	delete(want, ids[0])
	assert.Equal(t, map[string]int64{ids[3]: 2, ids[4]: 2, ids[5]: 2}, openSet())
	assert.Equal(t, []string{ids[5], ids[4], ids[3]}, listed(alertstore.Filter{}))
	require.NoError(t, s.Put(ctx, []detect.Alert{func() detect.Alert { a := upd; a.Revision = 2; return a }()}))
	assert.Equal(t, map[string]int64{ids[3]: 2, ids[4]: 2, ids[5]: 1}, openSet(), "the next write mends the sum")
}

// A list without a lower time bound reads the newest windows first and
// widens them until its page is full: the same page as all time.
func TestListWindows(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	s := alertstore.New(conn)
	now := time.Now().UnixMilli()
	var alerts []detect.Alert
	var ids []string
	for i, age := range []time.Duration{time.Hour, 20 * 24 * time.Hour, 100 * 24 * time.Hour, 900 * 24 * time.Hour} {
		ts := now - age.Milliseconds()
		id := detect.AlertID("win", strconv.Itoa(i), ts, "")
		a := alert(id, detect.UnlockBurst, ts)
		a.Status = detect.StatusAcknowledged
		alerts, ids = append(alerts, a), append(ids, id)
	}
	require.NoError(t, s.Put(ctx, alerts))
	for _, st := range []string{detect.StatusOpen, detect.StatusAcknowledged} {
		_, _, err := s.SetStatus(ctx, ids[0], st, "", "alice")
		require.NoError(t, err)
	}
	for _, tc := range []struct {
		f    alertstore.Filter
		want []string
	}{
		{alertstore.Filter{Limit: 1}, ids[:1]},
		{alertstore.Filter{Limit: 2}, ids[:2]},
		{alertstore.Filter{Limit: 3, Status: detect.StatusAcknowledged}, ids[:3]},
		{alertstore.Filter{Limit: 10}, ids},
		{alertstore.Filter{Limit: 10, ToMs: now - 50*24*3600*1000}, ids[2:]},
		{alertstore.Filter{Limit: 10, Status: detect.StatusOpen}, nil},
	} {
		recs, err := s.List(ctx, tc.f)
		require.NoError(t, err)
		var got []string
		for _, r := range recs {
			got = append(got, r.AlertID)
		}
		assert.Equal(t, tc.want, got, "%+v", tc.f)
	}
	// Open alerts too: the newest windows of the open set first.
	for _, id := range []string{ids[0], ids[2]} {
		_, _, err := s.SetStatus(ctx, id, detect.StatusOpen, "", "alice")
		require.NoError(t, err)
	}
	for limit, want := range map[int][]string{1: ids[:1], 2: {ids[0], ids[2]}, 10: {ids[0], ids[2]}} {
		recs, err := s.List(ctx, alertstore.Filter{Status: detect.StatusOpen, Limit: limit})
		require.NoError(t, err)
		var got []string
		for _, r := range recs {
			got = append(got, r.AlertID)
		}
		assert.Equal(t, want, got, "limit %d", limit)
	}
}

// countingConn counts the statements that read a table (FROM <table>) on a
// real connection.
type countingConn struct {
	driver.Conn
	mu    sync.Mutex
	reads map[string]int
	watch []string
}

func (c *countingConn) count(query string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, table := range c.watch {
		if regexp.MustCompile(`\bFROM\s+` + table + `\b`).MatchString(query) {
			c.reads[table]++
		}
	}
}

func (c *countingConn) Query(ctx context.Context, query string, args ...any) (driver.Rows, error) {
	c.count(query)
	return c.Conn.Query(ctx, query, args...)
}

func (c *countingConn) QueryRow(ctx context.Context, query string, args ...any) driver.Row {
	c.count(query)
	return c.Conn.QueryRow(ctx, query, args...)
}

func (c *countingConn) take() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reads
	c.reads = map[string]int{}
	return out
}

// A batch of alerts the index has never seen is written without reading
// alerts or alerts_open (nothing of theirs can be there); a batch with index
// rows reads both, so an interrupted earlier write is still mended.
func TestPutReads(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	const fromAlerts, fromOpen = "alerts", "alerts_open"
	cc := &countingConn{Conn: conn, reads: map[string]int{}, watch: []string{fromAlerts, fromOpen}}
	s := alertstore.New(cc)
	ts := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	a1 := alert(detect.AlertID("reads", "1", ts, ""), detect.UnlockBurst, ts)
	a2 := alert(detect.AlertID("reads", "2", ts, ""), detect.UnlockBurst, ts+1000)

	require.NoError(t, s.Put(ctx, []detect.Alert{a1}))
	assert.Equal(t, map[string]int{}, cc.take(), "fresh alerts: no reads of alerts or alerts_open")

	upd := a1
	upd.Revision = 1
	require.NoError(t, s.Put(ctx, []detect.Alert{upd}))
	assert.Equal(t, map[string]int{fromAlerts: 1, fromOpen: 1}, cc.take(), "a stored alert: its row and open state are read")

	// An earlier write of a2 stopped after its index and open rows: the
	// retry reads them and adds no second open row.
	require.NoError(t, conn.Exec(ctx, "INSERT INTO alert_index (site_id, alert_id, ts, ts_ms, detector, severity, status, version) "+
		"SELECT ?, ?, toDateTime(?), ?, ?, ?, 'open', 1", a2.SiteID, a2.AlertID, a2.TsMs/1000, a2.TsMs, a2.Detector, a2.Severity))
	require.NoError(t, conn.Exec(ctx, "INSERT INTO alerts_open (site_id, alert_id, ts, ts_ms, detector, severity, version, sign) "+
		"SELECT ?, ?, toDateTime(?), ?, ?, ?, 1, 1", a2.SiteID, a2.AlertID, a2.TsMs/1000, a2.TsMs, a2.Detector, a2.Severity))
	require.NoError(t, s.Put(ctx, []detect.Alert{a2}))
	var n int64
	require.NoError(t, conn.QueryRow(ctx, "SELECT toInt64(sum(sign)) FROM alerts_open WHERE alert_id = ?", a2.AlertID).Scan(&n))
	assert.EqualValues(t, 1, n)
	got, err := s.Get(ctx, a2.AlertID)
	require.NoError(t, err)
	assert.Equal(t, a2, got.Alert)
	recs, err := s.List(ctx, alertstore.Filter{Status: detect.StatusOpen, Site: a1.SiteID})
	require.NoError(t, err)
	require.Len(t, recs, 2)
	assert.Equal(t, []string{a2.AlertID, a1.AlertID}, []string{recs[0].AlertID, recs[1].AlertID})
	assert.Equal(t, 1, recs[1].Revision)
}

package alertstore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

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

package respond_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/detect/respond"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

type suspender struct {
	mu    sync.Mutex
	calls []string
	err   error
	// away fails this many calls with a transient error first.
	away int
}

func (s *suspender) Suspend(_ context.Context, id, reason, actor string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	if s.away > 0 {
		s.away--
		return errors.New("control plane: audit log unavailable")
	}
	s.calls = append(s.calls, id+" by "+actor)
	return nil
}

type auditLog struct {
	mu      sync.Mutex
	entries []audit.Entry
}

func (l *auditLog) Append(_ context.Context, e audit.Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, e)
	return nil
}

func alert(id, det, sev, cred, site string) *detect.Alert {
	ts := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	return &detect.Alert{AlertID: detect.AlertID(det, id, ts, ""), Detector: det, Severity: sev, SubjectID: "s-" + id,
		CredentialID: cred, DoorID: "d1", SiteID: site, TsMs: ts, Explanation: "why", SuggestedAction: "what", Status: detect.StatusOpen}
}

func TestPlan(t *testing.T) {
	r := detect.DefaultRules()
	steps := func(a *detect.Alert) []string {
		var out []string
		for _, s := range respond.Plan(r, a) {
			out = append(out, s.Rule+":"+s.Action)
		}
		return out
	}
	assert.Equal(t, []string{"revoked-credential-used:suspend", "revoked-credential-used:ticket", "revoked-credential-used:webhook"},
		steps(alert("1", detect.UseAfterRevocation, detect.SeverityCritical, "c1", "site-1")))
	assert.Equal(t, []string{"page-on-high:ticket", "page-on-high:webhook"},
		steps(alert("2", detect.UnlockBurst, detect.SeverityHigh, "c1", "site-1")))
	assert.Empty(t, steps(alert("3", detect.OffSchedule, detect.SeverityLow, "c1", "site-1")))
}

func TestSign(t *testing.T) {
	secret := []byte("0123456789abcdef-secret")
	body := []byte(`{"a":1}`)
	now := time.Unix(1_740_000_000, 0)
	sig := respond.Sign(secret, now.Unix(), body)
	assert.Regexp(t, `^v1=[0-9a-f]{64}$`, sig)
	assert.True(t, respond.Verify(secret, "1740000000", sig, body, now, 5*time.Minute))
	assert.False(t, respond.Verify(secret, "1740000000", sig, []byte(`{"a":2}`), now, 5*time.Minute))
	assert.False(t, respond.Verify([]byte("another-secret-0123"), "1740000000", sig, body, now, 5*time.Minute))
	assert.False(t, respond.Verify(secret, "1740000000", sig, body, now.Add(10*time.Minute), 5*time.Minute))
}

func TestResponder(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	secret := []byte("0123456789abcdef-secret")
	var hooks []string
	var hmu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !respond.Verify(secret, r.Header.Get(respond.HeaderTimestamp), r.Header.Get(respond.HeaderSignature), body, time.Now(), time.Minute) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		hmu.Lock()
		hooks = append(hooks, string(body))
		hmu.Unlock()
	}))
	defer srv.Close()

	rules := detect.DefaultRules()
	rules.Responders.DryRun = false
	rules.Responders.MaxSuspensionsPerMinute = 2
	sus, log := &suspender{}, &auditLog{}
	r, err := respond.New(respond.Options{Rules: rules, Conn: conn, Suspender: sus, Auditor: log,
		WebhookURL: srv.URL, WebhookSecret: secret, Logger: testenv.Logger(t)})
	require.NoError(t, err)

	a1 := alert("1", detect.UseAfterRevocation, detect.SeverityCritical, "c1", "site-1")
	require.NoError(t, r.Handle(ctx, a1))
	assert.Equal(t, []string{"c1 by responder:revoked-credential-used"}, sus.calls)
	require.Len(t, log.entries, 3)
	e := log.entries[0]
	assert.Equal(t, "responder.suspend", e.Action)
	assert.Equal(t, "c1", e.Target)
	assert.Equal(t, a1.AlertID, e.Details["alert_id"])
	assert.Equal(t, "done", e.Details["outcome"])
	assert.Contains(t, e.Details["reversal"], "reactivates credential c1")
	assert.Len(t, hooks, 1)
	assert.Contains(t, hooks[0], a1.AlertID)

	// A re-delivered alert (or an update of it) does nothing again.
	require.NoError(t, r.Handle(ctx, a1))
	upd := *a1
	upd.Revision = 1
	require.NoError(t, r.Handle(ctx, &upd))
	assert.Len(t, sus.calls, 1)
	// ...even for a fresh responder (another instance, after a restart):
	// alert_actions is the record.
	r2, err := respond.New(respond.Options{Rules: rules, Conn: conn, Suspender: sus, Auditor: log,
		WebhookURL: srv.URL, WebhookSecret: secret})
	require.NoError(t, err)
	require.NoError(t, r2.Handle(ctx, a1))
	assert.Len(t, sus.calls, 1)

	// Rate limit: at most 2 automatic suspensions per minute per site.
	for i, id := range []string{"2", "3", "4"} {
		require.NoError(t, r.Handle(ctx, alert(id, detect.UnattestedDeviceChange, detect.SeverityHigh, "c"+id, "site-2")), i)
	}
	require.NoError(t, r.Handle(ctx, alert("5", detect.UnattestedDeviceChange, detect.SeverityHigh, "c5", "site-3")))
	assert.Equal(t, []string{"c1 by responder:revoked-credential-used", "c2 by responder:unattested-device",
		"c3 by responder:unattested-device", "c5 by responder:unattested-device"}, sus.calls)
	// The budget holds across instances (a rebalance moved site-2's
	// alerts): the suspensions recorded in alert_actions count.
	require.NoError(t, r2.Handle(ctx, alert("7", detect.UnattestedDeviceChange, detect.SeverityHigh, "c7", "site-2")))
	assert.Len(t, sus.calls, 4)

	// The record: every action with its outcome and reversal path.
	store := alertstore.New(conn)
	require.NoError(t, store.Put(ctx, []detect.Alert{*a1, *alert("4", detect.UnattestedDeviceChange, detect.SeverityHigh, "c4", "site-2")}))
	rec, err := store.Get(ctx, a1.AlertID)
	require.NoError(t, err)
	require.Len(t, rec.Actions, 3)
	outcomes := map[string]string{}
	for _, a := range rec.Actions {
		outcomes[a.Action] = a.Outcome
	}
	assert.Equal(t, map[string]string{"suspend": "done", "ticket": "done", "webhook": "done"}, outcomes)
	rec, err = store.Get(ctx, alert("4", detect.UnattestedDeviceChange, detect.SeverityHigh, "c4", "site-2").AlertID)
	require.NoError(t, err)
	for _, a := range rec.Actions {
		if a.Action == "suspend" {
			assert.Equal(t, "rate_limited", a.Outcome)
		}
	}
	var tickets uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM alert_tickets FINAL").Scan(&tickets))
	assert.EqualValues(t, 6, tickets)

	// The control plane refusing (a permanent error): recorded and
	// audited as failed.
	sus.err = bus.Permanent("invalid_transition", errors.New("suspend is not allowed in state revoked"))
	require.NoError(t, r.Handle(ctx, alert("6", detect.UseAfterRevocation, detect.SeverityCritical, "c6", "site-4")))
	last := log.entries[len(log.entries)-3]
	assert.Equal(t, "responder.suspend", last.Action)
	assert.Equal(t, "failed", last.Details["outcome"])
	assert.Equal(t, "suspend is not allowed in state revoked", last.Details["detail"])

	// The control plane away (a transient error): the responder waits and
	// tries again; the suspension happens.
	sus.err, sus.away = nil, 2
	require.NoError(t, r.Handle(ctx, alert("8", detect.UseAfterRevocation, detect.SeverityCritical, "c8", "site-5")))
	assert.Contains(t, sus.calls, "c8 by responder:revoked-credential-used")
	last = log.entries[len(log.entries)-3]
	assert.Equal(t, "responder.suspend", last.Action)
	assert.Equal(t, "done", last.Details["outcome"])

	// ...until the responder is stopped: then nothing is recorded and the
	// alert is handled again by whoever consumes it next.
	sus.away = 1 << 30
	stopped, stop := context.WithTimeout(ctx, 500*time.Millisecond)
	defer stop()
	entries := len(log.entries)
	require.Error(t, r.Handle(stopped, alert("9", detect.UseAfterRevocation, detect.SeverityCritical, "c9", "site-6")))
	assert.Len(t, log.entries, entries, "nothing audited for an action that did not happen")
}

func TestResponderDryRun(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	rules := detect.DefaultRules() // dry-run by default
	sus, log := &suspender{}, &auditLog{}
	r, err := respond.New(respond.Options{Rules: rules, Conn: conn, Suspender: sus, Auditor: log})
	require.NoError(t, err)
	require.NoError(t, r.Handle(context.Background(), alert("1", detect.UseAfterRevocation, detect.SeverityCritical, "c1", "site-1")))
	assert.Empty(t, sus.calls)
	require.Len(t, log.entries, 3)
	got := map[string]string{}
	for _, e := range log.entries {
		got[e.Action] = e.Details["outcome"]
		assert.Equal(t, "true", e.Details["dry_run"])
	}
	assert.Equal(t, map[string]string{"responder.suspend": "dry_run", "responder.ticket": "dry_run", "responder.webhook": "skipped"}, got)
	var tickets uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM alert_tickets").Scan(&tickets))
	assert.Zero(t, tickets)
}

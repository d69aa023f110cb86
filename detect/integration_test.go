package detect_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/detect/respond"
	"github.com/keyfleet/keyfleet/detect/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// kafkaSuspender stands in for the control plane (not merged yet): a
// suspension is a lifecycle record "suspended" on credential.events.
type kafkaSuspender struct {
	w   *kafka.Writer
	mu  sync.Mutex
	now func() time.Time
}

func (s *kafkaSuspender) Suspend(ctx context.Context, credentialID, reason, actor string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := event.Credential{CredentialID: credentialID, State: event.StateSuspended, Reason: reason, Actor: actor, TsMs: s.now().UnixMilli()}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.w.WriteMessages(ctx, kafka.Message{Key: []byte(credentialID), Value: b})
}

// tableAuditor stands in for the control plane's audit store: entries go to
// a ClickHouse table of the test's database.
type tableAuditor struct{ conn driver.Conn }

func (a tableAuditor) Append(ctx context.Context, e audit.Entry) error {
	details, err := json.Marshal(e.Details)
	if err != nil {
		return err
	}
	return chstorage.InsertRows(ctx, a.conn, "test_audit", []string{"ts_ms", "actor", "action", "target", "details"},
		[]any{e.TsMs, e.Actor, e.Action, e.Target, string(details)})
}

// TestResponderSuspensionEndToEnd runs the detectors, the alert sink and the
// responders on a real Kafka broker and ClickHouse: a credential used from an
// unattested new device raises unattested_device_change, the responder
// suspends the credential (a suspended record on credential.events), the
// action is audited with the alert and recorded with its reversal path, the
// alert is stored, and the detectors, having read the suspension back, flag
// a later grant of the suspended credential.
func TestResponderSuspensionEndToEnd(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	require.NoError(t, conn.Exec(ctx, `CREATE TABLE test_audit (ts_ms Int64, actor String, action String, target String, details String)
		ENGINE = MergeTree ORDER BY ts_ms`))

	credW := bus.NewWriter(cfg, bus.TopicCredentialEvents)
	accessW := bus.NewWriter(cfg, bus.TopicAccess)
	alertsW := bus.NewWriter(cfg, bus.TopicAlerts)
	accessR := bus.NewGroupReader(cfg, bus.TopicAccess, bus.GroupDetect)
	sinkR := bus.NewGroupReader(cfg, bus.TopicAlerts, "keyfleet-alerts")
	respR := bus.NewGroupReader(cfg, bus.TopicAlerts, bus.GroupRespond)
	defer func() {
		for _, c := range []interface{ Close() error }{credW, accessW, alertsW, accessR, sinkR, respR} {
			_ = c.Close()
		}
	}()

	now := time.Now()
	put := func(w *kafka.Writer, key string, b []byte) {
		t.Helper()
		require.NoError(t, w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: b}))
	}
	rec, _ := json.Marshal(event.Credential{CredentialID: "c1", SubjectID: "s1", State: event.StateActive, Role: "resident",
		DeviceID: "phone-1", Attested: true, SiteID: "site-1", TsMs: now.Add(-time.Hour).UnixMilli()})
	put(credW, "c1", rec)

	rules := detect.DefaultRules()
	rules.Responders.DryRun = false
	engine, err := detect.NewEngine(rules, detect.Options{})
	require.NoError(t, err)
	proc, err := stream.New(stream.Options{Bus: cfg, Engine: engine, Access: accessR, Alerts: alertsW, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	store := alertstore.New(conn)
	sink, err := alertstore.NewSink(store, sinkR, nil, nil, testenv.Logger(t))
	require.NoError(t, err)
	resp, err := respond.New(respond.Options{Rules: rules, Reader: respR, Conn: conn, Auditor: tableAuditor{conn},
		Suspender: &kafkaSuspender{w: credW, now: time.Now}, Logger: testenv.Logger(t)})
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return proc.Run(gctx) })
	g.Go(func() error { return sink.Run(gctx) })
	g.Go(func() error { return resp.Run(gctx) })
	defer func() {
		stop()
		require.NoError(t, g.Wait())
	}()

	use := event.Access{EventID: event.ID("it", "1"), TsMs: now.UnixMilli(), ReceivedMs: now.UnixMilli(), Vendor: "matter",
		SiteID: "site-1", DoorID: "lobby", LockID: "lock-lobby", SubjectID: "s1", CredentialID: "c1",
		DeviceID: "phone-2", Attested: "unattested", Action: "unlock", Outcome: "granted", Method: "phone_nfc"}
	put(accessW, "s1", use.AppendJSON(nil))

	// The suspension is a credential state change on credential.events.
	credR := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, GroupID: cfg.TopicPrefix + "test-creds",
		Topic: cfg.Topic(bus.TopicCredentialEvents), StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	defer credR.Close()
	readCtx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	var suspended event.Credential
	for suspended.State != event.StateSuspended {
		m, err := credR.ReadMessage(readCtx)
		require.NoError(t, err, "no suspended record on credential.events")
		require.NoError(t, json.Unmarshal(m.Value, &suspended))
	}
	assert.Equal(t, "c1", suspended.CredentialID)
	assert.Equal(t, "responder:unattested-device", suspended.Actor)
	assert.Contains(t, suspended.Reason, "unattested_device_change")

	// Audited with the alert that caused it.
	var alertID string
	require.Eventually(t, func() bool {
		var details string
		err := conn.QueryRow(ctx, `SELECT details FROM test_audit WHERE action = 'responder.suspend' AND target = 'c1' LIMIT 1`).Scan(&details)
		if err != nil {
			return false
		}
		var d map[string]string
		require.NoError(t, json.Unmarshal([]byte(details), &d))
		assert.Equal(t, "done", d["outcome"])
		assert.Equal(t, "false", d["dry_run"])
		assert.Contains(t, d["reversal"], "reactivates credential c1")
		alertID = d["alert_id"]
		return true
	}, 60*time.Second, 200*time.Millisecond)

	// The alert is stored (with the action and its reversal path).
	var rec2 alertstore.Record
	require.Eventually(t, func() bool {
		r, err := store.Get(ctx, alertID)
		if err != nil {
			return false
		}
		rec2 = r
		return len(r.Actions) >= 3
	}, 60*time.Second, 200*time.Millisecond)
	assert.Equal(t, detect.UnattestedDeviceChange, rec2.Detector)
	assert.Equal(t, []string{use.EventID}, rec2.Evidence)
	for _, a := range rec2.Actions {
		if a.Action == detect.ActionSuspend {
			assert.Equal(t, respond.OutcomeDone, a.Outcome)
			assert.NotEmpty(t, a.Reversal)
		}
	}

	// The detectors read the suspension back: a grant 10 minutes after it
	// (beyond the grace) means the suspension did not reach the lock.
	later := use
	later.EventID, later.DeviceID, later.Attested = event.ID("it", "2"), "phone-1", "unknown"
	later.TsMs = suspended.TsMs + 10*60_000
	put(accessW, "s1", later.AppendJSON(nil))
	require.Eventually(t, func() bool {
		recs, err := store.List(ctx, alertstore.Filter{Detector: detect.UseAfterRevocation, Credential: "c1"})
		return err == nil && len(recs) == 1
	}, 60*time.Second, 200*time.Millisecond)
}

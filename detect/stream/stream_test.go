package stream_test

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/detect/stream"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

func produce(t testing.TB, cfg bus.Config, topic string, key string, v any) {
	t.Helper()
	produceAt(t, cfg, topic, key, v, time.Time{})
}

// produceAt writes one record with the given Kafka timestamp (zero: now).
func produceAt(t testing.TB, cfg bus.Config, topic string, key string, v any, at time.Time) {
	t.Helper()
	w := bus.NewWriter(cfg, topic)
	defer w.Close()
	var b []byte
	switch x := v.(type) {
	case *event.Access:
		b = x.AppendJSON(nil)
	default:
		var err error
		b, err = json.Marshal(v)
		require.NoError(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: b, Time: at}))
}

// readAlerts reads alerts from the alerts topic until want are in or the
// deadline passes.
// alertsReader reads the alerts topic from its start, in a test group.
func alertsReader(t testing.TB, cfg bus.Config) *kafka.Reader {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, GroupID: cfg.TopicPrefix + "test-alerts",
		Topic: cfg.Topic(bus.TopicAlerts), StartOffset: kafka.FirstOffset, MaxWait: 100 * time.Millisecond})
	t.Cleanup(func() { r.Close() })
	return r
}

func readAlerts(t testing.TB, r *kafka.Reader, want int, timeout time.Duration) []detect.Alert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []detect.Alert
	for len(out) < want {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read alerts: got %d of %d: %v", len(out), want, err)
		}
		var a detect.Alert
		require.NoError(t, json.Unmarshal(m.Value, &a))
		out = append(out, a)
	}
	return out
}

type running struct {
	cancel  context.CancelFunc
	done    chan error
	closers []func() error
}

// stop stops the processor and closes its Kafka clients (leaving the
// consumer group, as a stopped instance does).
func (r *running) stop(t testing.TB) {
	r.cancel()
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(40 * time.Second):
		t.Fatal("processor did not stop")
	}
	for _, c := range r.closers {
		_ = c()
	}
}

func start(t testing.TB, cfg bus.Config, reg prometheus.Registerer, mod func(*stream.Options)) *running {
	engine, err := detect.NewEngine(detect.DefaultRules(), detect.Options{})
	require.NoError(t, err)
	access := bus.NewGroupReader(cfg, bus.TopicAccess, bus.GroupDetect)
	alerts := bus.NewWriter(cfg, bus.TopicAlerts)
	o := stream.Options{Bus: cfg, Engine: engine, Access: access, Alerts: alerts,
		Logger: testenv.Logger(t), Metrics: detect.NewMetrics(reg), IdleAfter: time.Hour}
	if mod != nil {
		mod(&o)
	}
	p, err := stream.New(o)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), closers: []func() error{access.Close, alerts.Close}}
	go func() { r.done <- p.Run(ctx) }()
	return r
}

func TestProcessor(t *testing.T) {
	cfg := testenv.Kafka(t, 2)
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Minute).UnixMilli()
	cred := func(id, subject, state string, ts int64) {
		produce(t, cfg, bus.TopicCredentialEvents, id, &event.Credential{CredentialID: id, SubjectID: subject,
			State: state, Role: "resident", DeviceID: "p-" + id, Attested: state == event.StateActive, TsMs: ts})
	}
	n := 0
	access := func(subject, cred, door, action string, ts int64) *event.Access {
		n++
		ev := &event.Access{EventID: event.ID("test", string(rune('a'+n))), TsMs: ts, ReceivedMs: time.Now().UnixMilli(),
			Vendor: "matter", SiteID: "site-1", DoorID: door, LockID: "l-" + door, SubjectID: subject, CredentialID: cred,
			DeviceID: "p-" + cred, Attested: "unknown", Action: action, Outcome: "granted", Method: "phone_nfc"}
		produce(t, cfg, bus.TopicAccess, subject, ev)
		return ev
	}
	// Credential records published before the detectors start are caught
	// up on before any access event is judged.
	cred("c1", "s1", event.StateActive, base)
	cred("c1", "s1", event.StateRevoked, base+60_000)
	cred("c2", "s2", event.StateActive, base)

	reg := prometheus.NewRegistry()
	p := start(t, cfg, reg, nil)
	out := alertsReader(t, cfg)

	used := access("s1", "c1", "front", "unlock", base+30*60_000)
	got := readAlerts(t, out, 1, 60*time.Second)
	require.Equal(t, detect.UseAfterRevocation, got[0].Detector)
	assert.Equal(t, "c1", got[0].CredentialID)
	assert.Equal(t, used.TsMs, got[0].TsMs, "alerts carry event time")
	assert.Equal(t, []string{used.EventID}, got[0].Evidence)
	assert.NotZero(t, got[0].DetectedMs)

	// A revocation record that arrives after the grant it should have
	// stopped still raises the alert (from the credential stream).
	grant := access("s2", "c2", "garage", "unlock", base+90*60_000)
	time.Sleep(500 * time.Millisecond)
	cred("c2", "s2", event.StateRevoked, base+80*60_000)
	got = readAlerts(t, out, 1, 60*time.Second)
	require.Equal(t, detect.UseAfterRevocation, got[0].Detector)
	assert.Equal(t, "c2", got[0].CredentialID)
	assert.Equal(t, grant.TsMs, got[0].TsMs)

	access("s3", "", "lobby", "emergency_unlock", base+100*60_000)
	got = readAlerts(t, out, 1, 60*time.Second)
	require.Equal(t, detect.EmergencyUnlock, got[0].Detector)
	// The processor counts an alert once the broker acknowledged it, which
	// may be just after the test read it.
	require.Eventually(t, func() bool { return testutil.CollectAndCount(reg, "keyfleet_detect_latency_seconds") == 2 },
		10*time.Second, 20*time.Millisecond)
	p.stop(t)

	assert.Equal(t, 2, testutil.CollectAndCount(reg, "keyfleet_detect_alerts_total"), "series: use_after_revocation/critical, emergency_unlock/high")
	assert.Equal(t, 2, testutil.CollectAndCount(reg, "keyfleet_detect_latency_seconds"))
	assert.InDelta(t, 3, testutil.ToFloat64(mustCounter(t, reg, "keyfleet_detect_records_total", "access")), 0)
}

// An access.events record that is not an event is dead-lettered (reason
// undecodable_event, stage detect) once the events around it are judged,
// and the batch is committed.
func TestUndecodableAccessEventDeadLettered(t *testing.T) {
	cfg := testenv.Kafka(t, 1)
	base := time.Now().Add(-time.Hour).Truncate(time.Minute).UnixMilli()
	dlq := bus.NewWriter(cfg, bus.TopicDLQ)
	t.Cleanup(func() { dlq.Close() })
	reg := prometheus.NewRegistry()
	p := start(t, cfg, reg, func(o *stream.Options) { o.DeadLetter = dlq })
	out := alertsReader(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	poison := []byte("\x00not an event\xff")
	ev := &event.Access{EventID: event.ID("test", "poison-neighbour"), TsMs: base, ReceivedMs: base, Vendor: "matter",
		SiteID: "site-1", DoorID: "lobby", LockID: "l-lobby", Attested: "unknown", Action: "emergency_unlock",
		Outcome: "granted", Method: "manual"}
	require.NoError(t, w.WriteMessages(ctx, kafka.Message{Key: []byte("poison"), Value: poison},
		kafka.Message{Key: []byte("lobby"), Value: ev.AppendJSON(nil)}))

	got := readAlerts(t, out, 1, time.Minute)
	assert.Equal(t, detect.EmergencyUnlock, got[0].Detector, "the event next to the poison judged")
	dr := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.Topic(bus.TopicDLQ), MaxWait: 100 * time.Millisecond})
	defer dr.Close()
	m, err := dr.ReadMessage(ctx)
	require.NoError(t, err)
	d := bus.ParseDeadLetter(m)
	assert.Equal(t, "undecodable_event", d.Reason)
	assert.Equal(t, "detect", d.Stage)
	assert.Equal(t, poison, d.Value)
	assert.True(t, strings.HasPrefix(d.Source, cfg.Topic(bus.TopicAccess)+"/"), d.Source)
	require.Eventually(t, func() bool {
		lag, err := bus.Lag(ctx, cfg, bus.Consumer{Group: bus.GroupDetect, Topic: bus.TopicAccess})
		return err == nil && lag == 0
	}, time.Minute, 50*time.Millisecond, "the batch committed")
	p.stop(t)
}

func mustCounter(t testing.TB, reg *prometheus.Registry, name, source string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "source" && l.GetValue() == source {
					c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
					c.Add(m.GetCounter().GetValue())
					return c
				}
			}
		}
	}
	t.Fatalf("no %s{source=%s}", name, source)
	return nil
}

// TestCatchUp: after downtime the detectors resume from their committed
// offsets and judge the backlog in event time; nothing in the gap is
// missed, and an event judged again (its batch was not committed before the
// stop) raises an alert with the same id.
func TestCatchUp(t *testing.T) {
	cfg := testenv.Kafka(t, 2)
	base := time.Now().Add(-48 * time.Hour).Truncate(time.Hour).UnixMilli()
	n := 0
	forced := func(door string, ts int64) {
		n++
		produce(t, cfg, bus.TopicAccess, "lock-"+door, &event.Access{EventID: event.ID("catchup", string(rune('a'+n))), TsMs: ts,
			Vendor: "nuki", SiteID: "site-1", DoorID: door, LockID: "lock-" + door, Attested: "unknown",
			Action: "door_forced", Outcome: "info", Method: "unknown"})
	}
	out := alertsReader(t, cfg)

	p := start(t, cfg, nil, nil)
	forced("d1", base)
	first := readAlerts(t, out, 1, 60*time.Second)
	p.stop(t)

	// While the detectors are down: three more doors forced, an hour apart.
	for i := 1; i <= 3; i++ {
		forced("d"+string(rune('1'+i)), base+int64(i)*3_600_000)
	}
	p = start(t, cfg, nil, nil)
	var got []detect.Alert
	for len(got) < 3 {
		a := readAlerts(t, out, 1, 60*time.Second)[0]
		if a.DoorID == "d1" {
			assert.Equal(t, first[0].AlertID, a.AlertID, "a redelivered event raises the same alert id")
			continue
		}
		got = append(got, a)
	}
	p.stop(t)
	sort.Slice(got, func(i, j int) bool { return got[i].TsMs < got[j].TsMs }) // partitions interleave
	var doors []string
	for i, a := range got {
		doors = append(doors, a.DoorID)
		assert.Equal(t, base+int64(i+1)*3_600_000, a.TsMs, "alerts carry event time")
	}
	assert.Equal(t, []string{"d2", "d3", "d4"}, doors)
}

func TestClickHouseUsesAndBaselines(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	day := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	cols := pipeline.AccessColumns
	row := func(id, cred, outcome string, ts time.Time) []any {
		return []any{mustUUID(id), ts, ts.UnixMilli(), ts.UnixMilli(), "matter", "site", "", "door", "lock", "s", cred, "", "unknown",
			"unlock", outcome, "phone_nfc", "", "", uint8(0), "", ts.UnixMilli()}
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", cols,
		row(event.ID("t", "1"), "c1", "granted", day),
		row(event.ID("t", "2"), "c1", "granted", day.Add(5*time.Hour)),
		row(event.ID("t", "2"), "c1", "granted", day.Add(5*time.Hour)), // duplicate delivery
		row(event.ID("t", "3"), "c2", "denied", day.Add(6*time.Hour)),
		row(event.ID("t", "4"), "c3", "granted", day.Add(-40*24*time.Hour)),
	))
	uses, oldest, err := stream.ClickHouseUses{Conn: conn}.LastUses(ctx, day.Add(-31*24*time.Hour).UnixMilli())
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{"c1": day.Add(5 * time.Hour).UnixMilli()}, uses)
	assert.Equal(t, day.Add(-40*24*time.Hour).UnixMilli(), oldest)

	bl := stream.ClickHouseBaselines{Conn: conn}
	want := []detect.Baseline{{SubjectID: "s1", Role: "resident", Peaks: map[string][][2]int64{"distinct_doors/1h0m0s": {{20000, 3}, {20001, 2}}}, Uses: 7, UseDays: 2}}
	require.NoError(t, bl.Save(ctx, want))
	want[0].Role = "staff"
	require.NoError(t, bl.Save(ctx, want))
	got, err := bl.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func mustUUID(s string) any {
	u, err := uuid.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// TestWarmUpAcrossRestart: a denied storm whose first six denials were
// judged (and committed) before a restart and whose last two come after it
// is still raised: the restarted detectors refill their windows from the
// committed events, without raising anything twice.
func TestWarmUpAcrossRestart(t *testing.T) {
	cfg := testenv.Kafka(t, 2)
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	n := 0
	deny := func() {
		n++
		subject := "s" + string(rune('a'+n))
		produce(t, cfg, bus.TopicAccess, subject, &event.Access{EventID: event.ID("warmup", subject), TsMs: base + int64(n)*10_000,
			ReceivedMs: time.Now().UnixMilli(), Vendor: "legacy", SiteID: "site-1", DoorID: "lobby", LockID: "panel/lobby",
			SubjectID: subject, Attested: "unknown", Action: "access_denied", Outcome: "denied", Method: "card", Reason: "invalid"})
	}
	p := start(t, cfg, nil, nil)
	for range 6 { // the door threshold is 8 in 15 minutes
		deny()
	}
	require.Eventually(t, func() bool { return committed(t, cfg) == 6 }, 60*time.Second, 100*time.Millisecond,
		"the six denials judged and committed")
	p.stop(t)

	deny()
	deny()
	p = start(t, cfg, nil, nil)
	defer p.stop(t)
	out := alertsReader(t, cfg)
	got := readAlerts(t, out, 1, 60*time.Second)
	require.Equal(t, detect.DeniedStorm, got[0].Detector)
	assert.Equal(t, "lobby", got[0].DoorID)
	assert.Equal(t, 8.0, got[0].Observed)
	assert.Equal(t, base+80_000, got[0].TsMs, "raised by the eighth denial")

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := out.ReadMessage(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "nothing else is raised")
}

// TestLateRevocationAcrossRestart: revocation records published while the
// detectors were down still judge the grants committed before: one within
// the replayed window, one older (within use_after_revocation's lookback).
// An alert raised and stored before the restart is not produced again.
func TestLateRevocationAcrossRestart(t *testing.T) {
	cfg := testenv.Kafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	store := alertstore.New(conn)
	now := time.Now()
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	cred := func(id, state string, at time.Time) {
		produce(t, cfg, bus.TopicCredentialEvents, id, &event.Credential{CredentialID: id, SubjectID: "s-" + id,
			State: state, Role: "resident", DeviceID: "p-" + id, Attested: state == event.StateActive, TsMs: at.UnixMilli()})
	}
	grant := func(id string, at time.Time) {
		produceAt(t, cfg, bus.TopicAccess, "s-"+id, &event.Access{EventID: event.ID("late", id), TsMs: at.UnixMilli(),
			ReceivedMs: at.UnixMilli(), Vendor: "legacy", SiteID: "site-1", DoorID: "door-" + id, LockID: "panel/" + id,
			SubjectID: "s-" + id, CredentialID: id, DeviceID: "p-" + id, Attested: "unknown", Action: "unlock",
			Outcome: "granted", Method: "card"}, at)
	}
	cred("c1", event.StateActive, ago(5*time.Hour))
	cred("c2", event.StateActive, ago(5*time.Hour))
	cred("c3", event.StateActive, ago(8*time.Hour))
	cred("c3", event.StateRevoked, ago(6*time.Hour))

	withStore := func(o *stream.Options) { o.Known = store }
	p := start(t, cfg, nil, withStore)
	grant("c1", ago(3*time.Hour))    // outside the 1 h window, inside the 24 h lookback
	grant("c3", ago(2*time.Hour))    // after c3's known revocation: alerted live
	grant("c2", ago(10*time.Minute)) // inside the window
	out := alertsReader(t, cfg)
	live := readAlerts(t, out, 1, 60*time.Second)
	require.Equal(t, detect.UseAfterRevocation, live[0].Detector)
	require.Equal(t, "c3", live[0].CredentialID)
	require.NoError(t, store.Put(context.Background(), live)) // what the alerts sink does
	require.Eventually(t, func() bool { return committed(t, cfg) == 3 }, 60*time.Second, 100*time.Millisecond,
		"the three grants judged and committed")
	p.stop(t)

	// While the detectors are down, c1 and c2 turn out to have been revoked
	// before their grants.
	cred("c1", event.StateRevoked, ago(4*time.Hour))
	cred("c2", event.StateRevoked, ago(20*time.Minute))
	p = start(t, cfg, nil, withStore)
	defer p.stop(t)
	got := readAlerts(t, out, 2, 60*time.Second)
	sort.Slice(got, func(i, j int) bool { return got[i].CredentialID < got[j].CredentialID })
	for i, id := range []string{"c1", "c2"} {
		assert.Equal(t, detect.UseAfterRevocation, got[i].Detector)
		assert.Equal(t, id, got[i].CredentialID)
		assert.Equal(t, []string{event.ID("late", id)}, got[i].Evidence)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := out.ReadMessage(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "c3's stored alert is not produced again")
}

// committed sums the detectors' committed offsets on access.events.
func committed(t testing.TB, cfg bus.Config) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second}
	topic := cfg.Topic(bus.TopicAccess)
	res, err := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: cfg.TopicPrefix + bus.GroupDetect,
		Topics: map[string][]int{topic: {0, 1}}})
	require.NoError(t, err)
	var sum int64
	for _, po := range res.Topics[topic] {
		if po.CommittedOffset > 0 {
			sum += po.CommittedOffset
		}
	}
	return sum
}

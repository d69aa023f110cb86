package stream_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/exception/store"
	"github.com/keyfleet/keyfleet/exception/stream"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

const day = 24 * time.Hour

// t0 is the tests' fixed clock.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func doorException(id string, start time.Time, life time.Duration) exception.Record {
	return exception.Record{ID: id, Status: exception.StatusOpen, Op: exception.OpCreate, Actor: "admin", CreatedBy: "admin",
		Exception: exception.Exception{Kind: exception.KindDoor, Scope: exception.Scope{SiteID: "s1", DoorID: "loading-bay"},
			Reason: "manual_override", Approvers: []string{"facilities"}, CompensatingControl: "CCTV watched by the front desk",
			StartMs: start.UnixMilli(), ExpiryMs: start.Add(life).UnixMilli()}}
}

// A record published by one instance reaches another instance's register,
// a later instance rebuilds the register from the topic before it is ready,
// every record lands once in the history table, and the history's current
// register is the newest version of each exception.
func TestPublishFollowHistory(t *testing.T) {
	bc := testenv.Kafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, chstorage.Migrate(ctx, conn, testenv.Logger(t)))

	start := func(reg *exception.Register) (*stream.Exceptions, func()) {
		x, err := stream.New(stream.Options{Bus: bc, Conn: conn, Register: reg, Logger: testenv.Logger(t),
			Now: func() time.Time { return t0 }})
		require.NoError(t, err)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- x.Run(rctx) }()
		select {
		case <-x.Ready():
		case err := <-done:
			t.Fatalf("stopped: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("not ready within a minute")
		}
		return x, func() { stop(); require.NoError(t, <-done); x.Close() }
	}
	regA, regB := exception.NewRegister(), exception.NewRegister()
	a, stopA := start(regA)
	defer stopA()
	_, stopB := start(regB)
	defer stopB()

	rec := doorException("ex-1", t0, 30*day)
	rec.Version, rec.TsMs, rec.CreatedMs = a.NextVersion("ex-1"), t0.UnixMilli(), t0.UnixMilli()
	require.NoError(t, a.Publish(ctx, rec))
	_, ok := regA.Get("ex-1")
	assert.True(t, ok, "the publishing instance applies at once")
	require.Eventually(t, func() bool { _, ok := regB.Get("ex-1"); return ok }, 30*time.Second, 20*time.Millisecond)

	closed := rec
	closed.Version = a.NextVersion("ex-1")
	assert.Greater(t, closed.Version, rec.Version)
	closed.Status, closed.Op, closed.CloseReason = exception.StatusClosed, exception.OpClose, "door repaired"
	require.NoError(t, a.Publish(ctx, closed))
	require.Eventually(t, func() bool { r, _ := regB.Get("ex-1"); return r.Status == exception.StatusClosed }, 30*time.Second, 20*time.Millisecond)

	bad := rec
	bad.CompensatingControl = ""
	require.Error(t, a.Publish(ctx, bad), "an exception without a compensating control is never published")

	// A new instance is ready only with the closure applied.
	regC := exception.NewRegister()
	_, stopC := start(regC)
	defer stopC()
	got, ok := regC.Get("ex-1")
	require.True(t, ok)
	assert.Equal(t, closed, got)

	var hist []exception.Record
	require.Eventually(t, func() bool {
		var err error
		hist, err = store.History(ctx, conn, "ex-1", 10)
		require.NoError(t, err)
		return len(hist) == 2
	}, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, []string{exception.OpClose, exception.OpCreate}, []string{hist[0].Op, hist[1].Op})
	cur, err := store.Current(ctx, conn, "s1")
	require.NoError(t, err)
	assert.Equal(t, []exception.Record{closed}, cur)
	cur, err = store.Current(ctx, conn, "s2")
	require.NoError(t, err)
	assert.Empty(t, cur)
}

// Expiry raises expired_exception for an exception about to expire and one
// past its expiry on the alerts topic, once per alert: a second check
// finds them produced, and one stored in ClickHouse is not produced again
// by another instance.
func TestExpiryAlerts(t *testing.T) {
	bc := testenv.Kafka(t, 1)
	conn, _ := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, chstorage.Migrate(ctx, conn, testenv.Logger(t)))

	reg := exception.NewRegister()
	expiring := doorException("ex-expiring", t0.Add(-20*day), 23*day) // 3 days left
	expired := doorException("ex-expired", t0.Add(-40*day), 30*day)   // 10 days over
	fine := doorException("ex-fine", t0.Add(-1*day), 60*day)
	closed := doorException("ex-closed", t0.Add(-40*day), 30*day)
	closed.Status = exception.StatusClosed
	for i, r := range []exception.Record{expiring, expired, fine, closed} {
		r.Version = uint64(i + 1)
		require.True(t, reg.Put(r))
	}
	w := bus.NewWriter(bc, bus.TopicAlerts)
	defer w.Close()
	alerts := alertstore.New(conn)
	rules := detect.DefaultRules().Detectors.ExpiredException
	newExpiry := func() *stream.Expiry {
		e, err := stream.NewExpiry(stream.ExpiryOptions{Register: reg, Rules: rules, Alerts: w, Known: alerts,
			Logger: testenv.Logger(t), Now: func() time.Time { return t0 }})
		require.NoError(t, err)
		return e
	}
	e := newExpiry()
	got, err := e.Check(ctx)
	require.NoError(t, err)
	require.Len(t, got, 2)
	bySubject := map[string]detect.Alert{}
	for _, a := range got {
		bySubject[a.Evidence[0]] = a
	}
	assert.Equal(t, detect.SeverityLow, bySubject["exception:ex-expiring"].Severity)
	assert.Contains(t, bySubject["exception:ex-expiring"].Explanation, "expires in 3 days")
	assert.Equal(t, rules.Severity, bySubject["exception:ex-expired"].Severity)
	assert.Contains(t, bySubject["exception:ex-expired"].Explanation, "expired 10 days ago")

	again, err := e.Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, again, "produced once")

	var onTopic []detect.Alert
	require.NoError(t, bus.ReadTopic(ctx, bc, bus.TopicAlerts, func(m kafka.Message) error {
		var a detect.Alert
		require.NoError(t, json.Unmarshal(m.Value, &a))
		assert.Equal(t, "site:s1", string(m.Key))
		onTopic = append(onTopic, a)
		return nil
	}))
	require.Len(t, onTopic, 2)

	// Once stored, another instance does not produce them again.
	require.NoError(t, alerts.Put(ctx, got))
	other, err := newExpiry().Check(ctx)
	require.NoError(t, err)
	assert.Empty(t, other)
}

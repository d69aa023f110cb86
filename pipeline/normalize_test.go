package pipeline_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
	"github.com/keyfleet/keyfleet/pipeline"
)

// TestStage runs the stage on Kafka: good records of every vendor reach
// access.events in order, bad ones lock.events.dlq with their reason.
func TestStage(t *testing.T) {
	kc := testenv.Kafka(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw := bus.NewWriter(kc, bus.TopicRaw)
	access := bus.NewWriter(kc, bus.TopicAccess)
	dlq := bus.NewWriter(kc, bus.TopicDLQ)
	t.Cleanup(func() { raw.Close(); access.Close(); dlq.Close() })
	records := []string{
		`{"vendor":"matter","received_ms":1764230499000,"payload":{"nodeId":"0x1","eventName":"DoorStateChange","eventNumber":1,"timestampMs":1764230400123,"data":{"doorState":0}}}`,
		`{"vendor":"nuki","payload":{"id":"x","smartlockId":5,"action":1}}`,
		`not json`,
		// A lock whose clock runs three days fast, reporting an event type
		// nobody knows with a very long name: kept (action other), the name
		// cut to MaxVendorCode, and produced although Kafka refuses
		// timestamps more than an hour ahead.
		fmt.Sprintf(`{"vendor":"matter","received_ms":1764230499000,"payload":{"nodeId":"0x2","eventName":"%s","eventNumber":2,"timestampMs":%d,"data":{}}}`,
			strings.Repeat("VendoréSpecific", 200), time.Now().Add(72*time.Hour).UnixMilli()),
		`{"vendor":"legacy","received_ms":1764230499000,"payload":"2026-11-20T08:15:02Z,PANEL-7,READER-3,CARD,00123456,GRANTED"}`,
		`{"vendor":"acme","payload":{}}`,
	}
	var msgs []kafka.Message
	for _, r := range records {
		msgs = append(msgs, kafka.Message{Value: []byte(r)})
	}
	require.NoError(t, raw.WriteMessages(ctx, msgs...))

	reader := bus.NewGroupReader(kc, bus.TopicRaw, "stage-test")
	t.Cleanup(func() { reader.Close() })
	stage, err := pipeline.NewNormalizeStage(pipeline.NormalizeOptions{
		Normalizer: normalize.New(vendors.Adapters(), nil, []byte("k")), Reader: reader, Events: access, DLQ: dlq,
		MaxBatch: 100, MaxWait: 50 * time.Millisecond, Logger: testenv.Logger(t), Metrics: pipeline.NewNormalizeMetrics(prometheus.NewRegistry()),
	})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- stage.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	events := read(ctx, t, kc, bus.TopicAccess, 3)
	var got []event.Access
	for _, m := range events {
		var e event.Access
		require.NoError(t, event.Decode(m.Value, &e))
		got = append(got, e)
	}
	assert.Equal(t, "matter", got[0].Vendor)
	assert.Equal(t, "door_opened", got[0].Action)
	assert.Equal(t, "other", got[1].Action)
	assert.LessOrEqual(t, len(got[1].VendorCode), normalize.MaxVendorCode)
	assert.True(t, utf8.ValidString(got[1].VendorCode))
	assert.WithinDuration(t, time.Now(), events[1].Time, time.Minute, "Kafka timestamp is the processing time")
	assert.Equal(t, "legacy", got[2].Vendor)
	assert.Equal(t, "PANEL-7/READER-3", string(events[2].Key))
	assert.NotContains(t, string(events[2].Value), "00123456")

	dead := read(ctx, t, kc, bus.TopicDLQ, 3)
	var reasons []string
	for _, m := range dead {
		reasons = append(reasons, bus.ParseDeadLetter(m).Reason)
	}
	assert.Equal(t, []string{normalize.ReasonBadTime, normalize.ReasonBadEnvelope, normalize.ReasonUnknownVendor}, reasons)
}

func read(ctx context.Context, t *testing.T, kc bus.Config, topic string, n int) []kafka.Message {
	t.Helper()
	r := bus.NewGroupReader(kc, topic, "stage-test-"+topic)
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		m, err := r.ReadMessage(ctx)
		require.NoError(t, err, "read %s", topic)
		out = append(out, m)
	}
	return out
}

package pipeline_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

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

// Event times outside the window and records that are not UTF-8 are
// dead-lettered with their reason; the good record between them passes.
func TestStageRefusesOutOfRangeTimesAndInvalidUTF8(t *testing.T) {
	kc := testenv.Kafka(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	raw := bus.NewWriter(kc, bus.TopicRaw)
	access := bus.NewWriter(kc, bus.TopicAccess)
	dlq := bus.NewWriter(kc, bus.TopicDLQ)
	t.Cleanup(func() { raw.Close(); access.Close(); dlq.Close() })
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	matter := func(n int, tsMs int64) string {
		return fmt.Sprintf(`{"vendor":"matter","received_ms":%d,"payload":{"nodeId":"0x1","eventName":"DoorStateChange","eventNumber":%d,"timestampMs":%d,"data":{"doorState":0}}}`,
			now.UnixMilli(), n, tsMs)
	}
	records := []string{
		matter(1, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()), // would wrap in ts
		matter(2, math.MaxInt64),
		matter(3, time.Date(1999, 6, 1, 0, 0, 0, 0, time.UTC).UnixMilli()),
		matter(4, now.Add(8*24*time.Hour).UnixMilli()),
		"{\"vendor\":\"legacy\",\"payload\":\"2026-02-20T08:15:02Z,PANEL-7,READER-3,CARD,00123456,GRANTED \xff\"}",
		matter(5, now.Add(-time.Hour).UnixMilli()),
	}
	var msgs []kafka.Message
	for _, r := range records {
		msgs = append(msgs, kafka.Message{Value: []byte(r)})
	}
	require.NoError(t, raw.WriteMessages(ctx, msgs...))
	reader := bus.NewGroupReader(kc, bus.TopicRaw, "bounds-test")
	t.Cleanup(func() { reader.Close() })
	stage, err := pipeline.NewNormalizeStage(pipeline.NormalizeOptions{
		Normalizer: normalize.New(vendors.Adapters(), nil, []byte("k")), Reader: reader, Events: access, DLQ: dlq,
		MaxBatch: 100, MaxWait: 50 * time.Millisecond, Logger: testenv.Logger(t), Metrics: pipeline.NewNormalizeMetrics(prometheus.NewRegistry()),
		Now: func() time.Time { return now },
	})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- stage.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })

	events := read(ctx, t, kc, bus.TopicAccess, 1)
	var e event.Access
	require.NoError(t, event.Decode(events[0].Value, &e))
	assert.Equal(t, now.Add(-time.Hour).UnixMilli(), e.TsMs)
	dead := read(ctx, t, kc, bus.TopicDLQ, 5)
	var reasons []string
	for _, m := range dead {
		d := bus.ParseDeadLetter(m)
		reasons = append(reasons, d.Reason)
		t.Logf("dead letter: %s: %s", d.Reason, d.Error)
	}
	r := event.ReasonTimeOutOfRange
	assert.Equal(t, []string{r, r, r, r, pipeline.ReasonInvalidUTF8}, reasons)
}

func TestAccessRowsRefuseTimesOutsideTheWindow(t *testing.T) {
	rows := pipeline.NewAccessRows(nil)
	ok := accessRecords(1)[0]
	require.NoError(t, rows.Append(ok))
	for _, ts := range []int64{time.Date(2106, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), math.MaxInt64, 1, -5} {
		var e event.Access
		require.NoError(t, event.Decode(ok.Value, &e))
		e.TsMs = ts
		err := rows.Append(kafka.Message{Value: e.AppendJSON(nil)})
		assert.ErrorIs(t, err, event.ErrTimeOutOfRange, "ts %d", ts)
	}
	assert.Equal(t, 1, rows.Len())
}

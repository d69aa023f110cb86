package bus_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// With Idle set, a batch is handed over once the topic goes quiet, long
// before MaxWait; every message is in it and its offsets are committed.
func TestConsumeBatchesIdleHandover(t *testing.T) {
	cfg := testenv.Kafka(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	require.NoError(t, w.WriteMessages(ctx, kafka.Message{Value: []byte("a")}, kafka.Message{Value: []byte("b")},
		kafka.Message{Value: []byte("c")}))

	r := bus.NewGroupReader(cfg, bus.TopicAccess, "idle-test")
	defer r.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	got := make(chan []string, 1)
	done := make(chan error, 1)
	go func() {
		done <- bus.ConsumeBatches(runCtx, r, bus.BatchOptions{MaxBatch: 100, MaxWait: 10 * time.Minute, Idle: 50 * time.Millisecond},
			func(_ context.Context, batch []kafka.Message) error {
				var vs []string
				for _, m := range batch {
					vs = append(vs, string(m.Value))
				}
				got <- vs
				return nil
			})
	}()
	select {
	case vs := <-got:
		assert.Equal(t, []string{"a", "b", "c"}, vs)
	case <-time.After(30 * time.Second):
		t.Fatal("the batch waited for MaxWait instead of being handed over when the topic went quiet")
	}
	stop()
	require.NoError(t, <-done)
	lag, err := bus.Lag(ctx, cfg, bus.Consumer{Group: "idle-test", Topic: bus.TopicAccess})
	require.NoError(t, err)
	assert.Zero(t, lag, "offsets committed")
}

package bus_test

import (
	"context"
	"errors"
	"log/slog"
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

// A handler's permanent error dead-letters the records it names, with the
// reason and the source position, and the batch is committed; the consumer
// goes on with the next records.
func TestConsumeBatchesPermanentErrorDeadLetters(t *testing.T) {
	cfg := testenv.Kafka(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	require.NoError(t, w.WriteMessages(ctx, kafka.Message{Value: []byte("good")}, kafka.Message{Value: []byte("poison")}))
	dlq := bus.NewWriter(cfg, bus.TopicDLQ)
	defer dlq.Close()

	r := bus.NewGroupReader(cfg, bus.TopicAccess, "permanent-test")
	defer r.Close()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	seen := make(chan string, 10)
	go func() {
		done <- bus.ConsumeBatches(runCtx, r, bus.BatchOptions{MaxBatch: 100, MaxWait: 20 * time.Millisecond,
			Name: "test-stage", DeadLetter: dlq},
			func(_ context.Context, batch []kafka.Message) error {
				var bad []kafka.Message
				for _, m := range batch {
					seen <- string(m.Value)
					if string(m.Value) == "poison" {
						bad = append(bad, m)
					}
				}
				if len(bad) > 0 {
					return bus.Permanent("undecodable_event", errors.New("not JSON"), bad...)
				}
				return nil
			})
	}()
	dr := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.Topic(bus.TopicDLQ), Partition: 0, MaxWait: 50 * time.Millisecond})
	defer dr.Close()
	m, err := dr.ReadMessage(ctx)
	require.NoError(t, err)
	d := bus.ParseDeadLetter(m)
	assert.Equal(t, "poison", string(d.Value))
	assert.Equal(t, "undecodable_event", d.Reason)
	assert.Equal(t, "test-stage", d.Stage)
	assert.Contains(t, d.Source, cfg.Topic(bus.TopicAccess)+"/0/")
	require.Eventually(t, func() bool {
		lag, err := bus.Lag(ctx, cfg, bus.Consumer{Group: "permanent-test", Topic: bus.TopicAccess})
		return err == nil && lag == 0
	}, 20*time.Second, 50*time.Millisecond, "the batch is committed past the poison record")
	stop()
	require.NoError(t, <-done)
	assert.Len(t, seen, 2, "each record handled once")
}

// Retry gives up at once on a permanent error.
func TestRetryStopsOnPermanentError(t *testing.T) {
	calls := 0
	err := bus.Retry(context.Background(), slog.Default(), "op", func(context.Context) error {
		calls++
		return bus.Permanent("bad_record", errors.New("cannot ever work"))
	})
	require.Error(t, err)
	assert.True(t, bus.IsPermanent(err))
	assert.Equal(t, 1, calls)
}

// Partitions reports first, end and committed offsets per partition.
func TestPartitions(t *testing.T) {
	cfg := testenv.Kafka(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := bus.NewWriter(cfg, bus.TopicAlerts)
	defer w.Close()
	w.Balancer = &kafka.RoundRobin{}
	msgs := make([]kafka.Message, 6)
	for i := range msgs {
		msgs[i] = kafka.Message{Value: []byte("x")}
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
	parts, err := bus.Partitions(ctx, cfg, bus.TopicAlerts, "no-such-group")
	require.NoError(t, err)
	require.Len(t, parts, 2)
	var total int64
	for _, p := range parts {
		assert.Equal(t, int64(-1), p.Committed)
		assert.Equal(t, p.End-p.First, p.Lag())
		total += p.End - p.First
	}
	assert.Equal(t, int64(6), total)
}

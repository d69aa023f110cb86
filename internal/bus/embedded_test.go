package bus_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
)

// TestLargeWriteOnEmbeddedBroker: one WriteMessages call of 10,000
// uncompressed 500-byte records to a single partition (5 MB, as the
// normalize stage writes during a backfill) is accepted by the embedded
// broker, whose record batches are limited to Kafka's default 1 MiB.
func TestLargeWriteOnEmbeddedBroker(t *testing.T) {
	emb, err := bus.StartEmbedded("127.0.0.1:0", "", 1, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	defer emb.Close()
	cfg := bus.Config{Brokers: []string{emb.Addr()}, TopicPrefix: "t.", Partitions: 1}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, bus.EnsureTopics(ctx, cfg))
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	w.MaxAttempts = 1 // a refused batch fails the test instead of retrying
	value := bytes.Repeat([]byte("x"), 500)
	msgs := make([]kafka.Message, 10_000)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(strconv.Itoa(i)), Value: value}
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
}

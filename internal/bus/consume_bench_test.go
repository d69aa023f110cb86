package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// BenchmarkConsumeBatches measures consumer-group reading through
// ConsumeBatches (fetch, batch, commit) with a handler that does nothing.
//
//	KEYFLEET_TEST_KAFKA_BROKERS=127.0.0.1:19092 go test ./internal/bus -run '^$' -bench ConsumeBatches -benchtime 1000000x
func BenchmarkConsumeBatches(b *testing.B) {
	for _, compression := range []kafka.Compression{0, kafka.Lz4} {
		b.Run(fmt.Sprintf("compression=%v", compressionName(compression)), func(b *testing.B) {
			cfg := testenv.Kafka(b, 4)
			w := bus.NewWriter(cfg, bus.TopicAccess)
			w.Compression = compression
			value := benchValue
			msgs := make([]kafka.Message, 0, 10000)
			for i := 0; i < b.N; i++ {
				msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprint(i % 1000)), Value: value})
				if len(msgs) == cap(msgs) || i == b.N-1 {
					require.NoError(b, w.WriteMessages(context.Background(), msgs...))
					msgs = msgs[:0]
				}
			}
			w.Close()
			r := bus.NewGroupReader(cfg, bus.TopicAccess, "bench")
			defer r.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			seen := 0
			b.ResetTimer()
			start := time.Now()
			_ = bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 50000, MaxWait: 100 * time.Millisecond}, func(_ context.Context, batch []kafka.Message) error {
				seen += len(batch)
				if seen >= b.N {
					cancel()
				}
				return nil
			})
			b.ReportMetric(float64(seen)/time.Since(start).Seconds(), "msgs/s")
		})
	}
}

// BenchmarkWriteMessages measures producing access.events records the way
// the normalizer does: WriteMessages calls of 10,000 records (acks=all, four
// partitions). B/op and allocs/op are per record.
//
//	KEYFLEET_TEST_KAFKA_BROKERS=127.0.0.1:19092 go test ./internal/bus -run '^$' -bench WriteMessages -benchtime 500000x
func BenchmarkWriteMessages(b *testing.B) {
	cfg := testenv.Kafka(b, 4)
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	msgs := make([]kafka.Message, 0, 10000)
	keys := make([][]byte, 1000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("sub_%06d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msgs = append(msgs, kafka.Message{Key: keys[i%len(keys)], Value: benchValue})
		if len(msgs) == cap(msgs) || i == b.N-1 {
			if err := w.WriteMessages(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
}

var benchValue = []byte(`{"event_id":"bb6f26f8-70ed-527e-b56f-d119f1ed73f2","ts_ms":1764230400123,"received_ms":1795690288240,"vendor":"matter","site_id":"site-1","zone_id":"","door_id":"door-12","lock_id":"0x1A2B","subject_id":"sub_000123","credential_id":"cred_000123","device_id":"dev_1","attested":"unknown","action":"unlock","outcome":"granted","method":"aliro","reason":"","vendor_code":"LockOperation/1/10","break_glass":false,"raw_ref":"lock.events.raw/1/0"}`)

func compressionName(c kafka.Compression) string {
	if c == 0 {
		return "none"
	}
	return c.String()
}

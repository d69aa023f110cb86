package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

// BenchmarkWriterBatch stores one batch of access events per iteration, the
// size of the default --clickhouse-batch-size, into access_events on the real
// ClickHouse (materialized views included). B/op and allocs/op are the
// writer's Go allocations per batch; ns/row is the wall time per stored
// event, the server's insert included.
func BenchmarkWriterBatch(b *testing.B) {
	if testing.Short() {
		b.Skip("needs ClickHouse")
	}
	conn, cfg := testenv.ClickHouse(b)
	bulk, err := chstorage.OpenBulk(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer bulk.Close()
	const rows = 50000
	msgs := accessRecords(rows)
	rowsBuf := pipeline.NewAccessRows(nil)
	batch := make([]kafka.Message, rows)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		copy(batch, msgs) // the writer drops payloads once decoded
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		r := &sliceReader{msgs: batch, cancel: cancel}
		w, err := pipeline.NewSink(pipeline.SinkOptions{Reader: r, Conn: bulk, Rows: rowsBuf,
			BatchSize: rows, FlushInterval: time.Minute, Logger: testenv.Logger(b),
			OnBadRecord: func(_ context.Context, _ kafka.Message, err error) error { return err }})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Run(ctx); err != nil {
			b.Fatal(err)
		}
		cancel()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*rows), "ns/row")
	var stored uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM access_events").Scan(&stored); err != nil {
		b.Fatal(err)
	}
	if stored == 0 {
		b.Fatal("nothing stored")
	}
}

package pipeline_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

// A record the writer cannot decode is handed to OnBadRecord; the good rows
// around it are stored and every offset is committed.
func TestWriterDeadLettersUndecodableRecords(t *testing.T) {
	cfg := testenv.Kafka(t, 1)
	conn, _ := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	good := func(n int) kafka.Message {
		e := event.Access{EventID: event.ID("matter", string(rune('a'+n))), TsMs: time.Now().UnixMilli(), Vendor: "matter",
			LockID: "L1", Action: "unlock", Outcome: "granted", Method: "aliro", Attested: "unknown"}
		return kafka.Message{Value: e.AppendJSON(nil)}
	}
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	require.NoError(t, w.WriteMessages(ctx, good(1), kafka.Message{Value: []byte(`{"event_id":"not-a-uuid","ts_ms":1}`)},
		good(2), kafka.Message{Value: []byte(`{]`)}, good(3)))

	r := bus.NewGroupReader(cfg, bus.TopicAccess, "writer-test")
	defer r.Close()
	var bad []string
	wr, err := pipeline.NewSink(pipeline.SinkOptions{
		Reader: r, Conn: conn, Rows: pipeline.NewAccessRows(nil),
		OnBadRecord: func(_ context.Context, m kafka.Message, err error) error {
			bad = append(bad, string(m.Value))
			return nil
		},
		BatchSize: 1000, FlushInterval: 50 * time.Millisecond, Logger: slog.New(slog.DiscardHandler),
	})
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- wr.Run(runCtx) }()
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM access_events").Scan(&n))
		return n == 3
	}, 30*time.Second, 50*time.Millisecond)
	stop()
	require.NoError(t, <-done)
	assert.Equal(t, []string{`{"event_id":"not-a-uuid","ts_ms":1}`, `{]`}, bad)

	lag, err := bus.Lag(ctx, cfg, bus.Consumer{Group: "writer-test", Topic: bus.TopicAccess})
	require.NoError(t, err)
	assert.Zero(t, lag, "every offset, bad records included, is committed")
}

// A batch larger than one block goes out as several blocks of one INSERT:
// every row is stored, as one part (the server squashes the blocks).
func TestWriterSendsLargeBatchesInBlocks(t *testing.T) {
	conn, cfg := testenv.ClickHouse(t)
	bulk, err := chstorage.OpenBulk(context.Background(), cfg)
	require.NoError(t, err)
	defer bulk.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 20000
	r := &sliceReader{msgs: accessRecords(n), cancel: cancel}
	w, err := pipeline.NewSink(pipeline.SinkOptions{Reader: r, Conn: bulk, Rows: pipeline.NewAccessRows(nil),
		BatchSize: n, FlushInterval: time.Minute, Logger: testenv.Logger(t),
		OnBadRecord: func(_ context.Context, _ kafka.Message, err error) error { return err }})
	require.NoError(t, err)
	require.NoError(t, w.Run(ctx))

	var rows, parts uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM access_events").Scan(&rows))
	assert.Equal(t, uint64(n), rows)
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT count() FROM system.parts WHERE database = ? AND table = 'access_events' AND active", cfg.Database).Scan(&parts))
	assert.Equal(t, uint64(1), parts, "the blocks of one insert are one part")
}

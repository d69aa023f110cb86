package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
)

// Rows collects Kafka records as ClickHouse columns for one table.
type Rows interface {
	// Table and Columns name the INSERT target.
	Table() string
	Columns() []string
	// Append decodes one record into the columns. An error means the record
	// can never be stored (a permanent error); it is not appended.
	Append(m kafka.Message) error
	// Len is the number of rows collected since the last Reset.
	Len() int
	// Data returns one slice per column, in Columns order.
	Data() []any
	// Stored is called once the collected rows are in ClickHouse.
	Stored()
	Reset()
}

// BadRecordFunc handles a record that can never be stored (for example by
// writing it to a dead-letter topic). An error is taken as transient (the
// DLQ topic unreachable): the call is retried with backoff until it
// succeeds, so the record's offset is not committed before it is handled.
type BadRecordFunc func(ctx context.Context, m kafka.Message, reason error) error

// SinkOptions configure a Sink.
type SinkOptions struct {
	Reader        bus.MessageReader
	Conn          driver.Conn
	Rows          Rows
	OnBadRecord   BadRecordFunc
	BatchSize     int           // flush when this many rows are collected
	FlushInterval time.Duration // flush at least this often when rows are waiting
	Logger        *slog.Logger
	Metrics       *SinkMetrics
}

// Validate fills defaults and checks the options.
func (o *SinkOptions) Validate() error {
	if o.Reader == nil || o.Conn == nil || o.Rows == nil || o.OnBadRecord == nil {
		return errors.New("writer: Reader, Conn, Rows and OnBadRecord are required")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewSinkMetrics(nil)
	}
	return nil
}

// SinkMetrics are the writer's Prometheus metrics, labelled by table.
type SinkMetrics struct {
	rows        *prometheus.CounterVec
	batches     *prometheus.HistogramVec
	duration    *prometheus.HistogramVec
	failures    *prometheus.CounterVec
	badRecords  *prometheus.CounterVec
	lastFlushed *prometheus.GaugeVec
	flushAge    *flushAge
}

// NewSinkMetrics creates the metrics and registers them with reg (if not nil).
func NewSinkMetrics(reg prometheus.Registerer) *SinkMetrics {
	m := &SinkMetrics{
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_clickhouse_rows_inserted_total",
			Help: "Rows inserted into ClickHouse, by table.",
		}, []string{"table"}),
		batches: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyfleet_clickhouse_batch_rows",
			Help:    "Rows per ClickHouse insert batch, by table.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}, []string{"table"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyfleet_clickhouse_insert_duration_seconds",
			Help:    "Time to insert one batch into ClickHouse, by table.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"table"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_clickhouse_insert_failures_total",
			Help: "Failed ClickHouse insert attempts (each is retried), by table.",
		}, []string{"table"}),
		badRecords: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_clickhouse_bad_records_total",
			Help: "Records that could not be decoded into a row and were dead-lettered, by table.",
		}, []string{"table"}),
		lastFlushed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_clickhouse_last_insert_timestamp_seconds",
			Help: "Unix time of the last successful insert, by table.",
		}, []string{"table"}),
		flushAge: &flushAge{now: time.Now, last: map[string]time.Time{},
			desc: prometheus.NewDesc("keyfleet_clickhouse_last_insert_age_seconds",
				"Seconds since the last successful insert into the table (since the writer started, before its first); "+
					"it grows while ClickHouse refuses the writer's batches, and while the table's topic is idle.",
				[]string{"table"}, nil)},
	}
	if reg != nil {
		reg.MustRegister(m.rows, m.batches, m.duration, m.failures, m.badRecords, m.lastFlushed, m.flushAge)
	}
	return m
}

// started notes that a writer for table runs from now (its age counts from here).
func (m *SinkMetrics) started(table string, at time.Time) {
	m.flushAge.mu.Lock()
	defer m.flushAge.mu.Unlock()
	if _, ok := m.flushAge.last[table]; !ok {
		m.flushAge.last[table] = at
	}
}

func (m *SinkMetrics) flushed(table string, at time.Time) {
	m.lastFlushed.WithLabelValues(table).Set(float64(at.UnixNano()) / 1e9)
	m.flushAge.mu.Lock()
	m.flushAge.last[table] = at
	m.flushAge.mu.Unlock()
}

// flushAge collects keyfleet_clickhouse_last_insert_age_seconds, computed
// when scraped.
type flushAge struct {
	desc *prometheus.Desc
	now  func() time.Time
	mu   sync.Mutex
	last map[string]time.Time
}

func (f *flushAge) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *flushAge) Collect(ch chan<- prometheus.Metric) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	for table, at := range f.last {
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, max(0, now.Sub(at).Seconds()), table)
	}
}

// Sink moves one Kafka topic into one ClickHouse table in batches, at least
// once: a record's offset is committed only after the batch holding it is in
// ClickHouse. Duplicates after a crash or rebalance are made harmless by the
// table's deduplicating engine. While ClickHouse fails, the writer retries with
// backoff and stops consuming, so memory stays bounded.
type Sink struct {
	opts  SinkOptions
	query string
	table string
}

// NewSink returns a writer; opts are validated.
func NewSink(opts SinkOptions) (*Sink, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Sink{
		opts:  opts,
		table: opts.Rows.Table(),
		query: insertQuery(opts.Rows),
	}, nil
}

// Run consumes until ctx ends, then stores and commits what it holds and returns.
func (w *Sink) Run(ctx context.Context) error {
	w.opts.Metrics.started(w.table, time.Now())
	return bus.ConsumeBatches(ctx, w.opts.Reader, bus.BatchOptions{
		MaxBatch: w.opts.BatchSize,
		MaxWait:  w.opts.FlushInterval,
		Logger:   w.opts.Logger,
		Name:     w.table,
	}, w.store)
}

// store inserts one batch, retrying while ClickHouse fails; records that can
// never be stored are dead-lettered instead. Offsets are committed by the
// caller only after store returns nil.
func (w *Sink) store(ctx context.Context, batch []kafka.Message) error {
	rows := w.opts.Rows
	rows.Reset()
	for i, m := range batch {
		if reason := rows.Append(m); reason != nil {
			w.opts.Metrics.badRecords.WithLabelValues(w.table).Inc()
			if err := bus.Retry(ctx, w.opts.Logger, "dead-letter "+w.table, func(ctx context.Context) error {
				return w.opts.OnBadRecord(ctx, m, reason)
			}); err != nil {
				return err // only when ctx ended: ConsumeBatches returns without committing
			}
		}
		// Rows copy what they keep, and the commit needs only the offset:
		// the payload can go before the (slow) insert, not after it.
		batch[i].Key, batch[i].Value, batch[i].Headers = nil, nil, nil
	}
	n := rows.Len()
	if n == 0 {
		return nil
	}
	err := bus.Retry(ctx, w.opts.Logger, "insert "+w.table, func(ctx context.Context) error {
		err := w.insert(ctx)
		if err != nil {
			w.opts.Metrics.failures.WithLabelValues(w.table).Inc()
		}
		return err
	})
	if err != nil {
		return err
	}
	w.opts.Metrics.rows.WithLabelValues(w.table).Add(float64(n))
	w.opts.Metrics.batches.WithLabelValues(w.table).Observe(float64(n))
	w.opts.Metrics.flushed(w.table, time.Now())
	rows.Stored()
	rows.Reset()
	return nil
}

func (w *Sink) insert(ctx context.Context) error {
	start := time.Now()
	if err := insertBlocks(ctx, w.opts.Conn, w.query, w.opts.Rows); err != nil {
		return err
	}
	w.opts.Metrics.duration.WithLabelValues(w.table).Observe(time.Since(start).Seconds())
	return nil
}

// insertQuery is the INSERT of rows' table and columns.
func insertQuery(rows Rows) string {
	return "INSERT INTO " + rows.Table() + " (" + strings.Join(rows.Columns(), ", ") + ")"
}

// insertBlocks sends rows as one INSERT. The rows go out in blocks of
// insertBlockRows within the one INSERT: the driver's columns then grow to
// a block's size once, instead of re-growing to the whole batch's size
// (five times its bytes in reallocations). The server squashes the blocks
// into one part (min_insert_block_size_rows), so parts and merges are as
// with one block.
func insertBlocks(ctx context.Context, conn driver.Conn, query string, rows Rows) error {
	batch, err := conn.PrepareBatch(ctx, query)
	if err != nil {
		return fmt.Errorf("prepare batch: %w", err)
	}
	data, n := rows.Data(), rows.Len()
	var partition func(i int) uint32
	if p, ok := rows.(partitioned); ok {
		partition = p.PartitionOf
	}
	start := 0
	for _, end := range blockEnds(n, insertBlockRows, maxBlockPartitions, partition) {
		for i, col := range data {
			if err := batch.Column(i).Append(sliceRows(col, start, end, n)); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("append column %s: %w", rows.Columns()[i], err)
			}
		}
		if end < n {
			if err := batch.Flush(); err != nil {
				_ = batch.Abort()
				return fmt.Errorf("send block: %w", err)
			}
		}
		start = end
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("send batch: %w", err)
	}
	return nil
}

// insertBlockRows is the size of the blocks one insert is sent in.
const insertBlockRows = 8192

// maxBlockPartitions bounds the partitions one block touches: ClickHouse
// (19.x and later; 18.16 has no such limit) refuses a block that touches
// more than max_partitions_per_insert_block (100 by default) — a batch of
// events spread over years (a backfill, a lock whose clock was reset)
// would otherwise be refused, and retried, for ever.
const maxBlockPartitions = 100

// partitioned Rows say which partition each row goes to, so blocks can be
// cut before they touch too many.
type partitioned interface {
	PartitionOf(i int) uint32
}

// blockEnds cuts rows [0, n) into consecutive blocks of at most maxRows
// rows touching at most maxParts distinct partitions (partition nil: no
// partition bound), and returns each block's end.
func blockEnds(n, maxRows, maxParts int, partition func(i int) uint32) []int {
	var ends []int
	parts := map[uint32]struct{}{}
	start := 0
	for i := 0; i < n; i++ {
		if partition != nil {
			p := partition(i)
			if _, seen := parts[p]; !seen {
				if len(parts) == maxParts {
					ends, start = append(ends, i), i
					clear(parts)
				}
				parts[p] = struct{}{}
			}
		}
		if i+1-start == maxRows {
			ends, start = append(ends, i+1), i+1
			clear(parts)
		}
	}
	if start < n {
		ends = append(ends, n)
	}
	return ends
}

// sliceRows returns rows [start, end) of a column slice of n rows.
func sliceRows(col any, start, end, n int) any {
	if start == 0 && end == n {
		return col
	}
	return reflect.ValueOf(col).Slice(start, end).Interface()
}

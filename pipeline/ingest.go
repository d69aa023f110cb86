package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
)

// Detector takes normalized events in-process (detect/stream.Processor).
// Detect returns once the events are judged and the alerts they raised are
// acknowledged by Kafka; it keeps nothing of the slice. An error is taken as
// transient (nothing is committed; the same events are handed over again
// after a backoff), so a Detect that fails must leave no trace of them;
// stream.Processor waits out Kafka itself and fails only when ctx ends.
type Detector interface {
	Detect(ctx context.Context, events []event.Access) error
}

// IngestOptions configure an Ingest stage.
type IngestOptions struct {
	Normalizer *normalize.Normalizer
	// Reader reads lock.events.raw in the bus.GroupNormalize consumer group.
	Reader bus.MessageReader
	// Conn stores the events (chstorage.OpenBulk: one connection that keeps
	// its buffers between inserts).
	Conn driver.Conn
	// DLQ receives the records that cannot be normalized, with the reason.
	DLQ bus.Writer
	// Events, when set, receives every event on access.events (JSON, keyed
	// by subject, else by lock): the stream other consumers read, and the
	// one the detectors read when several instances share the work.
	Events bus.Writer
	// Detector, when set, judges every event in this process (one instance
	// owns every subject: see service's --access-events).
	Detector Detector

	// BatchSize and FlushInterval bound an insert: at most BatchSize rows,
	// at least every FlushInterval (defaults 50,000 and 1 s).
	BatchSize     int
	FlushInterval time.Duration
	// ChunkSize and ChunkWait bound what is normalized and handed to the
	// detectors at once (defaults 2,000 records and 20 ms): detection does
	// not wait for an insert's batch to fill.
	ChunkSize int
	ChunkWait time.Duration

	// TimeWindow bounds event times (zero: event.DefaultTimeWindow); a
	// record with an event outside it is dead-lettered (time_out_of_range).
	TimeWindow event.TimeWindow
	// Now is the clock the window's upper bound follows (default time.Now).
	Now func() time.Time

	Logger      *slog.Logger
	Metrics     *NormalizeMetrics
	SinkMetrics *SinkMetrics
	// Inserted counts stored events by vendor (keyfleet_pipeline_events_inserted_total).
	Inserted *prometheus.CounterVec
}

// Validate fills defaults and checks the options.
func (o *IngestOptions) Validate() error {
	if o.Normalizer == nil || o.Reader == nil || o.Conn == nil || o.DLQ == nil {
		return errors.New("ingest: Normalizer, Reader, Conn and DLQ are required")
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 50000
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 2000
	}
	if o.ChunkWait <= 0 {
		o.ChunkWait = 20 * time.Millisecond
	}
	o.ChunkWait = min(o.ChunkWait, o.FlushInterval)
	if o.TimeWindow == (event.TimeWindow{}) {
		o.TimeWindow = event.DefaultTimeWindow
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewNormalizeMetrics(nil)
	}
	if o.SinkMetrics == nil {
		o.SinkMetrics = NewSinkMetrics(nil)
	}
	return nil
}

// Ingest is the one pass from raw vendor records to ClickHouse and the
// detectors: it reads lock.events.raw, normalizes each record once, appends
// the events straight to the ClickHouse columns of access_events and of its
// subject-ordered copy (no second decode, no Kafka hop), hands them to the
// detectors in small chunks as they come, optionally publishes them on
// access.events, and dead-letters what it cannot map.
//
// Raw offsets are committed only after the batch's insert (events, copy,
// lookups, rollup marks) and every hand-off of its events (detectors,
// access.events, DLQ) succeeded: a crash repeats a batch, and event_id makes
// the repetition harmless in ClickHouse. One batch is stored while the next
// is collected (two column buffers), and batches commit in order. While an
// insert takes longer than FlushInterval, the next batch keeps collecting
// (up to BatchSize) and its events keep reaching the detectors: detection
// does not wait for ClickHouse.
type Ingest struct {
	opts IngestOptions

	consumed   map[string]prometheus.Counter
	normalized map[string]prometheus.Counter

	fetching bus.Fetching // rides out broker outages

	bufs   [2]*ingestBatch
	events []event.Access // one chunk's events, reused
	keyBuf []byte
	jsBuf  []byte
	ends   []int
	out    []kafka.Message
	dlq    []kafka.Message
	chunk  []kafka.Message
}

// ingestBatch is what one insert holds.
type ingestBatch struct {
	rows    *AccessRows
	subject *AccessRows
	derived *Derived
	last    map[int]kafka.Message // partition → last record (for the commit)
	records int
	started time.Time
}

func (b *ingestBatch) reset() {
	b.rows.Reset()
	b.subject.Reset()
	b.derived.Reset()
	clear(b.last)
	b.records = 0
}

// NewIngest returns a stage; opts are validated.
func NewIngest(opts IngestOptions) (*Ingest, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Ingest{opts: opts, consumed: map[string]prometheus.Counter{}, normalized: map[string]prometheus.Counter{},
		fetching: bus.Fetching{Op: "fetch normalize", Logger: opts.Logger}}
	for _, vendor := range opts.Normalizer.Vendors() {
		s.consumed[vendor] = opts.Metrics.consumed.WithLabelValues(vendor)
		s.normalized[vendor] = opts.Metrics.normalized.WithLabelValues(vendor)
	}
	s.consumed["unknown"] = opts.Metrics.consumed.WithLabelValues("unknown")
	derived := NewDerived()
	for i := range s.bufs {
		d := derived
		if i > 0 {
			d = derived.Sibling()
		}
		s.bufs[i] = &ingestBatch{
			rows:    NewAccessRows(opts.Inserted).WithTimeWindow(opts.TimeWindow),
			subject: NewSubjectRows().WithTimeWindow(opts.TimeWindow),
			derived: d, last: map[int]kafka.Message{},
		}
	}
	return s, nil
}

// Run consumes until ctx ends, then stores and commits what it holds (for up
// to 30 s) and returns.
//
// Dependency outages never end it (as bus.ConsumeBatches): a failed fetch
// (the broker away) is retried after a short pause, and every insert,
// hand-off, dead letter and commit is retried with backoff while it holds
// its batch (fetching stops meanwhile, so memory stays bounded); each is
// reported to ctx's loop observer (bus.WithLoop). It returns an error only
// when the reader is closed under it or the batch in hand could not be
// finished within the 30 s after ctx ended.
func (s *Ingest) Run(ctx context.Context) error {
	for _, rows := range []*AccessRows{s.bufs[0].rows, s.bufs[0].subject} {
		s.opts.SinkMetrics.started(rows.Table(), time.Now())
	}
	defer s.fetching.Stop(ctx)
	// Work outlives ctx by up to 30 s: a shutdown finishes the batch in
	// hand instead of abandoning it half-done.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, cancelWork) })
	defer stopAfter()

	cur, next := s.bufs[0], s.bufs[1]
	var inflight chan error
	wait := func() error {
		if inflight == nil {
			return nil
		}
		err := <-inflight
		inflight = nil
		return err
	}
	defer func() { _ = wait() }()
	for {
		fetchErr := s.collect(ctx)
		if len(s.chunk) > 0 {
			if cur.records == 0 {
				cur.started = time.Now()
			}
			if err := s.process(workCtx, cur); err != nil {
				return err
			}
		}
		stopping := fetchErr != nil || ctx.Err() != nil
		full := cur.rows.Len() >= s.opts.BatchSize
		due := full || time.Since(cur.started) >= s.opts.FlushInterval || stopping
		if cur.records > 0 && due {
			if inflight != nil && !full && !stopping {
				// The previous batch is still being stored (ClickHouse is
				// slow): keep collecting into this one, and handing its
				// events to the detectors, instead of stopping the loop to
				// wait; it is stored next, larger. Only a full batch waits.
				select {
				case err := <-inflight:
					inflight = nil
					if err != nil {
						return err
					}
				default:
					continue
				}
			}
			if err := wait(); err != nil {
				return err
			}
			done := make(chan error, 1)
			go func(b *ingestBatch) { done <- s.store(workCtx, b) }(cur)
			inflight = done
			cur, next = next, cur
		}
		if stopping {
			err := wait()
			if fetchErr != nil {
				return errors.Join(fetchErr, err)
			}
			return err
		}
	}
}

// collect fetches a chunk: up to ChunkSize records, for at most ChunkWait.
// A fetch cut short by the deadline consumes nothing. Fetch errors (the
// broker away) are ridden out; it fails only when the reader was closed.
func (s *Ingest) collect(ctx context.Context) error {
	clear(s.chunk)
	s.chunk = s.chunk[:0]
	cctx, cancel := context.WithTimeout(ctx, s.opts.ChunkWait)
	defer cancel()
	for len(s.chunk) < s.opts.ChunkSize {
		m, err := s.fetching.Fetch(cctx, s.opts.Reader.FetchMessage)
		if err != nil {
			if cctx.Err() == nil {
				return fmt.Errorf("fetch raw records: %w", err) // closed
			}
			// A failing reader that stays quiet (no record, no error)
			// counts as recovered after a while.
			s.fetching.Quiet(ctx)
			return nil
		}
		s.chunk = append(s.chunk, m)
	}
	return nil
}

// process normalizes a chunk into b and hands its events over.
func (s *Ingest) process(ctx context.Context, b *ingestBatch) error {
	start := time.Now()
	now := s.opts.Now().UnixMilli()
	s.events, s.dlq = s.events[:0], s.dlq[:0]
	for _, m := range s.chunk {
		n0 := len(s.events)
		vendor, err := s.normalize(m, now)
		s.consumed[vendorLabel(s.opts.Normalizer, vendor)].Inc()
		if err == nil {
			err = s.append(b, s.events[n0:])
		}
		if err != nil {
			s.events = s.events[:n0]
			s.deadLetter(m, vendor, err, now)
		} else if c := s.normalized[vendor]; c != nil {
			c.Add(float64(len(s.events) - n0))
		}
		if prev, ok := b.last[m.Partition]; !ok || m.Offset > prev.Offset {
			b.last[m.Partition] = kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset}
		}
		b.records++
	}
	if s.opts.Detector != nil && len(s.events) > 0 {
		if err := bus.Retry(ctx, s.opts.Logger, "detect", func(ctx context.Context) error {
			return s.opts.Detector.Detect(ctx, s.events)
		}); err != nil {
			return err
		}
	}
	if s.opts.Events != nil && len(s.events) > 0 {
		if err := s.publish(ctx, now); err != nil {
			return err
		}
	}
	if len(s.dlq) > 0 {
		if err := bus.Retry(ctx, s.opts.Logger, "produce dead letters", func(ctx context.Context) error {
			return s.opts.DLQ.WriteMessages(ctx, s.dlq...)
		}); err != nil {
			return err
		}
	}
	clear(s.events)
	s.opts.Metrics.batchSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// normalize maps one raw record, appending its events to s.events; it
// returns the record's vendor.
func (s *Ingest) normalize(m kafka.Message, nowMs int64) (string, error) {
	if !utf8.Valid(m.Value) {
		return "", normalize.Errorf(ReasonInvalidUTF8, "the record is not valid UTF-8")
	}
	raw, err := normalize.DecodeEnvelope(m.Value)
	if err != nil {
		return "", err
	}
	received := raw.ReceivedMs
	if received <= 0 {
		received = m.Time.UnixMilli()
	}
	n0 := len(s.events)
	s.events, err = s.opts.Normalizer.Normalize(s.events, raw.Vendor, received, bus.RawRef(m), raw.Payload)
	if err != nil {
		s.events = s.events[:n0]
		return raw.Vendor, err
	}
	for i := n0; i < len(s.events); i++ {
		// Bounded by the time of processing, not the envelope's
		// received_ms (which the producer wrote).
		if err := s.opts.TimeWindow.Check(s.events[i].TsMs, nowMs); err != nil {
			s.events = s.events[:n0]
			return raw.Vendor, &normalize.Error{Reason: event.ReasonTimeOutOfRange, Err: err}
		}
	}
	return raw.Vendor, nil
}

// append adds a record's events to the batch's columns.
func (s *Ingest) append(b *ingestBatch, events []event.Access) error {
	for i := range events {
		e := &events[i]
		if err := b.rows.AppendEvent(e); err != nil {
			// Cannot happen with the normalizer's ids and the window
			// checked above; the record's earlier events stay.
			return &normalize.Error{Reason: "unstorable_event", Err: err}
		}
		if e.SubjectID != "" {
			_ = b.subject.AppendEvent(e) // the same checks passed
		}
		b.derived.Add(e)
	}
	return nil
}

// publish writes the chunk's events to access.events. The messages carry
// the processing time as their Kafka timestamp, not the event time: a lock
// with a fast clock would otherwise stamp records the broker refuses, and a
// backfill of old events would be due for time-based retention at once.
func (s *Ingest) publish(ctx context.Context, nowMs int64) error {
	s.jsBuf, s.keyBuf, s.ends, s.out = s.jsBuf[:0], s.keyBuf[:0], s.ends[:0], s.out[:0]
	for i := range s.events {
		e := &s.events[i]
		key := e.SubjectID
		if key == "" {
			key = e.LockID
		}
		s.keyBuf = append(s.keyBuf, key...)
		s.jsBuf = e.AppendJSON(s.jsBuf)
		s.ends = append(s.ends, len(s.keyBuf), len(s.jsBuf))
	}
	// Keys and values are slices of two buffers, cut only now that they
	// stopped growing.
	at := time.UnixMilli(nowMs)
	kPrev, vPrev := 0, 0
	for i := 0; i < len(s.ends); i += 2 {
		s.out = append(s.out, kafka.Message{Key: s.keyBuf[kPrev:s.ends[i]], Value: s.jsBuf[vPrev:s.ends[i+1]], Time: at})
		kPrev, vPrev = s.ends[i], s.ends[i+1]
	}
	err := bus.Retry(ctx, s.opts.Logger, "produce access events", func(ctx context.Context) error {
		return s.opts.Events.WriteMessages(ctx, s.out...)
	})
	clear(s.out)
	return err
}

func (s *Ingest) deadLetter(m kafka.Message, vendor string, err error, now int64) {
	reason := normalize.ReasonOf(err)
	s.opts.Metrics.deadLettered.WithLabelValues(vendorLabel(s.opts.Normalizer, vendor), reason).Inc()
	s.dlq = append(s.dlq, bus.DeadLetter{
		Vendor: vendor, Reason: reason, Error: err.Error(), Source: bus.RawRef(m), Stage: "normalize",
		TsMs: now, Key: m.Key, Value: m.Value,
	}.Message())
}

// store inserts a batch (events, subject copy, lookups, rollup marks),
// retrying while ClickHouse fails, then commits its raw offsets.
func (s *Ingest) store(ctx context.Context, b *ingestBatch) error {
	defer b.reset()
	for _, rows := range []*AccessRows{b.rows, b.subject} {
		if rows.Len() == 0 {
			continue
		}
		if err := s.insert(ctx, rows); err != nil {
			return err
		}
	}
	if b.rows.Len() > 0 {
		if err := bus.Retry(ctx, s.opts.Logger, "store lookups and rollup marks", func(ctx context.Context) error {
			err := b.derived.Store(ctx, s.opts.Conn)
			var se *storeError
			if errors.As(err, &se) {
				s.opts.SinkMetrics.failures.WithLabelValues(se.table).Inc()
			}
			return err
		}); err != nil {
			return err
		}
	}
	offsets := make([]kafka.Message, 0, len(b.last))
	for _, m := range b.last {
		offsets = append(offsets, m)
	}
	if err := bus.Retry(ctx, s.opts.Logger, "commit raw records", func(ctx context.Context) error {
		return s.opts.Reader.CommitMessages(ctx, offsets...)
	}); err != nil {
		return err
	}
	b.rows.Stored()
	b.derived.Stored()
	return nil
}

func (s *Ingest) insert(ctx context.Context, rows *AccessRows) error {
	table, n, m := rows.Table(), rows.Len(), s.opts.SinkMetrics
	query := insertQuery(rows)
	start := time.Now()
	err := bus.Retry(ctx, s.opts.Logger, "insert "+table, func(ctx context.Context) error {
		err := insertBlocks(ctx, s.opts.Conn, query, rows)
		if err != nil {
			m.failures.WithLabelValues(table).Inc()
		}
		return err
	})
	if err != nil {
		return err
	}
	m.duration.WithLabelValues(table).Observe(time.Since(start).Seconds())
	m.rows.WithLabelValues(table).Add(float64(n))
	m.batches.WithLabelValues(table).Observe(float64(n))
	m.flushed(table, time.Now())
	return nil
}

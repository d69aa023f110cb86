package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
)

// NormalizeOptions configure a NormalizeStage.
type NormalizeOptions struct {
	Normalizer *normalize.Normalizer
	Reader     bus.MessageReader // lock.events.raw, consumer group
	Events     bus.Writer        // access.events
	DLQ        bus.Writer        // lock.events.dlq
	MaxBatch   int
	MaxWait    time.Duration
	Logger     *slog.Logger
	Metrics    *NormalizeMetrics
	// TimeWindow bounds event times (zero: event.DefaultTimeWindow); a
	// record with an event outside it is dead-lettered (time_out_of_range).
	TimeWindow event.TimeWindow
	// Now is the clock the window's upper bound follows (default time.Now).
	Now func() time.Time
}

// ReasonInvalidUTF8 is the DLQ reason of a raw record that is not UTF-8:
// refused rather than decoded with replacement characters.
const ReasonInvalidUTF8 = "invalid_utf8"

// NormalizeMetrics count the stage's work.
type NormalizeMetrics struct {
	consumed     *prometheus.CounterVec
	normalized   *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	batchSeconds prometheus.Histogram
}

// NewNormalizeMetrics creates the metrics and registers them with reg (if not nil).
func NewNormalizeMetrics(reg prometheus.Registerer) *NormalizeMetrics {
	m := &NormalizeMetrics{
		consumed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_pipeline_records_consumed_total",
			Help: "Raw vendor records consumed from lock.events.raw, by vendor.",
		}, []string{"vendor"}),
		normalized: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_pipeline_events_normalized_total",
			Help: "Common-schema events produced to access.events, by vendor.",
		}, []string{"vendor"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_pipeline_records_dead_lettered_total",
			Help: "Raw records sent to lock.events.dlq, by vendor and reason.",
		}, []string{"vendor", "reason"}),
		batchSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_pipeline_normalize_batch_duration_seconds",
			Help:    "Time to normalize and produce one batch of raw records.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.normalized, m.deadLettered, m.batchSeconds)
	}
	return m
}

// NormalizeStage consumes raw vendor records, normalizes them and produces the events
// to access.events (keyed by subject, else by lock) and every record it cannot
// map to lock.events.dlq with the reason. Offsets are committed only after
// both writes are acknowledged.
type NormalizeStage struct {
	opts NormalizeOptions

	// Per-vendor counters, resolved once (no label lookup per record).
	consumed   map[string]prometheus.Counter
	normalized map[string]prometheus.Counter

	events []event.Access
	buf    []byte
	ends   []int
	out    []kafka.Message
	dlq    []kafka.Message
}

// NewNormalizeStage returns a stage.
func NewNormalizeStage(opts NormalizeOptions) (*NormalizeStage, error) {
	if opts.Normalizer == nil || opts.Reader == nil || opts.Events == nil || opts.DLQ == nil {
		return nil, fmt.Errorf("normalize stage: Normalizer, Reader, Events and DLQ are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = NewNormalizeMetrics(nil)
	}
	if opts.TimeWindow == (event.TimeWindow{}) {
		opts.TimeWindow = event.DefaultTimeWindow
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &NormalizeStage{opts: opts, consumed: map[string]prometheus.Counter{}, normalized: map[string]prometheus.Counter{}}
	for _, vendor := range opts.Normalizer.Vendors() {
		s.consumed[vendor] = opts.Metrics.consumed.WithLabelValues(vendor)
		s.normalized[vendor] = opts.Metrics.normalized.WithLabelValues(vendor)
	}
	s.consumed["unknown"] = opts.Metrics.consumed.WithLabelValues("unknown")
	return s, nil
}

// Run consumes until ctx ends.
func (s *NormalizeStage) Run(ctx context.Context) error {
	return bus.ConsumeBatches(ctx, s.opts.Reader, bus.BatchOptions{
		MaxBatch: s.opts.MaxBatch,
		MaxWait:  s.opts.MaxWait,
		Logger:   s.opts.Logger,
		Name:     "normalize",
	}, s.handle)
}

func (s *NormalizeStage) handle(ctx context.Context, batch []kafka.Message) error {
	start := time.Now()
	s.buf, s.ends, s.out, s.dlq = s.buf[:0], s.ends[:0], s.out[:0], s.dlq[:0]
	now := s.opts.Now().UnixMilli()
	for _, m := range batch {
		vendor, err := s.normalize(m, now)
		s.consumed[vendorLabel(s.opts.Normalizer, vendor)].Inc()
		if err != nil {
			s.deadLetter(m, vendor, err, now)
		}
	}
	// Values are slices of one buffer, cut only now that it stopped growing.
	prev := 0
	for i, end := range s.ends {
		s.out[i].Value = s.buf[prev:end]
		prev = end
	}
	if len(s.out) > 0 {
		if err := bus.Retry(ctx, s.opts.Logger, "produce access events", func(ctx context.Context) error {
			return s.opts.Events.WriteMessages(ctx, s.out...)
		}); err != nil {
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
	s.opts.Metrics.batchSeconds.Observe(time.Since(start).Seconds())
	return nil
}

// normalize maps one raw record into s.out; it returns the record's vendor.
// The produced messages carry the processing time as their Kafka timestamp,
// not the event time: a lock with a fast clock would otherwise stamp records
// the broker refuses (more than an hour ahead), and a backfill of old events
// would be due for time-based retention the moment it is written.
func (s *NormalizeStage) normalize(m kafka.Message, nowMs int64) (string, error) {
	if !utf8.Valid(m.Value) {
		return "", normalize.Errorf(ReasonInvalidUTF8, "the record is not valid UTF-8")
	}
	raw, err := normalize.DecodeEnvelope(m.Value)
	if err != nil {
		return "", err
	}
	payload := raw.Payload
	received := raw.ReceivedMs
	if received <= 0 {
		received = m.Time.UnixMilli()
	}
	s.events, err = s.opts.Normalizer.Normalize(s.events[:0], raw.Vendor, received, bus.RawRef(m), payload)
	if err != nil {
		return raw.Vendor, err
	}
	for i := range s.events {
		// Bounded by the time of processing, not the envelope's received_ms
		// (which the producer wrote).
		if err := s.opts.TimeWindow.Check(s.events[i].TsMs, nowMs); err != nil {
			return raw.Vendor, &normalize.Error{Reason: event.ReasonTimeOutOfRange, Err: err}
		}
	}
	for i := range s.events {
		e := &s.events[i]
		key := e.SubjectID
		if key == "" {
			key = e.LockID
		}
		s.buf = e.AppendJSON(s.buf)
		s.ends = append(s.ends, len(s.buf))
		s.out = append(s.out, kafka.Message{Key: []byte(key), Time: time.UnixMilli(nowMs)})
	}
	s.normalized[raw.Vendor].Add(float64(len(s.events)))
	return raw.Vendor, nil
}

func (s *NormalizeStage) deadLetter(m kafka.Message, vendor string, err error, now int64) {
	reason := normalize.ReasonOf(err)
	s.opts.Metrics.deadLettered.WithLabelValues(vendorLabel(s.opts.Normalizer, vendor), reason).Inc()
	s.dlq = append(s.dlq, bus.DeadLetter{
		Vendor: vendor,
		Reason: reason,
		Error:  err.Error(),
		Source: bus.RawRef(m),
		Stage:  "normalize",
		TsMs:   now,
		Key:    m.Key,
		Value:  m.Value,
	}.Message())
}

// vendorLabel bounds the vendor metric label to known vendors.
func vendorLabel(n *normalize.Normalizer, vendor string) string {
	if n.Has(vendor) {
		return vendor
	}
	return "unknown"
}

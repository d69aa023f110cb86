// Package stream is the lock registry's Kafka side: changes are published
// as full lock records on lock.registry (compacted, keyed by vendor/lock id);
// every instance follows every partition from the beginning into its
// in-memory registry (internal/registry: the normalizer's lookups and the
// control plane's lock index see each change at once), and a consumer
// group writes every record to ClickHouse (lock_registry, the history).
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/estate/store"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/pipeline"
)

// Options configure Locks.
type Options struct {
	Bus      bus.Config
	Conn     driver.Conn
	Registry *registry.Registry
	Logger   *slog.Logger
	// Registerer takes the keyfleet_estate_* metrics (nil: not registered).
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Conn == nil {
		errs = append(errs, errors.New("estate stream: Conn is required"))
	}
	if o.Registry == nil {
		errs = append(errs, errors.New("estate stream: Registry is required"))
	}
	if err := o.Bus.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return errors.Join(errs...)
}

// Locks publishes and follows the lock registry.
type Locks struct {
	opts    Options
	writer  *kafka.Writer
	applied *prometheus.CounterVec

	follower *bus.Follower // the topic, on every instance
}

// New returns Locks; Run follows the topic.
func New(opts Options) (*Locks, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Locks{opts: opts, writer: bus.NewWriter(opts.Bus, bus.TopicLockRegistry),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_estate_lock_records_total",
			Help: "Lock registry records followed from lock.registry, by outcome (applied, stale, invalid).",
		}, []string{"outcome"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(l.applied)
	}
	l.follower = bus.NewFollower(opts.Bus, bus.TopicLockRegistry, opts.Logger, l.apply)
	return l, nil
}

// Close closes the writer.
func (l *Locks) Close() error { return l.writer.Close() }

// Ready is closed once every record published before the start is applied.
func (l *Locks) Ready() <-chan struct{} { return l.follower.Ready() }

// Registry returns the registry the records are applied to.
func (l *Locks) Registry() *registry.Registry { return l.opts.Registry }

// NextVersion is the version of a lock's next record: now in milliseconds,
// or one more than the version held if that is not older.
func (l *Locks) NextVersion(vendor, lockID string) uint64 {
	v := uint64(l.opts.Now().UnixMilli())
	if cur, ok := l.opts.Registry.Get(vendor, lockID); ok && cur.Version >= v {
		v = cur.Version + 1
	}
	return v
}

// Publish writes lock records to lock.registry (durably: acks from every
// in-sync replica) and applies them to this instance's registry; other
// instances apply them as they follow the topic.
func (l *Locks) Publish(ctx context.Context, recs ...registry.Record) error {
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		if err := r.Lock.Validate(); err != nil {
			return fmt.Errorf("lock record %s/%s: %w", r.Vendor, r.LockID, err)
		}
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode lock record: %w", err)
		}
		msgs[i] = kafka.Message{Key: registry.RecordKey(r.Vendor, r.LockID), Value: v}
	}
	for i := 0; i < len(msgs); i += 5000 {
		if err := l.writer.WriteMessages(ctx, msgs[i:min(i+5000, len(msgs))]...); err != nil {
			return fmt.Errorf("publish lock records: %w", err)
		}
	}
	for _, r := range recs {
		l.opts.Registry.Put(r)
	}
	return nil
}

// Run follows lock.registry and writes its records to ClickHouse until ctx
// ends.
func (l *Locks) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.follower.Run(gctx) })
	g.Go(func() error { return l.history(gctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (l *Locks) apply(m kafka.Message) {
	rec, err := registry.DecodeRecord(m.Value)
	switch {
	case err != nil:
		l.applied.WithLabelValues("invalid").Inc()
		l.opts.Logger.Warn("lock record skipped", "ref", bus.RawRef(m), "err", err)
	case l.opts.Registry.Put(rec):
		l.applied.WithLabelValues("applied").Inc()
	default:
		l.applied.WithLabelValues("stale").Inc()
	}
}

// history writes every record to lock_registry (a consumer group shared by
// all instances; at least once, the table deduplicates by version).
func (l *Locks) history(ctx context.Context) error {
	r := bus.NewGroupReader(l.opts.Bus, bus.TopicLockRegistry, bus.GroupLockRegistry)
	defer r.Close()
	dlq := bus.NewWriter(l.opts.Bus, bus.TopicDLQ)
	defer dlq.Close()
	w, err := pipeline.NewSink(pipeline.SinkOptions{
		Reader: r, Conn: l.opts.Conn, Rows: store.NewHistoryRows(), BatchSize: 10000,
		FlushInterval: 200 * time.Millisecond, Logger: l.opts.Logger,
		OnBadRecord: func(ctx context.Context, m kafka.Message, reason error) error {
			d := bus.DeadLetter{Reason: "undecodable_lock_record", Error: reason.Error(), Source: bus.RawRef(m),
				Stage: "clickhouse", TsMs: time.Now().UnixMilli(), Key: m.Key, Value: m.Value}
			return dlq.WriteMessages(ctx, d.Message())
		},
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

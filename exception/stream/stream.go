// Package stream is the exception register's Kafka side, shaped like the
// lock registry's (estate/stream): changes are published as full records
// on exception.register (compacted, keyed by exception id); every instance
// follows every partition from the beginning into its in-memory register
// (the grant-time policy and the API see each change at once), and a
// consumer group writes every record to ClickHouse (exceptions, the
// history). Expiry (expiry.go) raises expired_exception alerts for the
// register's expiring and expired exceptions.
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

	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/exception/store"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/pipeline"
)

// Options configure Exceptions.
type Options struct {
	Bus      bus.Config
	Conn     driver.Conn
	Register *exception.Register
	Logger   *slog.Logger
	// Registerer takes the keyfleet_exception_* metrics (nil: not registered).
	Registerer prometheus.Registerer
	Now        func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Conn == nil {
		errs = append(errs, errors.New("exception stream: Conn is required"))
	}
	if o.Register == nil {
		errs = append(errs, errors.New("exception stream: Register is required"))
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

// Exceptions publishes and follows the exception register.
type Exceptions struct {
	opts    Options
	writer  *kafka.Writer
	applied *prometheus.CounterVec

	follower *bus.Follower // the topic, on every instance
}

// New returns Exceptions; Run follows the topic.
func New(opts Options) (*Exceptions, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	x := &Exceptions{opts: opts, writer: bus.NewWriter(opts.Bus, bus.TopicExceptions),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_exception_records_total",
			Help: "Exception register records followed from exception.register, by outcome (applied, stale, invalid).",
		}, []string{"outcome"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(x.applied)
	}
	x.follower = bus.NewFollower(opts.Bus, bus.TopicExceptions, opts.Logger, x.apply)
	return x, nil
}

// Close closes the writer.
func (x *Exceptions) Close() error { return x.writer.Close() }

// Ready is closed once every record published before the start is applied.
func (x *Exceptions) Ready() <-chan struct{} { return x.follower.Ready() }

// Register returns the register the records are applied to.
func (x *Exceptions) Register() *exception.Register { return x.opts.Register }

// NextVersion is the version of an exception's next record: now in
// milliseconds, or one more than the version held if that is not older.
func (x *Exceptions) NextVersion(id string) uint64 {
	v := uint64(x.opts.Now().UnixMilli())
	if cur, ok := x.opts.Register.Get(id); ok && cur.Version >= v {
		v = cur.Version + 1
	}
	return v
}

// Publish writes records to exception.register (durably: acks from every
// in-sync replica) and applies them to this instance's register; other
// instances apply them as they follow the topic.
func (x *Exceptions) Publish(ctx context.Context, recs ...exception.Record) error {
	msgs := make([]kafka.Message, len(recs))
	for i, r := range recs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("exception record %s: %w", r.ID, err)
		}
		v, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode exception record: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(r.ID), Value: v}
	}
	if err := x.writer.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish exception records: %w", err)
	}
	for _, r := range recs {
		x.opts.Register.Put(r)
	}
	return nil
}

// Run follows exception.register and writes its records to ClickHouse
// until ctx ends.
func (x *Exceptions) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return x.follower.Run(gctx) })
	g.Go(func() error { return x.history(gctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (x *Exceptions) apply(m kafka.Message) {
	rec, err := exception.DecodeRecord(m.Value)
	switch {
	case err != nil:
		x.applied.WithLabelValues("invalid").Inc()
		x.opts.Logger.Warn("exception record skipped", "ref", bus.RawRef(m), "err", err)
	case x.opts.Register.Put(rec):
		x.applied.WithLabelValues("applied").Inc()
	default:
		x.applied.WithLabelValues("stale").Inc()
	}
}

// history writes every record to exceptions (a consumer group shared by
// all instances; at least once, the table deduplicates by version).
func (x *Exceptions) history(ctx context.Context) error {
	r := bus.NewGroupReader(x.opts.Bus, bus.TopicExceptions, bus.GroupExceptions)
	defer r.Close()
	dlq := bus.NewWriter(x.opts.Bus, bus.TopicDLQ)
	defer dlq.Close()
	w, err := pipeline.NewSink(pipeline.SinkOptions{
		Reader: r, Conn: x.opts.Conn, Rows: store.NewHistoryRows(), BatchSize: 1000,
		FlushInterval: 200 * time.Millisecond, Logger: x.opts.Logger,
		OnBadRecord: func(ctx context.Context, m kafka.Message, reason error) error {
			d := bus.DeadLetter{Reason: "undecodable_exception_record", Error: reason.Error(), Source: bus.RawRef(m),
				Stage: "clickhouse", TsMs: time.Now().UnixMilli(), Key: m.Key, Value: m.Value}
			return dlq.WriteMessages(ctx, d.Message())
		},
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

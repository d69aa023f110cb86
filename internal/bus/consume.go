package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"
)

// MessageReader is the part of a kafka-go consumer-group reader that batch
// consumption needs.
type MessageReader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// BatchOptions configure ConsumeBatches.
type BatchOptions struct {
	MaxBatch int           // hand over at most this many messages at once
	MaxWait  time.Duration // hand over a non-empty batch at least this often
	// Idle, when set, hands a non-empty batch over as soon as no message
	// has arrived for this long (the reader's buffer is drained), instead of
	// waiting out MaxWait: for low-volume, latency-sensitive consumers.
	Idle   time.Duration
	Logger *slog.Logger
	Name   string // for logs
}

// ConsumeBatches reads messages from r and hands them to handle in batches.
// After handle returns nil the batch's offsets are committed (at least once:
// a crash between handle and commit re-delivers the batch). If handle returns
// an error, ConsumeBatches returns it without committing. When ctx ends, the
// batch being collected is handled and committed (allowing up to 30 s more)
// before returning, so a graceful shutdown loses and repeats nothing.
//
// handle owns the slice only for the duration of the call; it may drop the
// messages' payloads (Key, Value, Headers) once it is done with them, but
// not their topic, partition or offset, which the commit needs.
func ConsumeBatches(ctx context.Context, r MessageReader, o BatchOptions, handle func(ctx context.Context, batch []kafka.Message) error) error {
	if o.MaxBatch <= 0 {
		o.MaxBatch = 10000
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	// Batches are handled and committed under workCtx, which outlives ctx by
	// up to 30 s: a shutdown finishes the batch in hand instead of abandoning
	// it half-done.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stopAfter := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, cancelWork) })
	defer stopAfter()

	batch := make([]kafka.Message, 0, o.MaxBatch)
	for {
		// Collect until the batch is full or MaxWait has passed. A fetch
		// cut short by the deadline consumes nothing.
		collectCtx, cancel := context.WithTimeout(ctx, o.MaxWait)
		var fetchErr error
		for len(batch) < o.MaxBatch {
			fetchCtx, cancelIdle := collectCtx, context.CancelFunc(nil)
			if o.Idle > 0 && len(batch) > 0 {
				fetchCtx, cancelIdle = context.WithTimeout(collectCtx, o.Idle)
			}
			m, err := r.FetchMessage(fetchCtx)
			if cancelIdle != nil {
				cancelIdle()
			}
			if err != nil {
				if fetchCtx.Err() == nil {
					fetchErr = fmt.Errorf("fetch %s: %w", o.Name, err)
				}
				break
			}
			batch = append(batch, m)
		}
		cancel()
		if len(batch) > 0 {
			if err := handle(workCtx, batch); err != nil {
				return errors.Join(fetchErr, err)
			}
			if err := commit(workCtx, r, batch, o); err != nil {
				return errors.Join(fetchErr, err)
			}
			clear(batch)
			batch = batch[:0]
		}
		if fetchErr != nil {
			return fetchErr
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// commit commits the highest offset per partition of batch, retrying with
// backoff until it works or ctx ends.
func commit(ctx context.Context, r MessageReader, batch []kafka.Message, o BatchOptions) error {
	type tp struct {
		topic     string
		partition int
	}
	last := map[tp]kafka.Message{}
	for _, m := range batch {
		k := tp{m.Topic, m.Partition}
		if prev, ok := last[k]; !ok || m.Offset > prev.Offset {
			last[k] = m
		}
	}
	offsets := make([]kafka.Message, 0, len(last))
	for _, m := range last {
		offsets = append(offsets, kafka.Message{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset})
	}
	return Retry(ctx, o.Logger, "commit "+o.Name, func(ctx context.Context) error {
		return r.CommitMessages(ctx, offsets...)
	})
}

// Retry runs fn until it succeeds or ctx ends, backing off exponentially
// (100 ms doubling to 30 s) with jitter between attempts. It is for transient
// failures of a dependency (Kafka, ClickHouse) that should hold the pipeline
// rather than drop data.
func Retry(ctx context.Context, logger *slog.Logger, what string, fn func(context.Context) error) error {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				logger.Info("recovered", "op", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		sleep := backoff/2 + time.Duration(rand.Int64N(int64(backoff)))
		logger.Warn("retrying", "op", what, "attempt", attempt, "retry_in", sleep.Round(time.Millisecond), "err", err)
		select {
		case <-time.After(sleep):
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, err)
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

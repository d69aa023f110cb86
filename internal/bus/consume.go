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

// Handler processes one batch of messages. It owns the slice only for the
// duration of the call; it may drop the messages' payloads (Key, Value,
// Headers) once it is done with them, but not their topic, partition or
// offset, which the commit needs.
//
// Its error decides what happens to the batch: nil commits it; a
// *PermanentError (Permanent) dead-letters the records it names and commits
// the batch (the handler has durably handled every other record); any other
// error is transient: nothing is committed.
type Handler func(ctx context.Context, batch []kafka.Message) error

// PermanentError says that records can never be processed (a bad record,
// not a dependency outage): retrying cannot help, so they go to the DLQ with
// Reason and the consumer moves on.
type PermanentError struct {
	Reason  string // short stable code for the DLQ, e.g. undecodable_event
	Err     error
	Records []kafka.Message
}

func (e *PermanentError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent marks err as permanent for records (see PermanentError).
func Permanent(reason string, err error, records ...kafka.Message) error {
	return &PermanentError{Reason: reason, Err: err, Records: records}
}

// IsPermanent reports whether err is (or wraps) a PermanentError.
func IsPermanent(err error) bool {
	var pe *PermanentError
	return errors.As(err, &pe)
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
	Name   string // for logs, and the stage named on dead letters
	// DeadLetter receives the records of a PermanentError (on the DLQ
	// topic); without it a PermanentError stops the consumer like any error.
	DeadLetter Writer
}

// ConsumeBatches reads messages from r and hands them to handle in batches.
// After handle returns nil the batch's offsets are committed (at least once:
// a crash between handle and commit re-delivers the batch). If handle returns
// an error, ConsumeBatches returns it without committing. When ctx ends, the
// batch being collected is handled and committed (allowing up to 30 s more)
// before returning, so a graceful shutdown loses and repeats nothing.
//
// A *PermanentError from handle dead-letters its records (o.DeadLetter) and
// commits the batch.
func ConsumeBatches(ctx context.Context, r MessageReader, o BatchOptions, handle Handler) error {
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
				if err = deadLetter(workCtx, o, err); err != nil {
					return errors.Join(fetchErr, err)
				}
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

// deadLetter sends the records of a permanent error to o.DeadLetter and
// returns nil, or returns err when it is not permanent (or there is no DLQ).
func deadLetter(ctx context.Context, o BatchOptions, err error) error {
	var pe *PermanentError
	if !errors.As(err, &pe) || o.DeadLetter == nil {
		return err
	}
	now := time.Now().UnixMilli()
	msgs := make([]kafka.Message, len(pe.Records))
	for i, m := range pe.Records {
		msgs[i] = DeadLetter{Reason: pe.Reason, Error: pe.Err.Error(), Source: RawRef(m), Stage: o.Name,
			TsMs: now, Key: m.Key, Value: m.Value}.Message()
	}
	o.Logger.Warn("dead-lettered records", "stage", o.Name, "records", len(msgs), "reason", pe.Reason, "err", pe.Err)
	return Retry(ctx, o.Logger, "dead-letter "+o.Name, func(ctx context.Context) error {
		return o.DeadLetter.WriteMessages(ctx, msgs...)
	})
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

// Retry runs fn until it succeeds, fails permanently (a *PermanentError,
// returned at once: retrying cannot help) or ctx ends, backing off
// exponentially (100 ms doubling to 30 s) with jitter between attempts. It
// is for transient failures of a dependency (Kafka, ClickHouse) that should
// hold the pipeline rather than drop data.
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
		if ctx.Err() != nil || IsPermanent(err) {
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

package bus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
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
// error is transient: the batch is handed to the handler again after a
// backoff, until it is handled or the consumer stops. A handler that
// returns a transient error must therefore leave the batch as it found it
// (a handler that drops payloads retries its own dependencies instead, and
// returns an error only once its context has ended).
type Handler func(ctx context.Context, batch []kafka.Message) error

// PermanentError says that records can never be processed (a bad record,
// not a dependency outage): retrying cannot help, so they go to the DLQ with
// Reason and the consumer moves on. With no records it says that an
// operation can never succeed (Retry stops at once).
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
	// topic); without it they are logged (as errors, with their position)
	// and skipped.
	DeadLetter Writer
}

// ConsumeBatches reads messages from r and hands them to handle in batches.
// After handle returns nil the batch's offsets are committed (at least once:
// a crash between handle and commit re-delivers the batch). When ctx ends,
// the batch being collected is handled and committed (allowing up to 30 s
// more) before returning, so a graceful shutdown loses and repeats nothing.
//
// Dependency outages never end it: a failed fetch (the broker is away) is
// retried after a backoff, a transient handler error hands the same batch
// to handle again after a backoff, a failed commit is retried; each is
// reported to ctx's loop observer (WithLoop). A *PermanentError from handle
// dead-letters its records (o.DeadLetter) and commits the batch. It
// returns nil when ctx ends, or an error when the reader is closed under
// it or the batch in hand could not be finished within the 30 s.
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

	fetching := Fetching{Op: "fetch " + o.Name, Logger: o.Logger}
	defer fetching.Stop(ctx)
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
					fetchErr = err
				}
				break
			}
			fetching.OK(ctx)
			batch = append(batch, m)
		}
		cancel()
		if len(batch) > 0 {
			if err := process(workCtx, r, o, handle, batch); err != nil {
				return err
			}
			clear(batch)
			batch = batch[:0]
		}
		if fetchErr != nil {
			if closed(fetchErr) {
				return fmt.Errorf("%s: %w", fetching.Op, fetchErr)
			}
			fetching.Failed(ctx, fetchErr) // the reader reconnects by itself
		} else {
			fetching.Quiet(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// closed reports whether a fetch error means the reader was closed (io.EOF
// from kafka-go), not that the broker is unreachable.
func closed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe)
}

// process hands batch to handle until it is handled (a transient error is
// retried with backoff), dead-letters what it says is permanent, and
// commits the batch. It fails only when ctx ends first.
func process(ctx context.Context, r MessageReader, o BatchOptions, handle Handler, batch []kafka.Message) error {
	err := Retry(ctx, o.Logger, "handle "+o.Name, func(ctx context.Context) error {
		err := handle(ctx, batch)
		var pe *PermanentError
		if errors.As(err, &pe) {
			return deadLetter(ctx, o, pe)
		}
		return err
	})
	if err != nil {
		return err
	}
	return commit(ctx, r, batch, o)
}

// deadLetter sends the records of a permanent error to o.DeadLetter (or
// logs them when there is none). It fails only when ctx ends first.
func deadLetter(ctx context.Context, o BatchOptions, pe *PermanentError) error {
	if len(pe.Records) == 0 {
		o.Logger.Error("permanent error without records: batch committed", "stage", o.Name, "reason", pe.Reason, "err", pe.Err)
		return nil
	}
	if o.DeadLetter == nil {
		for _, m := range pe.Records {
			o.Logger.Error("record can never be processed; no dead-letter topic, skipped", "stage", o.Name,
				"source", RawRef(m), "reason", pe.Reason, "err", pe.Err)
		}
		return nil
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

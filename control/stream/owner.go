package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/bus"
)

// runOwner consumes control.commands in the owner group: each partition's
// member applies its credentials' commands.
func (p *Processor) runOwner(ctx context.Context) error {
	r := bus.NewGroupReader(p.opts.Bus, bus.TopicControlCommands, bus.GroupControl)
	defer r.Close()
	return bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 2000, MaxWait: 5 * time.Millisecond, Idle: time.Millisecond,
		Logger: p.opts.Logger, Name: "control.commands", DeadLetter: p.dlq}, p.handleCommands)
}

// handleCommands applies one batch of control.commands as the owner of its
// partitions. It first waits until this instance has applied everything on
// credential.events published so far (a previous owner's records after a
// rebalance, this instance's own earlier batches), so decisions are made
// on current state. Offsets are committed by the caller after it returns.
func (p *Processor) handleCommands(ctx context.Context, msgs []kafka.Message) error {
	start := time.Now()
	if err := bus.Retry(ctx, p.opts.Logger, "catch up credential.events", func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return p.follow.catchUp(cctx)
	}); err != nil {
		return err
	}
	p.locks.refresh()
	cmds := make([]control.Command, 0, len(msgs))
	var bad []kafka.Message
	var why error
	for _, m := range msgs {
		c, err := control.DecodeCommand(m.Value)
		if err != nil {
			p.m.Commands.WithLabelValues("unknown", control.OutcomeInvalid).Inc()
			bad, why = append(bad, m), err
			continue
		}
		cmds = append(cmds, c)
	}
	b := control.Applier{Current: p.view.get, Live: p.view.live, Locks: p.locks, Enforce: p.opts.Enforcement}.Apply(p.opts.Now(), cmds)
	for _, o := range b.Outcomes {
		p.m.Commands.WithLabelValues(o.Op, o.Outcome).Inc()
	}
	if b.Activations > 0 {
		p.m.Activations.WithLabelValues("success").Add(float64(b.Activations))
	}
	for _, a := range b.Acks {
		nowMs := p.opts.Now().UnixMilli()
		p.tracker.ack(a, nowMs)
		p.outbox.acked(a, nowMs)
	}
	if err := p.flush(ctx, b); err != nil {
		return err
	}
	p.m.BatchDuration.Observe(time.Since(start).Seconds())
	if len(bad) > 0 {
		return bus.Permanent("undecodable_command", why, bad...) // dead-lettered, the batch committed
	}
	return nil
}

// flush publishes what a batch produced: lifecycle records first (the
// entitlement layer: from here the credential is disabled everywhere the
// registry or a detector looks), then the lock commands (the locks layer),
// then the revocation rows, request statuses, command sends and session
// rows in ClickHouse; the device sessions are handed to the session workers
// last. Each step retries until it succeeds: the batch's offsets are
// committed only after all of it is durable, and a re-delivered revocation
// re-queues its effects.
func (p *Processor) flush(ctx context.Context, b *control.Batch) error {
	log := p.opts.Logger
	// The ACL version each lock should report after each command, from the
	// view before the batch's records enter it.
	p.expectVersions(b.LockCommands)
	if len(b.Records) > 0 {
		msgs := make([]kafka.Message, len(b.Records))
		for i, r := range b.Records {
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode credential record: %w", err)
			}
			msgs[i] = kafka.Message{Key: []byte(r.CredentialID), Value: v, Time: time.UnixMilli(r.TsMs),
				Headers: []kafka.Header{{Key: headerSeq, Value: strconv.AppendUint(nil, r.Seq, 10)}}}
		}
		if err := bus.Retry(ctx, log, "publish credential.events", func(ctx context.Context) error {
			return p.records.WriteMessages(ctx, msgs...)
		}); err != nil {
			return err
		}
		for _, r := range b.Records {
			p.view.put(r)
		}
	}
	disabled := p.opts.Now().UnixMilli()
	for i := range b.Revocations {
		b.Revocations[i].DisabledMs = disabled
		p.m.DisableLatency.Observe(float64(disabled-b.Revocations[i].RequestedMs) / 1000)
	}
	for _, row := range b.NoLocks {
		p.m.RevocationLatency.WithLabelValues(row.Scope).Observe(float64(disabled-row.RequestedMs) / 1000)
	}
	// Track before the locks are told, so no ack can outrun its revocation.
	for _, t := range b.Track {
		p.tracker.add(revKey{t.RevocationID, t.CredentialID}, t.SubjectID, t.Scope, t.RequestedMs, t.Locks, b.Now)
	}
	for _, c := range b.LockCommands {
		p.outbox.sent(c)
	}
	sessionRows, sessions := p.sessionRows(b.Sessions, disabled)
	// The locks are told while the batch's rows go to ClickHouse; the
	// batch is committed once both are done.
	g, gctx := errgroup.WithContext(ctx)
	if len(b.LockCommands) > 0 {
		msgs := make([]kafka.Message, len(b.LockCommands))
		for i, c := range b.LockCommands {
			v, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("encode lock command: %w", err)
			}
			msgs[i] = kafka.Message{Key: []byte(c.LockID), Value: v}
			p.m.LockCommands.WithLabelValues(c.Type).Inc()
		}
		g.Go(func() error {
			return bus.Retry(gctx, log, "publish lock.commands", func(ctx context.Context) error {
				return p.lockOut.WriteMessages(ctx, msgs...)
			})
		})
		g.Go(func() error {
			return bus.Retry(gctx, log, "insert lock command sends", func(ctx context.Context) error {
				return store.InsertLockSends(ctx, p.opts.Conn, b.LockCommands)
			})
		})
	}
	g.Go(func() error {
		return bus.Retry(gctx, log, "insert revocations", func(ctx context.Context) error {
			if err := store.InsertRevocations(ctx, p.opts.Conn, b.Revocations, b.RevocationLocks); err != nil {
				return err
			}
			return store.InsertSessions(ctx, p.opts.Conn, sessionRows)
		})
	})
	g.Go(func() error {
		return bus.Retry(gctx, log, "insert request status", func(ctx context.Context) error {
			return store.InsertItems(ctx, p.opts.Conn, p.opts.Now(), b.Items)
		})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range b.Issued {
		if r.RequestedMs > 0 {
			p.m.TimeToIssue.Observe(float64(r.IssuedMs-r.RequestedMs) / 1000)
		}
	}
	p.sessions.push(sessions...)
	return nil
}

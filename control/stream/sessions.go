package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/bus"
)

// SessionRevoker ends a device's wallet/app session (the middle revocation
// layer); control/session's Client calls the configured webhook. It
// returns how many calls it made and why it failed.
type SessionRevoker interface {
	Revoke(ctx context.Context, s control.Session) (attempts int, err error)
}

// sessionRows are the first rows of a batch's session revocations: pending
// for the provider to revoke, done when there is no device (no session),
// not_configured without a provider.
func (p *Processor) sessionRows(ss []control.Session, nowMs int64) (rows []store.SessionRow, queue []control.Session) {
	for _, s := range ss {
		row := store.SessionRow{Session: s, UpdatedMs: nowMs}
		switch {
		case p.opts.Sessions == nil:
			row.Status = control.LayerNotConfigured
		case s.DeviceID == "":
			row.Status, row.DoneMs, row.Error = control.LayerDone, nowMs, "no device: no session to revoke"
		default:
			row.Status = control.LayerPending
			queue = append(queue, s)
		}
		rows = append(rows, row)
	}
	return rows, queue
}

// sessionQueue hands session revocations to the workers; it never blocks
// the owner (the queue grows instead, bounded by the revocations' size).
type sessionQueue struct {
	mu     sync.Mutex
	items  []control.Session
	keys   map[string]bool // queued, in flight or waiting for a retry round
	rounds map[string]sessionRounds
	signal chan struct{}
}

// sessionRounds is what the retry rounds of one session revocation have
// spent so far: rounds made and webhook calls over all of them.
type sessionRounds struct{ rounds, attempts int }

func newSessionQueue() *sessionQueue {
	return &sessionQueue{keys: map[string]bool{}, rounds: map[string]sessionRounds{}, signal: make(chan struct{}, 1)}
}

func (q *sessionQueue) push(ss ...control.Session) {
	q.mu.Lock()
	for _, s := range ss {
		if q.keys[s.Key] {
			continue // a re-delivered revocation: already on its way
		}
		q.keys[s.Key] = true
		q.items = append(q.items, s)
	}
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

func (q *sessionQueue) pop(ctx context.Context) (control.Session, bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			s := q.items[0]
			q.items = q.items[1:]
			if len(q.items) > 0 {
				select {
				case q.signal <- struct{}{}:
				default:
				}
			}
			q.mu.Unlock()
			return s, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return control.Session{}, false
		case <-q.signal:
		}
	}
}

func (q *sessionQueue) finish(key string) {
	q.mu.Lock()
	delete(q.keys, key)
	delete(q.rounds, key)
	q.mu.Unlock()
}

// resume queues a session a previous run left pending, counting the calls
// it already made.
func (q *sessionQueue) resume(s control.Session, attempts int) {
	q.mu.Lock()
	if !q.keys[s.Key] {
		q.rounds[s.Key] = sessionRounds{attempts: attempts}
	}
	q.mu.Unlock()
	q.push(s)
}

// requeue puts a session back after a retry round's wait; its key stays
// taken meanwhile, so a re-delivered revocation does not add a second copy.
func (q *sessionQueue) requeue(s control.Session) {
	q.mu.Lock()
	q.items = append(q.items, s)
	q.mu.Unlock()
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// spent records a finished round and returns the totals so far.
func (q *sessionQueue) spent(key string, attempts int) sessionRounds {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := q.rounds[key]
	r.rounds++
	r.attempts += attempts
	q.rounds[key] = r
	return r
}

// runSessions revokes queued device sessions with a few workers, storing
// each outcome, after re-queueing those a previous run left pending.
func (p *Processor) runSessions(ctx context.Context) error {
	if p.opts.Sessions == nil {
		return nil
	}
	if err := bus.Retry(ctx, p.opts.Logger, "load pending session revocations", func(ctx context.Context) error {
		pending, err := store.PendingSessions(ctx, p.opts.Conn, p.opts.Now().Add(-7*24*time.Hour))
		if err != nil {
			return err
		}
		for _, s := range pending {
			p.sessions.resume(s.Session, s.Attempts)
		}
		return nil
	}); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	var wg sync.WaitGroup
	for range p.opts.SessionWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s, ok := p.sessions.pop(ctx)
				if !ok {
					return
				}
				if wait, again := p.revokeSession(ctx, s); again {
					time.AfterFunc(wait, func() { p.sessions.requeue(s) })
					continue
				}
				p.sessions.finish(s.Key)
			}
		}()
	}
	wg.Wait()
	return nil
}

// revokeSession makes one round of calls (the client's --session-revoke-
// attempts) and stores the outcome. A provider that keeps failing
// transiently (unreachable, 5xx, 429) does not fail the layer at once: the
// session stays pending, with the last error, and another round follows
// after the lock commands' re-send backoff (ResendAfter doubling to
// ResendMax, ±20 %), until GiveUp after the request — then it reads failed.
// A refusal (4xx) fails it at once. It returns the wait before the next
// round when there is one.
func (p *Processor) revokeSession(ctx context.Context, s control.Session) (time.Duration, bool) {
	attempts, err := p.opts.Sessions.Revoke(ctx, s)
	if ctx.Err() != nil {
		return 0, false // stopped: the row stays pending and the next run re-sends it
	}
	spent := p.sessions.spent(s.Key, attempts)
	now := p.opts.Now().UnixMilli()
	row := store.SessionRow{Session: s, Attempts: spent.attempts, UpdatedMs: now, Status: control.LayerDone, DoneMs: now}
	outcome, wait := "done", time.Duration(0)
	if err != nil {
		wait = sessionRetryWait(p.opts.ResendAfter, p.opts.ResendMax, spent.rounds, p.jitter())
		outcome, row.Error = sessionFailure(err, spent, now, wait, s.RequestedMs+p.opts.GiveUp.Milliseconds())
		row.Status, row.DoneMs = control.LayerFailed, 0
		if outcome == "retrying" {
			row.Status = control.LayerPending
		}
		p.opts.Logger.Warn("device session revocation failed", "revocation", s.RevocationID, "credential", s.CredentialID,
			"round", spent.rounds, "outcome", outcome, "err", err)
	}
	p.m.Sessions.WithLabelValues(outcome).Inc()
	if err := bus.Retry(ctx, p.opts.Logger, "store session revocation", func(ctx context.Context) error {
		return store.InsertSessions(ctx, p.opts.Conn, []store.SessionRow{row})
	}); err != nil && !errors.Is(err, context.Canceled) {
		p.opts.Logger.Warn("session revocation outcome not stored", "err", err)
	}
	return wait, outcome == "retrying"
}

// sessionFailure decides a failed round: another round after wait
// ("retrying") while the provider fails transiently and the give-up time
// (giveUpMs) is not reached by then, else "failed"; and the row's error.
func sessionFailure(err error, spent sessionRounds, nowMs int64, wait time.Duration, giveUpMs int64) (outcome, why string) {
	var refusal interface{ Refused() bool } // control/session's Error
	if errors.As(err, &refusal) && refusal.Refused() {
		return "failed", err.Error()
	}
	if nowMs+wait.Milliseconds() < giveUpMs {
		return "retrying", fmt.Sprintf("retrying in %s (round %d): %v", wait.Round(100*time.Millisecond), spent.rounds, err)
	}
	return "failed", fmt.Sprintf("gave up after %d round(s), %d call(s): %v", spent.rounds, spent.attempts, err)
}

// sessionRetryWait is the wait before retry round rounds+1: base doubling
// per round up to maxWait, scaled by jitter (0.8–1.2).
func sessionRetryWait(base, maxWait time.Duration, rounds int, jitter float64) time.Duration {
	w := base
	for i := 1; i < rounds && w < maxWait; i++ {
		w *= 2
	}
	return time.Duration(float64(min(w, maxWait)) * jitter)
}

package stream

import (
	"context"
	"errors"
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
	keys   map[string]bool // queued or in flight
	signal chan struct{}
}

func newSessionQueue() *sessionQueue {
	return &sessionQueue{keys: map[string]bool{}, signal: make(chan struct{}, 1)}
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
	q.mu.Unlock()
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
			p.sessions.push(s.Session)
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
				p.revokeSession(ctx, s)
				p.sessions.finish(s.Key)
			}
		}()
	}
	wg.Wait()
	return nil
}

func (p *Processor) revokeSession(ctx context.Context, s control.Session) {
	attempts, err := p.opts.Sessions.Revoke(ctx, s)
	if ctx.Err() != nil {
		return // stopped: the row stays pending and the next run re-sends it
	}
	now := p.opts.Now().UnixMilli()
	row := store.SessionRow{Session: s, Attempts: attempts, UpdatedMs: now, Status: control.LayerDone, DoneMs: now}
	outcome := "done"
	if err != nil {
		row.Status, row.DoneMs, row.Error, outcome = control.LayerFailed, 0, err.Error(), "failed"
		p.opts.Logger.Warn("device session revocation failed", "revocation", s.RevocationID, "credential", s.CredentialID, "err", err)
	}
	p.m.Sessions.WithLabelValues(outcome).Inc()
	if err := bus.Retry(ctx, p.opts.Logger, "store session revocation", func(ctx context.Context) error {
		return store.InsertSessions(ctx, p.opts.Conn, []store.SessionRow{row})
	}); err != nil && !errors.Is(err, context.Canceled) {
		p.opts.Logger.Warn("session revocation outcome not stored", "err", err)
	}
}

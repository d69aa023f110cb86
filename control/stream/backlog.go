package stream

import (
	"context"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/bus"
)

// backlog estimates how many commands wait on control.commands: the owner
// group's lag, sampled, plus what this instance published since the sample,
// plus what requests have reserved but not published yet. Requests that
// would push it past the limit are refused with 429.
//
// A reservation counts as pending until its commands are published: a lag
// sample taken in between does not contain them, so only commands
// published before a sample started are taken out of added by it.
type backlog struct {
	cfg    bus.Config
	max    int64
	gauge  prometheus.Gauge
	logger *slog.Logger

	mu        sync.Mutex
	lag       int64
	added     int64   // published since the last sample
	pending   int64   // reserved, not yet published
	rate      float64 // commands drained per second (smoothed)
	sampledAt time.Time
}

func newBacklog(cfg bus.Config, maxQueue int64, gauge prometheus.Gauge, logger *slog.Logger) *backlog {
	return &backlog{cfg: cfg, max: maxQueue, gauge: gauge, logger: logger}
}

// admit reserves room for n commands, or says when to retry.
func (b *backlog) admit(n int) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	depth := b.lag + b.added + b.pending
	if depth+int64(n) <= b.max {
		b.pending += int64(n)
		b.gauge.Set(float64(depth + int64(n)))
		return true, 0
	}
	over := float64(depth + int64(n) - b.max)
	wait := 5 * time.Second
	if b.rate > 0 {
		wait = time.Duration(math.Ceil(over/b.rate)) * time.Second
	}
	return false, min(max(wait, time.Second), 2*time.Minute)
}

// release returns a reservation that was not used.
func (b *backlog) release(n int) {
	b.mu.Lock()
	b.pending = max(0, b.pending-int64(n))
	b.mu.Unlock()
}

// published counts n commands written to control.commands (reserved or
// not: a suspension takes queue room too).
func (b *backlog) published(n int) {
	b.mu.Lock()
	b.pending = max(0, b.pending-int64(n))
	b.added += int64(n)
	b.mu.Unlock()
}

// sampled takes in a lag sample that started when added was before.
func (b *backlog) sampled(before, lag int64, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.sampledAt.IsZero() {
		drained := float64(b.lag + before - lag)
		if dt := now.Sub(b.sampledAt).Seconds(); dt > 0 && drained >= 0 {
			b.rate = 0.7*b.rate + 0.3*drained/dt
		}
	}
	b.lag, b.added, b.sampledAt = lag, max(0, b.added-before), now
	b.gauge.Set(float64(lag + b.added + b.pending))
}

func (b *backlog) Run(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		// Commands published while the sample is taken may or may not be
		// in it: count them twice rather than not at all.
		b.mu.Lock()
		before := b.added
		b.mu.Unlock()
		lag, err := bus.Lag(ctx, b.cfg, bus.Consumer{Group: bus.GroupControl, Topic: bus.TopicControlCommands})
		if err == nil {
			b.sampled(before, lag, time.Now())
		} else if ctx.Err() == nil {
			b.logger.Debug("control queue depth unavailable", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

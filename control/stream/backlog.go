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
// group's lag, sampled, plus what this instance queued since the sample.
// Requests that would push it past the limit are refused with 429.
type backlog struct {
	cfg    bus.Config
	max    int64
	gauge  prometheus.Gauge
	logger *slog.Logger

	mu      sync.Mutex
	lag     int64
	added   int64
	rate    float64 // commands drained per second (smoothed)
	sampled time.Time
}

func newBacklog(cfg bus.Config, maxQueue int64, gauge prometheus.Gauge, logger *slog.Logger) *backlog {
	return &backlog{cfg: cfg, max: maxQueue, gauge: gauge, logger: logger}
}

// admit reserves room for n commands, or says when to retry.
func (b *backlog) admit(n int) (bool, time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	depth := b.lag + b.added
	if depth+int64(n) <= b.max {
		b.added += int64(n)
		b.gauge.Set(float64(b.lag + b.added))
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
	b.added = max(0, b.added-int64(n))
	b.mu.Unlock()
}

func (b *backlog) Run(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		// Commands queued while the sample is taken may or may not be in
		// it: count them twice rather than not at all.
		b.mu.Lock()
		before := b.added
		b.mu.Unlock()
		lag, err := bus.Lag(ctx, b.cfg, bus.Consumer{Group: bus.GroupControl, Topic: bus.TopicControlCommands})
		now := time.Now()
		if err == nil {
			b.mu.Lock()
			if !b.sampled.IsZero() {
				drained := float64(b.lag + before - lag)
				if dt := now.Sub(b.sampled).Seconds(); dt > 0 && drained >= 0 {
					b.rate = 0.7*b.rate + 0.3*drained/dt
				}
			}
			b.lag, b.added, b.sampled = lag, max(0, b.added-before), now
			b.gauge.Set(float64(lag))
			b.mu.Unlock()
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

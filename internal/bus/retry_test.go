package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// observer records what a loop reports.
type observer struct {
	mu       sync.Mutex
	events   []string
	failing  map[string]bool
	retrying int
}

func newObserver() *observer { return &observer{failing: map[string]bool{}} }

func (o *observer) Retrying(op string, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.retrying++
	if !o.failing[op] {
		o.events = append(o.events, "failing "+op)
	}
	o.failing[op] = true
}

func (o *observer) Resolved(op string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.failing[op] {
		o.events = append(o.events, "resolved "+op)
	}
	delete(o.failing, op)
}

func (o *observer) snapshot() ([]string, int, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.events...), o.retrying, len(o.failing)
}

var quiet = slog.New(slog.DiscardHandler)

// Retry reports each failed attempt and the recovery to the context's loop
// observer; Report does the same for loops with their own schedule.
func TestRetryReportsToLoopObserver(t *testing.T) {
	obs := newObserver()
	ctx := bus.WithLoop(context.Background(), obs)
	calls := 0
	require.NoError(t, bus.Retry(ctx, quiet, "insert things", func(context.Context) error {
		calls++
		if calls < 3 {
			return errors.New("connection refused")
		}
		return nil
	}))
	events, retrying, failing := obs.snapshot()
	assert.Equal(t, []string{"failing insert things", "resolved insert things"}, events)
	assert.Equal(t, 2, retrying)
	assert.Zero(t, failing)

	bus.Report(ctx, "rollup", errors.New("clickhouse down"))
	bus.Report(ctx, "rollup", nil)
	events, _, failing = obs.snapshot()
	assert.Equal(t, []string{"failing insert things", "resolved insert things", "failing rollup", "resolved rollup"}, events)
	assert.Zero(t, failing)

	// Without an observer nothing is reported and nothing breaks.
	require.NoError(t, bus.Retry(context.Background(), quiet, "op", func(context.Context) error { return nil }))
}

// A Retry cut short by its context leaves no operation marked failing.
func TestRetryResolvesOnCancel(t *testing.T) {
	obs := newObserver()
	ctx, cancel := context.WithCancel(bus.WithLoop(context.Background(), obs))
	err := bus.Retry(ctx, quiet, "publish", func(context.Context) error {
		cancel()
		return errors.New("broker away")
	})
	require.Error(t, err)
	_, _, failing := obs.snapshot()
	assert.Zero(t, failing)
}

// Every retries a failed run after a backoff well before the next interval
// and reports the failure until a run succeeds.
func TestEveryRetriesFailedRunsSooner(t *testing.T) {
	obs := newObserver()
	ctx, cancel := context.WithTimeout(bus.WithLoop(context.Background(), obs), time.Minute)
	defer cancel()
	var mu sync.Mutex
	runs := 0
	done := make(chan error, 1)
	go func() {
		done <- bus.Every(ctx, quiet, "retention", time.Hour, func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			runs++
			switch runs {
			case 1, 2:
				return errors.New("clickhouse down")
			case 3:
				return nil
			}
			cancel()
			return nil
		})
	}()
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return runs == 3
	}, 30*time.Second, 10*time.Millisecond, "a failed run is retried within seconds, not an hour later")
	require.Eventually(t, func() bool {
		events, _, failing := obs.snapshot()
		return failing == 0 && len(events) == 2
	}, 10*time.Second, 10*time.Millisecond)
	events, retrying, _ := obs.snapshot()
	assert.Equal(t, []string{"failing retention", "resolved retention"}, events)
	assert.Equal(t, 2, retrying)
	cancel()
	require.NoError(t, <-done)
}

// The backoff grows from Min to Max with jitter around the base delay.
func TestBackoff(t *testing.T) {
	b := bus.Backoff{Min: 100 * time.Millisecond, Max: 800 * time.Millisecond}
	for _, base := range []time.Duration{100, 200, 400, 800, 800, 800} {
		base *= time.Millisecond
		d := b.Next()
		assert.GreaterOrEqual(t, d, base/2)
		assert.Less(t, d, base*3/2)
	}
	b.Reset()
	assert.Less(t, b.Next(), 150*time.Millisecond)
}

// flakyReader fails some fetches and the first commit, as a reader does
// while its broker restarts, around a real consumer-group reader.
type flakyReader struct {
	bus.MessageReader
	mu          sync.Mutex
	fetchFails  int
	commitFails int
}

func (r *flakyReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	r.mu.Lock()
	if r.fetchFails > 0 {
		r.fetchFails--
		r.mu.Unlock()
		return kafka.Message{}, errors.New("failed to dial: connection refused")
	}
	r.mu.Unlock()
	return r.MessageReader.FetchMessage(ctx)
}

func (r *flakyReader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	r.mu.Lock()
	if r.commitFails > 0 {
		r.commitFails--
		r.mu.Unlock()
		return errors.New("coordinator not available")
	}
	r.mu.Unlock()
	return r.MessageReader.CommitMessages(ctx, msgs...)
}

// Fetch errors, transient handler errors and failed commits never end
// ConsumeBatches: it backs off, hands the same batch over again, and
// commits every record exactly once it is handled; the loop observer hears
// of each failing operation and of its recovery.
func TestConsumeBatchesRidesOutTransientErrors(t *testing.T) {
	cfg := testenv.Kafka(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	var msgs []kafka.Message
	for i := range 20 {
		msgs = append(msgs, kafka.Message{Value: []byte(fmt.Sprint(i))})
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))

	gr := bus.NewGroupReader(cfg, bus.TopicAccess, "transient-test")
	defer gr.Close()
	r := &flakyReader{MessageReader: gr, fetchFails: 3, commitFails: 2}
	obs := newObserver()
	runCtx, stop := context.WithCancel(bus.WithLoop(ctx, obs))
	defer stop()
	var mu sync.Mutex
	handled := map[string]int{}
	failures := 2
	done := make(chan error, 1)
	go func() {
		done <- bus.ConsumeBatches(runCtx, r, bus.BatchOptions{MaxBatch: 5, MaxWait: 20 * time.Millisecond, Logger: quiet, Name: "test"},
			func(_ context.Context, batch []kafka.Message) error {
				mu.Lock()
				defer mu.Unlock()
				if failures > 0 {
					failures--
					return errors.New("clickhouse: connection refused")
				}
				for _, m := range batch {
					handled[string(m.Value)]++
				}
				return nil
			})
	}()
	require.Eventually(t, func() bool {
		lag, err := bus.Lag(ctx, cfg, bus.Consumer{Group: "transient-test", Topic: bus.TopicAccess})
		return err == nil && lag == 0
	}, time.Minute, 50*time.Millisecond, "every record committed")
	stop()
	require.NoError(t, <-done)
	mu.Lock()
	defer mu.Unlock()
	assert.Len(t, handled, 20)
	for v, n := range handled {
		assert.Equal(t, 1, n, "record %s handled once", v)
	}
	events, _, failing := obs.snapshot()
	assert.Subset(t, events, []string{"failing fetch test", "resolved fetch test", "failing handle test",
		"resolved handle test", "failing commit test", "resolved commit test"})
	assert.Zero(t, failing, "nothing left failing")
}

// Fetching drains a reader's queued errors quickly and counts a reader that
// stays quiet (a partition nobody writes to) as recovered.
func TestFetchingRecoversWhenQuiet(t *testing.T) {
	obs := newObserver()
	ctx, cancel := context.WithTimeout(bus.WithLoop(context.Background(), obs), 30*time.Second)
	defer cancel()
	queued := 50 // stale errors the reader queued while its broker was away
	fetch := func(ctx context.Context) (kafka.Message, error) {
		if queued > 0 {
			queued--
			return kafka.Message{}, errors.New("failed to dial: connection refused")
		}
		<-ctx.Done() // back, but nothing to read
		return kafka.Message{}, ctx.Err()
	}
	f := bus.Fetching{Op: "follow credential.events/0", Logger: quiet, QuietAfter: 200 * time.Millisecond}
	done := make(chan error, 1)
	start := time.Now()
	go func() { _, err := f.Fetch(ctx, fetch); done <- err }()
	require.Eventually(t, func() bool {
		events, _, failing := obs.snapshot()
		return len(events) == 2 && failing == 0
	}, 20*time.Second, 10*time.Millisecond)
	assert.Less(t, time.Since(start), 15*time.Second, "50 queued errors drained within seconds")
	events, retrying, _ := obs.snapshot()
	assert.Equal(t, []string{"failing follow credential.events/0", "resolved follow credential.events/0"}, events)
	assert.Equal(t, 50, retrying)
	cancel()
	assert.ErrorIs(t, <-done, context.Canceled)
}

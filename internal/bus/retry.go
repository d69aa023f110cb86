package bus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/segmentio/kafka-go"
)

// Long-running loops treat a dependency outage (Kafka, ClickHouse) as
// transient: they back off with jitter, keep what they hold, and try again
// until the dependency returns or the loop is stopped. Only a
// *PermanentError (a record that can never be processed) ends the retrying,
// and it ends it at once.
//
// How a loop's attempts go is observable: the composition root attaches a
// LoopObserver to each loop's context (WithLoop), the way
// net/http/httptrace attaches a ClientTrace to a request's, and Retry,
// ConsumeBatches, Every and Report tell it which operations are failing
// and when they stop failing. keyfleet serve turns that into /readyz and
// the keyfleet_loop_* metrics.

// LoopObserver learns which operations of one long-running loop are
// failing. op names an operation ("insert access_events", "fetch
// normalize"); it is a short constant, never an id.
type LoopObserver interface {
	// Retrying says an attempt at op failed with a transient error and
	// will be retried.
	Retrying(op string, err error)
	// Resolved says op is no longer failing: it succeeded, or its caller
	// stopped retrying it (a permanent error, a shutdown). It may be
	// called for an op that was not failing.
	Resolved(op string)
}

type loopKey struct{}

// WithLoop returns a context whose loop observer is o: every Retry, Every,
// Report and ConsumeBatches under it reports to o.
func WithLoop(ctx context.Context, o LoopObserver) context.Context {
	return context.WithValue(ctx, loopKey{}, o)
}

// loopOf returns ctx's loop observer, or one that ignores everything.
func loopOf(ctx context.Context) LoopObserver {
	if o, ok := ctx.Value(loopKey{}).(LoopObserver); ok {
		return o
	}
	return noLoop{}
}

type noLoop struct{}

func (noLoop) Retrying(string, error) {}
func (noLoop) Resolved(string)        {}

// Report tells ctx's loop observer how an attempt at op went (err nil: it
// succeeded), for loops that retry on a schedule of their own.
func Report(ctx context.Context, op string, err error) {
	o := loopOf(ctx)
	if err != nil && ctx.Err() == nil {
		o.Retrying(op, err)
		return
	}
	o.Resolved(op)
}

// Backoff is an exponential backoff with jitter: the base delay doubles
// from Min up to Max with each Next, and each delay is drawn uniformly from
// [base/2, 3·base/2), so loops that failed together do not retry together.
// The zero value backs off from 100 ms to 10 s.
type Backoff struct {
	Min, Max time.Duration
	base     time.Duration
}

// Next returns the next delay.
func (b *Backoff) Next() time.Duration {
	lo, hi := b.Min, b.Max
	if lo <= 0 {
		lo = 100 * time.Millisecond
	}
	if hi < lo {
		hi = max(lo, 10*time.Second)
	}
	if b.base < lo {
		b.base = lo
	}
	d := b.base/2 + time.Duration(rand.Int64N(int64(b.base)))
	b.base = min(b.base*2, hi)
	return d
}

// Reset starts the next backoff from Min again.
func (b *Backoff) Reset() { b.base = 0 }

// Wait sleeps for d or until ctx ends; it reports whether the whole d passed.
func Wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// Retry runs fn until it succeeds, fails permanently (a *PermanentError,
// returned at once: retrying cannot help) or ctx ends, backing off with
// jitter between attempts (Backoff: 100 ms doubling to 10 s). It is for
// transient failures of a dependency (Kafka, ClickHouse) that should hold
// the pipeline rather than drop data. Each failed attempt is logged and
// reported to ctx's loop observer under the name what.
func Retry(ctx context.Context, logger *slog.Logger, what string, fn func(context.Context) error) error {
	obs := loopOf(ctx)
	var b Backoff
	for attempt := 1; ; attempt++ {
		err := fn(ctx)
		if err == nil {
			if attempt > 1 {
				logger.Info("recovered", "op", what, "attempts", attempt)
				obs.Resolved(what)
			}
			return nil
		}
		if ctx.Err() != nil || IsPermanent(err) {
			if attempt > 1 {
				obs.Resolved(what)
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		sleep := b.Next()
		logger.Warn("retrying", "op", what, "attempt", attempt, "retry_in", sleep.Round(time.Millisecond), "err", err)
		obs.Retrying(what, err)
		if !Wait(ctx, sleep) {
			obs.Resolved(what)
			return fmt.Errorf("%s: %w", what, err)
		}
	}
}

// Every runs fn at once and then every interval until ctx ends, for
// periodic jobs (rollups, retention, reports, cache refreshes). A failed
// run is logged, reported to ctx's loop observer as op, and tried again
// after a backoff (jittered, from 1 s up to the interval or a minute,
// whichever is less) instead of a whole interval later. Every returns nil
// when ctx ends.
func Every(ctx context.Context, logger *slog.Logger, op string, interval time.Duration, fn func(context.Context) error) error {
	b := Backoff{Min: min(time.Second, interval), Max: min(interval, time.Minute)}
	for {
		next := interval
		if err := fn(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			next = b.Next()
			logger.Warn(op+" failed", "err", err, "retry_in", next.Round(time.Millisecond))
			Report(ctx, op, err)
		} else {
			b.Reset()
			Report(ctx, op, nil)
		}
		if !Wait(ctx, next) {
			return nil
		}
	}
}

// Fetching paces a loop that fetches from a kafka-go reader through broker
// outages. A kafka-go reader reconnects by itself, pacing its own attempts,
// and queues the errors it meets for its caller (a partition reader up to
// its queue capacity): the loop must drain them quickly, or it would still
// be reading stale "connection refused" errors long after the broker came
// back. So Failed waits only 10 to 100 ms, and logs at most every 10 s.
//
// The loop observer hears of every failure, and of the recovery: a fetched
// message, or QuietAfter without an error (a partition nobody writes to
// yields no message to prove the reader is back).
type Fetching struct {
	Op     string // e.g. "fetch normalize"
	Logger *slog.Logger
	// QuietAfter is how long a failing reader must go without an error to
	// count as recovered when no message comes (default 10 s).
	QuietAfter time.Duration

	backoff Backoff
	failing bool
	since   time.Time // first error of the current failure
	last    time.Time // latest error
	logged  time.Time
	errs    int
}

// Fetch returns the next message fetch (a reader's FetchMessage) yields,
// riding out broker outages; it fails only when ctx ends (ctx's error) or
// the reader is closed (io.EOF or io.ErrClosedPipe).
func (f *Fetching) Fetch(ctx context.Context, fetch func(context.Context) (kafka.Message, error)) (kafka.Message, error) {
	for {
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if f.failing {
			fctx, cancel = context.WithTimeout(ctx, f.quietAfter())
		}
		m, err := fetch(fctx)
		timedOut := fctx.Err() != nil
		cancel()
		switch {
		case err == nil:
			f.OK(ctx)
			return m, nil
		case ctx.Err() != nil:
			return kafka.Message{}, ctx.Err()
		case closed(err):
			return kafka.Message{}, err
		case timedOut:
			f.Quiet(ctx)
		default:
			f.Failed(ctx, err)
		}
	}
}

// Failed handles a failed fetch: report, log now and then, pause briefly.
func (f *Fetching) Failed(ctx context.Context, err error) {
	now := time.Now()
	if !f.failing {
		f.failing, f.since, f.errs = true, now, 0
		f.backoff = Backoff{Min: 10 * time.Millisecond, Max: 100 * time.Millisecond}
	}
	f.errs++
	f.last = now
	loopOf(ctx).Retrying(f.Op, err)
	if f.logged.IsZero() || now.Sub(f.logged) >= 10*time.Second {
		f.Logger.Warn("retrying", "op", f.Op, "failing_for", now.Sub(f.since).Round(time.Millisecond), "errors", f.errs, "err", err)
		f.logged = now
	}
	Wait(ctx, f.backoff.Next())
}

// OK notes a successful fetch (cheap when nothing failed).
func (f *Fetching) OK(ctx context.Context) {
	if f.failing {
		f.recovered(ctx)
	}
}

// Quiet notes a fetch that ended without a message or an error: a failing
// reader that has been quiet for QuietAfter counts as recovered.
func (f *Fetching) Quiet(ctx context.Context) {
	if f.failing && time.Since(f.last) >= f.quietAfter() {
		f.recovered(ctx)
	}
}

func (f *Fetching) quietAfter() time.Duration {
	if f.QuietAfter <= 0 {
		return 10 * time.Second
	}
	return f.QuietAfter
}

func (f *Fetching) recovered(ctx context.Context) {
	f.failing, f.logged = false, time.Time{}
	loopOf(ctx).Resolved(f.Op)
	f.Logger.Info("recovered", "op", f.Op, "failed_for", time.Since(f.since).Round(time.Millisecond), "errors", f.errs)
}

// Stop notes that the loop stops (its failure, if any, is no longer current).
func (f *Fetching) Stop(ctx context.Context) {
	if f.failing {
		loopOf(ctx).Resolved(f.Op)
	}
}

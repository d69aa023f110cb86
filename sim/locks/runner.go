package locks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/internal/bus"
	gw "github.com/keyfleet/keyfleet/internal/gateway"
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	Set    *Set
	Bus    bus.Config
	Group  string // bus.GroupGatewaySim when empty
	Logger *slog.Logger
	// Now is the gateways' clock (time.Now when nil).
	Now func() time.Time
	// AckEvery is how often applied commands are acknowledged (default 5 ms:
	// a lock gateway acknowledges a command about when it applies it).
	AckEvery time.Duration
}

// Runner runs a Set's gateways on Kafka: it consumes lock.commands,
// submits every command to its lock with the time it was received, and
// publishes each lock's ack on lock.acks (keyed by lock_id) once the lock has
// applied it. Ack.ReceivedMs − Command.IssuedMs is keyfleet's (and Kafka's)
// share of a revocation's latency; Ack.AppliedMs − Ack.ReceivedMs is the
// delay the simulated gateway injected.
type Runner struct {
	o RunnerOptions
}

// NewRunner returns a runner.
func NewRunner(o RunnerOptions) (*Runner, error) {
	if o.Set == nil {
		return nil, errors.New("gateway runner: Set is required")
	}
	if err := o.Bus.Validate(); err != nil {
		return nil, fmt.Errorf("gateway runner: %w", err)
	}
	if o.Group == "" {
		o.Group = bus.GroupGatewaySim
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.AckEvery <= 0 {
		o.AckEvery = 5 * time.Millisecond
	}
	return &Runner{o: o}, nil
}

// Run consumes commands and publishes acks until ctx ends. Acks of commands
// applied after ctx ends are not sent (their locks never got to apply them).
func (r *Runner) Run(ctx context.Context) error {
	reader := bus.NewGroupReader(r.o.Bus, bus.TopicLockCommands, r.o.Group)
	writer := bus.NewWriter(r.o.Bus, bus.TopicLockAcks)
	writer.BatchTimeout = time.Millisecond
	defer func() {
		if err := reader.Close(); err != nil {
			r.o.Logger.Warn("close lock.commands reader", "err", err)
		}
		if err := writer.Close(); err != nil {
			r.o.Logger.Warn("close lock.acks writer", "err", err)
		}
	}()
	r.o.Logger.Info("simulated gateways consuming", "topic", r.o.Bus.Topic(bus.TopicLockCommands),
		"group", r.o.Bus.TopicPrefix+r.o.Group)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return bus.ConsumeBatches(gctx, reader, bus.BatchOptions{MaxBatch: 5000, MaxWait: 10 * time.Millisecond, Idle: time.Millisecond,
			Logger: r.o.Logger, Name: "gateway commands"}, r.handle)
	})
	g.Go(func() error { return r.ackLoop(gctx, writer) })
	g.Go(func() error { return r.statusLoop(gctx, writer) })
	return g.Wait()
}

// statusLoop reports the locks that come back online (every 250 ms), so
// the control plane resyncs their lists.
func (r *Runner) statusLoop(ctx context.Context, w *kafka.Writer) error {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	last := r.o.Now().UnixMilli()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := r.o.Now().UnixMilli()
		reports := r.o.Set.Reconnects(last, now)
		last = now
		if len(reports) == 0 {
			continue
		}
		msgs := make([]kafka.Message, 0, len(reports))
		for _, a := range reports {
			v, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("encode status report: %w", err)
			}
			msgs = append(msgs, kafka.Message{Key: []byte(a.LockID), Value: v, Time: time.UnixMilli(a.AppliedMs)})
		}
		if err := bus.Retry(ctx, r.o.Logger, "produce lock status reports", func(ctx context.Context) error {
			return w.WriteMessages(ctx, msgs...)
		}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (r *Runner) handle(_ context.Context, batch []kafka.Message) error {
	now := r.o.Now().UnixMilli()
	bad := 0
	for _, m := range batch {
		var cmd gw.Command
		if err := json.Unmarshal(m.Value, &cmd); err != nil || cmd.LockID == "" || cmd.Type == "" {
			bad++
			continue
		}
		r.o.Set.Submit(cmd, now, SubmitOptions{})
	}
	if bad > 0 {
		r.o.Logger.Warn("skipped undecodable lock commands", "count", bad)
	}
	return nil
}

func (r *Runner) ackLoop(ctx context.Context, w *kafka.Writer) error {
	t := time.NewTicker(r.o.AckEvery)
	defer t.Stop()
	var msgs []kafka.Message
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		acks := r.o.Set.DueAcks(r.o.Now().UnixMilli())
		if len(acks) == 0 {
			continue
		}
		msgs = msgs[:0]
		for _, a := range acks {
			v, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("encode ack: %w", err)
			}
			msgs = append(msgs, kafka.Message{Key: []byte(a.LockID), Value: v, Time: time.UnixMilli(a.AppliedMs)})
		}
		if err := bus.Retry(ctx, r.o.Logger, "produce lock acks", func(ctx context.Context) error {
			return w.WriteMessages(ctx, msgs...)
		}); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// Summary is the per-vendor view of a Set's injected delays.
type Summary struct {
	Vendor   string `json:"vendor"`
	Commands int    `json:"commands"`
	Applied  int    `json:"applied"`
	Lost     int    `json:"lost"`
	Failed   int    `json:"failed"`
	Repeats  int    `json:"repeats"`
	P50Ms    int64  `json:"injected_delay_p50_ms"`
	P95Ms    int64  `json:"injected_delay_p95_ms"`
	MaxMs    int64  `json:"injected_delay_max_ms"`
}

// Summarize returns per-vendor command counts and injected-delay percentiles.
func (s *Set) Summarize() []Summary {
	var out []Summary
	for v, st := range s.Stats() {
		sum := Summary{Vendor: v, Commands: st.Commands, Applied: st.Applied, Lost: st.Lost, Failed: st.Failed, Repeats: st.Repeats}
		d := st.DelaysMs
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		if n := len(d); n > 0 {
			sum.P50Ms, sum.P95Ms, sum.MaxMs = d[n/2], d[min(n-1, n*95/100)], d[n-1]
		}
		out = append(out, sum)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Vendor < out[j].Vendor })
	return out
}

package bus

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"
)

// Follower reads every partition of a compacted topic from its first offset
// on every instance (no consumer group), hands each record to Apply in
// partition order, and closes Ready once it has applied everything up to the
// end offsets found at the start. Fetches ride out broker outages
// (Fetching); only ctx ends Run.
type Follower struct {
	cfg    Config
	topic  string
	logger *slog.Logger
	apply  func(kafka.Message)
	ready  chan struct{}

	mu      sync.Mutex
	next    map[int]int64 // partition → next offset to apply
	changed chan struct{}
}

// NewFollower returns a follower of topic that calls apply for each record.
func NewFollower(cfg Config, topic string, logger *slog.Logger, apply func(kafka.Message)) *Follower {
	return &Follower{cfg: cfg, topic: topic, logger: logger, apply: apply, ready: make(chan struct{}),
		next: map[int]int64{}, changed: make(chan struct{})}
}

// Ready is closed once every record published before Run started is applied.
func (f *Follower) Ready() <-chan struct{} { return f.ready }

// Run follows the topic until ctx ends.
func (f *Follower) Run(ctx context.Context) error {
	var parts []Partition
	if err := Retry(ctx, f.logger, "follow "+f.topic, func(ctx context.Context) error {
		var err error
		parts, err = Partitions(ctx, f.cfg, f.topic, "")
		return err
	}); err != nil {
		return err
	}
	f.mu.Lock()
	for _, p := range parts {
		f.next[p.ID] = p.First
	}
	f.mu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error { return f.followPartition(gctx, p.ID, p.First) })
	}
	g.Go(func() error {
		if err := f.waitFor(gctx, parts); err != nil {
			return nil // ctx ended
		}
		close(f.ready)
		return nil
	})
	return g.Wait()
}

// waitFor returns once every partition is applied up to its end offset.
func (f *Follower) waitFor(ctx context.Context, parts []Partition) error {
	for {
		f.mu.Lock()
		behind := false
		for _, p := range parts {
			if f.next[p.ID] < p.End {
				behind = true
			}
		}
		changed := f.changed
		f.mu.Unlock()
		if !behind {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *Follower) followPartition(ctx context.Context, partition int, from int64) error {
	r := kafka.NewReader(PartitionReaderConfig(f.cfg, f.topic, partition))
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("follow %s/%d: %w", f.topic, partition, err)
	}
	fetching := Fetching{Op: fmt.Sprintf("follow %s/%d", f.topic, partition), Logger: f.logger}
	defer fetching.Stop(ctx)
	for {
		m, err := fetching.Fetch(ctx, r.FetchMessage) // rides out broker outages
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("follow %s/%d: %w", f.topic, partition, err)
		}
		f.apply(m)
		f.mu.Lock()
		f.next[partition] = m.Offset + 1
		close(f.changed)
		f.changed = make(chan struct{})
		f.mu.Unlock()
	}
}

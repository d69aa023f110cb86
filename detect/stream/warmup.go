package stream

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
)

// MaxWarmUpEvents bounds the events a restart replays to refill the
// detectors' windows (the newest ones are kept).
const MaxWarmUpEvents = 1_000_000

// warmUp refills the engine's sliding windows after a restart: the access
// events this group already committed within the last window (by Kafka
// timestamp, which is processing time) are fed to the engine in event-time
// order, and the alerts they raise are dropped — they were produced before
// the restart; uses the restored baselines already count are not counted
// again (detect.Engine.SetReplay). Without it a burst or storm that straddles a restart would
// be judged on its second half only. Windows that only the part after the
// committed offsets fills are judged live, as before.
func (p *Processor) warmUp(ctx context.Context, window time.Duration) error {
	if window <= 0 {
		return nil
	}
	start := time.Now()
	topic := p.opts.Bus.Topic(bus.TopicAccess)
	client := &kafka.Client{Addr: kafka.TCP(p.opts.Bus.Brokers...), Timeout: 15 * time.Second}
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return fmt.Errorf("warm-up metadata: %w", err)
	}
	var partitions []int
	for _, t := range meta.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return fmt.Errorf("warm-up metadata %s: %w", topic, t.Error)
		}
		for _, pt := range t.Partitions {
			partitions = append(partitions, pt.ID)
		}
	}
	if len(partitions) == 0 {
		return nil
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: p.opts.Bus.TopicPrefix + Group,
		Topics: map[string][]int{topic: partitions}})
	if err != nil {
		return fmt.Errorf("warm-up committed offsets: %w", err)
	}
	if committed.Error != nil {
		return fmt.Errorf("warm-up committed offsets: %w", committed.Error)
	}
	ends := map[int]int64{}
	for _, po := range committed.Topics[topic] {
		if po.Error == nil && po.CommittedOffset > 0 {
			ends[po.Partition] = po.CommittedOffset
		}
	}
	if len(ends) == 0 {
		return nil // a first start: everything is read live
	}
	since := time.Now().Add(-window)
	var reqs []kafka.OffsetRequest
	for part := range ends {
		reqs = append(reqs, kafka.TimeOffsetOf(part, since))
	}
	firsts, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return fmt.Errorf("warm-up offsets at %s: %w", since.Format(time.RFC3339), err)
	}
	perPartition := int64(MaxWarmUpEvents / len(ends))
	var events []event.Access
	for _, po := range firsts.Topics[topic] {
		end, ok := ends[po.Partition]
		if !ok || po.Error != nil {
			continue
		}
		// A timestamp query answers in Offsets (offset → the record's
		// time); no record that recent comes back as offset -1.
		from := int64(-1)
		for off := range po.Offsets {
			if off >= 0 && (from < 0 || off < from) {
				from = off
			}
		}
		if from < 0 || from >= end {
			continue // nothing committed within the window
		}
		from = max(from, end-perPartition)
		if events, err = p.readRange(ctx, topic, po.Partition, from, end, events); err != nil {
			return err
		}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].TsMs < events[j].TsMs })
	var discard []detect.Alert
	p.mu.Lock()
	p.engine.SetReplay(true)
	for i := range events {
		discard = p.engine.Access(discard[:0], &events[i])
	}
	p.engine.SetReplay(false)
	p.mu.Unlock()
	p.opts.Logger.Info("detector windows refilled from committed access events",
		"events", len(events), "window", window, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// readRange appends the decodable access events at offsets [from, end) of
// one partition.
func (p *Processor) readRange(ctx context.Context, topic string, partition int, from, end int64, out []event.Access) ([]event.Access, error) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: p.opts.Bus.Brokers, Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return out, fmt.Errorf("warm-up %s/%d: %w", topic, partition, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		m, err := r.FetchMessage(rctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return out, fmt.Errorf("warm-up %s/%d: offsets %d..%d not read within 2 minutes", topic, partition, from, end)
			}
			return out, fmt.Errorf("warm-up %s/%d: %w", topic, partition, err)
		}
		if m.Offset >= end {
			return out, nil
		}
		var ev event.Access
		if event.Decode(m.Value, &ev) == nil && ev.TsMs > 0 {
			if ev.ReceivedMs <= 0 {
				ev.ReceivedMs = m.Time.UnixMilli()
			}
			out = append(out, ev)
		}
		if m.Offset == end-1 {
			return out, nil
		}
	}
}

package stream

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
)

// With several instances (--access-events topic), a partition of
// access.events moves between instances on a rebalance: an instance joins,
// leaves or dies. The new owner resumes at the group's committed offset, but
// the subjects of that partition have windows (bursts, denied storms) that
// the previous owner filled since this instance last read the partition (or
// since its own start-up warm-up). Judged without them, a burst straddling
// the move is lost, or raised again with another window and so another id.
//
// So the processor remembers, per partition, the next offset it expects: the
// committed offset its warm-up read up to, then one past the last record it
// judged. When a batch starts a partition past that offset, the records in
// between were judged elsewhere: they are replayed first, in replay mode
// (windows refilled, no alerts but use_after_revocation's the store does not
// hold, exactly like the start-up warm-up), bounded by the warm-up window
// and MaxWarmUpEvents. Alerts the dead owner raised for records after its
// last commit are raised again here with the same ids (the windows are the
// same), and deduplicate in the store.

// expectFrom records where the warm-up left each partition.
func (p *Processor) expectFrom(ends map[int]int64) {
	if p.next == nil {
		p.next = map[int]int64{}
	}
	for part, end := range ends {
		p.next[part] = end
	}
}

// fillGaps replays, for every partition batch starts past the next offset
// this processor expects, the records in between (see above).
func (p *Processor) fillGaps(ctx context.Context, batch []kafka.Message) error {
	if p.opts.WarmUp < 0 || len(batch) == 0 {
		return nil
	}
	first := map[int]int64{}
	for _, m := range batch {
		if f, ok := first[m.Partition]; !ok || m.Offset < f {
			first[m.Partition] = m.Offset
		}
	}
	gaps := map[int]int64{} // partition → from
	for part, f := range first {
		if exp := p.next[part]; f > exp { // never seen: expect 0
			gaps[part] = max(exp, f-int64(MaxWarmUpEvents))
		}
	}
	if len(gaps) == 0 {
		return nil
	}
	window := p.opts.WarmUp
	if window == 0 {
		window = p.engine.Rules().SlidingWindow()
	}
	topic := p.opts.Bus.Topic(bus.TopicAccess)
	client := p.opts.Bus.Client(15 * time.Second)
	since, err := offsetsSince(ctx, client, topic, first, p.opts.Now().Add(-window))
	if err != nil {
		return err
	}
	var events []event.Access
	keep := func(ev *event.Access) { events = append(events, *ev) }
	replayed := map[int][2]int64{}
	for part, from := range gaps {
		from = max(from, min(since[part], first[part]))
		if from >= first[part] {
			continue
		}
		if err := p.readRange(ctx, topic, part, from, first[part], keep); err != nil {
			return fmt.Errorf("refill moved partition: %w", err)
		}
		replayed[part] = [2]int64{from, first[part]}
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].TsMs < events[j].TsMs })
	var alerts []detect.Alert
	p.mu.Lock()
	p.engine.SetReplay(true)
	for i := range events {
		n := len(alerts)
		alerts = keepRevocationAlerts(p.engine.Access(alerts, &events[i]), n)
	}
	p.engine.SetReplay(false)
	p.mu.Unlock()
	late, err := p.unknownRevocationAlerts(ctx, alerts)
	if err != nil {
		return err
	}
	if err := p.produce(ctx, late); err != nil {
		return err
	}
	for part, r := range replayed {
		p.next[part] = r[1]
	}
	p.opts.Logger.Info("detector windows refilled for access.events partitions judged elsewhere",
		"partitions", replayed, "events", len(events), "window", window)
	return nil
}

// judged records that batch was judged here.
func (p *Processor) judged(batch []kafka.Message) {
	if p.next == nil {
		p.next = map[int]int64{}
	}
	for _, m := range batch {
		if m.Offset+1 > p.next[m.Partition] {
			p.next[m.Partition] = m.Offset + 1
		}
	}
}

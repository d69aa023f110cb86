package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
)

// MaxWarmUpEvents bounds the events a restart replays to refill the
// detectors' windows (the newest ones are kept), and separately the older
// events it reads back for use_after_revocation's lookback.
const MaxWarmUpEvents = 1_000_000

// warmUp refills the engine's state after a restart from the access events
// this group already committed (by Kafka timestamp, which is processing
// time):
//
//   - those within the last window are fed to the engine in event-time
//     order; uses the restored baselines already count are not counted again
//     (detect.Engine.SetReplay). Without it a burst or storm that straddles
//     a restart would be judged on its second half only. Windows that only
//     the part after the committed offsets fills are judged live, as before.
//   - older ones within use_after_revocation's lookback refill only its
//     memory of granted uses (detect.Engine.RememberGrant), so a revocation
//     record that arrives after the restart still meets the grants it
//     should have prevented.
//
// The alerts the replay raises were produced before the restart and are
// dropped, except use_after_revocation's: the credential records were read
// up to their end before the replay, so a revocation published while
// keyfleet was down is already known here and judges grants that were
// committed without it. Those alerts are produced unless the alert store
// already holds them (Options.Known).
func (p *Processor) warmUp(ctx context.Context, window time.Duration) error {
	if window <= 0 {
		return nil
	}
	start := time.Now()
	reach := window
	if r := p.engine.Rules().Detectors.UseAfterRevocation; r.Enabled && r.Lookback.D() > reach {
		reach = r.Lookback.D()
	}
	var events []event.Access
	var alerts []detect.Alert
	grants := 0
	recent := func(ev *event.Access) { events = append(events, *ev) }
	older := func(ev *event.Access) {
		if ev.Outcome != "granted" || ev.CredentialID == "" {
			return
		}
		grants++
		p.mu.Lock()
		alerts = p.engine.RememberGrant(alerts, ev) // use_after_revocation's only
		p.mu.Unlock()
	}
	history := p.opts.History
	if history == nil {
		history = kafkaHistory{p}
	}
	if err := history.Replay(ctx, window, reach, recent, older); err != nil {
		return err
	}
	sort.SliceStable(events, func(i, j int) bool { return events[i].TsMs < events[j].TsMs })
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
	p.opts.Logger.Info("detector windows refilled from judged access events",
		"events", len(events), "window", window, "older_grants", grants, "lookback", reach,
		"late_revocation_alerts", len(late), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// History replays access events already judged, for the warm-up: recent
// with each event judged within the last window (processing time), older
// with the events judged before that within reach (only granted uses with
// a credential matter). ev is reused: the callbacks copy what they keep.
// At most MaxWarmUpEvents of each kind.
type History interface {
	Replay(ctx context.Context, window, reach time.Duration, recent, older func(ev *event.Access)) error
}

// kafkaHistory replays access.events up to this group's committed offsets.
type kafkaHistory struct{ p *Processor }

func (h kafkaHistory) Replay(ctx context.Context, window, reach time.Duration, recent, older func(ev *event.Access)) error {
	p := h.p
	start := time.Now()
	topic := p.opts.Bus.Topic(bus.TopicAccess)
	client := p.opts.Bus.Client(15 * time.Second)
	parts, err := bus.Partitions(ctx, p.opts.Bus, bus.TopicAccess, bus.GroupDetect)
	if err != nil {
		return fmt.Errorf("warm-up offsets: %w", err)
	}
	ends := map[int]int64{}
	for _, pt := range parts {
		if pt.Committed > 0 {
			ends[pt.ID] = pt.Committed
		}
	}
	p.expectFrom(ends)
	if len(ends) == 0 {
		return nil // a first start: everything is read live
	}
	windowFrom, err := offsetsSince(ctx, client, topic, ends, start.Add(-window))
	if err != nil {
		return err
	}
	reachFrom := windowFrom
	if reach > window {
		if reachFrom, err = offsetsSince(ctx, client, topic, ends, start.Add(-reach)); err != nil {
			return err
		}
	}
	perPartition := int64(MaxWarmUpEvents / len(ends))
	for part, end := range ends {
		from := max(windowFrom[part], end-perPartition)
		// Older grants first: they are few per credential and a
		// credential's events share one partition.
		if o := max(reachFrom[part], from-perPartition); o < from {
			if err := p.readRange(ctx, topic, part, o, from, older); err != nil {
				return err
			}
		}
		if from < end {
			if err := p.readRange(ctx, topic, part, from, end, recent); err != nil {
				return err
			}
		}
	}
	return nil
}

// keepRevocationAlerts drops the alerts after alerts[:from] that are not
// use_after_revocation's (in place).
func keepRevocationAlerts(alerts []detect.Alert, from int) []detect.Alert {
	out := alerts[:from]
	for _, a := range alerts[from:] {
		if a.Detector == detect.UseAfterRevocation {
			out = append(out, a)
		}
	}
	return out
}

// unknownRevocationAlerts keeps the replay's alerts that the alert store
// does not hold yet (all of them without a store: they deduplicate by id).
func (p *Processor) unknownRevocationAlerts(ctx context.Context, alerts []detect.Alert) ([]detect.Alert, error) {
	if len(alerts) == 0 || p.opts.Known == nil {
		return alerts, nil
	}
	ids := make([]string, len(alerts))
	for i, a := range alerts {
		ids[i] = a.AlertID
	}
	known, err := p.opts.Known.Known(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("warm-up: alerts already stored: %w", err)
	}
	return slices.DeleteFunc(alerts, func(a detect.Alert) bool { return known[a.AlertID] }), nil
}

// offsetsSince returns, per partition, the first offset whose record is at
// or after t (the committed end when there is none).
func offsetsSince(ctx context.Context, client *kafka.Client, topic string, ends map[int]int64, t time.Time) (map[int]int64, error) {
	var reqs []kafka.OffsetRequest
	for part := range ends {
		reqs = append(reqs, kafka.TimeOffsetOf(part, t))
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("warm-up offsets at %s: %w", t.Format(time.RFC3339), err)
	}
	out := make(map[int]int64, len(ends))
	for part, end := range ends {
		out[part] = end
	}
	for _, po := range res.Topics[topic] {
		end, ok := ends[po.Partition]
		if !ok || po.Error != nil {
			continue
		}
		// A timestamp query answers in Offsets (offset → the record's
		// time); no record that recent comes back as offset -1.
		for off := range po.Offsets {
			if off >= 0 && off < out[po.Partition] {
				out[po.Partition] = min(off, end)
			}
		}
	}
	return out, nil
}

// readRange calls fn with each decodable access event at offsets
// [from, end) of one partition (ev is reused: fn copies what it keeps).
func (p *Processor) readRange(ctx context.Context, topic string, partition int, from, end int64, fn func(ev *event.Access)) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: p.opts.Bus.Brokers, Topic: topic, Partition: partition,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 250 * time.Millisecond, Dialer: p.opts.Bus.Dialer()})
	defer r.Close()
	if err := r.SetOffset(from); err != nil {
		return fmt.Errorf("warm-up %s/%d: %w", topic, partition, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var ev event.Access
	for {
		m, err := r.FetchMessage(rctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
				return fmt.Errorf("warm-up %s/%d: offsets %d..%d not read within 2 minutes", topic, partition, from, end)
			}
			return fmt.Errorf("warm-up %s/%d: %w", topic, partition, err)
		}
		if m.Offset >= end {
			return nil
		}
		ev = event.Access{}
		if event.Decode(m.Value, &ev) == nil && ev.TsMs > 0 {
			if ev.ReceivedMs <= 0 {
				ev.ReceivedMs = m.Time.UnixMilli()
			}
			fn(&ev)
		}
		if m.Offset == end-1 {
			return nil
		}
	}
}

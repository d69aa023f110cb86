// Package stream runs the detect.Engine on Kafka inside `keyfleet serve`.
//
// Access events (access.events, keyed by subject) are consumed in the
// keyfleet-detect consumer group, so each instance owns some partitions and
// the subject-keyed state that goes with them: partition ownership is the
// unit of scale. Credential lifecycle records (credential.events, keyed by
// credential) are needed by every instance for every credential (a subject's
// events may meet any of its credentials), so each instance reads all of
// credential.events from the beginning, outside the group, as a replicated
// table; it reads up to the topic's end before consuming access events.
//
// Alerts go to the alerts topic (keyed by site, see AlertKey). An access batch's offsets
// are committed only after its alerts are acknowledged, so a crash repeats
// work but loses none; alert ids are deterministic, so repeats deduplicate.
// Everything runs in event time; the watermark advances with the events and,
// once the input has been idle for a while (and is not lagging), with the
// wall clock, so quiet periods still close suppression windows. After
// downtime the consumer resumes from its committed offsets and catches up in
// event time: windows, baselines and suppression behave as if live, and
// alerts carry the event time they refer to.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
)

// Uses reports credentials' last granted uses from the event store, for the
// batch checks: lastUse maps credential ids to their last granted use since
// sinceMs; oldestMs is the oldest event time the store holds.
type Uses interface {
	LastUses(ctx context.Context, sinceMs int64) (lastUse map[string]int64, oldestMs int64, err error)
}

// AlertIndex reports which alerts the alert store already holds.
type AlertIndex interface {
	Known(ctx context.Context, ids []string) (map[string]bool, error)
}

// Baselines saves and restores what the detectors learned.
type Baselines interface {
	Load(ctx context.Context) ([]detect.Baseline, error)
	Save(ctx context.Context, b []detect.Baseline) error
}

// Options configure a Processor.
type Options struct {
	Bus    bus.Config
	Engine *detect.Engine
	// Access reads access.events in the bus.GroupDetect consumer group.
	// Without it the processor is fed in-process (Detect, by the pipeline's
	// Ingest stage): correct only when this instance sees every subject's
	// events, i.e. it owns every partition of lock.events.raw.
	Access bus.MessageReader
	// History replays the events already judged at start (the warm-up);
	// nil: access.events up to this group's committed offsets.
	History History
	// Lag, when set, returns how many access.events messages this instance
	// has not yet read; the idle watermark advance waits for 0.
	Lag func() int64
	// Alerts writes the alerts topic (synchronous, acks=all).
	Alerts bus.Writer
	// DeadLetter receives the access.events records that are not events
	// (reason undecodable_event, stage detect); nil: they are logged and
	// skipped.
	DeadLetter bus.Writer

	// Uses enables the batch checks (stale_credential, expired_exception)
	// every BatchEvery; nil disables them on this instance.
	Uses       Uses
	BatchEvery time.Duration
	// BatchHeld, when set, gates the batch checks: they run only while it
	// says true (this instance holds the fleet's lease on them).
	BatchHeld func() bool
	// Baselines, when set, are restored at start and saved every SaveEvery.
	Baselines Baselines
	SaveEvery time.Duration

	// WarmUp is how far back (Kafka time) a restart replays the access
	// events this group already committed, to refill the detectors' windows
	// without raising their alerts again; 0: the rules' longest sliding
	// window; negative: no warm-up.
	WarmUp time.Duration
	// Known, when set, keeps the warm-up from producing again the
	// use_after_revocation alerts the store already holds (see warmUp).
	Known AlertIndex

	MaxBatch  int
	MaxWait   time.Duration
	IdleAfter time.Duration // advance the watermark by the wall clock after this much idle input
	Lateness  time.Duration // the engine's lateness (for the idle advance)

	Logger  *slog.Logger
	Metrics *detect.Metrics
	Now     func() time.Time
	// OnProduced, when set, is called with every set of alerts the broker
	// acknowledged and the time it did (benchmarks measure latency with it).
	OnProduced func(alerts []detect.Alert, at time.Time)
}

// Processor feeds the engine from Kafka and produces its alerts.
type Processor struct {
	opts Options

	mu         sync.Mutex // guards engine and lastAccess
	engine     *detect.Engine
	events     []event.Access // handleAccess's decoded batch, reused
	lastAccess time.Time
	ready      chan struct{} // closed once the warm-up is done: Detect may judge
	// next is, per access.events partition, the next offset this instance
	// expects (rebalance.go); only the access consumer touches it.
	next map[int]int64
}

// New returns a processor.
func New(o Options) (*Processor, error) {
	if o.Engine == nil || o.Alerts == nil || len(o.Bus.Brokers) == 0 {
		return nil, errors.New("detect stream: Engine, Alerts and Bus are required")
	}
	if o.Access == nil && o.WarmUp >= 0 && o.History == nil {
		return nil, errors.New("detect stream: fed in-process (no Access reader), the warm-up needs a History")
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 5000
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 20 * time.Millisecond
	}
	if o.IdleAfter <= 0 {
		o.IdleAfter = 5 * time.Second
	}
	if o.BatchEvery <= 0 {
		o.BatchEvery = time.Hour
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 10 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Processor{opts: o, engine: o.Engine, lastAccess: o.Now(), ready: make(chan struct{})}, nil
}

// Run processes until ctx ends: restore baselines, catch up on
// credential.events, then consume access.events; on shutdown the batch in
// hand is finished, its alerts produced and its offsets committed.
func (p *Processor) Run(ctx context.Context) error {
	if p.opts.Baselines != nil {
		var bs []detect.Baseline
		err := bus.Retry(ctx, p.opts.Logger, "load detector baselines", func(ctx context.Context) error {
			var err error
			bs, err = p.opts.Baselines.Load(ctx)
			return err
		})
		if err != nil {
			return err
		}
		p.mu.Lock()
		p.engine.RestoreBaselines(bs)
		p.mu.Unlock()
		p.opts.Logger.Info("detector baselines restored", "subjects", len(bs))
	}
	g, gctx := errgroup.WithContext(ctx)
	ready := make(chan struct{})
	g.Go(func() error { return p.followCredentials(gctx, ready) })
	select {
	case <-ready:
	case <-gctx.Done():
		return g.Wait()
	}
	p.opts.Logger.Info("detectors caught up on credential records; consuming access events")
	if p.opts.WarmUp >= 0 {
		window := p.opts.WarmUp
		if window == 0 {
			window = p.engine.Rules().SlidingWindow()
		}
		if err := bus.Retry(gctx, p.opts.Logger, "refill detector windows", func(ctx context.Context) error {
			return p.warmUp(ctx, window)
		}); err != nil {
			return g.Wait() // Retry gives up only when the run ends
		}
	}
	close(p.ready)
	if p.opts.Access != nil {
		g.Go(func() error {
			err := bus.ConsumeBatches(gctx, p.opts.Access, bus.BatchOptions{
				MaxBatch: p.opts.MaxBatch, MaxWait: p.opts.MaxWait, Logger: p.opts.Logger, Name: "detect",
				DeadLetter: p.opts.DeadLetter,
			}, p.handleAccess)
			if err != nil && gctx.Err() != nil && errors.Is(err, context.Canceled) {
				// Shutdown cut a commit short: the batch is redelivered to the
				// next owner and its alerts deduplicate by id.
				return nil
			}
			return err
		})
	}
	g.Go(func() error { return p.tick(gctx) })
	err := g.Wait()
	if p.opts.Baselines != nil {
		saveCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		if serr := p.saveBaselines(saveCtx); serr != nil {
			p.opts.Logger.Warn("save detector baselines at shutdown", "err", serr)
		}
		cancel()
	}
	return err
}

// handleAccess runs one batch of access events through the engine and
// produces the alerts before the batch is committed. Records that are not
// events are dead-lettered once the others are judged (access.events has
// no other consumer in serve since the one pass stores events from the raw
// records).
func (p *Processor) handleAccess(ctx context.Context, batch []kafka.Message) error {
	// Events are decoded in place into a slice kept between batches (the
	// engine copies what it keeps): no allocation per event or batch.
	events := p.events[:0]
	var bad []kafka.Message
	var why error
	for _, m := range batch {
		events = append(events, event.Access{})
		ev := &events[len(events)-1]
		err := event.Decode(m.Value, ev)
		if err == nil && ev.TsMs <= 0 {
			err = errors.New("no event time")
		}
		if err != nil {
			events = events[:len(events)-1]
			bad = append(bad, m)
			why = err
			continue
		}
		if ev.ReceivedMs <= 0 {
			ev.ReceivedMs = m.Time.UnixMilli()
		}
	}
	defer func() { clear(events); p.events = events[:0] }()
	if err := p.fillGaps(ctx, batch); err != nil {
		return err // handed over again: the refill is retried
	}
	if err := p.judge(ctx, events); err != nil {
		return err // only when ctx ended: the batch is handed over again
	}
	p.judged(batch)
	if len(bad) > 0 {
		p.opts.Metrics.Record("access", "undecodable", len(bad))
		return bus.Permanent("undecodable_event", why, bad...) // dead-lettered, the batch committed
	}
	return nil
}

// Detect judges events handed over in-process (pipeline.Ingest) and
// produces their alerts; it returns once Kafka acknowledged them. It waits
// until Run has restored the detectors' state (credential records, baselines,
// warm-up). events is not kept.
func (p *Processor) Detect(ctx context.Context, events []event.Access) error {
	select {
	case <-p.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	for i := range events {
		if events[i].ReceivedMs <= 0 {
			events[i].ReceivedMs = p.opts.Now().UnixMilli()
		}
	}
	return p.judge(ctx, events)
}

func (p *Processor) judge(ctx context.Context, events []event.Access) error {
	p.opts.Metrics.Record("access", "ok", len(events))
	var alerts []detect.Alert
	p.mu.Lock()
	for i := range events {
		alerts = p.engine.Access(alerts, &events[i])
	}
	if len(events) > 0 {
		p.lastAccess = p.opts.Now()
	}
	wm, stats := p.engine.Watermark(), p.engine.Stats()
	p.mu.Unlock()
	p.opts.Metrics.Progress(wm, stats, p.opts.Now())
	return p.produce(ctx, alerts)
}

// AlertKey is the alerts topic's record key: the site, so that one responder
// instance owns each site's alerts (its per-site suspension budget is then
// exact) and every version of an alert stays in order on one partition.
// Alerts without a site are keyed by alert id.
func AlertKey(a *detect.Alert) string {
	if a.SiteID != "" {
		return "site:" + a.SiteID
	}
	return a.AlertID
}

// produce writes alerts to the alerts topic, retrying until acknowledged.
func (p *Processor) produce(ctx context.Context, alerts []detect.Alert) error {
	if len(alerts) == 0 {
		return nil
	}
	now := p.opts.Now()
	msgs := make([]kafka.Message, len(alerts))
	for i := range alerts {
		alerts[i].DetectedMs = now.UnixMilli()
		b, err := json.Marshal(&alerts[i])
		if err != nil {
			return fmt.Errorf("encode alert: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(AlertKey(&alerts[i])), Value: b, Time: now}
	}
	if err := bus.Retry(ctx, p.opts.Logger, "produce alerts", func(ctx context.Context) error {
		return p.opts.Alerts.WriteMessages(ctx, msgs...)
	}); err != nil {
		return err
	}
	at := p.opts.Now()
	p.opts.Metrics.Produced(alerts, at)
	if p.opts.OnProduced != nil {
		p.opts.OnProduced(alerts, at)
	}
	return nil
}

// tick advances the watermark on idle input, runs the batch checks and
// saves baselines.
func (p *Processor) tick(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	nextBatch := p.opts.Now().Add(time.Minute)
	nextSave := p.opts.Now().Add(p.opts.SaveEvery)
	batchBackoff := bus.Backoff{Min: 5 * time.Second, Max: time.Minute}
	saveBackoff := bus.Backoff{Min: 5 * time.Second, Max: time.Minute}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := p.opts.Now()
		if err := p.idleAdvance(ctx, now); err != nil {
			return err
		}
		// A failed batch check or baseline save (ClickHouse away) is
		// tried again after a backoff, not a whole period later.
		if p.opts.Uses != nil && !now.Before(nextBatch) && (p.opts.BatchHeld == nil || p.opts.BatchHeld()) {
			err := p.runBatch(ctx)
			if ctx.Err() != nil {
				return nil
			}
			bus.Report(ctx, "detector batch checks", err)
			if err != nil {
				wait := batchBackoff.Next()
				p.opts.Logger.Warn("detector batch checks", "err", err, "retry_in", wait.Round(time.Second))
				nextBatch = now.Add(wait)
			} else {
				batchBackoff.Reset()
				nextBatch = now.Add(p.opts.BatchEvery)
			}
		}
		if p.opts.Baselines != nil && !now.Before(nextSave) {
			err := p.saveBaselines(ctx)
			if ctx.Err() != nil {
				return nil
			}
			bus.Report(ctx, "save detector baselines", err)
			if err != nil {
				wait := saveBackoff.Next()
				p.opts.Logger.Warn("save detector baselines", "err", err, "retry_in", wait.Round(time.Second))
				nextSave = now.Add(wait)
			} else {
				saveBackoff.Reset()
				nextSave = now.Add(p.opts.SaveEvery)
			}
		}
	}
}

func (p *Processor) idleAdvance(ctx context.Context, now time.Time) error {
	if p.opts.Lag != nil && p.opts.Lag() > 0 {
		return nil
	}
	p.mu.Lock()
	if now.Sub(p.lastAccess) < p.opts.IdleAfter {
		p.mu.Unlock()
		return nil
	}
	alerts := p.engine.Advance(nil, now.Add(-p.opts.Lateness).UnixMilli())
	wm, stats := p.engine.Watermark(), p.engine.Stats()
	p.mu.Unlock()
	p.opts.Metrics.Progress(wm, stats, now)
	return p.produce(ctx, alerts)
}

// runBatch runs the batch checks as of the event-time watermark, with last
// uses from the event store.
func (p *Processor) runBatch(ctx context.Context) error {
	p.mu.Lock()
	now := p.engine.Watermark()
	window := p.engine.Rules().Detectors.StaleCredential.UnusedDays + 1
	p.mu.Unlock()
	if now <= 0 {
		return nil
	}
	since := now - int64(window)*24*time.Hour.Milliseconds()
	uses, oldest, err := p.opts.Uses.LastUses(ctx, since)
	if err != nil {
		return err
	}
	if oldest <= 0 {
		return nil // no events stored yet
	}
	p.mu.Lock()
	alerts := p.engine.Batch(nil, now, func(id string) int64 { return uses[id] }, max(oldest, since))
	p.mu.Unlock()
	return p.produce(ctx, alerts)
}

func (p *Processor) saveBaselines(ctx context.Context) error {
	p.mu.Lock()
	bs := p.engine.DirtyBaselines()
	p.mu.Unlock()
	if len(bs) == 0 {
		return nil
	}
	if err := p.opts.Baselines.Save(ctx, bs); err != nil {
		p.mu.Lock()
		p.engine.MarkDirty(bs)
		p.mu.Unlock()
		return err
	}
	return nil
}

// followCredentials reads every partition of credential.events from the
// beginning and keeps following it; ready is closed once every partition
// has been read up to the end it had when reading began.
func (p *Processor) followCredentials(ctx context.Context, ready chan<- struct{}) error {
	topic := p.opts.Bus.Topic(bus.TopicCredentialEvents)
	var ends map[int]int64
	err := bus.Retry(ctx, p.opts.Logger, "credential.events offsets", func(ctx context.Context) error {
		var err error
		ends, err = partitionEnds(ctx, p.opts.Bus)
		return err
	})
	if err != nil {
		return err
	}
	var pending sync.WaitGroup
	g, gctx := errgroup.WithContext(ctx)
	for part, end := range ends {
		pending.Add(1)
		g.Go(func() error { return p.followPartition(gctx, topic, part, end, pending.Done) })
	}
	go func() {
		pending.Wait()
		close(ready)
	}()
	return g.Wait()
}

func (p *Processor) followPartition(ctx context.Context, topic string, part int, end int64, caughtUp func()) error {
	cfg := bus.PartitionReaderConfig(p.opts.Bus, bus.TopicCredentialEvents, part)
	cfg.StartOffset, cfg.ReadBackoffMin = kafka.FirstOffset, 50*time.Millisecond
	r := kafka.NewReader(cfg)
	defer r.Close()
	signalled := false
	signal := func() {
		if !signalled {
			signalled = true
			caughtUp()
		}
	}
	if end <= 0 {
		signal()
	}
	defer signal() // never leave Run waiting on a partition that stopped
	fetching := bus.Fetching{Op: fmt.Sprintf("follow %s/%d", bus.TopicCredentialEvents, part), Logger: p.opts.Logger}
	defer fetching.Stop(ctx)
	for {
		m, err := fetching.Fetch(ctx, r.FetchMessage) // rides out broker outages
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("read %s[%d]: %w", topic, part, err)
		}
		rec, ent, err := decodeCredential(m.Value)
		if err != nil || rec.CredentialID == "" || !event.Valid(event.States, rec.State) {
			p.opts.Metrics.Record("credential", "undecodable", 1)
		} else {
			p.opts.Metrics.Record("credential", "ok", 1)
			p.mu.Lock()
			p.engine.Entitle(ent)
			alerts := p.engine.Credential(nil, rec)
			p.mu.Unlock()
			if err := p.produce(ctx, alerts); err != nil {
				return err
			}
		}
		if m.Offset >= end-1 {
			signal()
		}
	}
}

// decodeCredential decodes a credential.events record and its
// entitlement (the record's "locks", when the control plane set them) in
// one pass; a record whose locks do not decode is decoded as before, the
// record and the entitlement each on its own.
func decodeCredential(data []byte) (*event.Credential, *detect.Entitlement, error) {
	var both struct {
		event.Credential
		Locks []detect.EntitledLock `json:"locks"`
	}
	if err := json.Unmarshal(data, &both); err == nil {
		return &both.Credential, &detect.Entitlement{CredentialID: both.CredentialID, Locks: both.Locks}, nil
	}
	var rec event.Credential
	if err := json.Unmarshal(data, &rec); err != nil {
		return nil, nil, err
	}
	var ent detect.Entitlement
	_ = json.Unmarshal(data, &ent)
	return &rec, &ent, nil
}

// partitionEnds returns, per partition of credential.events, the offset
// after its last message (0 for an empty partition).
func partitionEnds(ctx context.Context, c bus.Config) (map[int]int64, error) {
	parts, err := bus.Partitions(ctx, c, bus.TopicCredentialEvents, "")
	if err != nil {
		return nil, err
	}
	ends := make(map[int]int64, len(parts))
	for _, pt := range parts {
		end := pt.End
		if pt.First >= end {
			end = 0 // empty (or everything expired)
		}
		ends[pt.ID] = end
	}
	return ends, nil
}

// Package stream is the control plane's Kafka side: the view of every
// credential followed from credential.events, the owner loop that applies
// control.commands (control.Applier) and publishes what they produce, the
// lock.acks consumer and the revocation tracker, the credential_events
// writer, the expiry sweeper, the queue backlog and the template refresher,
// run together by Processor.Run. control/api reads and queues through a
// Processor.
package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/internal/metrics"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/pipeline"
)

// Options configure a Processor.
type Options struct {
	Bus      bus.Config
	Conn     driver.Conn
	Registry *registry.Registry // locks and door groups; fed from credential.events
	// Audit logs what the control plane does on its own (break-glass
	// expiry); no audit, no action.
	Audit      audit.Appender
	Logger     *slog.Logger
	Registerer prometheus.Registerer

	// MaxQueue is how many commands may wait on control.commands before
	// Admit refuses (default 50,000).
	MaxQueue int
	// PendingSLA is how long a lock may take to acknowledge a revocation
	// before it counts as overdue (default 15 min).
	PendingSLA time.Duration
	// SweepInterval is how often expiries are checked (default 5 s).
	SweepInterval time.Duration
	// APIOnly runs no owner (no command processing, ack forwarding or
	// ClickHouse writer): an instance that only serves the API.
	APIOnly bool
	// Enforcement says what a grant carries to each lock (the estate
	// policy); nil: every lock gets the windows and the end date.
	Enforcement control.Enforcement
	// Sessions revokes device sessions, the middle revocation layer
	// (control/session's webhook client); nil: that layer reads
	// not_configured on every revocation. SessionWorkers calls run at once
	// (default 4).
	Sessions       SessionRevoker
	SessionWorkers int
	// ResendAfter is how long a lock command may go without an applied ack
	// before it is sent again (default 30 s); the wait doubles per send up
	// to ResendMax (default 10 min), with ±20 % jitter. GiveUp is how long
	// a command is re-sent (default 24 h): then its lock reads failed.
	ResendAfter, ResendMax, GiveUp time.Duration
	// ReconcileInterval is how often due re-sends and escalations are
	// checked (default 1 s, at most ResendAfter/4); AdoptInterval how often
	// ClickHouse's unacknowledged commands and pending revocations are
	// merged (default 1 min).
	ReconcileInterval, AdoptInterval time.Duration
	// Seed seeds the re-send jitter (default: the clock).
	Seed uint64
	Now  func() time.Time
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Conn == nil {
		errs = append(errs, errors.New("control: Conn is required"))
	}
	if o.Registry == nil {
		errs = append(errs, errors.New("control: Registry is required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("control: Audit is required (admin actions must be audited)"))
	}
	if err := o.Bus.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxQueue <= 0 {
		o.MaxQueue = 50000
	}
	if o.PendingSLA <= 0 {
		o.PendingSLA = control.DefaultPendingSLA
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SessionWorkers <= 0 {
		o.SessionWorkers = 4
	}
	if o.ResendAfter <= 0 {
		o.ResendAfter = 30 * time.Second
	}
	if o.ResendMax <= 0 {
		o.ResendMax = 10 * time.Minute
	}
	o.ResendMax = max(o.ResendMax, o.ResendAfter)
	if o.GiveUp <= 0 {
		o.GiveUp = 24 * time.Hour
	}
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = min(time.Second, max(o.ResendAfter/4, 10*time.Millisecond))
	}
	if o.AdoptInterval <= 0 {
		o.AdoptInterval = time.Minute
	}
	if o.Seed == 0 {
		o.Seed = uint64(time.Now().UnixNano())
	}
	return errors.Join(errs...)
}

// Processor is the control plane's Kafka component: it materializes every
// credential from credential.events, applies the commands of the
// control.commands partitions it owns, tracks revocations from lock acks,
// expires credentials and samples the queue depth.
type Processor struct {
	opts      Options
	m         *metrics.Metrics
	view      *view
	follow    *follower
	templates *control.Templates
	locks     *lockIndex
	tracker   *tracker
	outbox    *outbox
	sessions  *sessionQueue
	backlog   *backlog

	// jitterRand spreads the session layer's retry rounds (seeded by Seed).
	jitterMu   sync.Mutex
	jitterRand *rand.Rand

	commands bus.Writer // control.commands
	records  bus.Writer // credential.events
	lockOut  bus.Writer // lock.commands
	dlq      bus.Writer // lock.events.dlq: commands and acks that can never be processed
	alerts   bus.Writer // alerts (revocation_overdue)
	closers  []*kafka.Writer

	// lastDriftPush limits drift resyncs per lock (acks consumer side).
	driftMu       sync.Mutex
	lastDriftPush map[control.LockRef]int64

	ready chan struct{}

	sweepMu sync.Mutex
	swept   map[string]uint64 // credential id → seq an expiry was queued at
}

// New returns a Processor; Run starts it.
func New(opts Options) (*Processor, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := metrics.New(opts.Registerer)
	p := &Processor{
		opts:       opts,
		m:          m,
		view:       newView(registry.NewFeed(opts.Registry), m.States),
		templates:  control.NewTemplates(),
		locks:      newLockIndex(opts.Registry),
		tracker:    newTracker(m, opts.PendingSLA, opts.Now, opts.Registerer),
		outbox:     newOutbox(opts.ResendAfter, opts.ResendMax, opts.GiveUp, opts.Seed),
		sessions:   newSessionQueue(),
		jitterRand: rand.New(rand.NewPCG(opts.Seed, 0x73657373696f6e)),
		ready:      make(chan struct{}),
		swept:      map[string]uint64{},

		lastDriftPush: map[control.LockRef]int64{},
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "keyfleet_control_lock_commands_unacknowledged",
			Help: "Lock commands sent without an applied ack yet, re-sent until acknowledged (tracked by this instance).",
		}, func() float64 { n, _ := p.outbox.stats(opts.Now().UnixMilli()); return float64(n) }))
	}
	p.backlog = newBacklog(opts.Bus, int64(opts.MaxQueue), m.QueueDepth, opts.Logger)
	p.follow = newFollower(opts.Bus, bus.TopicCredentialEvents, opts.Logger, p.applyFollowed)
	cw := bus.NewWriter(opts.Bus, bus.TopicControlCommands)
	rw := bus.NewWriter(opts.Bus, bus.TopicCredentialEvents)
	lw := bus.NewWriter(opts.Bus, bus.TopicLockCommands)
	dw := bus.NewWriter(opts.Bus, bus.TopicDLQ)
	aw := bus.NewWriter(opts.Bus, bus.TopicAlerts)
	p.commands, p.records, p.lockOut, p.dlq, p.alerts = cw, rw, lw, dw, aw
	p.closers = []*kafka.Writer{cw, rw, lw, dw, aw}
	return p, nil
}

// headerSeq carries a record's Seq on credential.events, so a follower can
// skip a record it already holds (the owner applied its own) undecoded.
const headerSeq = "keyfleet-seq"

func (p *Processor) applyFollowed(m kafka.Message) {
	for _, h := range m.Headers {
		if h.Key != headerSeq {
			continue
		}
		seq, err := strconv.ParseUint(string(h.Value), 10, 64)
		if cur, ok := p.view.seq(string(m.Key)); err == nil && ok && cur >= seq {
			return
		}
	}
	r, err := control.DecodeRecord(m.Value)
	if err != nil {
		p.m.Commands.WithLabelValues("record", control.OutcomeInvalid).Inc()
		return
	}
	p.view.put(r) // packing shares the strings that recur
}

// Ready is closed once the state is rebuilt and requests are served.
func (p *Processor) Ready() <-chan struct{} { return p.ready }

// Record returns a credential's newest record (a copy: the view holds it
// packed).
func (p *Processor) Record(id string) (*control.Record, bool) { return p.view.get(id) }

// Subject returns a subject's credentials, sorted by id.
func (p *Processor) Subject(id string) []*control.Record { return p.view.subject(id) }

// Each calls fn for every credential (under the view's read lock: fn must
// not call back into the Processor).
func (p *Processor) Each(fn func(r *control.Record)) { p.view.each(fn) }

// Await registers interest in a command's last record before the command
// is published; the returned func cancels it.
func (p *Processor) Await(commandID string) (<-chan *control.Record, func()) {
	return p.view.await(commandID)
}

// Admit reserves room on the queue for n commands, or says when to retry.
func (p *Processor) Admit(n int) (bool, time.Duration) { return p.backlog.admit(n) }

// Release returns a reservation that was not used.
func (p *Processor) Release(n int) { p.backlog.release(n) }

// Templates returns the role templates (refreshed from ClickHouse).
func (p *Processor) Templates() *control.Templates { return p.templates }

// DoorGroups returns every door group of the lock registry with its number
// of locks.
func (p *Processor) DoorGroups() map[string]int { return p.locks.groups() }

// Sites returns every site of the lock registry with its number of locks.
func (p *Processor) Sites() map[string]int { return p.locks.sites() }

// LocksFor returns the locks that hold a credential of a site's door groups.
func (p *Processor) LocksFor(site string, groups []string) []control.LockRef {
	return p.locks.ForCredential(site, groups)
}

// Run rebuilds the state from credential.events, then runs every part until
// ctx ends: the follower, the owner (command processing), the ack
// forwarder (and ACL resyncs), the credential_events writer, the lock
// command reconciler (re-sends, escalations), the session workers, the
// expiry sweeper, the queue monitor and the template refresher.
func (p *Processor) Run(ctx context.Context) error {
	defer func() {
		for _, w := range p.closers {
			_ = w.Close()
		}
	}()
	p.ensureCompacted(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.follow.Run(gctx) })
	if err := bus.Retry(gctx, p.opts.Logger, "load templates", p.loadTemplates); err != nil {
		return p.stop(g, err)
	}
	if !p.opts.APIOnly {
		if err := bus.Retry(gctx, p.opts.Logger, "load pending revocations", func(ctx context.Context) error {
			return p.tracker.load(ctx, p.opts.Conn, 7*24*time.Hour)
		}); err != nil {
			return p.stop(g, err)
		}
	}
	start := time.Now()
	if err := bus.Retry(gctx, p.opts.Logger, "rebuild credential state", p.follow.catchUp); err != nil {
		return p.stop(g, err)
	}
	p.opts.Logger.Info("control plane state rebuilt", "credentials", p.view.size(),
		"took", time.Since(start).Round(time.Millisecond))
	close(p.ready)

	run := func(f func(context.Context) error) {
		g.Go(func() error {
			err := f(gctx)
			if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
				return nil // interrupted by the shutdown itself
			}
			return err
		})
	}
	run(p.backlog.Run)
	run(p.refreshTemplates)
	run(p.sweep)
	if !p.opts.APIOnly {
		run(p.runOwner)
		run(p.runAcks)
		run(p.runCredentialWriter)
		run(p.runReconcile)
		run(p.runSessions)
	}
	return g.Wait()
}

// ensureCompacted makes credential.events a compacted topic: it is the
// control plane's state (newest full record per credential id), so it must
// never expire by age; compaction keeps exactly the state and drops history,
// which ClickHouse (credential_events) keeps.
func (p *Processor) ensureCompacted(ctx context.Context) {
	client := p.opts.Bus.Client(10 * time.Second)
	topic := p.opts.Bus.Topic(bus.TopicCredentialEvents)
	resp, err := client.IncrementalAlterConfigs(ctx, &kafka.IncrementalAlterConfigsRequest{
		Resources: []kafka.IncrementalAlterConfigsRequestResource{{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
			Configs: []kafka.IncrementalAlterConfigsRequestConfig{{Name: "cleanup.policy", Value: "compact",
				ConfigOperation: kafka.ConfigOperationSet}},
		}},
	})
	if err == nil {
		for _, r := range resp.Resources {
			if r.Error != nil {
				err = r.Error
			}
		}
	}
	if err != nil {
		p.opts.Logger.Warn("could not make credential.events compacted: it holds the credential state, "+
			"so it needs cleanup.policy=compact (or unlimited retention)", "topic", topic, "err", err)
	}
}

func (p *Processor) stop(g *errgroup.Group, err error) error {
	werr := g.Wait()
	if errors.Is(err, context.Canceled) {
		return werr
	}
	return errors.Join(err, werr)
}

func (p *Processor) runCredentialWriter(ctx context.Context) error {
	r := bus.NewGroupReader(p.opts.Bus, bus.TopicCredentialEvents, bus.GroupCredentialEvents)
	defer r.Close()
	dlq := bus.NewWriter(p.opts.Bus, bus.TopicDLQ)
	defer dlq.Close()
	w, err := pipeline.NewSink(pipeline.SinkOptions{
		Reader: r, Conn: p.opts.Conn, Rows: store.NewCredentialRows(), BatchSize: 10000,
		FlushInterval: 200 * time.Millisecond, Logger: p.opts.Logger,
		OnBadRecord: func(ctx context.Context, m kafka.Message, reason error) error {
			d := bus.DeadLetter{Reason: "undecodable_credential_record", Error: reason.Error(), Source: bus.RawRef(m),
				Stage: "clickhouse", TsMs: time.Now().UnixMilli(), Key: m.Key, Value: m.Value}
			return dlq.WriteMessages(ctx, d.Message())
		},
	})
	if err != nil {
		return err
	}
	return w.Run(ctx)
}

func (p *Processor) loadTemplates(ctx context.Context) error {
	stored, err := store.LoadTemplates(ctx, p.opts.Conn)
	if err != nil {
		return err
	}
	p.templates.Merge(stored)
	return nil
}

func (p *Processor) refreshTemplates(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.loadTemplates(ctx); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("template refresh failed", "err", err)
			}
		}
	}
}

// Publish queues commands on control.commands, keyed by credential id.
func (p *Processor) Publish(ctx context.Context, cmds ...control.Command) error {
	msgs := make([]kafka.Message, len(cmds))
	for i, c := range cmds {
		v, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode command: %w", err)
		}
		msgs[i] = kafka.Message{Key: []byte(c.CredentialID), Value: v}
	}
	if err := p.commands.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("queue commands: %w", err)
	}
	p.backlog.published(len(cmds))
	return nil
}

// jitter is a factor in [0.8, 1.2) for a retry wait.
func (p *Processor) jitter() float64 {
	p.jitterMu.Lock()
	defer p.jitterMu.Unlock()
	return 0.8 + 0.4*p.jitterRand.Float64()
}

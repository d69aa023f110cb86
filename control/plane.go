package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/pipeline"
)

// Auditor appends to the admin audit log (internal/audit.Store).
type Auditor interface {
	Append(ctx context.Context, e audit.Entry) error
}

// AuditVerifier checks the audit log (internal/audit.Store).
type AuditVerifier interface {
	Verify(ctx context.Context) (*audit.Report, error)
}

// Writer is the part of a kafka-go writer the control plane uses.
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Options configure a Plane.
type Options struct {
	Bus      bus.Config
	Conn     driver.Conn
	Registry *registry.Registry // locks and door groups; fed from credential.events
	Audit    Auditor
	Verifier AuditVerifier // for GET /v1/audit/verify (optional)
	// PseudonymKey keys normalize.RefHash of the vendor user references
	// requests carry, and the audit pseudonyms of device ids.
	PseudonymKey []byte
	Logger       *slog.Logger
	Registerer   prometheus.Registerer

	// MaxQueue is how many commands may wait on control.commands before
	// new requests get 429 (default 50,000).
	MaxQueue int
	// MaxBulk is the most items one bulk request may hold (default 10,000).
	MaxBulk int
	// PendingSLA is how long a lock may take to acknowledge a revocation
	// before it counts as overdue (default 15 min).
	PendingSLA time.Duration
	// SweepInterval is how often expiries are checked (default 5 s).
	SweepInterval time.Duration
	// WaitTimeout bounds how long a single-credential API call waits for its
	// command to be applied before answering 202 (default 5 s).
	WaitTimeout time.Duration
	// APIOnly runs no owner (no command processing, ack forwarding or
	// ClickHouse writer): an instance that only serves the API.
	APIOnly bool
	// SessionRevoker revokes a device's wallet/app session (the middle
	// revocation layer); nil records the revocation only.
	SessionRevoker func(ctx context.Context, credentialID, deviceID string) error
	// VerifyAttestation checks device-possession evidence; nil accepts any
	// non-empty evidence of a known format.
	VerifyAttestation func(deviceID string, a AttestationInput) error
	Now               func() time.Time
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
	if len(o.PseudonymKey) == 0 {
		errs = append(errs, errors.New("control: PseudonymKey is required"))
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
	if o.MaxBulk <= 0 {
		o.MaxBulk = 10000
	}
	if o.PendingSLA <= 0 {
		o.PendingSLA = 15 * time.Minute
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = 5 * time.Second
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return errors.Join(errs...)
}

// Plane is the credential control plane: the API that accepts requests and
// queues them as commands, the owner that applies commands to the state it
// materializes from credential.events, revocation tracking from lock acks,
// expiry, and the KPIs.
type Plane struct {
	opts      Options
	m         *metrics
	view      *view
	follow    *follower
	templates *templates
	locks     *lockIndex
	tracker   *tracker
	backlog   *backlog
	requests  *requestCache

	commands Writer // control.commands
	records  Writer // credential.events
	lockOut  Writer // lock.commands
	closers  []*kafka.Writer

	ready chan struct{}

	sweepMu sync.Mutex
	swept   map[string]uint64 // credential id → seq an expiry was queued at
}

// New returns a Plane; Run starts it.
func New(opts Options) (*Plane, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics(opts.Registerer)
	p := &Plane{
		opts:      opts,
		m:         m,
		view:      newView(registry.NewFeed(opts.Registry), m.states),
		templates: newTemplates(opts.Conn),
		locks:     newLockIndex(opts.Registry),
		tracker:   newTracker(m, opts.PendingSLA, opts.Now, opts.Registerer),
		requests:  newRequestCache(4096),
		ready:     make(chan struct{}),
		swept:     map[string]uint64{},
	}
	p.backlog = newBacklog(opts.Bus, int64(opts.MaxQueue), m.queueDepth, opts.Logger)
	p.follow = newFollower(opts.Bus, bus.TopicCredentialEvents, opts.Logger, p.applyFollowed)
	cw := bus.NewWriter(opts.Bus, bus.TopicControlCommands)
	rw := bus.NewWriter(opts.Bus, bus.TopicCredentialEvents)
	lw := bus.NewWriter(opts.Bus, bus.TopicLockCommands)
	p.commands, p.records, p.lockOut = cw, rw, lw
	p.closers = []*kafka.Writer{cw, rw, lw}
	return p, nil
}

// headerSeq carries a record's Seq on credential.events, so a follower can
// skip a record it already holds (the owner applied its own) undecoded.
const headerSeq = "keyfleet-seq"

func (p *Plane) applyFollowed(m kafka.Message) {
	for _, h := range m.Headers {
		if h.Key != headerSeq {
			continue
		}
		seq, err := strconv.ParseUint(string(h.Value), 10, 64)
		if cur, ok := p.view.get(string(m.Key)); err == nil && ok && cur.Seq >= seq {
			return
		}
	}
	r, err := decodeRecord(m.Value)
	if err != nil {
		p.m.commands.WithLabelValues("record", "invalid").Inc()
		return
	}
	p.view.put(r)
}

// Ready is closed once the state is rebuilt and requests are served.
func (p *Plane) Ready() <-chan struct{} { return p.ready }

// Run rebuilds the state from credential.events, then runs every part until
// ctx ends: the follower, the owner (command processing), the ack
// forwarder, the credential_events writer, the expiry sweeper, the queue
// monitor and the template refresher.
func (p *Plane) Run(ctx context.Context) error {
	defer func() {
		for _, w := range p.closers {
			_ = w.Close()
		}
	}()
	p.ensureCompacted(ctx)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return p.follow.Run(gctx) })
	if err := bus.Retry(gctx, p.opts.Logger, "load templates", p.templates.load); err != nil {
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
		run(p.runProcessor)
		run(p.runAcks)
		run(p.runCredentialWriter)
	}
	return g.Wait()
}

// ensureCompacted makes credential.events a compacted topic: it is the
// control plane's state (newest full record per credential id), so it must
// never expire by age; compaction keeps exactly the state and drops history,
// which ClickHouse (credential_events) keeps.
func (p *Plane) ensureCompacted(ctx context.Context) {
	client := &kafka.Client{Addr: kafka.TCP(p.opts.Bus.Brokers...), Timeout: 10 * time.Second}
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

func (p *Plane) stop(g *errgroup.Group, err error) error {
	werr := g.Wait()
	if errors.Is(err, context.Canceled) {
		return werr
	}
	return errors.Join(err, werr)
}

func (p *Plane) runProcessor(ctx context.Context) error {
	r := bus.NewGroupReader(p.opts.Bus, bus.TopicControlCommands, bus.GroupControl)
	defer r.Close()
	return bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 2000, MaxWait: 5 * time.Millisecond, Idle: time.Millisecond,
		Logger: p.opts.Logger, Name: "control.commands"}, p.handleCommands)
}

func (p *Plane) runCredentialWriter(ctx context.Context) error {
	r := bus.NewGroupReader(p.opts.Bus, bus.TopicCredentialEvents, bus.GroupCredentialEvents)
	defer r.Close()
	dlq := bus.NewWriter(p.opts.Bus, bus.TopicDLQ)
	defer dlq.Close()
	w, err := pipeline.NewSink(pipeline.SinkOptions{
		Reader: r, Conn: p.opts.Conn, Rows: NewCredentialRows(), BatchSize: 10000,
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

func (p *Plane) refreshTemplates(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := p.templates.load(ctx); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("template refresh failed", "err", err)
			}
		}
	}
}

// publish queues commands on control.commands, keyed by credential id.
func (p *Plane) publish(ctx context.Context, cmds ...Command) error {
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
	return nil
}

// Credential returns a credential's current record.
func (p *Plane) Credential(id string) (*Record, bool) {
	r, ok := p.view.get(id)
	if !ok {
		return nil, false
	}
	return r.clone(), true
}

// Suspend suspends an active credential (for automated responders): the
// suspension is audited (actor, reason), then queued; the owner records it
// and tells every lock holding the credential to drop it. It returns
// ErrNotFound, a *lifecycle.TransitionError when the credential is not
// active, or an error when the audit append or the queueing failed (then
// nothing was done).
func (p *Plane) Suspend(ctx context.Context, credentialID, reason, actor string) error {
	_, err := p.simpleOp(ctx, lifecycle.OpSuspend, credentialID, reason, actor, "")
	return err
}

// Reinstate reverses a suspension (for humans): the credential is active
// again and its locks are told to hold it again.
func (p *Plane) Reinstate(ctx context.Context, credentialID, reason, actor string) error {
	_, err := p.simpleOp(ctx, lifecycle.OpReinstate, credentialID, reason, actor, "")
	return err
}

// simpleOp checks op against the current state, audits it, and queues it.
// It returns the queued command.
func (p *Plane) simpleOp(ctx context.Context, op, credentialID, reason, actor, requestID string) (Command, error) {
	r, ok := p.view.get(credentialID)
	if !ok {
		return Command{}, ErrNotFound
	}
	if _, err := lifecycle.Next(op, r.State); err != nil {
		return Command{}, err
	}
	c := Command{CommandID: uuid.NewString(), Op: op, CredentialID: credentialID, RequestID: requestID,
		Actor: actor, Reason: reason, TsMs: p.opts.Now().UnixMilli()}
	if err := p.audit(ctx, actor, "credential."+op, credentialID, map[string]string{
		"reason": reason, "subject_id": r.SubjectID, "from_state": r.State}); err != nil {
		return Command{}, err
	}
	if err := p.publish(ctx, c); err != nil {
		return Command{}, err
	}
	return c, nil
}

// audit appends an entry; an error means the action must not happen.
func (p *Plane) audit(ctx context.Context, actor, action, target string, details map[string]string) error {
	for k, v := range details {
		if v == "" {
			delete(details, k)
		}
	}
	if err := p.opts.Audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: target,
		Details: details, TsMs: p.opts.Now().UnixMilli()}); err != nil {
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}

// ErrAudit wraps an audit append failure: the action was not carried out.
var ErrAudit = errors.New("audit log unavailable, action not carried out")

// sweep applies expiry: credentials past valid_until are revoked by the
// control plane itself (break-glass access ends this way). Every instance
// sweeps; a duplicate expire command is harmless (the owner rejects the
// second one: the credential is already revoked).
func (p *Plane) sweep(ctx context.Context) error {
	t := time.NewTicker(p.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := p.sweepOnce(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("expiry sweep failed", "err", err)
		}
	}
}

func (p *Plane) sweepOnce(ctx context.Context) error {
	now := p.opts.Now().UnixMilli()
	var due []*Record
	p.view.each(func(r *Record) {
		if r.ValidUntilMs > 0 && r.ValidUntilMs <= now && lifecycle.IsLive(r.State) {
			due = append(due, r)
		}
	})
	p.sweepMu.Lock()
	var cmds []Command
	var heads [][]any
	for _, r := range due {
		if p.swept[r.CredentialID] == r.Seq {
			continue
		}
		reason := "expired"
		if r.BreakGlass {
			reason = "break-glass expired"
		}
		c := Command{CommandID: uuid.NewString(), Op: lifecycle.OpExpire, CredentialID: r.CredentialID,
			Actor: "system", Reason: reason, TsMs: now, RevocationID: uuid.NewString(), Scope: ScopeExpiry}
		cmds = append(cmds, c)
		heads = append(heads, revocationHead(c.RevocationID, ScopeExpiry, r.SubjectID, []string{r.CredentialID}, now, "system", reason))
	}
	p.sweepMu.Unlock()
	if len(cmds) == 0 {
		return nil
	}
	for _, c := range cmds {
		r, _ := p.view.get(c.CredentialID)
		if r != nil && r.BreakGlass {
			if err := p.audit(ctx, "system", "breakglass.expire", c.CredentialID, map[string]string{
				"subject_id": r.SubjectID, "revocation_id": c.RevocationID}); err != nil {
				return err // nothing queued; the next sweep tries again
			}
		}
	}
	if err := insertRevocationHeads(ctx, p.opts.Conn, heads); err != nil {
		return err
	}
	if err := p.publish(ctx, cmds...); err != nil {
		return err
	}
	p.sweepMu.Lock()
	for _, c := range cmds {
		if r, ok := p.view.get(c.CredentialID); ok {
			p.swept[c.CredentialID] = r.Seq
		}
	}
	p.sweepMu.Unlock()
	return nil
}

func revocationHead(id, scope, subject string, creds []string, requestedMs int64, actor, reason string) []any {
	return []any{id, scope, subject, creds, time.UnixMilli(requestedMs).UTC(), requestedMs, actor, reason}
}

func insertRevocationHeads(ctx context.Context, conn driver.Conn, heads [][]any) error {
	if len(heads) == 0 {
		return nil
	}
	return chstorage.InsertRows(ctx, conn, "revocation_requests", []string{"revocation_id", "scope", "subject_id",
		"credential_ids", "ts", "requested_ms", "actor", "reason"}, heads...)
}

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

// requestCache remembers recent provisioning requests (the durable copy is
// control_requests in ClickHouse).
type requestCache struct {
	mu    sync.Mutex
	max   int
	order []string
	by    map[string]*requestDoc
}

func newRequestCache(n int) *requestCache {
	return &requestCache{max: n, by: map[string]*requestDoc{}}
}

func (c *requestCache) get(id string) (*requestDoc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.by[id]
	return d, ok
}

func (c *requestCache) put(d *requestDoc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.by[d.RequestID]; !ok {
		c.order = append(c.order, d.RequestID)
	}
	c.by[d.RequestID] = d
	for len(c.order) > c.max {
		delete(c.by, c.order[0])
		c.order = c.order[1:]
	}
}

// requestID is the id of a request made with an Idempotency-Key: the same
// caller and key always give the same id (and credential ids), so even two
// racing retries create each credential once.
func requestID(caller, key string) string { return event.ID("keyfleet-request", caller+"\x00"+key) }

func credentialIDFor(requestID string, item int) string {
	return event.ID("keyfleet-credential", fmt.Sprintf("%s/%d", requestID, item))
}

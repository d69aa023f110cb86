package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/internal/metrics"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

// runAcks consumes lock.acks (a consumer group shared by all instances):
// every ack is stored in ClickHouse (lock_acks, the source of the KPIs and
// of revocation resources) and forwarded to control.commands keyed by its
// credential, so the owner of the credential — which knows which locks its
// revocation is waiting for — sees it.
func (p *Processor) runAcks(ctx context.Context) error {
	r := bus.NewGroupReader(p.opts.Bus, bus.TopicLockAcks, bus.GroupAcks)
	defer r.Close()
	return bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 5000, MaxWait: 5 * time.Millisecond, Idle: time.Millisecond,
		Logger: p.opts.Logger, Name: "lock.acks", DeadLetter: p.dlq}, p.handleAcks)
}

func (p *Processor) handleAcks(ctx context.Context, msgs []kafka.Message) error {
	acks := make([]gateway.Ack, 0, len(msgs))
	fwd := make([]kafka.Message, 0, len(msgs))
	now := p.opts.Now().UnixMilli()
	var online []gateway.Ack
	drifted := map[control.LockRef]gateway.Ack{}
	var bad []kafka.Message
	var why error
	for _, m := range msgs {
		var a gateway.Ack
		if err := json.Unmarshal(m.Value, &a); err != nil {
			p.m.Acks.WithLabelValues("unknown", "invalid").Inc()
			bad, why = append(bad, m), err
			continue
		}
		if a.Type == gateway.TypeStatus {
			p.m.Acks.WithLabelValues(gateway.TypeStatus, bounded(a.Status, gateway.StatusOnline)).Inc()
			if a.Status == gateway.StatusOnline && a.LockID != "" {
				online = append(online, a)
			}
			continue
		}
		if a.CommandID == "" {
			p.m.Acks.WithLabelValues("unknown", "invalid").Inc()
			bad, why = append(bad, m), errors.New("no command_id")
			continue
		}
		p.m.Acks.WithLabelValues(bounded(a.Type, gateway.CommandRevoke, gateway.CommandGrant, gateway.CommandACLPush),
			bounded(a.Status, gateway.AckApplied, gateway.AckFailed)).Inc()
		acks = append(acks, a)
		if a.Drifted() {
			l := control.LockRef{Vendor: a.Vendor, LockID: a.LockID}
			// Judged again against the view now: a command's expectation
			// may have been overtaken by another credential's change.
			if !strings.EqualFold(a.ACLVersion, aclVersion(p.view.aclIDs(l))) {
				p.m.DriftedAcks.Inc()
				drifted[l] = a
			}
		}
		// The command's sender stops re-sending it at once when it is this
		// instance (the owner hears of it again through the forwarded ack).
		p.outbox.acked(a, now)
		if a.CredentialID == "" {
			continue // an acl_push: tracked by the acks side
		}
		c := control.Command{CommandID: uuid.NewString(), Op: control.OpAck, CredentialID: a.CredentialID, TsMs: now, Ack: &a}
		v, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode ack command: %w", err)
		}
		fwd = append(fwd, kafka.Message{Key: []byte(a.CredentialID), Value: v})
	}
	// Stored and forwarded at once (the batch is committed after both):
	// the owner's ack tracking does not wait for the ClickHouse insert.
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		return bus.Retry(gctx, p.opts.Logger, "insert lock_acks", func(ctx context.Context) error {
			return store.InsertAcks(ctx, p.opts.Conn, acks, now)
		})
	})
	if len(fwd) > 0 {
		g.Go(func() error {
			return bus.Retry(gctx, p.opts.Logger, "forward acks", func(ctx context.Context) error {
				return p.commands.WriteMessages(ctx, fwd...)
			})
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// A lock back online gets its whole list; a lock whose list drifted
	// too (at most one drift resync per lock per ResendAfter, and none
	// while one is on its way).
	for _, a := range online {
		l := control.LockRef{Vendor: a.Vendor, LockID: a.LockID}
		delete(drifted, l)
		if err := p.resync(ctx, l, gateway.ResyncReconnect, a.ACLVersion, "", ""); err != nil {
			return err
		}
	}
	for l, a := range drifted {
		if !p.driftPushAllowed(l, now) {
			continue
		}
		if err := p.resync(ctx, l, gateway.ResyncDrift, a.ACLVersion, a.ExpectedACLVersion, a.CommandID); err != nil {
			return err
		}
	}
	if len(bad) > 0 {
		return bus.Permanent("undecodable_ack", why, bad...) // dead-lettered, the batch committed
	}
	return nil
}

func (p *Processor) driftPushAllowed(l control.LockRef, nowMs int64) bool {
	if p.outbox.pendingPush(l) {
		return false
	}
	p.driftMu.Lock()
	defer p.driftMu.Unlock()
	if last, ok := p.lastDriftPush[l]; ok && nowMs-last < max(p.opts.ResendAfter.Milliseconds(), 1000) {
		return false
	}
	p.lastDriftPush[l] = nowMs
	if len(p.lastDriftPush) > 100_000 {
		clear(p.lastDriftPush)
	}
	return true
}

func bounded(v string, allowed ...string) string {
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	return "other"
}

type revKey struct{ revocation, credential string }

type ackedKey struct {
	revKey
	lock control.LockRef
}

type pendingRevocation struct {
	scope, subject string
	requestedMs    int64
	issuedMs       int64
	locks          map[control.LockRef]bool // pending
	lastMs         int64                    // latest ack so far
	escalated      bool
}

// tracker holds, at the owner of each credential, the revocations still
// waiting for lock acks; when the last lock of a revoked credential acks,
// the revocation latency is observed, and one past the SLA is escalated
// once. It is rebuilt from ClickHouse on start and merged with it
// periodically (revocation_locks without an applied ack or a give-up).
type tracker struct {
	mu   sync.Mutex
	revs map[revKey]*pendingRevocation
	// acked are the locks acknowledged (or given up) lately → when: a
	// reload must not bring them back before ClickHouse has their acks.
	acked map[ackedKey]int64
	m     *metrics.Metrics
	sla   time.Duration
	now   func() time.Time
}

func newTracker(m *metrics.Metrics, sla time.Duration, now func() time.Time, reg prometheus.Registerer) *tracker {
	t := &tracker{revs: map[revKey]*pendingRevocation{}, acked: map[ackedKey]int64{}, m: m, sla: sla, now: now}
	if reg != nil {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "keyfleet_control_revocation_locks_pending",
				Help: "Locks that have not yet acknowledged a revocation (tracked by this instance).",
			}, func() float64 { n, _ := t.pending(); return float64(n) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "keyfleet_control_revocation_locks_overdue",
				Help: "Locks whose revocation has been pending longer than the SLA (tracked by this instance).",
			}, func() float64 { _, n := t.pending(); return float64(n) }),
		)
	}
	return t
}

func (t *tracker) add(k revKey, subject, scope string, requestedMs int64, locks []control.LockRef, issuedMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pr := &pendingRevocation{scope: scope, subject: subject, requestedMs: requestedMs, issuedMs: issuedMs,
		locks: map[control.LockRef]bool{}}
	if old := t.revs[k]; old != nil {
		pr.escalated = old.escalated // a re-delivered revocation
	}
	for _, l := range locks {
		pr.locks[l] = true
		delete(t.acked, ackedKey{k, l})
	}
	t.revs[k] = pr
}

func (t *tracker) ack(a gateway.Ack, nowMs int64) {
	if a.RevocationID == "" || a.Status != gateway.AckApplied {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := revKey{a.RevocationID, a.CredentialID}
	pr, ok := t.revs[k]
	if !ok {
		return
	}
	l := control.LockRef{Vendor: a.Vendor, LockID: a.LockID}
	if !pr.locks[l] {
		return
	}
	delete(pr.locks, l)
	t.acked[ackedKey{k, l}] = nowMs
	at := a.AppliedMs
	if at <= 0 {
		at = nowMs
	}
	pr.lastMs = max(pr.lastMs, at)
	t.m.LockLatency.Observe(float64(at-pr.requestedMs) / 1000)
	if len(pr.locks) == 0 {
		t.m.RevocationLatency.WithLabelValues(pr.scope).Observe(float64(pr.lastMs-pr.requestedMs) / 1000)
		delete(t.revs, k)
	}
}

// gaveUp drops a lock keyfleet stopped re-sending a revocation to: the
// revocation reads failed; no latency is observed for it.
func (t *tracker) gaveUp(c gateway.Command, nowMs int64) {
	if c.RevocationID == "" {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	k := revKey{c.RevocationID, c.CredentialID}
	pr, ok := t.revs[k]
	if !ok {
		return
	}
	l := control.LockRef{Vendor: c.Vendor, LockID: c.LockID}
	delete(pr.locks, l)
	t.acked[ackedKey{k, l}] = nowMs
	if len(pr.locks) == 0 {
		delete(t.revs, k)
	}
}

// overdueRevocation is a revoked credential to escalate.
type overdueRevocation struct {
	revKey
	subject, scope string
	requestedMs    int64
	locks          []control.LockRef
}

// overdue returns the revocations past the SLA with locks pending that
// were not escalated yet, and marks them escalated.
func (t *tracker) overdue(nowMs int64) []overdueRevocation {
	t.mu.Lock()
	defer t.mu.Unlock()
	deadline := nowMs - t.sla.Milliseconds()
	var out []overdueRevocation
	for k, pr := range t.revs {
		if pr.escalated || len(pr.locks) == 0 || pr.requestedMs > deadline {
			continue
		}
		pr.escalated = true
		o := overdueRevocation{revKey: k, subject: pr.subject, scope: pr.scope, requestedMs: pr.requestedMs}
		for l := range pr.locks {
			o.locks = append(o.locks, l)
		}
		sort.Slice(o.locks, func(i, j int) bool { return o.locks[i].String() < o.locks[j].String() })
		out = append(out, o)
	}
	for k, at := range t.acked {
		if nowMs-at > time.Hour.Milliseconds() {
			delete(t.acked, k)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].revocation != out[j].revocation {
			return out[i].revocation < out[j].revocation
		}
		return out[i].credential < out[j].credential
	})
	return out
}

// unescalate undoes overdue's mark when the escalation could not be sent.
func (t *tracker) unescalate(k revKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if pr := t.revs[k]; pr != nil {
		pr.escalated = false
	}
}

// pending returns the number of locks still to ack and of those overdue.
func (t *tracker) pending() (locks, overdue int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	deadline := t.now().Add(-t.sla).UnixMilli()
	for _, pr := range t.revs {
		locks += len(pr.locks)
		if pr.issuedMs < deadline {
			overdue += len(pr.locks)
		}
	}
	return locks, overdue
}

// load merges the pending revocations of the last `since` from ClickHouse
// (and which were escalated): on start, and periodically, so revocations
// of partitions taken over from a stopped instance are tracked too.
func (t *tracker) load(ctx context.Context, conn driver.Conn, since time.Duration) error {
	from := t.now().Add(-since)
	pending, err := store.PendingRevocations(ctx, conn, from)
	if err != nil {
		return err
	}
	escalated, err := store.Escalated(ctx, conn, from)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range pending {
		k := revKey{l.RevocationID, l.CredentialID}
		if _, ok := t.acked[ackedKey{k, l.Lock}]; ok {
			continue // acknowledged here; the ack is not in ClickHouse yet
		}
		pr := t.revs[k]
		if pr == nil {
			pr = &pendingRevocation{scope: l.Scope, subject: l.SubjectID, requestedMs: l.RequestedMs, issuedMs: l.IssuedMs,
				locks: map[control.LockRef]bool{}}
			t.revs[k] = pr
		}
		pr.locks[l.Lock] = true
		if escalated[[2]string{l.RevocationID, l.CredentialID}] {
			pr.escalated = true
		}
	}
	return nil
}

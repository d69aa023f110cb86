package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	var bad []kafka.Message
	var why error
	for _, m := range msgs {
		var a gateway.Ack
		err := json.Unmarshal(m.Value, &a)
		if err == nil && a.CommandID == "" {
			err = errors.New("no command_id")
		}
		if err != nil {
			p.m.Acks.WithLabelValues("unknown", "invalid").Inc()
			bad, why = append(bad, m), err
			continue
		}
		p.m.Acks.WithLabelValues(bounded(a.Type, gateway.CommandRevoke, gateway.CommandGrant, gateway.CommandACLPush),
			bounded(a.Status, gateway.AckApplied, gateway.AckFailed)).Inc()
		acks = append(acks, a)
		if a.CredentialID == "" {
			continue
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
	if len(bad) > 0 {
		return bus.Permanent("undecodable_ack", why, bad...) // dead-lettered, the batch committed
	}
	return nil
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

type pendingRevocation struct {
	scope       string
	requestedMs int64
	issuedMs    int64
	locks       map[control.LockRef]bool // pending
	lastMs      int64                    // latest ack so far
}

// tracker holds, at the owner of each credential, the revocations still
// waiting for lock acks; when the last lock of a revoked credential acks,
// the revocation latency is observed. It is rebuilt from ClickHouse on start
// (revocation_locks without an applied ack).
type tracker struct {
	mu   sync.Mutex
	revs map[revKey]*pendingRevocation
	m    *metrics.Metrics
	sla  time.Duration
	now  func() time.Time
}

func newTracker(m *metrics.Metrics, sla time.Duration, now func() time.Time, reg prometheus.Registerer) *tracker {
	t := &tracker{revs: map[revKey]*pendingRevocation{}, m: m, sla: sla, now: now}
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

func (t *tracker) add(k revKey, scope string, requestedMs int64, locks []control.LockRef, issuedMs int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pr := &pendingRevocation{scope: scope, requestedMs: requestedMs, issuedMs: issuedMs, locks: map[control.LockRef]bool{}}
	for _, l := range locks {
		pr.locks[l] = true
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

// load rebuilds the pending revocations of the last `since` from ClickHouse.
func (t *tracker) load(ctx context.Context, conn driver.Conn, since time.Duration) error {
	pending, err := store.PendingRevocations(ctx, conn, t.now().Add(-since))
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, l := range pending {
		k := revKey{l.RevocationID, l.CredentialID}
		pr := t.revs[k]
		if pr == nil {
			pr = &pendingRevocation{scope: l.Scope, requestedMs: l.RequestedMs, issuedMs: l.IssuedMs,
				locks: map[control.LockRef]bool{}}
			t.revs[k] = pr
		}
		pr.locks[l.Lock] = true
	}
	return nil
}

package control

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// Rejections the owner makes besides illegal transitions.
var (
	ErrSelfApproval      = errors.New("the requester may not approve their own request")
	ErrDuplicateApproval = errors.New("this approver has already approved")
	ErrExists            = errors.New("credential already exists")
	ErrNotFound          = errors.New("credential not found")
	ErrDeviceMismatch    = errors.New("the attestation is for another device; change the device first")
)

// batch collects what applying one batch of commands produces; nothing is
// visible outside until flush has published it.
type batch struct {
	now      int64
	overlay  map[string]*Record
	records  []*Record
	lockCmds []gateway.Command
	items    []itemRow
	revs     []revocationRow
	revLocks []revocationLockRow
	track    []trackedRevocation
	issued   []*Record
	sessions []session
	noLocks  []revocationRow
}

// session is a device/wallet session to revoke (the middle revocation layer).
type session struct{ credentialID, deviceID string }

type trackedRevocation struct {
	key         revKey
	scope       string
	requestedMs int64
	locks       []LockRef
}

// batchMark is how much a batch held before a command was applied.
type batchMark struct{ records, lockCmds, items, revs, revLocks, track, issued, sessions, noLocks int }

func (b *batch) mark() batchMark {
	return batchMark{len(b.records), len(b.lockCmds), len(b.items), len(b.revs), len(b.revLocks), len(b.track),
		len(b.issued), len(b.sessions), len(b.noLocks)}
}

// rollback drops what a failed command added and restores its credential.
func (b *batch) rollback(m batchMark, id string, cur *Record) {
	b.records, b.lockCmds, b.items = b.records[:m.records], b.lockCmds[:m.lockCmds], b.items[:m.items]
	b.revs, b.revLocks, b.track = b.revs[:m.revs], b.revLocks[:m.revLocks], b.track[:m.track]
	b.issued, b.sessions, b.noLocks = b.issued[:m.issued], b.sessions[:m.sessions], b.noLocks[:m.noLocks]
	if cur != nil {
		b.overlay[id] = cur
	} else {
		delete(b.overlay, id)
	}
}

func (p *Plane) newBatch() *batch {
	return &batch{now: p.opts.Now().UnixMilli(), overlay: map[string]*Record{}}
}

func (p *Plane) cur(b *batch, id string) *Record {
	if r, ok := b.overlay[id]; ok {
		return r
	}
	r, _ := p.view.get(id)
	return r
}

// handleCommands applies one batch of control.commands as the owner of its
// partitions. It first waits until this instance has applied everything on
// credential.events published so far (a previous owner's records after a
// rebalance, this instance's own earlier batches), so decisions are made
// on current state. Offsets are committed by the caller after it returns.
func (p *Plane) handleCommands(ctx context.Context, msgs []kafka.Message) error {
	start := time.Now()
	if err := bus.Retry(ctx, p.opts.Logger, "catch up credential.events", func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return p.follow.catchUp(cctx)
	}); err != nil {
		return err
	}
	p.locks.refresh()
	b := p.newBatch()
	for _, m := range msgs {
		c, err := decodeCommand(m.Value)
		if err != nil {
			p.m.commands.WithLabelValues("unknown", "invalid").Inc()
			continue
		}
		p.apply(b, c)
	}
	if err := p.flush(ctx, b); err != nil {
		return err
	}
	p.m.batchDuration.Observe(time.Since(start).Seconds())
	return nil
}

func (p *Plane) apply(b *batch, c Command) {
	if c.Op == opAck {
		if c.Ack != nil {
			p.tracker.ack(*c.Ack, p.opts.Now().UnixMilli())
		}
		p.m.commands.WithLabelValues(opAck, "applied").Inc()
		return
	}
	cur := p.cur(b, c.CredentialID)
	if cur != nil && cur.applied(c.CommandID) {
		p.m.commands.WithLabelValues(c.Op, "duplicate").Inc()
		if (c.Op == lifecycle.OpRevoke || c.Op == lifecycle.OpExpire) && c.RevocationID != "" && cur.RevocationID == c.RevocationID {
			p.revocationEffects(b, c, cur)
		}
		if c.RequestID != "" {
			b.items = append(b.items, itemFor(c, cur, nil))
		}
		return
	}
	m := b.mark()
	err := p.applyOp(b, c, cur)
	if err != nil {
		p.m.commands.WithLabelValues(c.Op, "rejected").Inc()
		b.rollback(m, c.CredentialID, cur) // a failed command leaves nothing behind
		if c.RequestID != "" {
			b.items = append(b.items, itemFor(c, cur, err))
		}
		return
	}
	p.m.commands.WithLabelValues(c.Op, "applied").Inc()
	if len(b.records) > m.records {
		b.records[len(b.records)-1].CommandDone = true
	}
	if c.RequestID != "" {
		b.items = append(b.items, itemFor(c, p.cur(b, c.CredentialID), nil))
	}
}

// itemFor is the status row of a command's request item.
func itemFor(c Command, r *Record, err error) itemRow {
	it := itemRow{RequestID: c.RequestID, Item: c.Item, CredentialID: c.CredentialID}
	if err != nil {
		it.Status = StatusFailed
		it.Error = err.Error()
		var te *lifecycle.TransitionError
		if errors.As(err, &te) {
			it.Detail = "current_state=" + te.From
		}
		return it
	}
	if c.Op != lifecycle.OpRequest {
		it.Status = StatusApplied
		if r != nil {
			it.Detail = "state=" + r.State
		}
		return it
	}
	switch {
	case r == nil:
		it.Status = StatusPending
	case r.State == event.StateRequested:
		it.Status = StatusPending
		it.Detail = fmt.Sprintf("awaiting approval (%d of %d)", len(r.Approvers), approvalsNeeded(r.ApprovalRule))
	case r.State == event.StateRevoked || r.State == event.StateArchived:
		if r.IssuedMs > 0 {
			it.Status = StatusIssued
		} else {
			it.Status = StatusFailed
			it.Error = "revoked before it was issued"
		}
		it.Detail = "state=" + r.State
	default:
		it.Status = StatusIssued
		it.Detail = "state=" + r.State
	}
	return it
}

// stricter returns the approval rule that needs more approvers.
func stricter(a, b string) string {
	if approvalsNeeded(b) > approvalsNeeded(a) {
		return b
	}
	return a
}

func approvalsNeeded(rule string) int {
	switch rule {
	case ApprovalOne:
		return 1
	case ApprovalTwo:
		return 2
	}
	return 0
}

// step makes the transition op from prev (nil for a new credential) and
// emits the resulting record; mutate changes the new record's fields.
func (p *Plane) step(b *batch, prev *Record, op string, c Command, mutate func(r *Record)) (*Record, error) {
	from := lifecycle.None
	if prev != nil {
		from = prev.State
	}
	to, err := lifecycle.Next(op, from)
	if err != nil {
		return nil, err
	}
	var r *Record
	if prev == nil {
		r = &Record{}
	} else {
		r = prev.clone()
	}
	r.SessionRevokedDevice, r.SessionRevokedMs = "", 0
	r.Reason = c.Reason
	if mutate != nil {
		mutate(r)
	}
	r.PrevState, r.State, r.Op = from, to, op
	if prev != nil {
		r.Seq = prev.Seq + 1
	} else {
		r.Seq = 1
	}
	r.TsMs = b.now
	r.CommandID = c.CommandID
	r.CommandDone = false
	r.Actor = c.Actor
	r.remember(c.CommandID)
	b.records = append(b.records, r)
	b.overlay[r.CredentialID] = r
	return r, nil
}

func (p *Plane) applyOp(b *batch, c Command, cur *Record) error {
	if c.Op != lifecycle.OpRequest && cur == nil {
		return ErrNotFound
	}
	switch c.Op {
	case lifecycle.OpRequest:
		return p.applyRequest(b, c, cur)
	case lifecycle.OpApprove:
		return p.applyApprove(b, c, cur)
	case lifecycle.OpActivate:
		if c.DeviceID != "" && cur.DeviceID != "" && c.DeviceID != cur.DeviceID {
			return ErrDeviceMismatch
		}
		_, err := p.activate(b, cur, c)
		return err
	case lifecycle.OpDeviceChange:
		r, err := p.step(b, cur, lifecycle.OpDeviceChange, c, func(r *Record) {
			if r.DeviceID != "" && r.DeviceID != c.DeviceID {
				r.SessionRevokedDevice, r.SessionRevokedMs = r.DeviceID, b.now
				b.sessions = append(b.sessions, session{r.CredentialID, r.DeviceID})
			}
			r.DeviceID = c.DeviceID
			r.Attested = false
			r.Attestation = nil
			r.ActivatedMs = 0
		})
		if err != nil {
			return err
		}
		if c.Attestation != nil {
			_, err = p.activate(b, r, c)
		}
		return err
	case lifecycle.OpSuspend:
		r, err := p.step(b, cur, lifecycle.OpSuspend, c, nil)
		if err != nil {
			return err
		}
		p.lockCommands(b, r, gateway.CommandRevoke, r.Locks, "")
		return nil
	case lifecycle.OpReinstate:
		r, err := p.step(b, cur, lifecycle.OpReinstate, c, nil)
		if err != nil {
			return err
		}
		p.lockCommands(b, r, gateway.CommandGrant, r.Locks, "")
		return nil
	case lifecycle.OpRevoke, lifecycle.OpExpire:
		return p.applyRevoke(b, c, cur)
	case lifecycle.OpArchive:
		_, err := p.step(b, cur, lifecycle.OpArchive, c, nil)
		return err
	case lifecycle.OpUpdate:
		return p.applyUpdate(b, c, cur)
	}
	return fmt.Errorf("unknown op %q", c.Op)
}

func (p *Plane) applyRequest(b *batch, c Command, cur *Record) error {
	if cur != nil {
		if cur.RequestID == c.RequestID && c.RequestID != "" {
			return nil // the same request again (idempotent)
		}
		return ErrExists
	}
	s := c.Spec
	if s == nil {
		return errors.New("request without a credential spec")
	}
	r, err := p.step(b, nil, lifecycle.OpRequest, c, func(r *Record) {
		r.CredentialID = c.CredentialID
		r.SubjectID = s.SubjectID
		r.Role = s.Role
		r.SiteID = s.SiteID
		r.DeviceID = s.DeviceID
		r.Refs = s.Refs
		r.ValidFromMs, r.ValidUntilMs = s.ValidFromMs, s.ValidUntilMs
		r.BreakGlass, r.BreakGlassMs = s.BreakGlass, s.BreakGlassMs
		r.RequestID, r.Item, r.RequestedMs = c.RequestID, c.Item, c.TsMs
		r.Issuer = c.Actor
		r.ApprovalRule = s.ApprovalRule
		r.TemplateVersion = s.Template
		r.DoorGroups = s.DoorGroups
		r.ExtraGroups = s.ExtraGroups
		r.Windows = s.Windows
		r.Exception, r.ExceptionWhy = s.Exception, s.ExceptionWhy
		r.Attestation = s.Attestation
	})
	if err != nil {
		return err
	}
	if approvalsNeeded(r.ApprovalRule) > 0 {
		return nil
	}
	r, err = p.step(b, r, lifecycle.OpApprove, c, nil)
	if err != nil {
		return err
	}
	return p.issue(b, r, c)
}

func (p *Plane) applyApprove(b *batch, c Command, cur *Record) error {
	if _, err := lifecycle.Next(lifecycle.OpAddApproval, cur.State); err != nil {
		return err
	}
	if c.Actor == cur.Issuer {
		return ErrSelfApproval
	}
	if slices.Contains(cur.Approvers, c.Actor) {
		return ErrDuplicateApproval
	}
	op := lifecycle.OpAddApproval
	if len(cur.Approvers)+1 >= approvalsNeeded(cur.ApprovalRule) {
		op = lifecycle.OpApprove
	}
	r, err := p.step(b, cur, op, c, func(r *Record) { r.Approvers = append(r.Approvers, c.Actor) })
	if err != nil || op == lifecycle.OpAddApproval {
		return err
	}
	return p.issue(b, r, c)
}

// issue takes an approved credential to issued (entitlement created, grant
// commands to every lock of its door groups), then to pending_activation,
// and on to active when it already carries attestation evidence.
func (p *Plane) issue(b *batch, r *Record, c Command) error {
	locks := p.locks.forCredential(r.SiteID, r.DoorGroups)
	r, err := p.step(b, r, lifecycle.OpIssue, c, func(r *Record) {
		r.IssuedMs = b.now
		r.Locks = locks
		if r.BreakGlassMs > 0 {
			r.ValidFromMs, r.ValidUntilMs = b.now, b.now+r.BreakGlassMs
		}
	})
	if err != nil {
		return err
	}
	p.lockCommands(b, r, gateway.CommandGrant, r.Locks, "")
	b.issued = append(b.issued, r)
	if r.RequestID != "" && r.RequestID != c.RequestID {
		// Issued by an approval: the original request's item is done too.
		b.items = append(b.items, itemRow{RequestID: r.RequestID, Item: r.Item, CredentialID: r.CredentialID,
			Status: StatusIssued, Detail: "state=" + event.StatePendingActivation})
	}
	r, err = p.step(b, r, lifecycle.OpDeliver, c, nil)
	if err != nil {
		return err
	}
	if r.Attestation != nil && r.DeviceID != "" {
		_, err = p.activate(b, r, c)
	}
	return err
}

func (p *Plane) activate(b *batch, r *Record, c Command) (*Record, error) {
	r, err := p.step(b, r, lifecycle.OpActivate, c, func(r *Record) {
		if c.Attestation != nil {
			r.Attestation = c.Attestation
		}
		if r.DeviceID == "" && r.Attestation != nil {
			r.DeviceID = r.Attestation.DeviceID
		}
		r.Attested = r.Attestation != nil
		r.ActivatedMs = b.now
	})
	if err == nil {
		p.m.activations.WithLabelValues("success").Inc()
	}
	return r, err
}

func (p *Plane) applyRevoke(b *batch, c Command, cur *Record) error {
	scope := c.Scope
	if scope == "" {
		scope = ScopeCredential
	}
	if c.Op == lifecycle.OpExpire && cur.ValidUntilMs > b.now {
		return errors.New("not expired: valid_until is in the future")
	}
	r, err := p.step(b, cur, c.Op, c, func(r *Record) {
		r.RevocationID = c.RevocationID
		if r.DeviceID != "" {
			r.SessionRevokedDevice, r.SessionRevokedMs = r.DeviceID, b.now
			b.sessions = append(b.sessions, session{r.CredentialID, r.DeviceID})
		}
	})
	if err != nil {
		return err
	}
	p.revocationEffects(b, c, r)
	return nil
}

// revocationEffects queues what a revocation does besides its record: a
// revoke command to every lock that was told to hold the credential, the
// revocation's rows in ClickHouse, and its tracking. A re-delivered revoke
// command (the owner may have crashed after publishing the record) queues
// them again: all of it is idempotent (a second revoke on a lock is a
// no-op, the rows deduplicate by key).
func (p *Plane) revocationEffects(b *batch, c Command, r *Record) {
	scope := c.Scope
	if scope == "" {
		scope = ScopeCredential
	}
	locks := r.Locks // set at issue: empty when it never was
	requested := c.TsMs
	if requested <= 0 {
		requested = b.now
	}
	cmdIDs := p.lockCommands(b, r, gateway.CommandRevoke, locks, c.RevocationID)
	row := revocationRow{RevocationID: c.RevocationID, CredentialID: r.CredentialID, SubjectID: r.SubjectID,
		Scope: scope, DeviceID: r.SessionRevokedDevice, RequestedMs: requested, SessionRevokedMs: r.SessionRevokedMs,
		Locks: len(locks)}
	b.revs = append(b.revs, row)
	for i, l := range locks {
		b.revLocks = append(b.revLocks, revocationLockRow{RevocationID: c.RevocationID, CredentialID: r.CredentialID,
			Vendor: l.Vendor, LockID: l.LockID, CommandID: cmdIDs[i], IssuedMs: b.now})
	}
	if len(locks) > 0 {
		b.track = append(b.track, trackedRevocation{key: revKey{c.RevocationID, r.CredentialID}, scope: scope,
			requestedMs: requested, locks: locks})
	} else {
		b.noLocks = append(b.noLocks, row)
	}
}

func (p *Plane) applyUpdate(b *batch, c Command, cur *Record) error {
	t := c.Template
	if t == nil || t.Role != cur.Role {
		return errors.New("update without the credential's role template")
	}
	if t.Version <= cur.TemplateVersion {
		return nil // already on this version or newer
	}
	groups, why := t.resolveGroups(cur.ExtraGroups)
	r, err := p.step(b, cur, lifecycle.OpUpdate, c, func(r *Record) {
		r.TemplateVersion = t.Version
		r.DoorGroups = groups
		r.Windows = t.Windows
		r.Exception, r.ExceptionWhy = why != "" || r.BreakGlass, why
		if r.BreakGlass {
			r.ExceptionWhy = "break-glass"
		}
		if r.State == event.StateRequested {
			r.ApprovalRule = stricter(r.ApprovalRule, t.Approval)
		}
		if t.MaxValiditySeconds > 0 && !r.BreakGlass {
			from := r.ValidFromMs
			if from == 0 {
				from = max(r.IssuedMs, r.RequestedMs)
			}
			if limit := from + t.MaxValiditySeconds*1000; r.ValidUntilMs == 0 || r.ValidUntilMs > limit {
				r.ValidUntilMs = limit
			}
		}
	})
	if err != nil {
		return err
	}
	switch r.State {
	case event.StateIssued, event.StatePendingActivation, event.StateActive, event.StateSuspended:
		locks := p.locks.forCredential(r.SiteID, r.DoorGroups)
		removed, added := diffLocks(cur.Locks, locks)
		r.Locks = locks
		if !sameWindows(cur.Windows, r.Windows) || cur.ValidUntilMs != r.ValidUntilMs {
			added = locks // the locks that keep it need the new windows or end too
		}
		if r.State != event.StateSuspended {
			p.lockCommands(b, r, gateway.CommandRevoke, removed, "")
			p.lockCommands(b, r, gateway.CommandGrant, added, "")
		}
	}
	return nil
}

func sameWindows(a, b []Window) bool {
	return slices.EqualFunc(a, b, func(x, y Window) bool {
		return x.Start == y.Start && x.End == y.End && slices.Equal(x.Days, y.Days)
	})
}

func diffLocks(old, cur []LockRef) (removed, added []LockRef) {
	for _, l := range old {
		if !slices.Contains(cur, l) {
			removed = append(removed, l)
		}
	}
	for _, l := range cur {
		if !slices.Contains(old, l) {
			added = append(added, l)
		}
	}
	return removed, added
}

// lockCommands queues one command per lock and returns their ids.
func (p *Plane) lockCommands(b *batch, r *Record, typ string, locks []LockRef, revocationID string) []string {
	ids := make([]string, len(locks))
	for i, l := range locks {
		cmd := gateway.Command{CommandID: uuid.NewString(), Type: typ, Vendor: l.Vendor, LockID: l.LockID,
			CredentialID: r.CredentialID, SubjectID: r.SubjectID, UserRefHash: refFor(r.Refs, l),
			RevocationID: revocationID, IssuedMs: b.now}
		if typ == gateway.CommandGrant {
			cmd.ValidFromMs, cmd.ValidUntilMs, cmd.Windows = r.ValidFromMs, r.ValidUntilMs, r.Windows
		}
		ids[i] = cmd.CommandID
		b.lockCmds = append(b.lockCmds, cmd)
	}
	return ids
}

// refFor returns the credential's identity on a lock: a lock-specific
// reference wins over a vendor-wide one.
func refFor(refs []event.CredentialRef, l LockRef) string {
	vendorWide := ""
	for _, r := range refs {
		if r.Vendor != l.Vendor {
			continue
		}
		if r.LockID == l.LockID {
			return r.UserRefHash
		}
		if r.LockID == "" {
			vendorWide = r.UserRefHash
		}
	}
	return vendorWide
}

// flush publishes what a batch produced: lifecycle records first (the
// entitlement layer: from here the credential is disabled everywhere the
// registry or a detector looks), then the lock commands (the locks layer),
// then the revocation rows and request statuses in ClickHouse. Each step
// retries until it succeeds: the batch's offsets are committed only after
// all of it is durable, and a re-delivered revocation re-queues its effects.
func (p *Plane) flush(ctx context.Context, b *batch) error {
	log := p.opts.Logger
	if len(b.records) > 0 {
		msgs := make([]kafka.Message, len(b.records))
		for i, r := range b.records {
			v, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode credential record: %w", err)
			}
			msgs[i] = kafka.Message{Key: []byte(r.CredentialID), Value: v, Time: time.UnixMilli(r.TsMs),
				Headers: []kafka.Header{{Key: headerSeq, Value: strconv.AppendUint(nil, r.Seq, 10)}}}
		}
		if err := bus.Retry(ctx, log, "publish credential.events", func(ctx context.Context) error {
			return p.records.WriteMessages(ctx, msgs...)
		}); err != nil {
			return err
		}
		for _, r := range b.records {
			p.view.put(r)
		}
	}
	disabled := p.opts.Now().UnixMilli()
	for i := range b.revs {
		b.revs[i].DisabledMs = disabled
		p.m.disableLatency.Observe(float64(disabled-b.revs[i].RequestedMs) / 1000)
	}
	for _, row := range b.noLocks {
		p.m.revocationLatency.WithLabelValues(row.Scope).Observe(float64(disabled-row.RequestedMs) / 1000)
	}
	// Track before the locks are told, so no ack can outrun its revocation.
	for _, t := range b.track {
		p.tracker.add(t.key, t.scope, t.requestedMs, t.locks, b.now)
	}
	// The locks are told while the batch's rows go to ClickHouse; the
	// batch is committed once both are done.
	g, gctx := errgroup.WithContext(ctx)
	if len(b.lockCmds) > 0 {
		msgs := make([]kafka.Message, len(b.lockCmds))
		for i, c := range b.lockCmds {
			v, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("encode lock command: %w", err)
			}
			msgs[i] = kafka.Message{Key: []byte(c.LockID), Value: v}
			p.m.lockCommands.WithLabelValues(c.Type).Inc()
		}
		g.Go(func() error {
			return bus.Retry(gctx, log, "publish lock.commands", func(ctx context.Context) error {
				return p.lockOut.WriteMessages(ctx, msgs...)
			})
		})
	}
	g.Go(func() error {
		return bus.Retry(gctx, log, "insert revocations", func(ctx context.Context) error {
			return insertRevocations(ctx, p.opts.Conn, b.revs, b.revLocks)
		})
	})
	g.Go(func() error {
		return bus.Retry(gctx, log, "insert request status", func(ctx context.Context) error {
			return insertItems(ctx, p.opts.Conn, p.opts.Now(), b.items)
		})
	})
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range b.issued {
		if r.RequestedMs > 0 {
			p.m.timeToIssue.Observe(float64(r.IssuedMs-r.RequestedMs) / 1000)
		}
	}
	if p.opts.SessionRevoker != nil {
		for _, s := range b.sessions {
			sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			if err := p.opts.SessionRevoker(sctx, s.credentialID, s.deviceID); err != nil {
				log.Warn("device session revocation failed", "err", err)
			}
			cancel()
		}
	}
	return nil
}

// lockIndex answers "which locks hold a credential of these door groups"
// from the registry, rebuilt when the registry changes (at most every 2 s).
type lockIndex struct {
	reg     *registry.Registry
	mu      sync.Mutex
	builtAt time.Time
	n       int
	byGroup map[string][]registry.Lock
	all     []registry.Lock
}

func newLockIndex(reg *registry.Registry) *lockIndex { return &lockIndex{reg: reg} }

func (li *lockIndex) refresh() {
	li.mu.Lock()
	defer li.mu.Unlock()
	n, _ := li.reg.Len()
	if li.byGroup != nil && n == li.n && time.Since(li.builtAt) < 2*time.Second {
		return
	}
	li.all = li.reg.Locks()
	sort.Slice(li.all, func(i, j int) bool {
		if li.all[i].Vendor != li.all[j].Vendor {
			return li.all[i].Vendor < li.all[j].Vendor
		}
		return li.all[i].LockID < li.all[j].LockID
	})
	li.byGroup = map[string][]registry.Lock{}
	for _, l := range li.all {
		for _, g := range l.Groups {
			li.byGroup[g] = append(li.byGroup[g], l)
		}
	}
	li.n, li.builtAt = n, time.Now()
}

func (li *lockIndex) forCredential(site string, groups []string) []LockRef {
	li.refresh()
	li.mu.Lock()
	defer li.mu.Unlock()
	seen := map[LockRef]bool{}
	var out []LockRef
	addLock := func(l registry.Lock) {
		if site != "" && l.SiteID != "" && l.SiteID != site {
			return
		}
		ref := LockRef{Vendor: l.Vendor, LockID: l.LockID}
		if !seen[ref] {
			seen[ref] = true
			out = append(out, ref)
		}
	}
	for _, g := range groups {
		if g == "*" {
			for _, l := range li.all {
				addLock(l)
			}
			continue
		}
		for _, l := range li.byGroup[g] {
			addLock(l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// groups returns every door group with its number of locks.
func (li *lockIndex) groups() map[string]int {
	li.refresh()
	li.mu.Lock()
	defer li.mu.Unlock()
	out := map[string]int{}
	for g, ls := range li.byGroup {
		out[g] = len(ls)
	}
	return out
}

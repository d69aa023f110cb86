package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

// runReconcile re-sends the lock commands no lock acknowledged (backoff and
// jitter, same command id, until the give-up), escalates revocations past
// the SLA, and merges what ClickHouse knows of unacknowledged commands and
// pending revocations (on start, then every AdoptInterval): commands of a
// stopped owner are adopted by whoever runs.
func (p *Processor) runReconcile(ctx context.Context) error {
	adopt := func(force bool) func(context.Context) error {
		return func(ctx context.Context) error {
			now := p.opts.Now()
			out, err := store.UnackedCommands(ctx, p.opts.Conn, now.Add(-p.opts.GiveUp))
			if err != nil {
				return err
			}
			n := 0
			for _, x := range out {
				if p.outbox.adopt(x, now.UnixMilli(), force) {
					n++
				}
			}
			if n > 0 {
				p.opts.Logger.Info("adopted unacknowledged lock commands", "commands", n)
			}
			return nil
		}
	}
	if err := bus.Retry(ctx, p.opts.Logger, "load unacknowledged lock commands", adopt(true)); err != nil {
		return nil // only ends with ctx
	}
	tick := time.NewTicker(p.opts.ReconcileInterval)
	defer tick.Stop()
	lastAdopt := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := p.reconcileOnce(ctx); err != nil && ctx.Err() == nil {
			p.opts.Logger.Warn("lock command reconciliation failed", "err", err)
		}
		if time.Since(lastAdopt) >= p.opts.AdoptInterval {
			lastAdopt = time.Now()
			actx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := adopt(false)(actx); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("adopting unacknowledged lock commands failed", "err", err)
			}
			if err := p.tracker.load(actx, p.opts.Conn, 7*24*time.Hour); err != nil && ctx.Err() == nil {
				p.opts.Logger.Warn("merging pending revocations failed", "err", err)
			}
			cancel()
		}
	}
}

func (p *Processor) reconcileOnce(ctx context.Context) error {
	now := p.opts.Now().UnixMilli()
	resend, gaveUp := p.outbox.due(now)
	if len(resend) > 0 {
		msgs := make([]kafka.Message, len(resend))
		for i := range resend {
			c := &resend[i]
			if c.Type != gateway.CommandACLPush {
				// What the lock should hold now (the view moved on since
				// the first send).
				c.ACLVersion = aclVersion(p.view.aclIDs(control.LockRef{Vendor: c.Vendor, LockID: c.LockID}))
				p.outbox.update(*c)
			}
			v, err := json.Marshal(c)
			if err != nil {
				return fmt.Errorf("encode lock command: %w", err)
			}
			msgs[i] = kafka.Message{Key: []byte(c.LockID), Value: v}
			p.m.Resends.WithLabelValues(c.Type).Inc()
		}
		if err := bus.Retry(ctx, p.opts.Logger, "re-send lock.commands", func(ctx context.Context) error {
			return p.lockOut.WriteMessages(ctx, msgs...)
		}); err != nil {
			return err
		}
		if err := bus.Retry(ctx, p.opts.Logger, "insert lock command sends", func(ctx context.Context) error {
			return store.InsertLockSends(ctx, p.opts.Conn, resend)
		}); err != nil {
			return err
		}
	}
	if len(gaveUp) > 0 {
		for _, g := range gaveUp {
			p.m.GiveUps.WithLabelValues(g.Command.Type).Inc()
			p.tracker.gaveUp(g.Command, now)
			p.opts.Logger.Warn("gave up on a lock command", "type", g.Command.Type, "lock", g.Command.Vendor+"/"+g.Command.LockID,
				"revocation", g.Command.RevocationID, "attempts", g.Attempts, "last_error", g.Error)
		}
		if err := bus.Retry(ctx, p.opts.Logger, "insert lock command give-ups", func(ctx context.Context) error {
			return store.InsertGiveUps(ctx, p.opts.Conn, gaveUp)
		}); err != nil {
			return err
		}
	}
	if overdue := p.tracker.overdue(now); len(overdue) > 0 {
		if err := p.escalate(ctx, overdue, now); err != nil {
			for _, o := range overdue {
				p.tracker.unescalate(o.revKey)
			}
			return err
		}
	}
	return nil
}

// EscalationAlertID is the id of a revocation's revocation_overdue alert
// (one per revocation, whichever owner raises it).
func EscalationAlertID(revocationID string) string {
	return detect.AlertID(detect.RevocationOverdue, revocationID, 0, "")
}

// escalate raises a revocation_overdue alert on the alerts topic for each
// revoked credential past the SLA and stores the escalation (the
// revocation resource then reads escalated).
func (p *Processor) escalate(ctx context.Context, overdue []overdueRevocation, nowMs int64) error {
	msgs := make([]kafka.Message, 0, len(overdue))
	rows := make([]store.Escalation, 0, len(overdue))
	sla := p.opts.PendingSLA
	for _, o := range overdue {
		id := EscalationAlertID(o.revocation)
		names := make([]string, 0, min(len(o.locks), 10))
		for i, l := range o.locks {
			if i == 10 {
				names = append(names, fmt.Sprintf("and %d more", len(o.locks)-10))
				break
			}
			names = append(names, l.String())
		}
		a := detect.Alert{AlertID: id, Detector: detect.RevocationOverdue, Severity: detect.SeverityHigh,
			SubjectID: o.subject, CredentialID: o.credential, TsMs: nowMs, WindowStartMs: o.requestedMs, WindowEndMs: nowMs,
			Observed: float64(len(o.locks)), Threshold: sla.Seconds(), Evidence: []string{},
			Explanation: fmt.Sprintf("revocation %s (%s) of credential %s was requested %s ago; %d lock(s) have not confirmed "+
				"it within the %s revocation SLA: %s. keyfleet keeps re-sending the commands until each lock acknowledges "+
				"or the give-up passes.", o.revocation, o.scope, o.credential,
				time.Duration(nowMs-o.requestedMs)*time.Millisecond, len(o.locks), sla, strings.Join(names, ", ")),
			SuggestedAction: "check these locks' gateways (offline, out of range, losing commands) and GET /v1/revocations/" +
				o.revocation + "; disable the doors by hand if a lock cannot be reached",
			Status: detect.StatusOpen, DetectedMs: nowMs}
		v, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode alert: %w", err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(o.subject), Value: v})
		rows = append(rows, store.Escalation{RevocationID: o.revocation, CredentialID: o.credential, AlertID: id,
			RequestedMs: o.requestedMs, EscalatedMs: nowMs, PendingLocks: len(o.locks)})
	}
	if err := p.alerts.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("publish revocation_overdue alerts: %w", err)
	}
	if err := store.InsertEscalations(ctx, p.opts.Conn, rows); err != nil {
		return err
	}
	p.m.Escalations.Add(float64(len(rows)))
	for _, o := range overdue {
		p.opts.Logger.Warn("revocation escalated past the SLA", "revocation", o.revocation, "credential", o.credential,
			"pending_locks", len(o.locks))
	}
	return nil
}

// aclVersion is the version of a set of credential ids.
func aclVersion(ids map[string]bool) string {
	list := make([]string, 0, len(ids))
	for id, on := range ids {
		if on {
			list = append(list, id)
		}
	}
	return gateway.ACLVersion(list)
}

// expectVersions sets each lock command of a batch to the ACL version its
// lock should report once it applied it, in order (the view does not hold
// the batch's records yet).
func (p *Processor) expectVersions(cmds []gateway.Command) {
	lists := map[control.LockRef]map[string]bool{}
	for i := range cmds {
		c := &cmds[i]
		l := control.LockRef{Vendor: c.Vendor, LockID: c.LockID}
		ids := lists[l]
		if ids == nil {
			ids = p.view.aclIDs(l)
			lists[l] = ids
		}
		switch c.Type {
		case gateway.CommandGrant:
			ids[c.CredentialID] = true
		case gateway.CommandRevoke:
			delete(ids, c.CredentialID)
		}
		c.ACLVersion = aclVersion(ids)
	}
}

// resync sends a lock its whole access list as the view has it (acl_push),
// tracked like any command until the lock acknowledges it.
func (p *Processor) resync(ctx context.Context, l control.LockRef, reason, reported, expected, trigger string) error {
	recs := p.view.acl(l)
	now := p.opts.Now().UnixMilli()
	cmd := gateway.Command{CommandID: uuid.NewString(), Type: gateway.CommandACLPush, Vendor: l.Vendor, LockID: l.LockID,
		Reason: reason, ACL: make([]string, 0, len(recs)), Entries: make([]gateway.ACLEntry, 0, len(recs)),
		IssuedMs: now, Attempt: 1, SentMs: now}
	for _, r := range recs {
		cmd.ACL = append(cmd.ACL, r.CredentialID)
		e := gateway.ACLEntry{CredentialID: r.CredentialID, SubjectID: r.SubjectID, UserRefHash: control.RefFor(r.Refs, l),
			ValidFromMs: r.ValidFromMs, ValidUntilMs: r.ValidUntilMs, Windows: r.Windows, Seq: r.Seq}
		if p.opts.Enforcement != nil { // only what the lock enforces, as a grant would
			carry := p.opts.Enforcement.Carry(r, l)
			if !carry.Windows {
				e.Windows = nil
			}
			if !carry.Expiry {
				e.ValidUntilMs = 0
			}
		}
		cmd.Entries = append(cmd.Entries, e)
	}
	cmd.ACLVersion = gateway.ACLVersion(cmd.ACL)
	if expected == "" {
		expected = cmd.ACLVersion
	}
	v, err := json.Marshal(cmd)
	if err != nil {
		return fmt.Errorf("encode acl_push: %w", err)
	}
	if err := bus.Retry(ctx, p.opts.Logger, "publish acl_push", func(ctx context.Context) error {
		return p.lockOut.WriteMessages(ctx, kafka.Message{Key: []byte(l.LockID), Value: v})
	}); err != nil {
		return err
	}
	p.outbox.sent(cmd)
	p.m.LockCommands.WithLabelValues(cmd.Type).Inc()
	p.m.Resyncs.WithLabelValues(reason).Inc()
	return bus.Retry(ctx, p.opts.Logger, "insert acl resync", func(ctx context.Context) error {
		if err := store.InsertLockSends(ctx, p.opts.Conn, []gateway.Command{cmd}); err != nil {
			return err
		}
		return store.InsertResyncs(ctx, p.opts.Conn, []store.Resync{{CommandID: cmd.CommandID, Vendor: l.Vendor,
			LockID: l.LockID, Reason: reason, Reported: reported, Expected: expected, Version: cmd.ACLVersion,
			Trigger: trigger, Entries: len(cmd.Entries), AtMs: now}})
	})
}

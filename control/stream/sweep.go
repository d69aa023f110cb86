package stream

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/audit"
)

// sweep applies expiry: credentials past valid_until are revoked by the
// control plane itself (break-glass access ends this way). Every instance
// sweeps; a duplicate expire command is harmless (the owner rejects the
// second one: the credential is already revoked).
func (p *Processor) sweep(ctx context.Context) error {
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

func (p *Processor) sweepOnce(ctx context.Context) error {
	now := p.opts.Now().UnixMilli()
	due := p.view.expiring(now)
	p.sweepMu.Lock()
	var cmds []control.Command
	var heads []store.RevocationHead
	for _, r := range due {
		if p.swept[r.CredentialID] == r.Seq {
			continue
		}
		reason := "expired"
		if r.BreakGlass {
			reason = "break-glass expired"
		}
		c := control.Command{CommandID: uuid.NewString(), Op: lifecycle.OpExpire, CredentialID: r.CredentialID,
			Actor: "system", Reason: reason, TsMs: now, RevocationID: uuid.NewString(), Scope: control.ScopeExpiry}
		cmds = append(cmds, c)
		heads = append(heads, store.RevocationHead{RevocationID: c.RevocationID, Scope: control.ScopeExpiry,
			SubjectID: r.SubjectID, CredentialIDs: []string{r.CredentialID}, RequestedMs: now, Actor: "system", Reason: reason})
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
	if err := store.InsertRevocationHeads(ctx, p.opts.Conn, heads...); err != nil {
		return err
	}
	if err := p.Publish(ctx, cmds...); err != nil {
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

// audit appends an entry; an error means the action must not happen.
func (p *Processor) audit(ctx context.Context, actor, action, target string, details map[string]string) error {
	for k, v := range details {
		if v == "" {
			delete(details, k)
		}
	}
	if err := p.opts.Audit.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: target,
		Details: details, TsMs: p.opts.Now().UnixMilli()}); err != nil {
		return fmt.Errorf("%w: %w", control.ErrAudit, err)
	}
	return nil
}

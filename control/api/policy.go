package api

import (
	"context"
	"fmt"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// GrantPolicy judges a credential against the locks it would be granted on
// (the estate policy; estate/grant implements it on the capability matrix
// and the lock registry): each refusal names a lock and the capability the
// grant needs that it lacks. An error means the policy could not be asked
// (the request is not carried out).
type GrantPolicy interface {
	Refusals(ctx context.Context, spec control.Spec) ([]control.Refusal, error)
}

// ProblemCapabilityMissing is the problem code of a grant the estate
// policy refuses (422); extra.refusals lists control.Refusal.
const ProblemCapabilityMissing = "capability_missing"

// refusals asks the policy about a resolved credential (nothing without a
// policy; break-glass access is never refused by it).
func (p *API) refusals(ctx context.Context, spec control.Spec) ([]control.Refusal, error) {
	if p.opts.Policy == nil || spec.BreakGlass {
		return nil, nil
	}
	return p.opts.Policy.Refusals(ctx, spec)
}

// refusalText is one line naming every refused lock and capability.
func refusalText(rs []control.Refusal) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = r.String()
	}
	text := fmt.Sprintf("the estate policy refuses the grant on %d lock(s): %s", len(rs), strings.Join(parts, "; "))
	if len(rs) > 0 && rs[0].Exception != "" {
		text += " (" + rs[0].Exception + ")"
	}
	return text
}

// refusalProblem is the 422 of a refused grant.
func refusalProblem(rs []control.Refusal) *httpapi.Problem {
	pr := httpapi.NewProblem(fiber.StatusUnprocessableEntity, ProblemCapabilityMissing, refusalText(rs))
	pr.Extra = map[string]any{"refusals": rs}
	return pr
}

// checkItems refuses the items the policy refuses (a failed item names the
// locks and capabilities, like any validation failure).
func (p *API) checkItems(ctx context.Context, items []item) error {
	for i := range items {
		if items[i].err != nil {
			continue
		}
		rs, err := p.refusals(ctx, items[i].spec)
		if err != nil {
			return unavailable(fmt.Errorf("estate policy: %w", err))
		}
		if len(rs) > 0 {
			items[i].err = &fieldError{field: "locks", reason: refusalText(rs)}
		}
	}
	return nil
}

// checkTemplate refuses a template whose credentials the policy would
// refuse on some lock of its door groups, at any site.
func (p *API) checkTemplate(ctx context.Context, t control.Template) error {
	if t.BreakGlass {
		return nil
	}
	spec := control.Spec{Role: t.Role, DoorGroups: t.DoorGroups, Windows: t.Windows}
	if t.MaxValiditySeconds > 0 {
		spec.ValidUntilMs = p.opts.Now().UnixMilli() + t.MaxValiditySeconds*1000
	}
	rs, err := p.refusals(ctx, spec)
	if err != nil {
		return unavailable(fmt.Errorf("estate policy: %w", err))
	}
	if len(rs) > 0 {
		return refusalProblem(rs)
	}
	return nil
}

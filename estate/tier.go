package estate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrUnknownTier is returned for a lock whose tier has no requirement.
var ErrUnknownTier = errors.New("unknown tier")

// Requirement is what a risk tier demands of the locks on its doors. Tier 1
// is the most critical; Weight scales a gap's severity when doors are
// ranked, so a lower tier number never weighs less than a higher one.
type Requirement struct {
	Tier  int    `json:"tier"`
	Name  string `json:"name"`
	Doors string `json:"doors"` // which doors belong to the tier, in words
	// MaxRevocation is the revocation SLA: the worst delay allowed.
	MaxRevocation Duration `json:"max_revocation"`
	// Schedules, ExpiringKeys, AuditWho, Attestation and OfflineValidation
	// require weekly windows at the lock, end dates enforced at the lock,
	// records that say who, a verified device key, and a lock that decides
	// without its cloud. Schedules and ExpiringKeys also decide whether a
	// grant whose windows or end date the lock cannot enforce is refused
	// (GrantRefusals) or carried with weaker enforcement.
	Schedules         bool `json:"schedules"`
	ExpiringKeys      bool `json:"expiring_keys"`
	AuditWho          bool `json:"audit_who"`
	Attestation       bool `json:"attestation"`
	OfflineValidation bool `json:"offline_validation"`
	Weight            int  `json:"weight"`
}

// Tiers are the tier requirements, sorted by tier.
type Tiers []Requirement

// Merge returns t with rows replacing the tier of the same number or added.
func (t Tiers) Merge(rows ...Requirement) Tiers {
	out := slices.Clone(t)
	for _, r := range rows {
		if i := slices.IndexFunc(out, func(x Requirement) bool { return x.Tier == r.Tier }); i >= 0 {
			out[i] = r
		} else {
			out = append(out, r)
		}
	}
	slices.SortStableFunc(out, func(a, b Requirement) int { return a.Tier - b.Tier })
	return out
}

// Get returns the requirement of a tier.
func (t Tiers) Get(tier int) (Requirement, bool) {
	i := slices.IndexFunc(t, func(r Requirement) bool { return r.Tier == tier })
	if i < 0 {
		return Requirement{}, false
	}
	return t[i], true
}

// Unclassified is the tier of a lock whose tier is not recorded: it is
// judged as the least critical tier (For).
const Unclassified = 0

// For returns the requirement a lock of the given tier is judged by: its
// tier's, or the least critical tier's for an Unclassified lock.
func (t Tiers) For(tier int) (Requirement, bool) {
	if tier == Unclassified && len(t) > 0 {
		return t[len(t)-1], true
	}
	return t.Get(tier)
}

// Validate checks that the tiers are numbered 1, 2, … without gaps, each has
// a name, an SLA and a positive weight, and weights do not grow with the
// tier number.
func (t Tiers) Validate() error {
	if len(t) == 0 {
		return errors.New("tiers: none")
	}
	var errs []error
	for i, r := range t {
		if r.Tier != i+1 {
			errs = append(errs, fmt.Errorf("tier %d: tiers are numbered 1, 2, … in order without gaps", r.Tier))
			continue
		}
		if strings.TrimSpace(r.Name) == "" {
			errs = append(errs, fmt.Errorf("tier %d: name is empty", r.Tier))
		}
		if r.MaxRevocation <= 0 {
			errs = append(errs, fmt.Errorf("tier %d: max_revocation must be positive", r.Tier))
		}
		if r.Weight <= 0 {
			errs = append(errs, fmt.Errorf("tier %d: weight must be positive", r.Tier))
		}
		if i > 0 && r.Weight > t[i-1].Weight {
			errs = append(errs, fmt.Errorf("tier %d: weight %d above tier %d's %d", r.Tier, r.Weight, t[i-1].Tier, t[i-1].Weight))
		}
	}
	return errors.Join(errs...)
}

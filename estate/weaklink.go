package estate

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Upgrade kinds.
const (
	UpgradeFirmware = "firmware" // same model, newer firmware: no hardware cost
	UpgradeReplace  = "replace"  // another model fitted to the door
)

// Upgrade is the change that closes every gap of a door: a firmware bump of
// the same model when one does, else the cheapest model in the matrix.
// Firmware is the target row's rule (e.g. ">= 2.0"; "" for any firmware).
type Upgrade struct {
	Kind     string `json:"kind"`
	Vendor   string `json:"vendor"`
	Model    string `json:"model"`
	Firmware string `json:"firmware,omitempty"`
	Cost     int    `json:"cost"`
}

func (u Upgrade) String() string {
	p := Profile{Vendor: u.Vendor, Model: u.Model, Firmware: u.Firmware}
	if u.Kind == UpgradeFirmware {
		return "firmware " + p.Name()
	}
	return fmt.Sprintf("replace with %s (cost %d)", p.Name(), u.Cost)
}

// WeakLink is a door whose tier demands more than its lock can do.
// Risk = tier weight × the sum of the gaps' severities × (uses + 1): the +1
// keeps a door nobody used in the window ranked by its exposure alone.
// Upgrade is nil when no row of the matrix closes every gap.
type WeakLink struct {
	Lock     Lock     `json:"lock"`
	Profile  string   `json:"profile"`
	Fallback string   `json:"fallback,omitempty"`
	Gaps     []Gap    `json:"gaps"`
	Uses     int      `json:"uses"`
	Risk     int64    `json:"risk"`
	Upgrade  *Upgrade `json:"upgrade,omitempty"`
}

// WeakLinks lists the locks whose tier demands more than they can do, with
// the upgrade that fixes each, ranked by risk (highest first; ties by tier,
// site, door, vendor, lock id, so the order is stable). uses counts the
// uses of each door over the caller's window (e.g. the last 30 days).
func (p Policy) WeakLinks(locks []Lock, uses map[Door]int) ([]WeakLink, error) {
	var out []WeakLink
	for _, l := range locks {
		req, ok := p.Tiers.For(l.Tier)
		if !ok {
			return nil, fmt.Errorf("lock %s/%s: %w %d", l.Vendor, l.LockID, ErrUnknownTier, l.Tier)
		}
		m, err := p.Matrix.Lookup(l.Vendor, l.Model, l.Firmware)
		if err != nil {
			return nil, fmt.Errorf("lock %s/%s: %w", l.Vendor, l.LockID, err)
		}
		gaps := TierGaps(req, m.Capabilities)
		if len(gaps) == 0 {
			continue
		}
		n := max(uses[l.Door], 0)
		out = append(out, WeakLink{Lock: l, Profile: m.Name(), Fallback: m.Fallback, Gaps: gaps, Uses: n,
			Risk:    int64(req.Weight) * int64(severitySum(gaps)) * (int64(n) + 1),
			Upgrade: p.Matrix.upgrade(l, req)})
	}
	slices.SortStableFunc(out, func(a, b WeakLink) int {
		return cmp.Or(cmp.Compare(b.Risk, a.Risk), byDoor(a, b))
	})
	return out, nil
}

// planTier orders tiers critical first, an unclassified lock last.
func planTier(t int) int {
	if t == Unclassified {
		return math.MaxInt
	}
	return t
}

func byDoor(a, b WeakLink) int {
	return cmp.Or(cmp.Compare(planTier(a.Lock.Tier), planTier(b.Lock.Tier)), cmp.Compare(a.Lock.SiteID, b.Lock.SiteID),
		cmp.Compare(a.Lock.DoorID, b.Lock.DoorID), cmp.Compare(a.Lock.Vendor, b.Lock.Vendor),
		cmp.Compare(a.Lock.LockID, b.Lock.LockID))
}

// WeakLinkReport is the weak-link report of an estate: the locks in
// service as registered when it was made, ranked by the traffic of
// [FromMs, ToMs) (uses per door).
type WeakLinkReport struct {
	FromMs int64  `json:"from_ms"`
	ToMs   int64  `json:"to_ms"`
	Site   string `json:"site,omitempty"`
	// Locks are the locks judged; Unclassified of them have no recorded
	// tier (judged as the least critical tier).
	Locks        int `json:"locks"`
	Unclassified int `json:"unclassified"`
	// Total is the number of weak links; WeakLinks holds them (by risk, or
	// in plan order), at most what was asked for.
	Total     int        `json:"total"`
	WeakLinks []WeakLink `json:"weak_links"`
	// Order is "risk" or "plan" (critical doors first).
	Order string `json:"order"`
}

// Plan orders weak links for upgrading critical doors first: by tier
// (tier 1 first, unclassified locks last), then by risk within the tier,
// then by door. It returns a new slice.
func Plan(links []WeakLink) []WeakLink {
	out := slices.Clone(links)
	slices.SortStableFunc(out, func(a, b WeakLink) int {
		return cmp.Or(cmp.Compare(planTier(a.Lock.Tier), planTier(b.Lock.Tier)), cmp.Compare(b.Risk, a.Risk), byDoor(a, b))
	})
	return out
}

// upgrade finds the cheapest row that closes every gap of req: a firmware
// bump (a newer rule of the lock's own model, cost 0; with no readable
// firmware on record any rule with a minimum counts) when one does, else a
// model to fit instead (its Cost; same vendor first among equals, then by
// name). Default rows are never candidates.
func (m Matrix) upgrade(l Lock, req Requirement) *Upgrade {
	fw, fwOK := parseVersion(l.Firmware)
	var best *Upgrade
	var bestMin version
	better := func(u Upgrade, min version) bool {
		if best == nil {
			return true
		}
		return cmp.Or(cmp.Compare(u.Cost, best.Cost),
			cmp.Compare(kindOrder(u.Kind), kindOrder(best.Kind)),
			cmp.Compare(vendorOrder(u.Vendor, l.Vendor), vendorOrder(best.Vendor, l.Vendor)),
			cmp.Compare(u.Vendor, best.Vendor), cmp.Compare(u.Model, best.Model),
			compare(min, bestMin)) < 0
	}
	for _, p := range m {
		if p.Model == DefaultModel || len(TierGaps(req, p.Capabilities)) > 0 {
			continue
		}
		u := Upgrade{Kind: UpgradeReplace, Vendor: p.Vendor, Model: p.Model, Firmware: p.Firmware, Cost: p.Cost}
		if p.Vendor == l.Vendor && p.Model == l.Model {
			// The lock's own model: only a newer firmware rule is an upgrade.
			if p.min() == nil || fwOK && compare(p.min(), fw) <= 0 {
				continue
			}
			u.Kind, u.Cost = UpgradeFirmware, 0
		}
		if better(u, p.min()) {
			best, bestMin = &u, p.min()
		}
	}
	return best
}

func kindOrder(k string) int {
	if k == UpgradeFirmware {
		return 0
	}
	return 1
}

func vendorOrder(v, own string) int {
	if v == own {
		return 0
	}
	return 1
}

package estate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// summary is a weak link in one line, for readable table tests.
type summary struct {
	Lock    string
	Risk    int64
	Gaps    []string
	Upgrade string
}

func summarize(links []WeakLink) []summary {
	out := make([]summary, 0, len(links))
	for _, l := range links {
		s := summary{Lock: l.Lock.LockID, Risk: l.Risk, Upgrade: "none"}
		for _, g := range l.Gaps {
			s.Gaps = append(s.Gaps, g.Capability+":"+g.Severity.String())
		}
		if l.Upgrade != nil {
			s.Upgrade = l.Upgrade.String()
		}
		out = append(out, s)
	}
	return out
}

func door(site, id string) Door { return Door{SiteID: site, DoorID: id} }

func TestWeakLinksDefaultEstate(t *testing.T) {
	locks := []Lock{
		{Vendor: "legacy", LockID: "panel-main", Model: "osdp-panel", Firmware: "1.4", Door: door("s1", "main"), Tier: 1},
		{Vendor: "nuki", LockID: "nuki-server", Model: "smart-lock-3-pro", Firmware: "3.1", Door: door("s1", "server"), Tier: 1},
		{Vendor: "matter", LockID: "matter-staff", Model: "door-lock", Door: door("s1", "staff"), Tier: 2},
		{Vendor: "legacy", LockID: "panel-staff", Model: "osdp-panel", Firmware: "1.0", Door: door("s1", "staff-2"), Tier: 2},
		{Vendor: "seam", LockID: "seam-gym", Model: "generic-keypad-lock", Door: door("s1", "gym"), Tier: 3},
		{Vendor: "legacy", LockID: "acme-store", Model: "acme-9000", Door: door("s2", "store"), Tier: 2},
		{Vendor: "matter", LockID: "aliro-lobby", Model: "door-lock-aliro", Door: door("s2", "lobby"), Tier: 1},
	}
	uses := map[Door]int{door("s1", "main"): 100, door("s1", "server"): 10, door("s2", "store"): 5, door("s1", "gym"): 5000}
	links, err := DefaultPolicy().WeakLinks(locks, uses)
	require.NoError(t, err)
	assert.Equal(t, []summary{
		// 9 × (4+4+2+2) × 101
		{"panel-main", 10908, []string{"revocation_delay:critical", "attestation:critical", "audit:medium", "expiring_keys:medium"},
			"replace with matter/door-lock-aliro (cost 3)"},
		// 9 × 3 × 11
		{"nuki-server", 297, []string{"attestation:high"}, "replace with matter/door-lock-aliro (cost 3)"},
		// 3 × (4+3+2+2) × 6: an unknown model is judged by the conservative default.
		{"acme-store", 198, []string{"revocation_delay:critical", "schedules:high", "audit:medium", "expiring_keys:medium"},
			"replace with matter/door-lock (cost 2)"},
		// 3 × (4+2+2) × 1: unused doors still rank; among cost-2 models matter sorts first.
		{"panel-staff", 24, []string{"revocation_delay:critical", "audit:medium", "expiring_keys:medium"}, "replace with matter/door-lock (cost 2)"},
	}, summarize(links))
	assert.Contains(t, links[2].Fallback, "acme-9000")
	assert.Equal(t, "legacy/*", links[2].Profile)

	plan := Plan(links)
	assert.Equal(t, []string{"panel-main", "nuki-server", "acme-store", "panel-staff"}, lockIDs(plan))
}

func lockIDs(links []WeakLink) []string {
	var out []string
	for _, l := range links {
		out = append(out, l.Lock.LockID)
	}
	return out
}

func TestWeakLinksUpgradeChoice(t *testing.T) {
	// Tier 3 asks only for revocation within an hour: the nightly panel's
	// newer firmware closes it.
	p := DefaultPolicy()
	p.Tiers = p.Tiers.Merge(Requirement{Tier: 3, Name: "amenity", MaxRevocation: Duration(time.Hour), Weight: 1})
	// A cheaper replacement than any firmware would not matter: firmware costs 0.
	cheap := Profile{Vendor: "seam", Model: "cheap-fast", Capabilities: Capabilities{RevocationTypical: Duration(time.Second),
		RevocationWorst: Duration(time.Minute), Attestation: AttestNone, Audit: AuditNone, OnlineTelemetry: true}, Cost: 1, Source: "assumed"}
	p.Matrix = p.Matrix.Merge(cheap)
	require.NoError(t, p.Validate())

	f := func(name string, l Lock, want string) {
		t.Helper()
		l.LockID, l.Door, l.Tier = name, door("s", name), 3
		links, err := p.WeakLinks([]Lock{l}, nil)
		require.NoError(t, err)
		require.Len(t, links, 1, name)
		assert.Equal(t, want, summarize(links)[0].Upgrade, name)
	}
	f("old panel", Lock{Vendor: "legacy", Model: "osdp-panel", Firmware: "1.9"}, "firmware legacy/osdp-panel >= 2.0")
	f("panel firmware unknown", Lock{Vendor: "legacy", Model: "osdp-panel"}, "firmware legacy/osdp-panel >= 2.0")
	// An unknown model cannot take a firmware bump: the cheapest replacement.
	f("unknown panel", Lock{Vendor: "legacy", Model: "acme-9000", Firmware: "1.0"}, "replace with seam/cheap-fast (cost 1)")

	// Nothing in the matrix revokes within 10 seconds.
	p.Tiers = p.Tiers.Merge(Requirement{Tier: 3, Name: "amenity", MaxRevocation: Duration(10 * time.Second), Weight: 1})
	f("no fix", Lock{Vendor: "nuki", Model: "smart-lock-3-pro"}, "none")
}

func TestWeakLinksOrderIsStable(t *testing.T) {
	p := DefaultPolicy()
	mk := func(id, site, d string, tier int) Lock {
		return Lock{Vendor: "seam", LockID: id, Model: "generic-keypad-lock", Door: door(site, d), Tier: tier}
	}
	// Equal risk ties by tier, site, door, vendor, lock id, whatever the input order.
	locks := []Lock{mk("c", "s2", "a", 2), mk("b", "s1", "b", 2), mk("a", "s1", "b", 2), mk("d", "s1", "a", 2)}
	for range 3 {
		links, err := p.WeakLinks(locks, nil)
		require.NoError(t, err)
		assert.Equal(t, []string{"d", "a", "b", "c"}, lockIDs(links))
		locks = append(locks[1:], locks[0])
	}

	// Traffic outranks tier in the risk ranking; the plan puts tier 1 first.
	locks = []Lock{
		{Vendor: "nuki", LockID: "t1-quiet", Model: "smart-lock-3-pro", Door: door("s", "t1"), Tier: 1},
		{Vendor: "seam", LockID: "t2-busy", Model: "generic-keypad-lock", Door: door("s", "t2"), Tier: 2},
	}
	links, err := p.WeakLinks(locks, map[Door]int{door("s", "t2"): 1000})
	require.NoError(t, err)
	assert.Equal(t, []string{"t2-busy", "t1-quiet"}, lockIDs(links))
	assert.Equal(t, []string{"t1-quiet", "t2-busy"}, lockIDs(Plan(links)))
	assert.Equal(t, []string{"t2-busy", "t1-quiet"}, lockIDs(links), "Plan does not reorder its input")
}

func TestWeakLinksErrors(t *testing.T) {
	p := DefaultPolicy()
	_, err := p.WeakLinks([]Lock{{Vendor: "nuki", LockID: "n", Tier: 4}}, nil)
	assert.ErrorIs(t, err, ErrUnknownTier)
	_, err = p.WeakLinks([]Lock{{Vendor: "acme", LockID: "a", Tier: 1}}, nil)
	assert.ErrorIs(t, err, ErrUnknownVendor)
	links, err := p.WeakLinks(nil, nil)
	require.NoError(t, err)
	assert.Empty(t, links)
}

func TestPlanPutsUnclassifiedLast(t *testing.T) {
	locks := []Lock{
		{Vendor: "seam", LockID: "unclassified", Model: "generic-keypad-lock", Door: door("s", "a"), Tier: Unclassified},
		{Vendor: "nuki", LockID: "t1", Model: "smart-lock-3-pro", Door: door("s", "b"), Tier: 1},
		{Vendor: "seam", LockID: "t2", Model: "generic-keypad-lock", Door: door("s", "c"), Tier: 2},
	}
	links, err := DefaultPolicy().WeakLinks(locks, nil)
	require.NoError(t, err)
	// An unclassified keypad lock is judged as tier 3: its hour-long
	// revocation is within 24 h, so it is no weak link at all.
	assert.Equal(t, []string{"t1", "t2"}, lockIDs(Plan(links)))
	links = append(links, WeakLink{Lock: locks[0], Risk: 1_000_000})
	assert.Equal(t, []string{"t1", "t2", "unclassified"}, lockIDs(Plan(links)))
}

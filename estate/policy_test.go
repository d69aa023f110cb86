package estate

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func caps(t *testing.T, vendor, model, firmware string) Capabilities {
	t.Helper()
	m, err := DefaultMatrix().Lookup(vendor, model, firmware)
	require.NoError(t, err)
	return m.Capabilities
}

func tier(t *testing.T, n int) Requirement {
	t.Helper()
	r, ok := DefaultTiers().Get(n)
	require.True(t, ok)
	return r
}

func TestGaps(t *testing.T) {
	f := func(name string, need Need, req Requirement, c Capabilities, want []Gap) {
		t.Helper()
		assert.Equal(t, want, Gaps(need, req, c), name)
	}
	f("aliro lock meets tier 1", Need{Windows: 1, Expires: true}, tier(t, 1), caps(t, "matter", "door-lock-aliro", ""), nil)
	f("nuki on tier 1 lacks only the device key", Need{Windows: 1, Expires: true}, tier(t, 1), caps(t, "nuki", "smart-lock-3-pro", ""),
		[]Gap{{CapAttestation, "device_key", "app_token", High}})
	f("nightly panel on tier 1", Need{}, tier(t, 1), caps(t, "legacy", "osdp-panel", "1.0"), []Gap{
		{CapRevocation, "at most 15m (tier SLA)", "worst 24h, typical 12h", Critical},
		{CapAttestation, "device_key", "none", Critical},
		{CapAudit, "who", "credential", Medium},
		{CapExpiry, "expiry enforced at the lock", "keyfleet revokes at expiry: up to 24h late", Medium},
	})
	f("seam lock on tier 1 with a window and an expiry", Need{Windows: 1, Expires: true}, tier(t, 1), caps(t, "seam", "generic-keypad-lock", ""), []Gap{
		{CapRevocation, "at most 15m (tier SLA)", "worst 1h, typical 1m", High},
		{CapAttestation, "device_key", "none", Critical},
		// The tier's own schedules gap (high) wins over the grant's (medium).
		{CapSchedules, "weekly windows at the lock", "none", High},
		{CapAudit, "who", "credential", Medium},
		{CapExpiry, "expiry enforced at the lock", "keyfleet revokes at expiry: up to 1h late", Medium},
	})
	f("seam lock on tier 3 with a window and an expiry", Need{Windows: 1, Expires: true}, tier(t, 3), caps(t, "seam", "generic-keypad-lock", ""), []Gap{
		{CapSchedules, "1 weekly window(s) at the lock", "none: windows dropped, off-schedule use only detected", Medium},
		{CapExpiry, "expiry enforced at the lock", "keyfleet revokes at expiry: up to 1h late", Low},
	})
	f("more windows than the lock holds", Need{Windows: 2}, tier(t, 3), caps(t, "nuki", "smart-lock-4-pro", ""), []Gap{
		{CapSchedules, "2 weekly window(s) at the lock", "1 window(s) per credential: windows dropped, off-schedule use only detected", Medium},
	})
	f("no audit at all, needs its cloud", Need{}, Requirement{Tier: 1, MaxRevocation: Duration(time.Hour), AuditWho: true, OfflineValidation: true},
		caps(t, "seam", DefaultModel, ""), []Gap{
			{CapAudit, "who", "none", High},
			{CapOffline, "lock decides without its cloud", "needs its cloud", Medium},
		})
	f("revocation within the SLA", Need{}, Requirement{MaxRevocation: Duration(6 * time.Minute)},
		caps(t, "matter", "door-lock", ""), nil)
	f("revocation 10×", Need{}, Requirement{MaxRevocation: Duration(6 * time.Second)}, caps(t, "matter", "door-lock", ""),
		[]Gap{{CapRevocation, "at most 6s (tier SLA)", "worst 1m, typical 5s", Critical}})
	f("revocation 9×", Need{}, Requirement{MaxRevocation: Duration(7 * time.Second)}, caps(t, "matter", "door-lock", ""),
		[]Gap{{CapRevocation, "at most 7s (tier SLA)", "worst 1m, typical 5s", High}})
}

func TestCarryOn(t *testing.T) {
	f := func(name string, need Need, c Capabilities, want Carry) {
		t.Helper()
		assert.Equal(t, want, CarryOn(need, c), name)
	}
	nuki := caps(t, "nuki", "smart-lock-3-pro", "")
	seam := caps(t, "seam", "generic-keypad-lock", "")
	f("nothing asked", Need{}, seam, Carry{Revocation: Duration(time.Hour)})
	f("all at the lock", Need{Windows: 1, Expires: true}, nuki,
		Carry{Windows: true, Schedule: EnforcedAtLock, Expiry: EnforcedAtLock, Revocation: Duration(15 * time.Minute)})
	f("windows dropped, expiry by revocation", Need{Windows: 1, Expires: true}, seam,
		Carry{Schedule: DetectOnly, Expiry: ByRevocation, ExpiryLate: Duration(time.Hour), Revocation: Duration(time.Hour), Weaker: true})
	f("two windows on a one-window lock", Need{Windows: 2}, nuki,
		Carry{Schedule: DetectOnly, Revocation: Duration(15 * time.Minute), Weaker: true})
	f("expiry only", Need{Expires: true}, caps(t, "legacy", "osdp-panel", ""),
		Carry{Expiry: ByRevocation, ExpiryLate: Duration(24 * time.Hour), Revocation: Duration(24 * time.Hour), Weaker: true})
}

func TestCheck(t *testing.T) {
	p := DefaultPolicy()
	d, err := p.Check(Lock{Vendor: "nuki", LockID: "n-1", Model: "smart-lock-4-pro", Firmware: "4.2.1",
		Door: Door{SiteID: "s1", DoorID: "lobby"}, Tier: 1}, Need{Windows: 1, Expires: true})
	require.NoError(t, err)
	assert.Equal(t, "nuki/smart-lock-4-pro", d.Match.Name())
	assert.Empty(t, d.Match.Fallback)
	assert.Equal(t, "critical", d.Tier.Name)
	assert.Equal(t, []Gap{{CapAttestation, "device_key", "app_token", High}}, d.Gaps)
	assert.Equal(t, High, d.Worst())
	assert.False(t, d.Carry.Weaker)

	d, err = p.Check(Lock{Vendor: "schlage", LockID: "s-9", Model: "encode", Tier: 3}, Need{Windows: 1})
	require.NoError(t, err)
	assert.Contains(t, d.Match.Fallback, `model "encode" is not in the matrix`)
	assert.Equal(t, DetectOnly, d.Carry.Schedule)
	assert.True(t, d.Carry.Weaker)

	d, err = p.Check(Lock{Vendor: "matter", Model: "door-lock-aliro", Tier: 1}, Need{})
	require.NoError(t, err)
	assert.Empty(t, d.Gaps)
	assert.Equal(t, Severity(0), d.Worst())

	_, err = p.Check(Lock{Vendor: "nuki", LockID: "n-1", Tier: 7}, Need{})
	assert.ErrorIs(t, err, ErrUnknownTier)
	// An unclassified lock is judged as the least critical tier.
	d, err = p.Check(Lock{Vendor: "seam", LockID: "k-1", Tier: Unclassified}, Need{Windows: 1, Expires: true})
	require.NoError(t, err)
	assert.Equal(t, 3, d.Tier.Tier)
	assert.Empty(t, d.Refusals)
	_, err = p.Check(Lock{Vendor: "acme", LockID: "a-1", Tier: 1}, Need{})
	assert.ErrorIs(t, err, ErrUnknownVendor)
}

func TestSeverityText(t *testing.T) {
	for _, s := range []Severity{Low, Medium, High, Critical} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back Severity
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, s, back)
	}
	var s Severity
	assert.Error(t, s.UnmarshalText([]byte("dire")))
	assert.Equal(t, "severity(9)", Severity(9).String())
}

func TestGrantRefusals(t *testing.T) {
	f := func(name string, need Need, tierN int, c Capabilities, want []string) {
		t.Helper()
		var got []string
		for _, g := range GrantRefusals(need, tier(t, tierN), c) {
			got = append(got, g.Capability)
		}
		assert.Equal(t, want, got, name)
	}
	seam := caps(t, "seam", "generic-keypad-lock", "")
	nuki := caps(t, "nuki", "smart-lock-4-pro", "")
	panel := caps(t, "legacy", "osdp-panel", "1.0")
	// A schedule on a lock without schedules: refused where the tier demands schedules.
	f("window on a keypad lock, tier 2", Need{Windows: 1}, 2, seam, []string{CapSchedules})
	f("window on a keypad lock, tier 3", Need{Windows: 1}, 3, seam, nil)
	f("two windows on a one-window lock, tier 2", Need{Windows: 2}, 2, nuki, []string{CapSchedules})
	f("no window asked", Need{}, 2, seam, nil)
	// A temporary key on a lock without expiry: refused where the tier demands expiring keys.
	f("expiring key on a keypad lock, tier 2", Need{Expires: true}, 2, seam, []string{CapExpiry})
	f("expiring key on a keypad lock, tier 3", Need{Expires: true}, 3, seam, nil)
	// A door whose lock revokes slower than its tier's SLA: every grant is refused.
	f("nightly panel on tier 2", Need{}, 2, panel, []string{CapRevocation})
	f("nightly panel on tier 3", Need{Windows: 1, Expires: true}, 3, panel, nil)
	f("keypad lock on tier 1", Need{Windows: 1, Expires: true}, 1, seam, []string{CapRevocation, CapSchedules, CapExpiry})
	// Tier gaps a grant does not need are not refusals (weak links instead).
	f("nuki on tier 1", Need{Windows: 1, Expires: true}, 1, nuki, nil)

	d, err := DefaultPolicy().Check(Lock{Vendor: "seam", LockID: "k", Model: "generic-keypad-lock", Tier: 2}, Need{Windows: 1})
	require.NoError(t, err)
	require.Len(t, d.Refusals, 1)
	assert.Equal(t, Gap{CapSchedules, "1 weekly window(s) at the lock (tier 2 demands schedules)", "none", High}, d.Refusals[0])
}

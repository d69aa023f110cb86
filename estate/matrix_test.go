package estate

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
)

func TestParseVersion(t *testing.T) {
	f := func(in string, want version, ok bool) {
		t.Helper()
		got, gotOK := parseVersion(in)
		assert.Equal(t, ok, gotOK, in)
		assert.Equal(t, want, got, in)
	}
	f("4", version{4}, true)
	f("4.2.1", version{4, 2, 1}, true)
	f(" v2.10 ", version{2, 10}, true)
	f("2.5.0-rc1", version{2, 5, 0}, true)
	f("", nil, false)
	f("v", nil, false)
	f("4.x", nil, false)
	f("4-beta.1", nil, false)
	f("4..1", nil, false)
	f("1234567890", nil, false)
}

func TestCompareVersions(t *testing.T) {
	f := func(a, b version, want int) {
		t.Helper()
		assert.Equal(t, want, compare(a, b), "%v vs %v", a, b)
	}
	f(version{4}, version{4, 0, 0}, 0)
	f(version{4, 10}, version{4, 9}, 1)
	f(version{1, 9}, version{2}, -1)
	f(nil, version{0}, -1)
	f(version{0}, nil, 1)
	f(nil, nil, 0)
}

func TestParseRule(t *testing.T) {
	f := func(in string, want version, wantErr string) {
		t.Helper()
		got, err := parseRule(in)
		if wantErr != "" {
			require.Error(t, err, in)
			assert.Contains(t, err.Error(), wantErr)
			return
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	f("", nil, "")
	f(">= 4.0", version{4, 0}, "")
	f(">=2", version{2}, "")
	f("> 4.0", nil, `want "" or ">= VERSION"`)
	f("4.0", nil, `want "" or ">= VERSION"`)
	f(">= four", nil, "digits and dots")
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"", ">= 4.0", ">=2", "> 4", ">= v1.2.3-rc1", ">= 4.x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rule string) {
		v, err := parseRule(rule)
		if err != nil || v == nil {
			return
		}
		again, err := parseRule(">= " + v.String())
		require.NoError(t, err)
		require.Equal(t, 0, compare(v, again))
	})
}

func TestDurationText(t *testing.T) {
	f := func(d time.Duration, want string) {
		t.Helper()
		b, err := Duration(d).MarshalText()
		require.NoError(t, err)
		assert.Equal(t, want, string(b))
		var back Duration
		require.NoError(t, back.UnmarshalText(b))
		assert.Equal(t, Duration(d), back)
	}
	f(24*time.Hour, "24h")
	f(90*time.Minute, "90m")
	f(30*time.Second, "30s")
	f(0, "0s")
	f(1500*time.Millisecond, "1.5s")
	var d Duration
	assert.Error(t, d.UnmarshalText([]byte("soon")))
}

func TestDefaultPolicyIsValid(t *testing.T) {
	p := DefaultPolicy()
	require.NoError(t, p.Validate())
	for _, v := range event.Vendors {
		m, err := p.Matrix.Lookup(v, "no-such-model", "1.0")
		require.NoError(t, err, v)
		assert.Equal(t, DefaultModel, m.Model, v)
		assert.NotEmpty(t, m.Fallback, v)
	}
	for _, r := range p.Matrix {
		assert.True(t, strings.Contains(r.Source, "http") || strings.Contains(r.Source, "assumed"),
			"%s: the source names neither a document nor says assumed", r.Name())
		assert.NotEmpty(t, r.Note, r.Name())
	}
}

// testMatrix is the shipped matrix plus a newer panel firmware rule.
func testMatrix() Matrix {
	m := DefaultMatrix()
	panel, err := m.Lookup("legacy", "osdp-panel", "2.0")
	if err != nil {
		panic(err)
	}
	p := panel.Profile
	p.Firmware, p.RevocationTypical, p.RevocationWorst = ">= 2.5", Duration(10*time.Second), Duration(time.Minute)
	return m.Merge(p,
		Profile{Vendor: "nuki", Model: "needs-fw", Firmware: ">= 3", Capabilities: Capabilities{OfflineValidation: true,
			RevocationTypical: Duration(30 * time.Second), RevocationWorst: Duration(time.Hour), Attestation: AttestAppToken,
			Audit: AuditWho, BatteryTelemetry: true}, Cost: 1, Source: "assumed"})
}

func TestLookup(t *testing.T) {
	m := testMatrix()
	require.NoError(t, m.Validate())
	f := func(vendor, model, firmware, wantName, wantFallback string) {
		t.Helper()
		got, err := m.Lookup(vendor, model, firmware)
		require.NoError(t, err)
		assert.Equal(t, wantName, got.Name(), "%s %s %q", vendor, model, firmware)
		if wantFallback == "" {
			assert.Empty(t, got.Fallback)
		} else {
			assert.Contains(t, got.Fallback, wantFallback)
		}
	}
	f("legacy", "osdp-panel", "1.9", "legacy/osdp-panel", "")
	f("legacy", "osdp-panel", "2.0", "legacy/osdp-panel >= 2.0", "")
	f("legacy", "osdp-panel", "2.4.9", "legacy/osdp-panel >= 2.0", "")
	f("legacy", "osdp-panel", "2.5", "legacy/osdp-panel >= 2.5", "")
	f("legacy", "osdp-panel", "2.5.0-rc1", "legacy/osdp-panel >= 2.5", "")
	f("legacy", "osdp-panel", "v3", "legacy/osdp-panel >= 2.5", "")
	// A row without a minimum covers firmware nobody recorded or can read.
	f("legacy", "osdp-panel", "", "legacy/osdp-panel", "")
	f("legacy", "osdp-panel", "nightly", "legacy/osdp-panel", "")
	f("legacy", "acme-9000", "2.0", "legacy/*", `model "acme-9000" is not in the matrix`)
	f("legacy", "", "2.0", "legacy/*", "no model recorded")
	f("nuki", "needs-fw", "2.9", "nuki/*", `firmware "2.9" meets no needs-fw row`)
	f("nuki", "needs-fw", "", "nuki/*", "no firmware recorded")
	f("nuki", "needs-fw", "3.0.1", "nuki/needs-fw >= 3", "")
	f("matter", "door-lock-aliro", "1.4", "matter/door-lock-aliro", "")

	_, err := m.Lookup("acme", "x", "1")
	assert.ErrorIs(t, err, ErrUnknownVendor)
}

func TestMergeReplacesAndAdds(t *testing.T) {
	base := DefaultMatrix()
	row, err := base.Lookup("legacy", "osdp-panel", "2.0")
	require.NoError(t, err)
	repl := row.Profile
	repl.Firmware = ">=2" // same minimum as ">= 2.0": replaces it
	repl.Cost = 7
	added := repl
	added.Model = "osdp-panel-x"
	got := base.Merge(repl, added)
	require.Len(t, got, len(base)+1)
	require.NoError(t, got.Validate())
	after, err := got.Lookup("legacy", "osdp-panel", "2.1")
	require.NoError(t, err)
	assert.Equal(t, 7, after.Cost)
	// The base is untouched and the order is vendor, default first, model, firmware.
	before, _ := base.Lookup("legacy", "osdp-panel", "2.1")
	assert.Equal(t, 4, before.Cost)
	var names []string
	for _, p := range got {
		if p.Vendor == "legacy" {
			names = append(names, p.Name())
		}
	}
	assert.Equal(t, []string{"legacy/*", "legacy/osdp-panel", "legacy/osdp-panel >=2", "legacy/osdp-panel-x >=2"}, names)
}

func TestMatrixValidate(t *testing.T) {
	f := func(name string, change func(m Matrix) Matrix, want string) {
		t.Helper()
		err := change(DefaultMatrix()).Validate()
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want, name)
	}
	row := func(m Matrix, name string) *Profile {
		for i := range m {
			if m[i].Name() == name {
				return &m[i]
			}
		}
		panic(name)
	}
	f("vendor", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Vendor = "acme"; return m }, `vendor "acme"`)
	f("model", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Model = " "; return m }, "model is empty")
	f("rule", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Firmware = "~> 3"; return m }, "firmware rule")
	f("default firmware", func(m Matrix) Matrix { row(m, "nuki/*").Firmware = ">= 1"; return m }, "firmware must be empty")
	f("windows", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Windows = -1; return m }, "windows is negative")
	f("revocation", func(m Matrix) Matrix {
		row(m, "nuki/smart-lock-3-pro").RevocationTypical = Duration(2 * time.Hour)
		return m
	}, "revocation_typical <= revocation_worst")
	f("attestation", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Attestation = "fido"; return m }, `attestation "fido"`)
	f("audit", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Audit = "all"; return m }, `audit "all"`)
	f("default cost", func(m Matrix) Matrix { row(m, "nuki/*").Cost = 1; return m }, "cost must be 0")
	f("cost", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Cost = 0; return m }, "cost must be positive")
	f("source", func(m Matrix) Matrix { row(m, "nuki/smart-lock-3-pro").Source = ""; return m }, "source is empty")
	f("twice", func(m Matrix) Matrix { return append(m, *row(m, "nuki/smart-lock-3-pro")) }, "given twice")
	f("no default", func(m Matrix) Matrix {
		out := Matrix{}
		for _, p := range m {
			if p.Name() != "seam/*" {
				out = append(out, p)
			}
		}
		return out
	}, "vendor seam: no default row")
	f("default too strong", func(m Matrix) Matrix { row(m, "seam/*").Windows = 3; return m },
		"profile seam/generic-keypad-lock: the vendor's default row claims more")
}

func TestAtMost(t *testing.T) {
	weak := Capabilities{RevocationTypical: Duration(time.Hour), RevocationWorst: Duration(24 * time.Hour),
		Attestation: AttestNone, Audit: AuditNone}
	strong := Capabilities{Windows: 2, OfflineValidation: true, ExpiringKeys: true, RevocationTypical: Duration(time.Second),
		RevocationWorst: Duration(time.Minute), RemoteUnlock: true, EmergencyUnlock: true, Attestation: AttestDeviceKey,
		Audit: AuditWho, BatteryTelemetry: true, OnlineTelemetry: true}
	assert.True(t, weak.AtMost(strong))
	assert.True(t, strong.AtMost(strong))
	assert.False(t, strong.AtMost(weak))
	faster := weak
	faster.RevocationWorst = Duration(time.Minute)
	assert.False(t, faster.AtMost(weak))
}

func TestTiersValidate(t *testing.T) {
	require.NoError(t, DefaultTiers().Validate())
	f := func(name string, tiers Tiers, want string) {
		t.Helper()
		err := tiers.Validate()
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want, name)
	}
	f("none", nil, "none")
	f("gap", DefaultTiers().Merge(Requirement{Tier: 5, Name: "x", MaxRevocation: 1, Weight: 1}), "without gaps")
	f("name", DefaultTiers().Merge(Requirement{Tier: 3, MaxRevocation: 1, Weight: 1}), "name is empty")
	f("sla", DefaultTiers().Merge(Requirement{Tier: 3, Name: "x", Weight: 1}), "max_revocation must be positive")
	f("weight", DefaultTiers().Merge(Requirement{Tier: 3, Name: "x", MaxRevocation: 1}), "weight must be positive")
	f("order", DefaultTiers().Merge(Requirement{Tier: 3, Name: "x", MaxRevocation: 1, Weight: 50}), "weight 50 above tier 2's 3")
}

func TestParseConfig(t *testing.T) {
	cfg := `{
	  "profiles": [
	    {"vendor": "schlage", "model": "encode-plus", "windows": 1, "offline_validation": true, "expiring_keys": true,
	     "revocation_typical": "20s", "revocation_worst": "5m", "remote_unlock": true, "emergency_unlock": true,
	     "attestation": "device_key", "audit": "who", "battery_telemetry": true, "online_telemetry": true,
	     "cost": 3, "source": "measured on site 2026-03 (acks p99)"},
	    {"vendor": "seam", "model": "yale-assure-2", "firmware": ">= 1.2", "windows": 0, "offline_validation": true,
	     "revocation_typical": "1m", "revocation_worst": "30m", "attestation": "none", "audit": "credential",
	     "online_telemetry": true, "cost": 2, "source": "assumed"}
	  ],
	  "tiers": [{"tier": 1, "name": "critical", "doors": "entrances", "max_revocation": "5m", "schedules": true,
	             "audit_who": true, "attestation": true, "offline_validation": true, "weight": 10}]
	}`
	p, err := ParseConfig([]byte(cfg))
	require.NoError(t, err)
	assert.Len(t, p.Matrix, len(DefaultMatrix())+1)
	m, err := p.Matrix.Lookup("schlage", "encode-plus", "")
	require.NoError(t, err)
	assert.Equal(t, AuditWho, m.Audit)
	assert.Equal(t, Duration(5*time.Minute), m.RevocationWorst)
	m, err = p.Matrix.Lookup("seam", "yale-assure-2", "1.3")
	require.NoError(t, err)
	assert.Equal(t, ">= 1.2", m.Firmware)
	t1, _ := p.Tiers.Get(1)
	assert.Equal(t, 10, t1.Weight)
	assert.Equal(t, Duration(5*time.Minute), t1.MaxRevocation)

	f := func(name, cfg, want string) {
		t.Helper()
		_, err := ParseConfig([]byte(cfg))
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want, name)
	}
	f("unknown field", `{"profiles":[{"vendor":"nuki","model":"x","schedule":true}]}`, `unknown field "schedule"`)
	f("bad duration", `{"tiers":[{"tier":1,"max_revocation":"soon"}]}`, "duration")
	f("invalid row", `{"profiles":[{"vendor":"nuki","model":"x","revocation_typical":"1m","revocation_worst":"1m","attestation":"none","audit":"none","cost":1}]}`, "source is empty")
	f("trailing", `{} {}`, "data after the object")
	f("not json", `profiles: []`, "decode estate config")
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"profiles":[{"vendor":"seam","model":"m","firmware":">= 1","revocation_typical":"1m","revocation_worst":"1h","attestation":"none","audit":"none","cost":1,"source":"assumed"}]}`))
	f.Add([]byte(`{"tiers":[{"tier":2,"name":"x","max_revocation":"1h","weight":2}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseConfig(data)
		if err != nil {
			return
		}
		require.NoError(t, p.Validate())
		// Every vendor still resolves, and the docs render.
		for _, v := range event.Vendors {
			_, err := p.Matrix.Lookup(v, "", "")
			require.NoError(t, err)
		}
		_ = p.Docs()
		_, err = json.Marshal(p)
		require.NoError(t, err)
	})
}

package estate

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Attestation says how a lock authenticates the phone presenting a key.
type Attestation string

// Attestation levels, weakest first.
const (
	// AttestNone: no phone key at all (card, PIN) or nothing verified.
	AttestNone Attestation = "none"
	// AttestAppToken: the vendor app or a controller holds a token or app key;
	// the lock does not verify a hardware-attested key of the phone.
	AttestAppToken Attestation = "app_token"
	// AttestDeviceKey: the lock verifies a key held in the phone's secure
	// element and bound to it (Aliro, Apple Home Key).
	AttestDeviceKey Attestation = "device_key"
)

// Audit says what a lock's access records tell about who opened.
type Audit string

// Audit levels, weakest first.
const (
	AuditNone       Audit = "none"       // no per-use record
	AuditCredential Audit = "credential" // which credential (card number, code id), not whose
	AuditWho        Audit = "who"        // the user the credential belongs to
)

var (
	attestRank = map[Attestation]int{AttestNone: 0, AttestAppToken: 1, AttestDeviceKey: 2}
	auditRank  = map[Audit]int{AuditNone: 0, AuditCredential: 1, AuditWho: 2}
)

// Capabilities are what one lock model (at some firmware) can do.
type Capabilities struct {
	// Windows is how many weekly time windows per credential the lock
	// enforces itself; 0 means no schedules at the lock.
	Windows int `json:"windows"`
	// OfflineValidation: the lock decides without its cloud or gateway.
	OfflineValidation bool `json:"offline_validation"`
	// ExpiringKeys: a credential's end date is enforced at the lock.
	ExpiringKeys bool `json:"expiring_keys"`
	// RevocationTypical and RevocationWorst bound the time from a revocation
	// request to the lock refusing the credential, while the lock is
	// reachable as designed. For locks that sync on a schedule the worst case
	// is the sync period. A lock that is offline stays pending: that is what
	// the per-lock acks track.
	RevocationTypical Duration `json:"revocation_typical"`
	RevocationWorst   Duration `json:"revocation_worst"`
	// RemoteUnlock: an operator can unlock through the vendor's API.
	RemoteUnlock bool `json:"remote_unlock"`
	// EmergencyUnlock: the door can be held open for everyone on command or
	// alarm (passage mode, fire release), not only unlocked once.
	EmergencyUnlock bool `json:"emergency_unlock"`
	// Attestation is how the lock authenticates the phone.
	Attestation Attestation `json:"attestation"`
	// Audit is what the lock's records say about who opened.
	Audit Audit `json:"audit"`
	// BatteryTelemetry and OnlineTelemetry: the lock reports battery level
	// and connectivity.
	BatteryTelemetry bool `json:"battery_telemetry"`
	OnlineTelemetry  bool `json:"online_telemetry"`
}

// Schedules reports whether the lock enforces weekly windows at all.
func (c Capabilities) Schedules() bool { return c.Windows > 0 }

// AtMost reports whether c claims nothing that o lacks: every capability of c
// is at most o's (longer revocation delays count as less).
func (c Capabilities) AtMost(o Capabilities) bool {
	implies := func(a, b bool) bool { return !a || b }
	return c.Windows <= o.Windows &&
		implies(c.OfflineValidation, o.OfflineValidation) &&
		implies(c.ExpiringKeys, o.ExpiringKeys) &&
		c.RevocationTypical >= o.RevocationTypical &&
		c.RevocationWorst >= o.RevocationWorst &&
		implies(c.RemoteUnlock, o.RemoteUnlock) &&
		implies(c.EmergencyUnlock, o.EmergencyUnlock) &&
		attestRank[c.Attestation] <= attestRank[o.Attestation] &&
		auditRank[c.Audit] <= auditRank[o.Audit] &&
		implies(c.BatteryTelemetry, o.BatteryTelemetry) &&
		implies(c.OnlineTelemetry, o.OnlineTelemetry)
}

// Duration is a time.Duration written as "15m", "24h" in JSON and docs.
type Duration time.Duration

// String writes the duration in its largest whole unit: "24h", "15m", "30s".
func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t == 0:
		return "0s"
	case t%time.Hour == 0:
		return strconv.FormatInt(int64(t/time.Hour), 10) + "h"
	case t%time.Minute == 0:
		return strconv.FormatInt(int64(t/time.Minute), 10) + "m"
	case t%time.Second == 0:
		return strconv.FormatInt(int64(t/time.Second), 10) + "s"
	}
	return t.String()
}

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a Go duration ("90s", "1h30m").
func (d *Duration) UnmarshalText(b []byte) error {
	t, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration: %w", err)
	}
	*d = Duration(t)
	return nil
}

// version is a dotted firmware version, numerically compared.
type version []int

// parseVersion reads "4", "4.2.1", "v4.2" or "4.2.1-beta" (a suffix after the
// digits of a component is ignored, so a pre-release counts as its release).
func parseVersion(s string) (version, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if s == "" {
		return nil, false
	}
	parts := strings.Split(s, ".")
	v := make(version, 0, len(parts))
	for i, p := range parts {
		n := 0
		for n < len(p) && p[n] >= '0' && p[n] <= '9' {
			n++
		}
		if n == 0 || n > 9 || (n < len(p) && i < len(parts)-1) {
			return nil, false
		}
		x, _ := strconv.Atoi(p[:n])
		v = append(v, x)
	}
	return v, true
}

// compare orders versions numerically; missing components count as 0 and
// nil (no minimum) is below every version.
func compare(a, b version) int {
	if a == nil || b == nil {
		switch {
		case a == nil && b == nil:
			return 0
		case a == nil:
			return -1
		}
		return 1
	}
	for i := 0; i < max(len(a), len(b)); i++ {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (v version) String() string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ".")
}

// parseRule reads a firmware rule: "" (any firmware) or ">= VERSION". It
// returns the minimum version (nil for "").
func parseRule(rule string) (version, error) {
	rule = strings.TrimSpace(rule)
	if rule == "" {
		return nil, nil
	}
	rest, ok := strings.CutPrefix(rule, ">=")
	if !ok {
		return nil, fmt.Errorf("firmware rule %q: want \"\" or \">= VERSION\"", rule)
	}
	v, ok := parseVersion(rest)
	if !ok {
		return nil, fmt.Errorf("firmware rule %q: version is digits and dots", rule)
	}
	return v, nil
}

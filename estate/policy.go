package estate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// Capability names, as gaps and docs use them.
const (
	CapRevocation  = "revocation_delay"
	CapSchedules   = "schedules"
	CapAttestation = "attestation"
	CapAudit       = "audit"
	CapOffline     = "offline_validation"
	CapExpiry      = "expiring_keys"
)

// capOrder is the order gaps are listed in.
var capOrder = []string{CapRevocation, CapAttestation, CapSchedules, CapAudit, CapOffline, CapExpiry}

// Severity grades a gap; its value is its weight in the risk ranking.
type Severity int

// Severities.
const (
	Low Severity = iota + 1
	Medium
	High
	Critical
)

var severityNames = map[Severity]string{Low: "low", Medium: "medium", High: "high", Critical: "critical"}

func (s Severity) String() string {
	if n, ok := severityNames[s]; ok {
		return n
	}
	return fmt.Sprintf("severity(%d)", int(s))
}

// MarshalText implements encoding.TextMarshaler.
func (s Severity) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (s *Severity) UnmarshalText(b []byte) error {
	for v, n := range severityNames {
		if n == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("severity %q: want low, medium, high or critical", b)
}

// Gap is one thing a door's tier or a grant needs that its lock cannot do.
type Gap struct {
	Capability string   `json:"capability"`
	Need       string   `json:"need"`
	Have       string   `json:"have"`
	Severity   Severity `json:"severity"`
}

// Need is what a grant (a credential from a role template) asks of a lock:
// how many weekly windows restrict it (0: any time) and whether it expires.
// The door's tier comes with the lock.
type Need struct {
	Windows int  `json:"windows,omitempty"`
	Expires bool `json:"expires,omitempty"`
}

// TierGaps lists what a tier demands that a lock cannot do, in a fixed
// capability order. Severity: a revocation delay over the SLA is high
// (critical from 10× the SLA); a missing device key is high when the lock
// has an app token and critical when it has nothing; required schedules
// missing are high; records that name the credential but not who are
// medium (none at all: high); offline validation missing is medium.
func TierGaps(req Requirement, c Capabilities) []Gap {
	var gaps []Gap
	if c.RevocationWorst > req.MaxRevocation {
		sev := High
		if c.RevocationWorst >= 10*req.MaxRevocation {
			sev = Critical
		}
		gaps = append(gaps, Gap{CapRevocation, "at most " + req.MaxRevocation.String() + " (tier SLA)",
			"worst " + c.RevocationWorst.String() + ", typical " + c.RevocationTypical.String(), sev})
	}
	if req.Attestation && c.Attestation != AttestDeviceKey {
		sev := High
		if c.Attestation == AttestNone {
			sev = Critical
		}
		gaps = append(gaps, Gap{CapAttestation, string(AttestDeviceKey), string(c.Attestation), sev})
	}
	if req.Schedules && !c.Schedules() {
		gaps = append(gaps, Gap{CapSchedules, "weekly windows at the lock", "none", High})
	}
	if req.AuditWho && c.Audit != AuditWho {
		sev := Medium
		if c.Audit == AuditNone {
			sev = High
		}
		gaps = append(gaps, Gap{CapAudit, string(AuditWho), string(c.Audit), sev})
	}
	if req.OfflineValidation && !c.OfflineValidation {
		gaps = append(gaps, Gap{CapOffline, "lock decides without its cloud", "needs its cloud", Medium})
	}
	if req.ExpiringKeys && !c.ExpiringKeys {
		gaps = append(gaps, expiryGap(c, Medium))
	}
	return gaps
}

func expiryGap(c Capabilities, sev Severity) Gap {
	return Gap{CapExpiry, "expiry enforced at the lock", "keyfleet revokes at expiry: up to " + c.RevocationWorst.String() + " late", sev}
}

// GrantRefusals lists what refuses a grant on a lock (the grant-time
// policy): a revocation delay over the tier's SLA (every grant must be
// revocable within it); windows the lock cannot enforce on a tier that
// demands schedules; an end date the lock cannot enforce on a tier that
// demands expiring keys. Anything else the lock cannot do is carried with
// weaker enforcement (CarryOn) and reported as a weak link of the door, not
// refused. One gap per capability, in the fixed order.
func GrantRefusals(need Need, req Requirement, c Capabilities) []Gap {
	var out []Gap
	for _, g := range Gaps(need, req, c) {
		switch g.Capability {
		case CapRevocation:
			out = append(out, g)
		case CapSchedules:
			if req.Schedules && need.Windows > c.Windows {
				out = append(out, Gap{CapSchedules, fmt.Sprintf("%d weekly window(s) at the lock (tier %d demands schedules)", need.Windows, req.Tier),
					windowsHave(c.Windows), High})
			}
		case CapExpiry:
			if req.ExpiringKeys && need.Expires {
				out = append(out, Gap{CapExpiry, fmt.Sprintf("the key's end date enforced at the lock (tier %d demands expiring keys)", req.Tier),
					"no expiry at the lock: keyfleet would revoke at the end, up to " + c.RevocationWorst.String() + " late", High})
			}
		}
	}
	return out
}

// Gaps lists what a grant on a door of the given tier needs that the lock
// cannot do: the tier's gaps plus the grant's own (windows the lock cannot
// enforce: medium; an expiry the lock cannot enforce: low while the worst
// revocation delay is within the SLA, medium past it). One gap per
// capability, the most severe, in a fixed order.
func Gaps(need Need, req Requirement, c Capabilities) []Gap {
	gaps := TierGaps(req, c)
	if need.Windows > c.Windows {
		gaps = append(gaps, Gap{CapSchedules, fmt.Sprintf("%d weekly window(s) at the lock", need.Windows),
			windowsHave(c.Windows) + ": windows dropped, off-schedule use only detected", Medium})
	}
	if need.Expires && !c.ExpiringKeys {
		sev := Low
		if c.RevocationWorst > req.MaxRevocation {
			sev = Medium
		}
		gaps = append(gaps, expiryGap(c, sev))
	}
	return mergeGaps(gaps)
}

func windowsHave(n int) string {
	if n == 0 {
		return "none"
	}
	return fmt.Sprintf("%d window(s) per credential", n)
}

// mergeGaps keeps one gap per capability (the most severe, the first of
// equals) in capOrder.
func mergeGaps(gaps []Gap) []Gap {
	var out []Gap
	for _, c := range capOrder {
		best := -1
		for i, g := range gaps {
			if g.Capability == c && (best < 0 || g.Severity > gaps[best].Severity) {
				best = i
			}
		}
		if best >= 0 {
			out = append(out, gaps[best])
		}
	}
	return out
}

// How a restriction of a grant is enforced on a lock.
const (
	EnforcedAtLock = "lock"        // the lock refuses outside it
	ByRevocation   = "revocation"  // keyfleet revokes at the end; late by up to the worst revocation delay
	DetectOnly     = "detect_only" // the lock opens anyway; the off_schedule detector flags the use afterwards
)

// Carry is what a grant can actually carry on one lock, for the grant's
// record: whether its windows go to the lock and how its windows and expiry
// are enforced. Weaker is true when anything the grant asks for is not
// enforced at the lock, so the record must say enforcement is weaker.
type Carry struct {
	Windows    bool     `json:"windows"`
	Schedule   string   `json:"schedule,omitempty"` // "" when the grant has no windows
	Expiry     string   `json:"expiry,omitempty"`   // "" when the grant does not expire
	ExpiryLate Duration `json:"expiry_late,omitempty"`
	Revocation Duration `json:"revocation_worst"`
	Weaker     bool     `json:"weaker"`
}

// CarryOn says what a grant carries on a lock with capabilities c. Windows
// go to the lock only when it enforces all of them: keyfleet never narrows
// a grant to the windows that fit, it drops them and says so.
func CarryOn(need Need, c Capabilities) Carry {
	out := Carry{Revocation: c.RevocationWorst}
	if need.Windows > 0 {
		if need.Windows <= c.Windows {
			out.Windows, out.Schedule = true, EnforcedAtLock
		} else {
			out.Schedule, out.Weaker = DetectOnly, true
		}
	}
	if need.Expires {
		if c.ExpiringKeys {
			out.Expiry = EnforcedAtLock
		} else {
			out.Expiry, out.ExpiryLate, out.Weaker = ByRevocation, c.RevocationWorst, true
		}
	}
	return out
}

// Policy is the estate model: the capability matrix and the tiers.
type Policy struct {
	Matrix Matrix `json:"profiles"`
	Tiers  Tiers  `json:"tiers"`
}

// DefaultPolicy is the shipped matrix and tiers.
func DefaultPolicy() Policy { return Policy{Matrix: DefaultMatrix(), Tiers: DefaultTiers()} }

// Validate checks the matrix and the tiers.
func (p Policy) Validate() error { return errors.Join(p.Matrix.Validate(), p.Tiers.Validate()) }

// Config is the JSON configuration file: rows that replace or add matrix
// rows (same vendor, model and firmware minimum: replaced whole) and tiers
// (same number: replaced whole).
type Config struct {
	Profiles []Profile     `json:"profiles,omitempty"`
	Tiers    []Requirement `json:"tiers,omitempty"`
}

// ParseConfig merges a configuration over the defaults and validates the
// result. Unknown fields are errors (a misspelt capability would otherwise
// read as "no").
func ParseConfig(data []byte) (Policy, error) {
	var c Config
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return Policy{}, fmt.Errorf("decode estate config: %w", err)
	}
	if dec.More() {
		return Policy{}, errors.New("decode estate config: data after the object")
	}
	p := DefaultPolicy()
	p.Matrix = p.Matrix.Merge(c.Profiles...)
	p.Tiers = p.Tiers.Merge(c.Tiers...)
	if err := p.Validate(); err != nil {
		return Policy{}, fmt.Errorf("estate config: %w", err)
	}
	return p, nil
}

// LoadConfig reads ParseConfig's input from a file.
func LoadConfig(path string) (Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Policy{}, fmt.Errorf("read estate config: %w", err)
	}
	return ParseConfig(data)
}

// Door names a door: traffic is counted per door.
type Door struct {
	SiteID string `json:"site_id"`
	DoorID string `json:"door_id"`
}

// Lock is a lock as the estate model sees it: the registry's vendor and lock
// id, where it is, and the model, firmware and tier the registry is to gain.
type Lock struct {
	Vendor   string `json:"vendor"`
	LockID   string `json:"lock_id"`
	Model    string `json:"model,omitempty"`
	Firmware string `json:"firmware,omitempty"`
	Door
	Tier int `json:"tier"`
}

// Decision is the policy's answer for one grant on one lock: every gap,
// the gaps that refuse the grant (GrantRefusals; empty: it may be granted)
// and what it carries when granted.
type Decision struct {
	Match    Match       `json:"match"`
	Tier     Requirement `json:"tier"`
	Gaps     []Gap       `json:"gaps,omitempty"`
	Refusals []Gap       `json:"refusals,omitempty"`
	Carry    Carry       `json:"carry"`
}

// Worst is the highest severity among the gaps (0 when there are none).
func (d Decision) Worst() Severity {
	var w Severity
	for _, g := range d.Gaps {
		w = max(w, g.Severity)
	}
	return w
}

// Check evaluates a grant's needs on a lock: the lock's capabilities (or its
// vendor's default, said in Match.Fallback), the gaps and what the grant can
// carry. The control plane calls it at grant time, once per lock.
func (p Policy) Check(lock Lock, need Need) (Decision, error) {
	req, ok := p.Tiers.For(lock.Tier)
	if !ok {
		return Decision{}, fmt.Errorf("lock %s/%s: %w %d", lock.Vendor, lock.LockID, ErrUnknownTier, lock.Tier)
	}
	m, err := p.Matrix.Lookup(lock.Vendor, lock.Model, lock.Firmware)
	if err != nil {
		return Decision{}, fmt.Errorf("lock %s/%s: %w", lock.Vendor, lock.LockID, err)
	}
	return Decision{Match: m, Tier: req, Gaps: Gaps(need, req, m.Capabilities), Refusals: GrantRefusals(need, req, m.Capabilities),
		Carry: CarryOn(need, m.Capabilities)}, nil
}

// severitySum is the sum of the gaps' severities.
func severitySum(gaps []Gap) int {
	s := 0
	for _, g := range gaps {
		s += int(g.Severity)
	}
	return s
}

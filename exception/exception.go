// Package exception is the exception register: recorded, approved
// departures from policy (a credential beyond its template, a door left on
// manual override, a lock kept past its end of support, a tier requirement
// a lock cannot meet), each with its scope, reason, approvers, the
// compensating control that stands in for the policy, a start, an expiry
// and a review date. The root holds the records, their validation, the
// in-memory Register every instance keeps, the matching the estate's
// grant-time policy asks (Lifts) and the KPIs; Kafka (exception/stream),
// ClickHouse (exception/store) and HTTP (exception/api) live beside it.
package exception

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Kind is what an exception departs from policy for.
type Kind string

// Kinds.
const (
	KindCredential Kind = "credential" // a credential (or a person's credentials) beyond its template
	KindDoor       Kind = "door"       // a door (manual override, held open, no reader)
	KindLock       Kind = "lock"       // a lock (end of support, missing capability)
	KindPolicy     Kind = "policy"     // a policy rule, for a scope (site, role, capability)
)

// Kinds lists every kind.
var Kinds = []Kind{KindCredential, KindDoor, KindLock, KindPolicy}

// Status is the stored state of an exception: open until closed.
type Status string

// Stored statuses.
const (
	StatusOpen   Status = "open"
	StatusClosed Status = "closed"
)

// State is an exception's state at a moment, derived from its status and
// dates: the register's answers and the API speak in states.
type State string

// States.
const (
	StatePending  State = "pending"  // open, start in the future
	StateActive   State = "active"   // open, in force
	StateExpiring State = "expiring" // open, in force, expiry within the warning period
	StateExpired  State = "expired"  // open, past its expiry: to be closed or renewed
	StateClosed   State = "closed"
)

// States lists every state.
var States = []State{StatePending, StateActive, StateExpiring, StateExpired, StateClosed}

// Ops are what a record version did.
const (
	OpCreate = "create"
	OpUpdate = "update"
	OpClose  = "close"
)

// Scope says what an exception covers. Every field set must match; an
// empty field matches anything. Capability names the estate capability a
// lock or policy exception lets a grant go without (the estate policy's
// refusal capabilities: "schedules", "expiring_keys", "revocation_delay",
// "tier"); empty lifts a refusal for any.
type Scope struct {
	SiteID       string `json:"site_id,omitempty"`
	DoorID       string `json:"door_id,omitempty"`
	Vendor       string `json:"vendor,omitempty"`
	LockID       string `json:"lock_id,omitempty"`
	SubjectID    string `json:"subject_id,omitempty"`
	CredentialID string `json:"credential_id,omitempty"`
	Role         string `json:"role,omitempty"`
	Capability   string `json:"capability,omitempty"`
}

// Empty reports whether no field is set.
func (s Scope) Empty() bool { return s == Scope{} }

// Exception is what a caller writes: everything but the bookkeeping.
type Exception struct {
	Kind  Kind  `json:"kind"`
	Scope Scope `json:"scope"`
	// Reason is a short code the KPIs group by (legacy_hardware,
	// vendor_limitation, business_need ...): lower case, digits, _ and -.
	Reason string `json:"reason"`
	// Description says why, in words.
	Description string   `json:"description,omitempty"`
	Approvers   []string `json:"approvers"`
	// CompensatingControl is what stands in for the policy meanwhile
	// (required: an exception without one is a hole, not an exception).
	CompensatingControl string `json:"compensating_control"`
	StartMs             int64  `json:"start_ms"`
	ExpiryMs            int64  `json:"expiry_ms"`
	// ReviewMs is when the exception is to be looked at again (0: at its
	// expiry).
	ReviewMs int64 `json:"review_ms,omitempty"`
}

// Record is one version of an exception, as published and stored.
type Record struct {
	ID string `json:"id"`
	Exception
	Status      Status `json:"status"`
	CloseReason string `json:"close_reason,omitempty"`
	Version     uint64 `json:"version"`
	Op          string `json:"op"`
	Actor       string `json:"actor"`
	CreatedMs   int64  `json:"created_ms"`
	CreatedBy   string `json:"created_by"`
	TsMs        int64  `json:"ts_ms"` // when this version was written
}

// MaxDuration bounds an exception's life: every exception expires, and a
// long one is renewed (reviewed) rather than written for ever.
const MaxDuration = 3 * 366 * 24 * time.Hour

var (
	reasonRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	idRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
)

// ValidID reports whether s can name an exception.
func ValidID(s string) bool { return idRe.MatchString(s) }

// Validate checks an exception a caller writes.
func (e Exception) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !slices.Contains(Kinds, e.Kind) {
		bad("kind %q: want credential, door, lock or policy", e.Kind)
	}
	switch e.Kind {
	case KindCredential:
		if e.Scope.CredentialID == "" && e.Scope.SubjectID == "" {
			bad("scope: a credential exception names a credential_id or a subject_id")
		}
	case KindDoor:
		if e.Scope.DoorID == "" {
			bad("scope: a door exception names a door_id (and its site_id)")
		}
	case KindLock:
		if e.Scope.Vendor == "" || e.Scope.LockID == "" {
			bad("scope: a lock exception names a vendor and a lock_id")
		}
	case KindPolicy:
		if e.Scope.Capability == "" {
			bad("scope: a policy exception names the capability (policy rule) it departs from")
		}
		if e.Scope.Empty() || (e.Scope == Scope{Capability: e.Scope.Capability}) {
			bad("scope: a policy exception is limited to a site, door, lock, role or subject (no fleet-wide exceptions)")
		}
	}
	for name, v := range map[string]string{"site_id": e.Scope.SiteID, "door_id": e.Scope.DoorID, "vendor": e.Scope.Vendor,
		"lock_id": e.Scope.LockID, "subject_id": e.Scope.SubjectID, "credential_id": e.Scope.CredentialID,
		"role": e.Scope.Role, "capability": e.Scope.Capability} {
		if len(v) > 200 || strings.TrimSpace(v) != v {
			bad("scope.%s: at most 200 characters, no surrounding spaces", name)
		}
	}
	if !reasonRe.MatchString(e.Reason) {
		bad("reason %q: a short code (lower case letters, digits, _ and -; e.g. legacy_hardware)", e.Reason)
	}
	if len(e.Description) > 2000 {
		bad("description: at most 2000 characters")
	}
	if strings.TrimSpace(e.CompensatingControl) == "" {
		bad("compensating_control: required (what stands in for the policy while the exception lasts)")
	} else if len(e.CompensatingControl) > 2000 {
		bad("compensating_control: at most 2000 characters")
	}
	if len(e.Approvers) == 0 {
		bad("approvers: at least one")
	}
	seen := map[string]bool{}
	for _, a := range e.Approvers {
		if strings.TrimSpace(a) == "" || len(a) > 200 {
			bad("approvers: %q is not a name", a)
		}
		if seen[a] {
			bad("approvers: %q twice", a)
		}
		seen[a] = true
	}
	switch {
	case e.StartMs <= 0:
		bad("start_ms: required (epoch milliseconds)")
	case e.ExpiryMs <= e.StartMs:
		bad("expiry_ms: required and after start_ms")
	case time.Duration(e.ExpiryMs-e.StartMs)*time.Millisecond > MaxDuration:
		bad("expiry_ms: at most %d days after start_ms (renew it instead)", int(MaxDuration.Hours()/24))
	}
	if e.ReviewMs != 0 && (e.ReviewMs < e.StartMs || e.ReviewMs > e.ExpiryMs) {
		bad("review_ms: between start_ms and expiry_ms (or 0: at expiry)")
	}
	return errors.Join(errs...)
}

// Validate checks a record as published.
func (r Record) Validate() error {
	var errs []error
	if !ValidID(r.ID) {
		errs = append(errs, fmt.Errorf("id %q: invalid", r.ID))
	}
	if r.Status != StatusOpen && r.Status != StatusClosed {
		errs = append(errs, fmt.Errorf("status %q: want open or closed", r.Status))
	}
	if r.Version == 0 {
		errs = append(errs, errors.New("version: required"))
	}
	if err := r.Exception.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ReviewAt is when the exception is due for review.
func (e Exception) ReviewAt() int64 {
	if e.ReviewMs > 0 {
		return e.ReviewMs
	}
	return e.ExpiryMs
}

// StateAt is the record's state at now; an open exception counts as
// expiring from warn before its expiry.
func (r Record) StateAt(now int64, warn time.Duration) State {
	switch {
	case r.Status == StatusClosed:
		return StateClosed
	case now < r.StartMs:
		return StatePending
	case now >= r.ExpiryMs:
		return StateExpired
	case now >= r.ExpiryMs-warn.Milliseconds():
		return StateExpiring
	default:
		return StateActive
	}
}

// InForce reports whether the exception lifts the policy at now: open,
// started and not expired.
func (r Record) InForce(now int64) bool {
	return r.Status == StatusOpen && r.StartMs <= now && now < r.ExpiryMs
}

// DecodeRecord decodes and checks one record of exception.register.
func DecodeRecord(data []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, fmt.Errorf("decode exception record: %w", err)
	}
	if err := r.Validate(); err != nil {
		return Record{}, fmt.Errorf("exception record %q: %w", r.ID, err)
	}
	return r, nil
}

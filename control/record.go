package control

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

// Record is one credential lifecycle record as the control plane publishes it
// on credential.events: event.Credential (the contract detectors and the
// registry read; its JSON fields are flattened into the record) plus the
// control plane's own fields. Every record is a full snapshot of the
// credential after one change, so a credential's newest record (highest Seq)
// is its state, and replaying the topic rebuilds every credential.
type Record struct {
	event.Credential

	Seq       uint64 `json:"seq"`
	Op        string `json:"op"`
	PrevState string `json:"prev_state,omitempty"`
	CommandID string `json:"command_id,omitempty"`
	// CommandDone marks the last record a command produced (one command can
	// walk several transitions, e.g. request → approved → issued → pending).
	CommandDone bool `json:"command_done,omitempty"`

	// The provisioning request that created the credential.
	RequestID   string `json:"request_id,omitempty"`
	Item        int    `json:"item,omitempty"`
	RequestedMs int64  `json:"requested_ms,omitempty"`
	Issuer      string `json:"issuer,omitempty"` // who requested it
	IssuedMs    int64  `json:"issued_ms,omitempty"`
	ActivatedMs int64  `json:"activated_ms,omitempty"`

	ApprovalRule    string   `json:"approval_rule,omitempty"`
	Approvers       []string `json:"approvers,omitempty"`
	TemplateVersion uint64   `json:"template_version,omitempty"`
	DoorGroups      []string `json:"door_groups,omitempty"`
	// ExtraGroups are the door groups the request added to the template's.
	ExtraGroups []string `json:"extra_groups,omitempty"`
	Windows     []Window `json:"windows,omitempty"`
	// Exception marks access beyond the role template (extra door groups, a
	// longer validity, break-glass); ExceptionWhy says which.
	Exception    bool   `json:"exception,omitempty"`
	ExceptionWhy string `json:"exception_why,omitempty"`
	// BreakGlassMs is how long a break-glass credential lasts once issued.
	BreakGlassMs int64 `json:"break_glass_ms,omitempty"`

	Attestation *Attestation `json:"attestation,omitempty"`
	// Locks are the locks that hold the credential (told by grant commands).
	Locks []LockRef `json:"locks,omitempty"`
	// Weaker are the locks that enforce less than the credential asks (the
	// estate policy): how its windows and end date are enforced there.
	Weaker []WeakerLock `json:"weaker,omitempty"`

	RevocationID string `json:"revocation_id,omitempty"`
	// SessionRevokedDevice is the device whose wallet/app session this
	// record asks to revoke (device change, revocation); whether the
	// session layer did is the revocation's (revocation_sessions).
	SessionRevokedDevice string `json:"session_revoked_device,omitempty"`

	// Recent are the ids of the last commands applied, so a command
	// re-delivered by Kafka is recognized and not applied twice.
	Recent []string `json:"recent_commands,omitempty"`
}

// recentCommands is how many applied command ids a record remembers.
const recentCommands = 8

// Clone returns a deep copy whose slices may be changed.
func (r *Record) Clone() *Record {
	c := *r
	c.Refs = slices.Clone(r.Refs)
	c.Approvers = slices.Clone(r.Approvers)
	c.DoorGroups = slices.Clone(r.DoorGroups)
	c.ExtraGroups = slices.Clone(r.ExtraGroups)
	c.Windows = slices.Clone(r.Windows)
	c.Locks = slices.Clone(r.Locks)
	c.Weaker = slices.Clone(r.Weaker)
	c.Recent = slices.Clone(r.Recent)
	if r.Attestation != nil {
		a := *r.Attestation
		c.Attestation = &a
	}
	if r.Device != nil {
		d := *r.Device
		c.Device = &d
	}
	return &c
}

// Applied reports whether the record remembers applying the command.
func (r *Record) Applied(commandID string) bool {
	return commandID != "" && slices.Contains(r.Recent, commandID)
}

func (r *Record) remember(commandID string) {
	if commandID == "" || slices.Contains(r.Recent, commandID) {
		return
	}
	r.Recent = append(r.Recent, commandID)
	if len(r.Recent) > recentCommands {
		r.Recent = r.Recent[len(r.Recent)-recentCommands:]
	}
}

// Attestation is the device-possession evidence a credential was activated
// with, as control/attest verified it. The evidence itself is not kept,
// only its SHA-256.
type Attestation struct {
	Format         string `json:"format"`
	DeviceID       string `json:"device_id"`
	EvidenceSHA256 string `json:"evidence_sha256"`
	VerifiedMs     int64  `json:"verified_ms"`
	// KeySHA256 is the SHA-256 (hex) of the attested key's DER
	// SubjectPublicKeyInfo.
	KeySHA256 string `json:"key_sha256,omitempty"`
	// SecurityLevel is where the key lives (trusted_environment,
	// strongbox, secure_enclave, ...); AppID the app it belongs to.
	SecurityLevel string `json:"security_level,omitempty"`
	AppID         string `json:"app_id,omitempty"`
	// Type is full (a chain to a configured root) or self.
	Type string `json:"type,omitempty"`
	// Device is what the activation knows of the phone: the request's
	// app-reported facts, with the OS version and patch level replaced by
	// the attested ones when the evidence proves them (Facts says which).
	Device *event.Device `json:"device,omitempty"`
}

// Verified reports whether the attestation was verified cryptographically
// (a record written before verification existed has no key hash).
func (a *Attestation) Verified() bool { return a != nil && a.KeySHA256 != "" }

// Window is a weekly time window in site-local time: on Days (mon..sun,
// empty = every day) from Start to End ("HH:MM"; an End at or before Start
// runs past midnight). It is the lock commands' window, so grants carry a
// credential's windows to its locks unchanged.
type Window = gateway.Window

// LockRef names one lock.
type LockRef struct {
	Vendor string `json:"vendor"`
	LockID string `json:"lock_id"`
}

func (l LockRef) String() string { return l.Vendor + "/" + l.LockID }

// OpAck is the op of a command on control.commands that forwards a lock's
// acknowledgement (from lock.acks) to the owner of its credential.
const OpAck = "ack"

// Revocation scopes.
const (
	ScopeCredential = "credential"
	ScopeSubject    = "subject"
	ScopeExpiry     = "expiry"
	ScopeDevice     = "device" // every live credential on a (lost) device
	ScopeSite       = "site"   // mass revocation at a site (breach)
)

// Scopes lists the revocation scopes.
var Scopes = []string{ScopeCredential, ScopeSubject, ScopeExpiry, ScopeDevice, ScopeSite}

// Command is one request to change a credential, published on
// control.commands keyed by credential id and applied by the owner of that
// partition. Commands carry everything their application needs (the
// resolved template, the approver), so applying one is deterministic.
type Command struct {
	CommandID    string `json:"command_id"`
	Op           string `json:"op"`
	CredentialID string `json:"credential_id"`
	RequestID    string `json:"request_id,omitempty"`
	Item         int    `json:"item,omitempty"`
	Actor        string `json:"actor,omitempty"`
	Reason       string `json:"reason,omitempty"`
	TsMs         int64  `json:"ts_ms"` // when the API accepted it

	Spec         *Spec        `json:"spec,omitempty"` // request
	DeviceID     string       `json:"device_id,omitempty"`
	Attestation  *Attestation `json:"attestation,omitempty"`
	RevocationID string       `json:"revocation_id,omitempty"`
	Scope        string       `json:"scope,omitempty"`
	Template     *Template    `json:"template,omitempty"` // update
	// Moves replace locks of the credential (an update without a template:
	// a vendor migration); the grant moves, the old lock is told to drop it.
	Moves []LockMove   `json:"moves,omitempty"`
	Ack   *gateway.Ack `json:"ack,omitempty"`
}

// Spec is a new credential, resolved against its role template by the API.
type Spec struct {
	SubjectID    string                `json:"subject_id"`
	Role         string                `json:"role"`
	SiteID       string                `json:"site_id,omitempty"`
	DoorGroups   []string              `json:"door_groups"`
	ExtraGroups  []string              `json:"extra_groups,omitempty"`
	Windows      []Window              `json:"windows,omitempty"`
	ValidFromMs  int64                 `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64                 `json:"valid_until_ms,omitempty"`
	DeviceID     string                `json:"device_id,omitempty"`
	Attestation  *Attestation          `json:"attestation,omitempty"`
	Refs         []event.CredentialRef `json:"refs,omitempty"`
	BreakGlass   bool                  `json:"break_glass,omitempty"`
	BreakGlassMs int64                 `json:"break_glass_ms,omitempty"`
	ApprovalRule string                `json:"approval_rule"`
	Template     uint64                `json:"template_version,omitempty"`
	Exception    bool                  `json:"exception,omitempty"`
	ExceptionWhy string                `json:"exception_why,omitempty"`
	// AllowAdditional permits another live credential for the same
	// subject, role and device.
	AllowAdditional bool `json:"allow_additional,omitempty"`
}

// DecodeCommand decodes a command from control.commands.
func DecodeCommand(data []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(data, &c); err != nil {
		return c, fmt.Errorf("decode command: %w", err)
	}
	if c.CredentialID == "" || c.Op == "" {
		return c, fmt.Errorf("command %q: credential_id and op are required", c.CommandID)
	}
	return c, nil
}

// DecodeRecord decodes a lifecycle record from credential.events.
func DecodeRecord(data []byte) (*Record, error) {
	r := &Record{}
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("decode credential record: %w", err)
	}
	if r.CredentialID == "" {
		return nil, fmt.Errorf("credential record without credential_id")
	}
	return r, nil
}

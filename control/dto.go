package control

import (
	"encoding/json"
	"time"
)

// The control plane's request and response documents (HTTP bodies), so
// clients (the simulator, bench, the drill) import them without the rest.

// Item statuses of a request.
const (
	StatusPending = "pending"
	StatusIssued  = "issued"
	StatusApplied = "applied" // a non-provisioning command took effect
	StatusFailed  = "failed"
)

// CredentialRequest is one credential to issue: the body of
// POST /v1/credentials and one item of POST /v1/credentials:bulk.
type CredentialRequest struct {
	SubjectID string `json:"subject_id"`
	Role      string `json:"role"`
	SiteID    string `json:"site_id,omitempty"`
	// DoorGroups are added to the role template's door groups.
	DoorGroups   []string          `json:"door_groups,omitempty"`
	ValidFromMs  int64             `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64             `json:"valid_until_ms,omitempty"`
	DeviceID     string            `json:"device_id,omitempty"`
	Attestation  *AttestationInput `json:"attestation,omitempty"`
	// Refs are the credential's identities on locks, raw; only their keyed
	// hashes are kept.
	Refs   []RefInput `json:"refs,omitempty"`
	Reason string     `json:"reason,omitempty"`
	// AllowAdditional permits a second live credential for the same
	// subject, role and device (without it such a request is a 409 naming
	// the existing credential).
	AllowAdditional bool `json:"allow_additional,omitempty"`
}

// AttestationInput is device-possession evidence as a wallet or app
// provisioning backend sends it: the evidence of a format (control/attest
// documents each wire format) made in answer to a challenge from
// POST /v1/attestation/challenge.
type AttestationInput struct {
	Format    string `json:"format"`
	Evidence  string `json:"evidence"`  // base64
	Challenge string `json:"challenge"` // base64, as the challenge endpoint returned it
	// Device is what the wallet/app reports of the phone (model, OS name and
	// version, app version; all optional). An Android key attestation's
	// hardware-enforced OS version and patch level replace the reported
	// ones, and the record says which facts are attested.
	Device *DeviceInput `json:"device,omitempty"`
}

// DeviceInput is the phone as the wallet/app reports it with an activation.
type DeviceInput struct {
	PhoneModel   string `json:"phone_model,omitempty"`
	OSName       string `json:"os_name,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	OSPatchLevel string `json:"os_patch_level,omitempty"`
	AppVersion   string `json:"app_version,omitempty"`
}

// AttestationFormats are the evidence formats the API knows; aliro is
// refused as unsupported (control/attest says why).
var AttestationFormats = []string{"apple_app_attest", "android_key_attestation", "aliro", "webauthn"}

// ChallengeRequest asks for an attestation challenge
// (POST /v1/attestation/challenge): for activating an existing credential
// on a device, or (no credential id) for a new credential request that
// carries its attestation.
type ChallengeRequest struct {
	CredentialID string `json:"credential_id,omitempty"`
	DeviceID     string `json:"device_id"`
}

// ChallengeResponse is a challenge: the device's attestation must be made
// for these bytes (base64) and sent back with them before ExpiresMs.
type ChallengeResponse struct {
	Challenge    string   `json:"challenge"`
	CredentialID string   `json:"credential_id,omitempty"`
	DeviceID     string   `json:"device_id"`
	ExpiresMs    int64    `json:"expires_ms"`
	Formats      []string `json:"formats"`
}

// RefInput is a vendor user reference (Matter user index, Nuki auth id,
// card number ...). LockID empty: valid on every lock of the vendor.
type RefInput struct {
	Vendor  string `json:"vendor"`
	LockID  string `json:"lock_id,omitempty"`
	UserRef string `json:"user_ref"`
}

// ProvisionResponse answers a provisioning request (202). A retry with the
// same Idempotency-Key and body gets this same document again.
type ProvisionResponse struct {
	RequestID string `json:"request_id"`
	Kind      string `json:"kind"`
	Status    string `json:"status"`
	Total     int    `json:"total"`
	Accepted  int    `json:"accepted"`
	Rejected  int    `json:"rejected"`
	// CredentialIDs has one entry per item, "" for a rejected one.
	CredentialIDs []string  `json:"credential_ids"`
	Failures      []Failure `json:"failures,omitempty"`
	StatusURL     string    `json:"status_url"`
	CreatedMs     int64     `json:"created_ms"`
}

// Failure is a rejected item of a provisioning request (the JSON of an
// HTTP problem's field error).
type Failure struct {
	Field  string `json:"field,omitempty"`
	Index  *int   `json:"index,omitempty"`
	Reason string `json:"reason"`
}

// RequestStatus is the status resource of a request (GET /v1/requests/{id}).
type RequestStatus struct {
	RequestID string         `json:"request_id"`
	Kind      string         `json:"kind,omitempty"`
	CreatedMs int64          `json:"created_ms,omitempty"`
	Status    string         `json:"status"` // pending, completed, completed_with_failures, failed
	Total     int            `json:"total"`
	Counts    map[string]int `json:"counts"`
	Failures  []ItemStatus   `json:"failures,omitempty"`
	Items     []ItemStatus   `json:"items,omitempty"`
}

// ItemStatus is one item of a request.
type ItemStatus struct {
	Item         int    `json:"item"`
	CredentialID string `json:"credential_id,omitempty"`
	Status       string `json:"status"`
	Error        string `json:"error,omitempty"`
	Detail       string `json:"detail,omitempty"`
}

// OpResponse answers a credential operation.
type OpResponse struct {
	Status        string  `json:"status"` // applied, pending
	RequestID     string  `json:"request_id"`
	StatusURL     string  `json:"status_url"`
	Credential    *Record `json:"credential,omitempty"`
	RevocationID  string  `json:"revocation_id,omitempty"`
	RevocationURL string  `json:"revocation_url,omitempty"`
}

// CredentialView is GET /v1/credentials/{id}: the current record, the
// answers analysts ask first, and the full history.
type CredentialView struct {
	Credential *Record   `json:"credential"`
	Summary    Summary   `json:"summary"`
	History    []*Record `json:"history"`
	// Locks say, per lock, what keyfleet last told it about the credential
	// and whether the lock confirmed it.
	Locks []CredentialLock `json:"locks"`
}

// Lock states of a credential.
const (
	LockHeld    = "held"    // the lock acknowledged the grant
	LockRemoved = "removed" // the lock acknowledged the removal
	LockSending = "sending" // told, not acknowledged yet (re-sent until it is)
)

// CredentialLock is the credential on one lock.
type CredentialLock struct {
	Vendor    string `json:"vendor"`
	LockID    string `json:"lock_id"`
	Command   string `json:"command"` // grant or revoke: the newest sent
	State     string `json:"state"`   // held, removed, sending
	SentMs    int64  `json:"sent_ms"`
	AppliedMs int64  `json:"applied_ms,omitempty"`
	Attempts  int    `json:"attempts"`
}

// Summary answers "who issued this credential, on what date, to which
// device, under what approval rule".
type Summary struct {
	IssuedBy     string   `json:"issued_by"`
	RequestedAt  string   `json:"requested_at,omitempty"`
	IssuedAt     string   `json:"issued_at,omitempty"`
	DeviceID     string   `json:"device_id,omitempty"`
	Attested     bool     `json:"attested"`
	ApprovalRule string   `json:"approval_rule"`
	Approvers    []string `json:"approvers,omitempty"`
	State        string   `json:"state"`
	BreakGlass   bool     `json:"break_glass,omitempty"`
	Exception    string   `json:"exception,omitempty"`
}

// BreakGlassRequest asks for emergency access: bound to a break-glass role
// (its template's door groups, or a subset), bound in time (the access
// lasts DurationSeconds from the second approval, at most the template's
// max validity, and expires on its own), and approved by two different
// approvers, neither the requester (POST /v1/credentials/{id}:approve).
type BreakGlassRequest struct {
	SubjectID       string            `json:"subject_id"`
	Role            string            `json:"role,omitempty"` // default emergency_responder
	SiteID          string            `json:"site_id,omitempty"`
	DoorGroups      []string          `json:"door_groups,omitempty"`
	DurationSeconds int64             `json:"duration_s"`
	DeviceID        string            `json:"device_id,omitempty"`
	Attestation     *AttestationInput `json:"attestation,omitempty"`
	Refs            []RefInput        `json:"refs,omitempty"`
	Reason          string            `json:"reason"`
}

// Review statuses of a break-glass credential.
const (
	ReviewInUse    = "in_use"          // still live
	ReviewAwaiting = "awaiting_review" // ended, not reviewed yet
	ReviewClosed   = "reviewed"
)

// Review is one break-glass credential in the review queue.
type Review struct {
	CredentialID string   `json:"credential_id"`
	SubjectID    string   `json:"subject_id"`
	Role         string   `json:"role"`
	State        string   `json:"state"`
	Requester    string   `json:"requester"`
	Approvers    []string `json:"approvers"`
	Reason       string   `json:"reason,omitempty"`
	RequestedMs  int64    `json:"requested_ms"`
	IssuedMs     int64    `json:"issued_ms,omitempty"`
	ValidUntilMs int64    `json:"valid_until_ms,omitempty"`
	Status       string   `json:"status"`
	Outcome      string   `json:"outcome,omitempty"`
	Reviewer     string   `json:"reviewer,omitempty"`
	Note         string   `json:"note,omitempty"`
	ReviewedMs   int64    `json:"reviewed_ms,omitempty"`
}

// AccessEvent is an access event in a break-glass review.
type AccessEvent struct {
	EventID    string `json:"event_id"`
	TsMs       int64  `json:"ts_ms"`
	SiteID     string `json:"site_id"`
	DoorID     string `json:"door_id"`
	LockID     string `json:"lock_id"`
	Action     string `json:"action"`
	Outcome    string `json:"outcome"`
	Method     string `json:"method"`
	Reason     string `json:"reason,omitempty"`
	BreakGlass bool   `json:"break_glass"`
}

// RevokeResponse answers a revocation of several credentials
// (POST /v1/subjects/{id}:revoke, /v1/devices/{id}:revoke,
// /v1/revocations).
type RevokeResponse struct {
	RevocationID  string   `json:"revocation_id"`
	RevocationURL string   `json:"revocation_url"`
	RequestID     string   `json:"request_id"`
	StatusURL     string   `json:"status_url"`
	Scope         string   `json:"scope,omitempty"`
	SubjectID     string   `json:"subject_id,omitempty"`
	DeviceID      string   `json:"device_id,omitempty"`
	SiteID        string   `json:"site_id,omitempty"`
	CredentialIDs []string `json:"credential_ids"`
}

// SubjectRevokeResponse answers POST /v1/subjects/{id}:revoke.
type SubjectRevokeResponse = RevokeResponse

// MassRevocation is the body of POST /v1/revocations: one revocation of
// many credentials. Scope site (a breach) revokes every live credential of
// SiteID — only those of CredentialIDs/SubjectIDs when given (a drill
// limits itself to its own); scope subject the live credentials of
// SubjectIDs; scope credential the CredentialIDs.
type MassRevocation struct {
	Scope         string   `json:"scope"`
	SiteID        string   `json:"site_id,omitempty"`
	SubjectIDs    []string `json:"subject_ids,omitempty"`
	CredentialIDs []string `json:"credential_ids,omitempty"`
	Reason        string   `json:"reason"`
}

// Revocation statuses.
const (
	RevocationPending   = "pending"   // layers still working, within the SLA
	RevocationConfirmed = "confirmed" // every layer done (or not configured)
	RevocationEscalated = "escalated" // past the SLA with locks unconfirmed: alerted
	RevocationFailed    = "failed"    // a layer gave up (see its why)
)

// Layer states: a layer that was not performed never reads done.
const (
	LayerDone          = "done"
	LayerPending       = "pending"
	LayerFailed        = "failed"
	LayerNotConfigured = "not_configured"
)

// Revocation is the revocation resource (GET /v1/revocations/{id}): the
// state of each layer and which locks have confirmed or are still pending.
type Revocation struct {
	RevocationID string `json:"revocation_id"`
	Scope        string `json:"scope"`
	SubjectID    string `json:"subject_id,omitempty"`
	RequestedMs  int64  `json:"requested_ms"`
	Actor        string `json:"actor"`
	Reason       string `json:"reason,omitempty"`
	// Status: pending, confirmed (every layer done or not configured),
	// escalated (past the SLA with locks unconfirmed; an alert was raised)
	// or failed (a layer gave up).
	Status         string              `json:"status"`
	Layers         Layers              `json:"layers"`
	Credentials    []RevokedCredential `json:"credentials"`
	ConfirmedLocks []LockStatus        `json:"confirmed_locks"`
	PendingLocks   []LockStatus        `json:"pending_locks"`
	FailedLocks    []LockStatus        `json:"failed_locks"`
	// TimeToDisableMs: request → last entitlement record (all credentials).
	TimeToDisableMs int64 `json:"time_to_disable_ms,omitempty"`
	// TimeToConfirmMs: request → last lock ack (once all confirmed).
	TimeToConfirmMs int64 `json:"time_to_confirm_ms,omitempty"`
	// TimeToSessionMs: request → last device session revoked (once done).
	TimeToSessionMs int64 `json:"time_to_session_revoked_ms,omitempty"`
	// EscalatedMs is when the revocation passed its SLA with locks still
	// unconfirmed and was escalated (alert EscalationAlertID, detector
	// revocation_overdue).
	EscalatedMs       int64  `json:"escalated_ms,omitempty"`
	EscalationAlertID string `json:"escalation_alert_id,omitempty"`
	AgeMs             int64  `json:"age_ms"`
}

// Layers are the revocation's layers.
type Layers struct {
	Entitlement   Layer `json:"entitlement"`
	DeviceSession Layer `json:"device_session"`
	Locks         Layer `json:"locks"`
}

// Layer is one revocation layer: its state, done (and failed) out of total,
// and why it failed or is not configured.
type Layer struct {
	State  string `json:"state"`
	Done   int    `json:"done"`
	Total  int    `json:"total"`
	Failed int    `json:"failed,omitempty"`
	Why    string `json:"why,omitempty"`
}

// RevokedCredential is one credential of a revocation.
type RevokedCredential struct {
	CredentialID string `json:"credential_id"`
	DisabledMs   int64  `json:"disabled_ms,omitempty"`
	// SessionState is the device-session layer for this credential: done,
	// pending, failed (SessionError says why) or not_configured; done with
	// no device means there was no session to revoke.
	SessionState     string `json:"session_state"`
	SessionError     string `json:"session_error,omitempty"`
	SessionRevokedMs int64  `json:"session_revoked_ms,omitempty"`
	SessionAttempts  int    `json:"session_attempts,omitempty"`
	LocksTotal       int    `json:"locks_total"`
	LocksConfirmed   int    `json:"locks_confirmed"`
}

// LockStatus is one lock of a revocation.
type LockStatus struct {
	CredentialID string `json:"credential_id"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	IssuedMs     int64  `json:"issued_ms"`
	AppliedMs    int64  `json:"applied_ms,omitempty"`
	LatencyMs    int64  `json:"latency_ms,omitempty"` // request → ack
	AgeMs        int64  `json:"age_ms,omitempty"`     // pending for
	Overdue      bool   `json:"overdue,omitempty"`    // pending past the SLA
	// Attempts is how often the revoke command was sent (re-sends until
	// acknowledged); LastSentMs the latest.
	Attempts   int   `json:"attempts,omitempty"`
	LastSentMs int64 `json:"last_sent_ms,omitempty"`
	// Error is why the lock failed (gave up) or its last failed ack.
	Error string `json:"error,omitempty"`
}

// DefaultPendingSLA is how long a lock may take to confirm a revocation.
const DefaultPendingSLA = 15 * time.Minute

// FleetKPIs are the control plane's KPIs over [From, To), computed from
// ClickHouse (credential_events, revocations, revocation_locks, lock_acks),
// so every instance, the query API and the weekly report agree.
type FleetKPIs struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// RevocationLatency: per revoked credential, request → last lock ack
	// (request → entitlement record for a credential no lock held), for
	// revocations requested in the range; quantiles over confirmed ones.
	RevocationLatency Quantiles `json:"revocation_latency"`
	// TimeToIssue: request → issued, for credentials issued in the range.
	TimeToIssue Quantiles `json:"time_to_issue"`
	// Activation: of the credentials issued in the range, how many were
	// activated (device possession proven) by now.
	Activation Activation `json:"activation"`
	// Exceptions: credentials with access beyond their role template
	// (extra door groups, longer validity, break-glass).
	Exceptions Exceptions `json:"exceptions"`
	// PendingLocks: lock revocations requested in the range and still not
	// acknowledged after the SLA.
	PendingLocks PendingLocks `json:"pending_locks"`
	// Escalations: revocations of the range escalated past the SLA.
	Escalations Escalations `json:"escalations"`
	// ACLDrift: full ACL resyncs in the range, by cause.
	ACLDrift ACLDrift `json:"acl_drift"`
}

// Escalations are revocations escalated past the SLA (alert
// revocation_overdue).
type Escalations struct {
	Count       int      `json:"count"`
	Unconfirmed int      `json:"unconfirmed"` // of those, still unconfirmed now
	Revocations []string `json:"revocation_ids"`
}

// ACLDrift counts full ACL resyncs (acl_push): on reconnect, and on a lock
// reporting another ACL version than keyfleet expected (drift).
type ACLDrift struct {
	Resyncs      int `json:"resyncs"`
	Reconnects   int `json:"reconnects"`
	Drifts       int `json:"drifts"`
	DriftedLocks int `json:"drifted_locks"`
}

// Quantiles of a latency, in seconds.
type Quantiles struct {
	Count     int     `json:"count"`
	Confirmed int     `json:"confirmed,omitempty"`
	P50       float64 `json:"p50_s"`
	P95       float64 `json:"p95_s"`
	P99       float64 `json:"p99_s"`
}

// Activation is the activation success rate: credentials activated with
// a verified attestation, of those issued.
type Activation struct {
	Issued      int     `json:"issued"`
	Activated   int     `json:"activated"`
	SuccessRate float64 `json:"success_rate"`
}

// Exceptions are exception rates per 1,000 credentials.
type Exceptions struct {
	Live           int     `json:"live_credentials"`       // live at To
	LiveExceptions int     `json:"live_exceptions"`        // of those, exceptions
	PerThousand    float64 `json:"per_1000_credentials"`   // LiveExceptions per 1,000 Live
	New            int     `json:"new_credentials"`        // requested in the range
	NewExceptions  int     `json:"new_exceptions"`         // of those, exceptions
	NewPerThousand float64 `json:"new_per_1000_requested"` // NewExceptions per 1,000 New
}

// PendingLocks counts lock revocations past the SLA.
type PendingLocks struct {
	SLASeconds float64       `json:"sla_s"`
	Count      int           `json:"count"`
	Locks      []PendingLock `json:"locks"`
}

// PendingLock is a lock with revocations pending past the SLA.
type PendingLock struct {
	Vendor      string `json:"vendor"`
	LockID      string `json:"lock_id"`
	Revocations int    `json:"revocations"`
	OldestMs    int64  `json:"oldest_issued_ms"`
}

// KPIQuery selects the KPIs' range and SLA.
type KPIQuery struct {
	From, To time.Time
	SLA      time.Duration // default DefaultPendingSLA
	Now      time.Time     // default time.Now()
}

// Drill scenarios.
const (
	DrillTermination = "termination" // subjects leave: every credential of each revoked
	DrillLostDevice  = "lost-device" // a device is lost: the credentials on it revoked
	DrillBreach      = "breach"      // a site is breached: mass revocation at the site
)

// DrillScenarios lists the drill scenarios.
var DrillScenarios = []string{DrillTermination, DrillLostDevice, DrillBreach}

// DrillRun is one stored drill run (POST /v1/drills, GET /v1/drills): the
// headline numbers and the drill's full report (Report, as the drill
// printed it with --json).
type DrillRun struct {
	RunID       string `json:"run_id"`
	Scenario    string `json:"scenario"`
	StartedMs   int64  `json:"started_ms"`
	FinishedMs  int64  `json:"finished_ms"`
	Actor       string `json:"actor,omitempty"`
	Subjects    int    `json:"subjects"`
	Credentials int    `json:"credentials"`
	Revocations int    `json:"revocations"`
	Locks       int    `json:"locks"`     // lock revocations expected
	Confirmed   int    `json:"confirmed"` // of those, confirmed
	Stragglers  int    `json:"stragglers"`
	// Times in milliseconds; -1 when there was nothing to measure.
	DisableP50Ms int64 `json:"disable_p50_ms"`
	DisableP99Ms int64 `json:"disable_p99_ms"`
	ConfirmP50Ms int64 `json:"confirm_p50_ms"` // per lock
	ConfirmP99Ms int64 `json:"confirm_p99_ms"`
	// SessionState is the device-session layer over the drill:
	// done, failed, pending or not_configured.
	SessionState string `json:"session_state"`
	// TicketCloseMs is request → incident ticket closed (-1: no ticket
	// system configured).
	TicketCloseMs int64           `json:"ticket_close_ms"`
	Report        json.RawMessage `json:"report,omitempty"`
}

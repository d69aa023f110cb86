package control

import "time"

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
}

// AttestationInput is device-possession evidence as a wallet or app
// provisioning backend sends it.
type AttestationInput struct {
	Format   string `json:"format"`
	Evidence string `json:"evidence"` // base64
}

// AttestationFormats are the accepted evidence formats.
var AttestationFormats = []string{"apple_app_attest", "android_key_attestation", "aliro", "webauthn"}

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

// SubjectRevokeResponse answers POST /v1/subjects/{id}:revoke.
type SubjectRevokeResponse struct {
	RevocationID  string   `json:"revocation_id"`
	RevocationURL string   `json:"revocation_url"`
	RequestID     string   `json:"request_id"`
	StatusURL     string   `json:"status_url"`
	SubjectID     string   `json:"subject_id"`
	CredentialIDs []string `json:"credential_ids"`
}

// Revocation is the revocation resource (GET /v1/revocations/{id}): which
// layers are done and which locks have confirmed or are still pending.
type Revocation struct {
	RevocationID string `json:"revocation_id"`
	Scope        string `json:"scope"`
	SubjectID    string `json:"subject_id,omitempty"`
	RequestedMs  int64  `json:"requested_ms"`
	Actor        string `json:"actor"`
	Reason       string `json:"reason,omitempty"`
	// Status is confirmed once every credential is disabled and every lock
	// has acknowledged, pending before.
	Status         string              `json:"status"`
	Layers         Layers              `json:"layers"`
	Credentials    []RevokedCredential `json:"credentials"`
	ConfirmedLocks []LockStatus        `json:"confirmed_locks"`
	PendingLocks   []LockStatus        `json:"pending_locks"`
	// TimeToDisableMs: request → last entitlement record (all credentials).
	TimeToDisableMs int64 `json:"time_to_disable_ms,omitempty"`
	// TimeToConfirmMs: request → last lock ack (once all confirmed).
	TimeToConfirmMs int64 `json:"time_to_confirm_ms,omitempty"`
	AgeMs           int64 `json:"age_ms"`
}

// Layers counts the revocation layers done.
type Layers struct {
	Entitlement   Progress `json:"entitlement"`
	DeviceSession Progress `json:"device_session"`
	Locks         Progress `json:"locks"`
}

// Progress is done out of total.
type Progress struct {
	Done  int `json:"done"`
	Total int `json:"total"`
}

// RevokedCredential is one credential of a revocation.
type RevokedCredential struct {
	CredentialID     string `json:"credential_id"`
	DisabledMs       int64  `json:"disabled_ms,omitempty"`
	SessionRevokedMs int64  `json:"session_revoked_ms,omitempty"`
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
}

// Quantiles of a latency, in seconds.
type Quantiles struct {
	Count     int     `json:"count"`
	Confirmed int     `json:"confirmed,omitempty"`
	P50       float64 `json:"p50_s"`
	P95       float64 `json:"p95_s"`
	P99       float64 `json:"p99_s"`
}

// Activation is the activation success rate.
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

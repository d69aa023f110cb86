package event

// Credential lifecycle states.
const (
	StateRequested         = "requested"
	StateApproved          = "approved"
	StateIssued            = "issued"
	StatePendingActivation = "pending_activation"
	StateActive            = "active"
	StateSuspended         = "suspended"
	StateRevoked           = "revoked"
	StateArchived          = "archived"
)

// States lists every lifecycle state.
var States = []string{StateRequested, StateApproved, StateIssued, StatePendingActivation,
	StateActive, StateSuspended, StateRevoked, StateArchived}

// Credential is one credential lifecycle record: the control plane publishes
// one on credential.events (keyed by credential_id) at every state change or
// device change; detectors consume them; `keyfleet detect --replay` files
// carry them as lines with "record":"credential".
type Credential struct {
	Record       string `json:"record,omitempty"` // "credential" in replay files
	CredentialID string `json:"credential_id"`
	SubjectID    string `json:"subject_id"`
	State        string `json:"state"`
	// DeviceID is the device the credential is bound to (issued/active
	// records name it); Attested says whether that binding was attested.
	DeviceID string `json:"device_id,omitempty"`
	Attested bool   `json:"attested,omitempty"`
	Role     string `json:"role,omitempty"`
	SiteID   string `json:"site_id,omitempty"`
	TsMs     int64  `json:"ts_ms"`
	// Refs are the credential's identities on locks (keyed hashes of vendor
	// user references), so the normalizer can resolve events to it.
	Refs         []CredentialRef `json:"refs,omitempty"`
	ValidFromMs  int64           `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64           `json:"valid_until_ms,omitempty"`
	BreakGlass   bool            `json:"break_glass,omitempty"`
	Reason       string          `json:"reason,omitempty"`
	Actor        string          `json:"actor,omitempty"` // who caused the change (token name, responder, system)
	// Device is what the activation recorded of the phone the credential
	// is bound to (nil when nothing is known).
	Device *Device `json:"device,omitempty"`
}

// Where a Device's OS facts come from.
const (
	// DeviceAttested: the OS version and patch level were proved by a
	// verified attestation (Android key attestation's hardware-enforced
	// osVersion and osPatchLevel).
	DeviceAttested = "attested"
	// DeviceAppReported: every value is the wallet/app's own claim.
	DeviceAppReported = "app_reported"
)

// Device is what is known of a phone: its model, OS name and version, the
// OS security patch level and the wallet/app version. Facts says whether the
// OS facts are attested (DeviceAttested) or app-reported (DeviceAppReported);
// the model and app version are always the app's claim.
type Device struct {
	PhoneModel   string `json:"phone_model,omitempty"`
	OSName       string `json:"os_name,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	OSPatchLevel string `json:"os_patch_level,omitempty"`
	AppVersion   string `json:"app_version,omitempty"`
	Facts        string `json:"device_facts,omitempty"`
}

// CredentialRef is one vendor identity of a credential. LockID empty means
// valid on every lock of the vendor.
type CredentialRef struct {
	Vendor      string `json:"vendor"`
	LockID      string `json:"lock_id,omitempty"`
	UserRefHash string `json:"user_ref_hash"`
}

// Package gateway is the wire contract between keyfleet's control plane and
// lock gateways (vendor clouds, bridges, legacy panels): commands on
// lock.commands, per-lock acknowledgements on lock.acks. Both are JSON and
// keyed by lock_id, so one gateway sees its locks' commands in order.
package gateway

// Command types.
const (
	CommandRevoke  = "revoke"   // remove a credential from the lock
	CommandGrant   = "grant"    // add or update a credential on the lock
	CommandACLPush = "acl_push" // replace the lock's whole access list
)

// Command is one instruction to one lock.
type Command struct {
	CommandID    string `json:"command_id"` // unique; acks echo it
	Type         string `json:"type"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	CredentialID string `json:"credential_id,omitempty"`
	SubjectID    string `json:"subject_id,omitempty"`
	// UserRefHash identifies the credential on the lock in keyfleet's keyed
	// pseudonymous form (see normalize.RefHash); gateways that know the raw
	// slot/card map it themselves.
	UserRefHash  string `json:"user_ref_hash,omitempty"`
	RevocationID string `json:"revocation_id,omitempty"` // groups the commands of one revocation
	ValidFromMs  int64  `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64  `json:"valid_until_ms,omitempty"`
	// ACL is the full list of credential ids for acl_push.
	ACL      []string `json:"acl,omitempty"`
	IssuedMs int64    `json:"issued_ms"` // when keyfleet published the command
}

// Ack statuses.
const (
	AckApplied = "applied"
	AckFailed  = "failed"
)

// Ack is a lock's answer to one command.
type Ack struct {
	CommandID    string `json:"command_id"`
	RevocationID string `json:"revocation_id,omitempty"`
	Type         string `json:"type"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	CredentialID string `json:"credential_id,omitempty"`
	Status       string `json:"status"`
	Error        string `json:"error,omitempty"`
	ReceivedMs   int64  `json:"received_ms"` // when the gateway received the command
	AppliedMs    int64  `json:"applied_ms"`  // when the lock applied it (or failed)
}

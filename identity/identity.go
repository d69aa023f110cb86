// Package identity holds the domain types of people and groups pushed to
// keyfleet by identity providers (Entra ID, Okta, a tenant system): the
// joiner/mover/leaver changes that drive credential automation. The SCIM
// service provider that produces them lives in identity/scim.
//
// A Change carries a pseudonymous subject id and group references, never a
// user name, a real name or an e-mail address: personal data stays in the
// identity store.
package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// ChangeKind says what happened to a subject's entitlement.
type ChangeKind string

// Change kinds.
const (
	// Joined: the subject became entitled (created active, re-activated, or
	// its end date moved into the future).
	Joined ChangeKind = "joined"
	// Moved: an entitled subject's group memberships changed (or a group it
	// is in was renamed).
	Moved ChangeKind = "moved"
	// Left: the subject lost its entitlement: deactivated, deleted, or its
	// end date passed.
	Left ChangeKind = "left"
	// Updated: an entitled subject's site or end date changed.
	Updated ChangeKind = "updated"
)

// Group is a group reference as changes carry it. ID is the stable key;
// names may change (a rename of a group is reported as Moved for its
// members).
type Group struct {
	ID          string `json:"id"`
	ExternalID  string `json:"external_id,omitempty"`
	DisplayName string `json:"display_name"`
}

// Change is one joiner/mover/leaver notification.
type Change struct {
	Kind ChangeKind `json:"kind"`
	// SubjectID is the pseudonymous subject id (a keyed function of the
	// SCIM id or externalId, never of the e-mail or user name).
	SubjectID string `json:"subject_id"`
	// Groups are the subject's direct groups after the change (empty for Left).
	Groups []Group `json:"groups"`
	// Added and Removed are the groups gained and lost (Moved only).
	Added   []Group `json:"added,omitempty"`
	Removed []Group `json:"removed,omitempty"`
	// Site and EndDate come from keyfleet's access extension; EndDate is
	// zero when none is set.
	Site    string    `json:"site,omitempty"`
	EndDate time.Time `json:"end_date,omitzero"`
	Active  bool      `json:"active"`
	// Reason says why (created, activated, deactivated, deleted, end_date,
	// membership, renamed, attributes, resync).
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// SubjectID returns the pseudonymous subject id of a person an identity
// source knows by ref (the externalId an identity provider or HR system
// uses, or the SCIM id): a keyed hash, so the id tells nothing about the
// person without the key, and the same person always gets the same id.
func SubjectID(key []byte, ref string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keyfleet-identity\x00"))
	m.Write([]byte(ref))
	var sum [sha256.Size]byte
	return "sub_" + hex.EncodeToString(m.Sum(sum[:0])[:12])
}

// Status is what the identity source says about one subject: whether it
// is known, and whether it is entitled (active, end date not passed).
type Status struct {
	SubjectID string    `json:"subject_id"`
	Known     bool      `json:"known"`
	Entitled  bool      `json:"entitled"`
	Active    bool      `json:"active"`
	Site      string    `json:"site,omitempty"`
	EndDate   time.Time `json:"end_date,omitzero"`
	Groups    []Group   `json:"groups,omitempty"`
	// Reason says why a known subject is not entitled: deactivated or
	// end_date.
	Reason string `json:"reason,omitempty"`
}

// Leaver is one leaver whose credentials identity sync revoked: when the
// identity change happened (the end date itself for an end-date leaver)
// and the revocation it caused, whose last lock confirmation ends the
// leaver latency.
type Leaver struct {
	SubjectID    string `json:"subject_id"`
	ChangeMs     int64  `json:"change_ms"`
	Reason       string `json:"reason"`
	RevocationID string `json:"revocation_id"`
	Credentials  int    `json:"credentials"`
	RequestedMs  int64  `json:"requested_ms"`
}

// LeaverLatency is the leaver KPI over a range: leavers whose identity
// change falls in it and who had credentials to revoke, how many of them
// every lock confirmed, and the latency from the identity change to the
// last lock confirmation (seconds; quantiles over the confirmed).
type LeaverLatency struct {
	Count     int     `json:"count"`
	Confirmed int     `json:"confirmed"`
	P50       float64 `json:"p50_s"`
	P95       float64 `json:"p95_s"`
	P99       float64 `json:"p99_s"`
}

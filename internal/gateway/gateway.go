// Package gateway is the wire contract between keyfleet's control plane and
// lock gateways (vendor clouds, bridges, legacy panels): commands on
// lock.commands, per-lock acknowledgements and status reports on lock.acks.
// Both are JSON and keyed by lock_id, so one gateway sees its locks'
// commands in order.
//
// What a gateway must do:
//
//   - Apply a command_id once. keyfleet re-sends a command it has no
//     applied ack for (same command_id, seq and content, a higher
//     attempt); a gateway that already applied it acknowledges it again
//     without applying it twice.
//   - Apply a grant or revoke only if its seq is higher than the last seq
//     it applied for that credential on that lock; acknowledge an older
//     one as applied without effect (superseded). seq is the credential's
//     record sequence, so a late re-send never undoes a newer change.
//   - Replace the whole list on acl_push: the credentials of its entries
//     (or acl) are on the lock afterwards, every other one is removed; the
//     entries' seqs become the credentials' last applied seqs.
//   - Report the lock's ACL version (ACLVersion of the credential ids on
//     its list) in every ack, and echo the command's acl_version as
//     expected_acl_version. A different version means the lock's list
//     drifted from keyfleet's: keyfleet answers with an acl_push and counts
//     the drift.
//   - When a lock reconnects after being offline, publish a status report
//     (type status, status online, with its ACL version): keyfleet answers
//     with a full acl_push (what changed while it was away).
package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Command types.
const (
	CommandRevoke  = "revoke"   // remove a credential from the lock
	CommandGrant   = "grant"    // add or update a credential on the lock
	CommandACLPush = "acl_push" // replace the lock's whole access list
)

// TypeStatus is the type of a lock's status report on lock.acks (no
// command_id): StatusOnline when the lock reconnects.
const (
	TypeStatus   = "status"
	StatusOnline = "online"
)

// Reasons of an acl_push.
const (
	ResyncReconnect = "reconnect" // the lock reported it is online again
	ResyncDrift     = "drift"     // the lock reported another ACL version than expected
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
	// pseudonymous form (see event.RefHash); gateways that know the raw
	// slot/card map it themselves.
	UserRefHash  string `json:"user_ref_hash,omitempty"`
	RevocationID string `json:"revocation_id,omitempty"` // groups the commands of one revocation
	ValidFromMs  int64  `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64  `json:"valid_until_ms,omitempty"`
	// Windows restrict a grant to weekly windows (none: at any time within
	// the validity); see Allowed.
	Windows []Window `json:"windows,omitempty"`
	// ACL is the full list of credential ids for acl_push; Entries carry
	// each one's grant (validity, windows, seq).
	ACL     []string   `json:"acl,omitempty"`
	Entries []ACLEntry `json:"entries,omitempty"`
	// Reason says why an acl_push was sent (ResyncReconnect, ResyncDrift).
	Reason string `json:"reason,omitempty"`
	// Seq orders a credential's commands (its record sequence when the
	// command was made); see the package comment.
	Seq uint64 `json:"seq,omitempty"`
	// ACLVersion is the version the lock's list should have once this
	// command is applied (ACLVersion of the ids keyfleet expects on it).
	ACLVersion string `json:"acl_version,omitempty"`
	IssuedMs   int64  `json:"issued_ms"` // when keyfleet first published the command
	// Attempt counts the sends of this command (1: the first); SentMs is
	// when this attempt was published.
	Attempt int   `json:"attempt,omitempty"`
	SentMs  int64 `json:"sent_ms,omitempty"`
}

// ACLEntry is one credential of an acl_push.
type ACLEntry struct {
	CredentialID string   `json:"credential_id"`
	SubjectID    string   `json:"subject_id,omitempty"`
	UserRefHash  string   `json:"user_ref_hash,omitempty"`
	ValidFromMs  int64    `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64    `json:"valid_until_ms,omitempty"`
	Windows      []Window `json:"windows,omitempty"`
	Seq          uint64   `json:"seq,omitempty"`
}

// ACLVersion is the version of an access list: the hex SHA-256 (first 16
// bytes) of its distinct credential ids, sorted, each followed by a
// newline. An empty list has a version too.
func ACLVersion(credentialIDs []string) string {
	ids := slices.Clone(credentialIDs)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	h := sha256.New()
	for _, id := range ids {
		h.Write([]byte(id))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Ack statuses.
const (
	AckApplied = "applied"
	AckFailed  = "failed"
)

// Ack is a lock's answer to one command, or (Type TypeStatus, no
// command_id) a status report of the lock.
type Ack struct {
	CommandID    string `json:"command_id,omitempty"`
	RevocationID string `json:"revocation_id,omitempty"`
	Type         string `json:"type"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	CredentialID string `json:"credential_id,omitempty"`
	Status       string `json:"status"`
	Error        string `json:"error,omitempty"`
	ReceivedMs   int64  `json:"received_ms"` // when the gateway received the command
	AppliedMs    int64  `json:"applied_ms"`  // when the lock applied it (or failed; status: when reported)
	// ACLVersion is the lock's list version after the command (status: now);
	// ExpectedACLVersion echoes the command's acl_version.
	ACLVersion         string `json:"acl_version,omitempty"`
	ExpectedACLVersion string `json:"expected_acl_version,omitempty"`
	// Attempt echoes the command's attempt.
	Attempt int `json:"attempt,omitempty"`
}

// Drifted reports whether an applied ack says the lock's list differs from
// the one keyfleet expected after the command.
func (a Ack) Drifted() bool {
	return a.Status == AckApplied && a.ACLVersion != "" && a.ExpectedACLVersion != "" &&
		!strings.EqualFold(a.ACLVersion, a.ExpectedACLVersion)
}

// Window is a weekly access window in the lock's local time: the days it
// opens on (mon … sun; none: every day) and HH:MM start and end. An end at
// or before the start runs past midnight into the next day.
type Window struct {
	Days  []string `json:"days,omitempty"`
	Start string   `json:"start"`
	End   string   `json:"end"`
}

var weekdays = [...]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Validate checks the window's form: HH:MM start and end, days mon … sun.
func (w Window) Validate() error {
	if _, ok := minuteOfDay(w.Start); !ok {
		return errors.New("start and end are HH:MM")
	}
	if _, ok := minuteOfDay(w.End); !ok {
		return errors.New("start and end are HH:MM")
	}
	for _, d := range w.Days {
		if !slices.Contains(weekdays[:], d) {
			return fmt.Errorf("day %q (want mon..sun)", d)
		}
	}
	return nil
}

// Allowed reports whether windows let a credential in at t (given in the
// lock's local time). No windows allow any time; a malformed window allows
// nothing.
func Allowed(windows []Window, t time.Time) bool {
	if len(windows) == 0 {
		return true
	}
	minute := t.Hour()*60 + t.Minute()
	today, yesterday := weekdays[t.Weekday()], weekdays[(t.Weekday()+6)%7]
	for _, w := range windows {
		if w.Validate() != nil {
			continue
		}
		start, _ := minuteOfDay(w.Start)
		end, _ := minuteOfDay(w.End)
		on := func(day string) bool { return len(w.Days) == 0 || slices.Contains(w.Days, day) }
		if start < end {
			if on(today) && minute >= start && minute < end {
				return true
			}
			continue
		}
		// Past midnight: the evening part today, the morning part on
		// the day after an opening day.
		if (on(today) && minute >= start) || (on(yesterday) && minute < end) {
			return true
		}
	}
	return false
}

// minuteOfDay parses "HH:MM" (00:00 … 23:59).
func minuteOfDay(hhmm string) (int, bool) {
	if len(hhmm) != 5 || hhmm[2] != ':' {
		return 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if hhmm[i] < '0' || hhmm[i] > '9' {
			return 0, false
		}
	}
	h, _ := strconv.Atoi(hhmm[:2])
	m, _ := strconv.Atoi(hhmm[3:])
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*60 + m, true
}

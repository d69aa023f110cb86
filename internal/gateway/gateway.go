// Package gateway is the wire contract between keyfleet's control plane and
// lock gateways (vendor clouds, bridges, legacy panels): commands on
// lock.commands, per-lock acknowledgements on lock.acks. Both are JSON and
// keyed by lock_id, so one gateway sees its locks' commands in order.
package gateway

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

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
	// pseudonymous form (see event.RefHash); gateways that know the raw
	// slot/card map it themselves.
	UserRefHash  string `json:"user_ref_hash,omitempty"`
	RevocationID string `json:"revocation_id,omitempty"` // groups the commands of one revocation
	ValidFromMs  int64  `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64  `json:"valid_until_ms,omitempty"`
	// Windows restrict a grant to weekly windows (none: at any time within
	// the validity); see Allowed.
	Windows []Window `json:"windows,omitempty"`
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

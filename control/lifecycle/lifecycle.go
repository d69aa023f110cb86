// Package lifecycle is the credential state machine: every state change the
// control plane makes goes through Next, which holds the one transition
// table. It has no dependencies, so the table can be read, tested and
// documented on its own.
//
//	requested → approved → issued → pending_activation → active ⇄ suspended
//	    any live state → revoked → archived
package lifecycle

import (
	"fmt"
	"sort"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Ops are the operations on a credential.
const (
	OpRequest      = "request"       // a new credential is requested
	OpApprove      = "approve"       // the last required approval: requested → approved
	OpAddApproval  = "add_approval"  // an approval that is not yet the last one (state unchanged)
	OpIssue        = "issue"         // approved → issued (entitlement created, locks told)
	OpDeliver      = "deliver"       // issued → pending_activation (waiting for device possession proof)
	OpActivate     = "activate"      // pending_activation → active (attested device)
	OpSuspend      = "suspend"       // active → suspended
	OpReinstate    = "reinstate"     // suspended → active
	OpDeviceChange = "device_change" // a new device: back to pending_activation, old session revoked
	OpUpdate       = "update"        // template change propagated (state unchanged)
	OpRevoke       = "revoke"        // any live state → revoked
	OpExpire       = "expire"        // valid_until passed → revoked
	OpArchive      = "archive"       // revoked → archived
)

// Ops lists every operation.
var Ops = []string{OpRequest, OpApprove, OpAddApproval, OpIssue, OpDeliver, OpActivate, OpSuspend,
	OpReinstate, OpDeviceChange, OpUpdate, OpRevoke, OpExpire, OpArchive}

// None is the "state" of a credential that does not exist yet.
const None = ""

const (
	requested = event.StateRequested
	approved  = event.StateApproved
	issued    = event.StateIssued
	pending   = event.StatePendingActivation
	active    = event.StateActive
	suspended = event.StateSuspended
	revoked   = event.StateRevoked
	archived  = event.StateArchived
)

// Live are the states from which a credential can still be revoked.
var Live = []string{requested, approved, issued, pending, active, suspended}

// table is the whole state machine: op → from → to. Nothing else decides
// whether a transition is legal.
var table = map[string]map[string]string{
	OpRequest:      {None: requested},
	OpApprove:      {requested: approved},
	OpAddApproval:  {requested: requested},
	OpIssue:        {approved: issued},
	OpDeliver:      {issued: pending},
	OpActivate:     {pending: active},
	OpSuspend:      {active: suspended},
	OpReinstate:    {suspended: active},
	OpDeviceChange: {active: pending, pending: pending},
	OpUpdate:       same(Live...),
	OpRevoke:       to(revoked, Live...),
	OpExpire:       to(revoked, Live...),
	OpArchive:      {revoked: archived},
}

func same(states ...string) map[string]string {
	m := map[string]string{}
	for _, s := range states {
		m[s] = s
	}
	return m
}

func to(dst string, from ...string) map[string]string {
	m := map[string]string{}
	for _, s := range from {
		m[s] = dst
	}
	return m
}

// TransitionError is an illegal transition: op is not allowed in state From.
type TransitionError struct {
	Op      string
	From    string
	Allowed []string // the states op is allowed in
}

func (e *TransitionError) Error() string {
	from := e.From
	if from == None {
		from = "(none)"
	}
	return fmt.Sprintf("cannot %s a credential in state %s (allowed in: %v)", e.Op, from, e.Allowed)
}

// Next returns the state after op in state from, or a *TransitionError.
func Next(op, from string) (string, error) {
	t, ok := table[op]
	if !ok {
		return "", fmt.Errorf("unknown operation %q", op)
	}
	if dst, ok := t[from]; ok {
		return dst, nil
	}
	return "", &TransitionError{Op: op, From: from, Allowed: AllowedIn(op)}
}

// AllowedIn returns the states in which op is allowed, sorted.
func AllowedIn(op string) []string {
	var out []string
	for s := range table[op] {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// IsLive reports whether a credential in state s may still be used or issued.
func IsLive(s string) bool {
	for _, l := range Live {
		if l == s {
			return true
		}
	}
	return false
}

// Usable reports whether a credential in state s opens doors.
func Usable(s string) bool { return s == active }

package detect

import (
	"slices"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Entitlement is what a credential's role template grants it: the locks
// its grants were pushed to. The control plane's credential records carry
// it beside the lifecycle fields ("locks": [{"vendor", "lock_id"}]), so one
// credential.events record decodes into both an event.Credential and an
// Entitlement.
//
// unlock_burst uses it while it knows little else about a subject (the
// learning period after a cold start, a newcomer of a role without
// history): a burst across doors the credential is entitled to is raised at
// low confidence, one that reaches doors outside its entitlement is not —
// that much is known on day one.
type Entitlement struct {
	CredentialID string         `json:"credential_id"`
	Locks        []EntitledLock `json:"locks"`
}

// EntitledLock is one lock a credential is entitled to.
type EntitledLock struct {
	Vendor string `json:"vendor"`
	LockID string `json:"lock_id"`
}

// Entitle records a credential's entitlement, replacing the one known. A
// record without locks says nothing about the entitlement and is ignored.
// It is kept as a sorted slice of lock numbers (the engine numbers each
// lock once): a million credentials of dozens of locks each fit in 4 bytes
// a lock instead of a map of strings each.
func (e *Engine) Entitle(ent *Entitlement) {
	if ent == nil || ent.CredentialID == "" || len(ent.Locks) == 0 {
		return
	}
	if e.lockNums == nil {
		e.lockNums = map[lockKey]uint32{}
	}
	nums := make([]uint32, 0, len(ent.Locks))
	for _, l := range ent.Locks {
		k := lockKey{l.Vendor, l.LockID}
		n, ok := e.lockNums[k]
		if !ok {
			n = uint32(len(e.lockNums))
			e.lockNums[k] = n
		}
		nums = append(nums, n)
	}
	slices.Sort(nums)
	e.cred(ent.CredentialID).entitled = slices.Clip(slices.Compact(nums))
}

type lockKey struct{ vendor, lockID string }

// Entitlement scopes of an access event (winEntry.scope).
const (
	scopeUnknown  uint8 = iota // no entitlement on record for its credential
	scopeEntitled              // a lock the credential is entitled to
	scopeOutside               // a lock outside the credential's entitlement
)

// scope says whether an access event's lock is within its credential's
// entitlement.
func (e *Engine) scope(c *credState, ev *event.Access) uint8 {
	if c == nil || c.entitled == nil {
		return scopeUnknown
	}
	if n, ok := e.lockNums[lockKey{ev.Vendor, ev.LockID}]; ok {
		if _, found := slices.BinarySearch(c.entitled, n); found {
			return scopeEntitled
		}
	}
	return scopeOutside
}

package control

import "fmt"

// Enforcement says what a credential's grant carries to one lock (the
// estate policy: estate/grant implements it on the capability matrix and
// the lock registry). The Applier asks it for every grant command and for
// the credential's Weaker list; nil means every lock gets everything.
type Enforcement interface {
	Carry(r *Record, l LockRef) Carry
}

// Carry is what a grant carries to one lock: whether the credential's
// weekly windows and its end date go to the lock, and, when the lock
// enforces less than the credential asks, how (Weaker; nil when it
// enforces everything).
type Carry struct {
	Windows bool
	Expiry  bool
	Weaker  *WeakerLock
}

// WeakerLock is a lock that enforces less than its credential asks, as the
// credential's record states it: the windows are not on the lock (Schedule
// "detect_only": it opens at any time within the validity and the
// off_schedule detector flags use afterwards) and/or the end date is kept by
// keyfleet revoking at expiry (Expiry "revocation", late by up to
// ExpiryLateS).
type WeakerLock struct {
	Vendor      string `json:"vendor"`
	LockID      string `json:"lock_id"`
	Schedule    string `json:"schedule,omitempty"`
	Expiry      string `json:"expiry,omitempty"`
	ExpiryLateS int64  `json:"expiry_late_s,omitempty"`
}

// carry asks the Enforcement (everything without one).
func (a Applier) carry(r *Record, l LockRef) Carry {
	if a.Enforce == nil {
		return Carry{Windows: true, Expiry: true}
	}
	return a.Enforce.Carry(r, l)
}

// setWeaker lists the credential's locks that enforce less than it asks.
func (a Applier) setWeaker(r *Record) {
	r.Weaker = nil
	for _, l := range r.Locks {
		if w := a.carry(r, l).Weaker; w != nil {
			r.Weaker = append(r.Weaker, *w)
		}
	}
}

// Refusal is one lock the estate policy refuses a grant on: the lock, its
// door and tier, the capability the grant needs that the lock lacks, and
// why no exception lifted the refusal (the items of a 422
// capability_missing problem's extra.refusals).
type Refusal struct {
	Vendor     string `json:"vendor"`
	LockID     string `json:"lock_id"`
	SiteID     string `json:"site_id,omitempty"`
	DoorID     string `json:"door_id,omitempty"`
	Tier       int    `json:"tier"`
	Capability string `json:"capability"`
	Need       string `json:"need"`
	Have       string `json:"have"`
	Exception  string `json:"exception,omitempty"`
}

func (r Refusal) String() string {
	return fmt.Sprintf("lock %s/%s (door %s/%s, tier %d) lacks %s: needs %s, has %s", r.Vendor, r.LockID, r.SiteID, r.DoorID,
		r.Tier, r.Capability, r.Need, r.Have)
}

// LockMove moves a credential's grant from one lock to another (a vendor
// migration replacing the lock of a door).
type LockMove struct {
	From LockRef `json:"from"`
	To   LockRef `json:"to"`
}

package migrate

import (
	"cmp"
	"slices"
	"time"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/internal/gateway"
)

// Started answers POST /v1/estate/migrations: what the migration changes
// (and, unless it is a dry run, where to follow it).
type Started struct {
	MigrationID string `json:"migration_id,omitempty"`
	StatusURL   string `json:"status_url,omitempty"`
	DryRun      bool   `json:"dry_run,omitempty"`
	Plan        Plan   `json:"plan"`
	Credentials int    `json:"credentials"`
	// Deferred are credentials no lock holds (suspended, or not activated
	// yet): moved on their record, their new locks are told when they are
	// reinstated or activated.
	Deferred int `json:"deferred"`
	// WeakLinks are the new locks whose tier demands more than they can do.
	WeakLinks []estate.WeakLink `json:"weak_links"`
}

// Head is a migration as requested (estate_migrations).
type Head struct {
	MigrationID string `json:"migration_id"`
	FromVendor  string `json:"from_vendor"`
	ToVendor    string `json:"to_vendor"`
	RequestedMs int64  `json:"requested_ms"`
	Actor       string `json:"actor"`
	Reason      string `json:"reason,omitempty"`
	Locks       int    `json:"locks"`
	Credentials int    `json:"credentials"`
}

// Move is one credential moved from one lock to another
// (estate_migration_moves); State is the credential's state when it moved.
type Move struct {
	CredentialID string
	State        string
	From, To     control.LockRef
}

// Ack is the first applied acknowledgement of a credential's command on a
// lock after the migration was requested (lock_acks).
type Ack struct {
	CredentialID string
	Lock         control.LockRef
	Type         string // grant or revoke
	AppliedMs    int64
}

// Statuses of a migration.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
)

// Status is the migration resource (GET /v1/estate/migrations/{id}): per
// lock pair how many credentials moved and how many the new lock (grant)
// and the old lock (revoke) confirmed; the stragglers with their age; done
// once every lock confirmed every credential.
type Status struct {
	Head
	Status string `json:"status"`
	// Moved counts the credentials whose every move is confirmed on both
	// locks, of those the locks were told about (Total).
	Moved    int            `json:"moved"`
	Total    int            `json:"total"`
	Deferred int            `json:"deferred"` // on no lock when moved (suspended, not activated): told when reinstated or activated
	Locks    []LockProgress `json:"locks"`
	// Stragglers are the lock commands not confirmed yet, oldest first.
	Stragglers      []Straggler `json:"stragglers"`
	TimeToConfirmMs int64       `json:"time_to_confirm_ms,omitempty"`
	AgeMs           int64       `json:"age_ms"`
}

// LockProgress is one old lock and its replacement.
type LockProgress struct {
	From        control.LockRef `json:"from"`
	To          control.LockRef `json:"to"`
	Credentials int             `json:"credentials"`
	Granted     int             `json:"granted"` // confirmed by the new lock
	Revoked     int             `json:"revoked"` // confirmed by the old lock
	Status      string          `json:"status"`
}

// Straggler is a lock that has not confirmed a credential's command.
type Straggler struct {
	CredentialID string `json:"credential_id"`
	Vendor       string `json:"vendor"`
	LockID       string `json:"lock_id"`
	Command      string `json:"command"` // grant (new lock) or revoke (old lock)
	AgeMs        int64  `json:"age_ms"`
	Overdue      bool   `json:"overdue,omitempty"` // pending past the SLA
}

// Progress computes a migration's status from its moves and the acks of
// its locks at now; a lock command pending longer than sla is overdue.
func Progress(h Head, moves []Move, acks []Ack, now time.Time, sla time.Duration) Status {
	type key struct {
		cred string
		lock control.LockRef
		typ  string
	}
	applied := map[key]int64{}
	for _, a := range acks {
		k := key{a.CredentialID, a.Lock, a.Type}
		if cur, ok := applied[k]; !ok || a.AppliedMs < cur {
			applied[k] = a.AppliedMs
		}
	}
	st := Status{Head: h, Locks: []LockProgress{}, Stragglers: []Straggler{}}
	age := max(0, now.UnixMilli()-h.RequestedMs)
	st.AgeMs = age
	pairs := map[control.LockMove]*LockProgress{}
	deferred := map[control.LockMove]int{}
	suspended := map[string]bool{}
	done := map[string]bool{} // credential → all confirmed so far
	var last int64
	for _, m := range moves {
		pair := control.LockMove{From: m.From, To: m.To}
		lp := pairs[pair]
		if lp == nil {
			lp = &LockProgress{From: m.From, To: m.To}
			pairs[pair] = lp
		}
		lp.Credentials++
		if !OnLocks(m.State) {
			suspended[m.CredentialID] = true
			deferred[pair]++
			continue
		}
		if _, seen := done[m.CredentialID]; !seen {
			done[m.CredentialID] = true
		}
		for _, c := range []struct {
			lock control.LockRef
			typ  string
			n    *int
		}{{m.To, gateway.CommandGrant, &lp.Granted}, {m.From, gateway.CommandRevoke, &lp.Revoked}} {
			if at, ok := applied[key{m.CredentialID, c.lock, c.typ}]; ok {
				*c.n++
				last = max(last, at)
				continue
			}
			done[m.CredentialID] = false
			st.Stragglers = append(st.Stragglers, Straggler{CredentialID: m.CredentialID, Vendor: c.lock.Vendor, LockID: c.lock.LockID,
				Command: c.typ, AgeMs: age, Overdue: time.Duration(age)*time.Millisecond > sla})
		}
	}
	st.Deferred = len(suspended)
	for _, ok := range done {
		st.Total++
		if ok {
			st.Moved++
		}
	}
	for pair, lp := range pairs {
		lp.Status = StatusPending
		if live := lp.Credentials - deferred[pair]; lp.Granted == live && lp.Revoked == live {
			lp.Status = StatusConfirmed
		}
		st.Locks = append(st.Locks, *lp)
	}
	slices.SortFunc(st.Locks, func(a, b LockProgress) int {
		return cmp.Or(cmp.Compare(a.From.Vendor, b.From.Vendor), cmp.Compare(a.From.LockID, b.From.LockID))
	})
	slices.SortStableFunc(st.Stragglers, func(a, b Straggler) int {
		return cmp.Or(cmp.Compare(a.Vendor, b.Vendor), cmp.Compare(a.LockID, b.LockID), cmp.Compare(a.CredentialID, b.CredentialID))
	})
	st.Status = StatusPending
	if len(st.Stragglers) == 0 {
		st.Status = StatusConfirmed
		if last > 0 {
			st.TimeToConfirmMs = max(0, last-h.RequestedMs)
		}
	}
	return st
}

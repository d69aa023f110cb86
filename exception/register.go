package exception

import (
	"cmp"
	"slices"
	"sync"
)

// Register is the current version of every exception, in memory (every
// instance follows exception.register into its own).
type Register struct {
	mu      sync.RWMutex
	recs    map[string]Record
	version uint64 // moves on every applied change
}

// NewRegister returns an empty register.
func NewRegister() *Register { return &Register{recs: map[string]Record{}} }

// Put applies a record unless the register holds the same or a newer
// version of it; it reports whether it applied.
func (g *Register) Put(r Record) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if cur, ok := g.recs[r.ID]; ok && cur.Version >= r.Version {
		return false
	}
	g.recs[r.ID] = r
	g.version++
	return true
}

// Get returns an exception's current record.
func (g *Register) Get(id string) (Record, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	r, ok := g.recs[id]
	return r, ok
}

// Version moves whenever a record is applied.
func (g *Register) Version() uint64 {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.version
}

// Len is the number of exceptions (closed ones too).
func (g *Register) Len() int {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return len(g.recs)
}

// All returns every record, newest start first, then by id.
func (g *Register) All() []Record {
	g.mu.RLock()
	out := make([]Record, 0, len(g.recs))
	for _, r := range g.recs {
		out = append(out, r)
	}
	g.mu.RUnlock()
	slices.SortFunc(out, func(a, b Record) int {
		return cmp.Or(cmp.Compare(b.StartMs, a.StartMs), cmp.Compare(a.ID, b.ID))
	})
	return out
}

// Query is a refused grant an exception could lift: whose credential
// (subject, role, credential when known), on which lock or door, for which
// missing capability.
type Query struct {
	SubjectID    string
	CredentialID string
	Role         string
	SiteID       string
	DoorID       string
	Vendor       string
	LockID       string
	Capability   string
	// Kinds are the kinds that may answer (empty: any).
	Kinds []Kind
}

// Matches reports whether the scope covers the query: every field the
// scope sets is the query's.
func (s Scope) Matches(q Query) bool {
	for _, p := range [][2]string{{s.SiteID, q.SiteID}, {s.DoorID, q.DoorID}, {s.Vendor, q.Vendor}, {s.LockID, q.LockID},
		{s.SubjectID, q.SubjectID}, {s.CredentialID, q.CredentialID}, {s.Role, q.Role}, {s.Capability, q.Capability}} {
		if p[0] != "" && p[0] != p[1] {
			return false
		}
	}
	return true
}

// Lifts returns the exception in force at now whose scope covers q (the
// one expiring last, then the lowest id, when several do).
func (g *Register) Lifts(q Query, now int64) (Record, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	var best Record
	found := false
	for _, r := range g.recs {
		if !r.InForce(now) || !r.Scope.Matches(q) || (len(q.Kinds) > 0 && !slices.Contains(q.Kinds, r.Kind)) {
			continue
		}
		if !found || r.ExpiryMs > best.ExpiryMs || (r.ExpiryMs == best.ExpiryMs && r.ID < best.ID) {
			best, found = r, true
		}
	}
	return best, found
}

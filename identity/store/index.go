package store

import (
	"github.com/keyfleet/keyfleet/identity/scim"
)

// Write operations.
const (
	opCreate  = "create"
	opReplace = "replace"
	opDelete  = "delete"
)

// Decision outcomes (identity_decisions.outcome).
const (
	outcomeApplied  = "applied"
	outcomeNotFound = "not_found"
	outcomeVersion  = "version"
	outcomeConflict = "conflict" // detail: the unique key
	outcomeExists   = "exists"   // the id is taken
	outcomeExpired  = "expired"  // decided after the writer's deadline: never applied
	outcomeInvalid  = "invalid"  // undecodable intent or staged row missing
)

// entry is what the owner knows of one resource: its newest version and
// unique keys (the keys of a deleted resource are free again).
type entry struct {
	version uint64
	deleted bool
	token   string // the write that produced this version
	keys    uniqueKeys
}

// uniqueKeys are a resource's values of the keys unique per type:
// userName (lower-cased), externalId and the pseudonymous subject id.
type uniqueKeys struct {
	userName, externalID, subject string
}

func (k uniqueKeys) each(fn func(key scim.Key, v string)) {
	if k.userName != "" {
		fn(scim.KeyUserName, k.userName)
	}
	if k.externalID != "" {
		fn(scim.KeyExternalID, k.externalID)
	}
	if k.subject != "" {
		fn(scim.KeySubjectID, k.subject)
	}
}

// write is one write to decide: an intent with, for creates and replaces,
// the staged version's keys.
type write struct {
	token   string
	op      string
	typ, id string
	prev    uint64
	version uint64 // the staged version (create: 1, replace: prev + 1)
	keys    uniqueKeys
	staged  bool
}

// index is the owner's view of identity_resources: it decides writes in
// log order, so two instances never both create the same user or both
// replace the same version. It is not safe for concurrent use.
type index struct {
	byID  map[string]map[string]*entry              // type → id
	byKey map[string]map[scim.Key]map[string]string // type → key → value → id (live resources)
}

func newIndex() *index {
	return &index{byID: map[string]map[string]*entry{}, byKey: map[string]map[scim.Key]map[string]string{}}
}

// put records a resource's newest version.
func (x *index) put(typ, id string, e *entry) {
	if old := x.byID[typ][id]; old != nil && !old.deleted {
		old.keys.each(func(k scim.Key, v string) {
			if x.byKey[typ][k][v] == id {
				delete(x.byKey[typ][k], v)
			}
		})
	}
	if x.byID[typ] == nil {
		x.byID[typ] = map[string]*entry{}
		x.byKey[typ] = map[scim.Key]map[string]string{}
	}
	x.byID[typ][id] = e
	if e.deleted {
		return
	}
	e.keys.each(func(k scim.Key, v string) {
		if x.byKey[typ][k] == nil {
			x.byKey[typ][k] = map[string]string{}
		}
		x.byKey[typ][k][v] = id
	})
}

// conflict returns the first unique key of w another live resource holds.
func (x *index) conflict(w write) scim.Key {
	var taken scim.Key
	w.keys.each(func(k scim.Key, v string) {
		if holder, ok := x.byKey[w.typ][k][v]; ok && holder != w.id && taken == "" {
			taken = k
		}
	})
	return taken
}

// decide decides one write and, when it is applied, records its effect.
// It returns the outcome and, for a conflict, the key.
func (x *index) decide(w write) (string, string) {
	cur := x.byID[w.typ][w.id]
	if cur != nil && cur.token == w.token && w.token != "" {
		return outcomeApplied, "" // re-delivered after it was applied
	}
	if w.op != opDelete && !w.staged {
		return outcomeInvalid, "staged version missing"
	}
	switch w.op {
	case opCreate:
		if cur != nil {
			return outcomeExists, ""
		}
	case opReplace, opDelete:
		if cur == nil || cur.deleted {
			return outcomeNotFound, ""
		}
		if w.prev != 0 && cur.version != w.prev {
			return outcomeVersion, ""
		}
		if w.op == opReplace && w.version != cur.version+1 {
			return outcomeVersion, ""
		}
	default:
		return outcomeInvalid, "unknown operation"
	}
	if w.op != opDelete {
		if k := x.conflict(w); k != "" {
			return outcomeConflict, string(k)
		}
	}
	e := &entry{version: w.version, token: w.token, keys: w.keys}
	if w.op == opDelete {
		e = &entry{version: cur.version + 1, deleted: true, token: w.token}
	}
	x.put(w.typ, w.id, e)
	return outcomeApplied, ""
}

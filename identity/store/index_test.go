package store

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestIndexDecides runs a log of writes through the owner's index: each
// step's outcome is what the owner would decide in that order.
func TestIndexDecides(t *testing.T) {
	x := newIndex()
	user := func(name, ext string) uniqueKeys {
		return uniqueKeys{userName: name, externalID: ext, subject: "s-" + name}
	}
	step := func(w write, want, wantDetail string) {
		t.Helper()
		w.staged = w.op != opDelete
		got, detail := x.decide(w)
		assert.Equal(t, want, got, "%s %s/%s (%s)", w.op, w.typ, w.id, w.token)
		assert.Equal(t, wantDetail, detail)
	}
	step(write{token: "t1", op: opCreate, typ: "User", id: "u1", version: 1, keys: user("alice", "e1")}, outcomeApplied, "")
	// A second instance creating the same person loses on every unique key.
	step(write{token: "t2", op: opCreate, typ: "User", id: "u2", version: 1, keys: user("alice", "e2")}, outcomeConflict, "userName")
	step(write{token: "t3", op: opCreate, typ: "User", id: "u3", version: 1, keys: user("carol", "e1")}, outcomeConflict, "externalId")
	step(write{token: "t3b", op: opCreate, typ: "User", id: "u3", version: 1,
		keys: uniqueKeys{userName: "dave", subject: "s-alice"}}, outcomeConflict, "subject_id")
	// Other types have their own keys.
	step(write{token: "t4", op: opCreate, typ: "Group", id: "g1", version: 1, keys: uniqueKeys{externalID: "e1"}}, outcomeApplied, "")
	step(write{token: "t5", op: opCreate, typ: "User", id: "u1", version: 1, keys: user("bob", "")}, outcomeExists, "")
	// Two replaces based on version 1: the first wins.
	step(write{token: "t6", op: opReplace, typ: "User", id: "u1", prev: 1, version: 2, keys: user("alice", "e1")}, outcomeApplied, "")
	step(write{token: "t7", op: opReplace, typ: "User", id: "u1", prev: 1, version: 2, keys: user("alice", "e9")}, outcomeVersion, "")
	step(write{token: "t6", op: opReplace, typ: "User", id: "u1", prev: 1, version: 2, keys: user("alice", "e1")}, outcomeApplied, "")
	step(write{token: "t8", op: opReplace, typ: "User", id: "nope", prev: 1, version: 2}, outcomeNotFound, "")
	// A rename frees the old name.
	step(write{token: "t9", op: opReplace, typ: "User", id: "u1", prev: 2, version: 3, keys: user("alicia", "e1")}, outcomeApplied, "")
	step(write{token: "t10", op: opCreate, typ: "User", id: "u4", version: 1, keys: user("alice", "e4")}, outcomeApplied, "")
	// Delete: version-checked, frees the keys, the id stays taken.
	step(write{token: "t11", op: opDelete, typ: "User", id: "u1", prev: 2}, outcomeVersion, "")
	step(write{token: "t12", op: opDelete, typ: "User", id: "u1", prev: 3}, outcomeApplied, "")
	assert.Equal(t, uint64(4), x.byID["User"]["u1"].version)
	step(write{token: "t13", op: opDelete, typ: "User", id: "u1"}, outcomeNotFound, "")
	step(write{token: "t14", op: opReplace, typ: "User", id: "u1", prev: 3, version: 4}, outcomeNotFound, "")
	step(write{token: "t15", op: opCreate, typ: "User", id: "u5", version: 1, keys: user("alicia", "e1")}, outcomeApplied, "")
	step(write{token: "t16", op: opCreate, typ: "User", id: "u1", version: 1, keys: user("zed", "")}, outcomeExists, "")
	// A write whose staged version is missing is never applied.
	got, _ := x.decide(write{token: "t17", op: opCreate, typ: "User", id: "u6", version: 1})
	assert.Equal(t, outcomeInvalid, got)
}

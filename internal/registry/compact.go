package registry

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"hash/maphash"
	"slices"
	"unsafe"
)

// The compact form of credential references: at a million people the
// registry holds tens of millions of them, so a reference is a fixed-size
// key of numbers and bytes, not six strings.

// credKey is a vendor user reference: vendor and lock id interned (lock 0 is
// "": every lock of the vendor), the reference hash in binary when it has
// event.RefHash's form (32 lowercase hex digits), else interned as text.
type credKey struct {
	vendor, lock uint32
	text         uint32 // 1 + the hash interned, when not in RefHash's form (0: it is)
	hash         [16]byte
}

// holder is whose a reference is: interned subject, credential and device,
// and the phone's recorded dimensions.
type holder struct {
	subject, credential, device               uint32
	phoneModel, osName, osVersion, appVersion uint32
	breakGlass                                bool
}

// interner numbers strings: 0 is "", the rest in order of first use. Ids
// are never released (vendors, locks and holders of a fleet recur). The
// strings' bytes live in shared blocks (no allocation and header per
// string) and the index is an open-addressing table of numbers (4 bytes a
// slot instead of a map entry's key, value and overhead).
type interner struct {
	texts []string // by number; each points into a block
	block []byte   // the block being filled
	table table
	seed  maphash.Seed
}

// blockBytes is the size of the interner's blocks of string bytes.
const blockBytes = 64 << 10

// intern returns s's number, adding it if new (callers hold the write lock).
func (n *interner) intern(s string) uint32 {
	if s == "" {
		return 0
	}
	if n.texts == nil {
		n.texts, n.seed = []string{""}, maphash.MakeSeed()
	}
	h := maphash.String(n.seed, s)
	if i, ok := n.table.find(h, func(i uint32) bool { return n.texts[i] == s }); ok {
		return i
	}
	if cap(n.block)-len(n.block) < len(s) {
		n.block = make([]byte, 0, max(blockBytes, len(s)))
	}
	start := len(n.block)
	n.block = append(n.block, s...) // a copy: s may point into a larger buffer
	i := uint32(len(n.texts))
	n.texts = append(n.texts, unsafe.String(&n.block[start], len(s)))
	n.table.insert(h, i, func(i uint32) uint64 { return maphash.String(n.seed, n.texts[i]) })
	return i
}

// lookup returns s's number if it has one.
func (n *interner) lookup(s string) (uint32, bool) {
	if s == "" {
		return 0, true
	}
	if n.texts == nil {
		return 0, false
	}
	return n.table.find(maphash.String(n.seed, s), func(i uint32) bool { return n.texts[i] == s })
}

func (n *interner) text(i uint32) string {
	if i == 0 {
		return ""
	}
	return n.texts[i]
}

// table is an open-addressing hash index of numbers (linear probing; a
// slot holds a number + 1, 0 is empty). Callers keep what is numbered and
// say how to hash and compare it.
type table struct {
	slots []uint32
	n     int
}

func (t *table) find(h uint64, is func(uint32) bool) (uint32, bool) {
	if len(t.slots) == 0 {
		return 0, false
	}
	mask := uint64(len(t.slots) - 1)
	for p := h & mask; ; p = (p + 1) & mask {
		v := t.slots[p]
		if v == 0 {
			return 0, false
		}
		if is(v - 1) {
			return v - 1, true
		}
	}
}

// insert adds i (not in the table yet) under hash h; hash rehashes what
// the table holds when it grows.
func (t *table) insert(h uint64, i uint32, hash func(uint32) uint64) {
	if 4*(t.n+1) > 3*len(t.slots) {
		old := t.slots
		t.slots = make([]uint32, max(16, 2*len(old)))
		for _, v := range old {
			if v != 0 {
				t.put(hash(v-1), v)
			}
		}
	}
	t.put(h, i+1)
	t.n++
}

func (t *table) put(h uint64, v uint32) {
	mask := uint64(len(t.slots) - 1)
	p := h & mask
	for t.slots[p] != 0 {
		p = (p + 1) & mask
	}
	t.slots[p] = v
}

// refHash decodes a hash in event.RefHash's form.
func refHash(s string) ([16]byte, bool) {
	var out [16]byte
	if len(s) != 32 {
		return out, false
	}
	for i := 0; i < 32; i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return out, false
		}
	}
	_, err := hex.Decode(out[:], []byte(s))
	return out, err == nil
}

// key returns a reference's key, interning what it names.
func (n *interner) key(vendor, lockID, hash string) credKey {
	k := credKey{vendor: n.intern(vendor), lock: n.intern(lockID)}
	if h, ok := refHash(hash); ok {
		k.hash = h
	} else {
		k.text = n.intern(hash) + 1
	}
	return k
}

// lookupKey returns a reference's key if everything it names is interned
// (else no reference with that key is held).
func (n *interner) lookupKey(vendor, lockID, hash string) (credKey, bool) {
	var k credKey
	var ok bool
	if k.vendor, ok = n.lookup(vendor); !ok {
		return k, false
	}
	if k.lock, ok = n.lookup(lockID); !ok {
		return k, false
	}
	if h, isHash := refHash(hash); isHash {
		k.hash = h
	} else {
		t, ok := n.lookup(hash)
		if !ok {
			return k, false
		}
		k.text = t + 1
	}
	return k, true
}

// credTable maps reference keys to holders: a sorted slice (32 bytes a
// reference, no map overhead) plus a map of the changes since it was last
// merged, merged in once they reach a quarter of it (so loading n references
// costs O(n log n) and a change between merges one map entry).
type credTable struct {
	base  []credEntry
	delta map[credKey]uint32 // holder, or deleted
	n     int                // references held
}

type credEntry struct {
	key    credKey
	holder uint32
}

// deleted marks a reference of base removed since the last merge.
const deleted = ^uint32(0)

// minMerge is the fewest changes merged at once.
const minMerge = 4096

func compareKeys(a, b credKey) int {
	if c := cmp.Compare(a.vendor, b.vendor); c != 0 {
		return c
	}
	if c := cmp.Compare(a.lock, b.lock); c != 0 {
		return c
	}
	if c := cmp.Compare(a.text, b.text); c != 0 {
		return c
	}
	return bytes.Compare(a.hash[:], b.hash[:])
}

func (t *credTable) inBase(k credKey) (int, bool) {
	return slices.BinarySearchFunc(t.base, k, func(e credEntry, k credKey) int { return compareKeys(e.key, k) })
}

func (t *credTable) get(k credKey) (uint32, bool) {
	if h, ok := t.delta[k]; ok {
		if h == deleted {
			return 0, false
		}
		return h, true
	}
	if i, ok := t.inBase(k); ok {
		return t.base[i].holder, true
	}
	return 0, false
}

func (t *credTable) set(k credKey, h uint32) {
	cur, ok := t.get(k)
	if ok && cur == h {
		return // unchanged (a replayed record)
	}
	if !ok {
		t.n++
	}
	if i, inBase := t.inBase(k); inBase && t.base[i].holder == h {
		delete(t.delta, k) // back to what base holds
		return
	}
	if t.delta == nil {
		t.delta = map[credKey]uint32{}
	}
	t.delta[k] = h
	if len(t.delta) >= max(minMerge, len(t.base)/4) {
		t.merge()
	}
}

func (t *credTable) del(k credKey) {
	if _, ok := t.get(k); !ok {
		return
	}
	t.n--
	if _, ok := t.inBase(k); ok {
		if t.delta == nil {
			t.delta = map[credKey]uint32{}
		}
		t.delta[k] = deleted
	} else {
		delete(t.delta, k)
	}
}

// merge folds the changes into the sorted slice.
func (t *credTable) merge() {
	changes := make([]credEntry, 0, len(t.delta))
	for k, h := range t.delta {
		changes = append(changes, credEntry{k, h})
	}
	slices.SortFunc(changes, func(a, b credEntry) int { return compareKeys(a.key, b.key) })
	out := make([]credEntry, 0, t.n)
	i := 0
	for _, c := range changes {
		for i < len(t.base) && compareKeys(t.base[i].key, c.key) < 0 {
			out = append(out, t.base[i])
			i++
		}
		if i < len(t.base) && t.base[i].key == c.key {
			i++ // replaced or deleted
		}
		if c.holder != deleted {
			out = append(out, c)
		}
	}
	out = append(out, t.base[i:]...)
	t.base, t.delta = out, nil
}

// loadEntry is a reference in the order it was loaded (seq): of several
// mappings of one reference, the last wins.
type loadEntry struct {
	credEntry
	seq uint32
}

// setMany sets many references at once, as set would one after the other
// (sorted once instead of merged piecemeal).
func (t *credTable) setMany(entries []loadEntry) {
	if len(entries) == 0 {
		return
	}
	if len(t.delta) > 0 {
		t.merge()
	}
	slices.SortFunc(entries, func(a, b loadEntry) int {
		return cmp.Or(compareKeys(a.key, b.key), cmp.Compare(a.seq, b.seq))
	})
	add := make([]credEntry, 0, len(entries))
	for i, e := range entries {
		if i+1 < len(entries) && entries[i+1].key == e.key {
			continue // a later mapping wins
		}
		add = append(add, e.credEntry)
	}
	if len(t.base) == 0 {
		t.base, t.n = add, len(add)
		return
	}
	out := make([]credEntry, 0, len(t.base)+len(add))
	i := 0
	for _, c := range add {
		for i < len(t.base) && compareKeys(t.base[i].key, c.key) < 0 {
			out = append(out, t.base[i])
			i++
		}
		if i < len(t.base) && t.base[i].key == c.key {
			i++ // replaced
		}
		out = append(out, c)
	}
	out = append(out, t.base[i:]...)
	t.base, t.n = out, len(out)
}

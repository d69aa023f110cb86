package registry

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"slices"
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
// are never released (vendors, locks and holders of a fleet recur).
type interner struct {
	index map[string]uint32
	texts []string
}

// intern returns s's number, adding it if new (callers hold the write lock).
func (n *interner) intern(s string) uint32 {
	if s == "" {
		return 0
	}
	if i, ok := n.index[s]; ok {
		return i
	}
	if n.index == nil {
		n.index, n.texts = map[string]uint32{}, []string{""}
	}
	s = string([]byte(s)) // a copy: s may point into a larger buffer
	i := uint32(len(n.texts))
	n.texts = append(n.texts, s)
	n.index[s] = i
	return i
}

// lookup returns s's number if it has one.
func (n *interner) lookup(s string) (uint32, bool) {
	if s == "" {
		return 0, true
	}
	i, ok := n.index[s]
	return i, ok
}

func (n *interner) text(i uint32) string {
	if i == 0 {
		return ""
	}
	return n.texts[i]
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
	if _, ok := t.get(k); !ok {
		t.n++
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

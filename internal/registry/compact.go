package registry

import "encoding/hex"

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

// holder is whose a reference is: interned subject, credential and device.
type holder struct {
	subject, credential, device uint32
	breakGlass                  bool
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

package audit

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// MinKeyLen is the shortest audit key accepted (bytes).
const MinKeyLen = 32

// Keyring holds the audit keys: the current one signs new entries and
// checkpoints, every one verifies. Keys live in keyfleet's configuration or
// a key file, never in ClickHouse, so a ClickHouse writer cannot forge an
// entry, re-hash a changed one, or sign a checkpoint.
type Keyring struct {
	current string
	keys    map[string][]byte
}

var keyIDRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,32}$`)

// NewKeyring returns a keyring; current names the signing key.
func NewKeyring(current string, keys map[string][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("audit keyring: no keys")
	}
	for id, k := range keys {
		if !keyIDRE.MatchString(id) {
			return nil, fmt.Errorf("audit key id %q: want 1 to 32 of A-Z a-z 0-9 . _ -", id)
		}
		if len(k) < MinKeyLen {
			return nil, fmt.Errorf("audit key %s: at least %d characters are required", id, MinKeyLen)
		}
	}
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("audit keyring: no key %q", current)
	}
	return &Keyring{current: current, keys: keys}, nil
}

// KeyringFromSecret is a keyring of one key, its id derived from the key
// (so the id never reveals it and changes when the key does).
func KeyringFromSecret(secret string) (*Keyring, error) {
	sum := sha256.Sum256([]byte("keyfleet-audit-key-id\x00" + secret))
	id := "k" + hex.EncodeToString(sum[:4])
	return NewKeyring(id, map[string][]byte{id: []byte(secret)})
}

// ParseKeyFile reads a key file: one key per line, "KEY_ID SECRET", blank
// lines and # comments ignored. The last key signs; the earlier ones only
// verify (rotation: append a new line, keep the old ones).
func ParseKeyFile(data []byte) (*Keyring, error) {
	keys := map[string][]byte{}
	current := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, secret, ok := strings.Cut(line, " ")
		secret = strings.TrimSpace(secret)
		if !ok || secret == "" {
			return nil, fmt.Errorf("audit key file line %d: want KEY_ID SECRET", n)
		}
		if _, dup := keys[id]; dup {
			return nil, fmt.Errorf("audit key file line %d: key id %s given twice", n, id)
		}
		keys[id] = []byte(secret)
		current = id
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read audit key file: %w", err)
	}
	return NewKeyring(current, keys)
}

// LoadKeyFile reads a key file (see ParseKeyFile).
func LoadKeyFile(path string) (*Keyring, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("audit key file: %w", err)
	}
	k, err := ParseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// Current returns the id of the signing key.
func (k *Keyring) Current() string { return k.current }

// IDs returns the key ids.
func (k *Keyring) IDs() []string {
	out := make([]string, 0, len(k.keys))
	for id := range k.keys {
		out = append(out, id)
	}
	return out
}

// mac is HMAC-SHA256 under key id over a length-prefixed encoding of
// fields; ok is false for an unknown key.
func (k *Keyring) mac(id string, fields ...string) (string, bool) {
	key, ok := k.keys[id]
	if !ok {
		return "", false
	}
	h := hmac.New(sha256.New, key)
	var n [8]byte
	for _, f := range fields {
		binary.BigEndian.PutUint64(n[:], uint64(len(f)))
		h.Write(n[:])
		h.Write([]byte(f))
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// keyedPrefix starts the hash of a keyed entry: hmac-sha256:<key id>:<hex>.
// Unkeyed entries (written before keys, or by a store without keys) hold a
// bare SHA-256 hex digest.
const keyedPrefix = "hmac-sha256:"

// splitHash returns the key id of a keyed hash ("" for an unkeyed one) and
// whether the hash is well-formed at all.
func splitHash(h string) (keyID string, ok bool) {
	rest, keyed := strings.CutPrefix(h, keyedPrefix)
	if !keyed {
		return "", len(h) == 64 && isHex(h)
	}
	id, digest, ok := strings.Cut(rest, ":")
	return id, ok && keyIDRE.MatchString(id) && len(digest) == 64 && isHex(digest)
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

package event

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
)

// RefHash is the keyed pseudonymous form of a vendor user reference (a Matter
// user index, a Nuki auth id, a panel card number): HMAC-SHA256 over vendor
// and reference with the deployment's pseudonym key, truncated to 128 bits.
// Only this form is stored (registry, credential.events, lock.commands); the
// raw reference never leaves the adapter.
func RefHash(key []byte, vendor, ref string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(vendor))
	m.Write([]byte{0})
	m.Write([]byte(ref))
	var sum [sha256.Size]byte
	return hex.EncodeToString(m.Sum(sum[:0])[:16])
}

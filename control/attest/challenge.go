package attest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"time"
)

// Challenge layout: version 1 | expiry (unix seconds, 8 bytes big endian)
// | nonce 16 | HMAC-SHA256 32.
const (
	challengeVersion = 1
	challengeNonce   = 16
	challengeLen     = 1 + 8 + challengeNonce + sha256.Size
	// DefaultChallengeTTL is the lifetime of a challenge when the
	// Challenger has none.
	DefaultChallengeTTL = 5 * time.Minute
)

// Challenger issues and checks stateless attestation challenges: each
// carries its expiry and an HMAC-SHA256, keyed by a server secret, over the
// expiry, a random nonce and the credential and device ids it was issued
// for. Nothing is stored, so a challenge can be answered more than once
// until it expires; a caller that needs single use remembers the
// challenges it accepted (e.g. on the credential) until their expiry.
type Challenger struct {
	key []byte
	ttl time.Duration
}

// NewChallenger returns a Challenger keyed by key (at least 32 bytes,
// shared by every instance of the API) whose challenges live ttl
// (DefaultChallengeTTL when 0).
func NewChallenger(key []byte, ttl time.Duration) (*Challenger, error) {
	if len(key) < 32 {
		return nil, errors.New("challenger: key shorter than 32 bytes")
	}
	if ttl < 0 {
		return nil, errors.New("challenger: negative ttl")
	}
	if ttl == 0 {
		ttl = DefaultChallengeTTL
	}
	return &Challenger{key: append([]byte(nil), key...), ttl: ttl}, nil
}

// Issue returns a challenge for the credential and device, and when it
// expires (now + ttl, whole seconds).
func (c *Challenger) Issue(credentialID, deviceID string, now time.Time) ([]byte, time.Time) {
	exp := now.Add(c.ttl).Truncate(time.Second)
	b := make([]byte, challengeLen)
	b[0] = challengeVersion
	binary.BigEndian.PutUint64(b[1:9], uint64(exp.Unix()))
	_, _ = rand.Read(b[9 : 9+challengeNonce]) // never fails (crypto/rand)
	copy(b[9+challengeNonce:], c.mac(b[:9+challengeNonce], credentialID, deviceID))
	return b, exp
}

// Check verifies that challenge was issued by this key for the credential
// and device and has not expired at now. Refusals are *Error with reason
// wrong_challenge or challenge_expired.
func (c *Challenger) Check(challenge []byte, credentialID, deviceID string, now time.Time) error {
	if len(challenge) != challengeLen || challenge[0] != challengeVersion {
		return refuse(ReasonWrongChallenge, "not a challenge of this service")
	}
	body := challenge[:9+challengeNonce]
	if !hmac.Equal(challenge[9+challengeNonce:], c.mac(body, credentialID, deviceID)) {
		return refuse(ReasonWrongChallenge, "challenge not issued for this credential and device")
	}
	exp := time.Unix(int64(binary.BigEndian.Uint64(challenge[1:9])), 0)
	if now.After(exp) {
		return refuse(ReasonChallengeExpired, "challenge expired at %s", exp.UTC().Format(time.RFC3339))
	}
	return nil
}

func (c *Challenger) mac(body []byte, credentialID, deviceID string) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte("keyfleet attestation challenge\x00"))
	m.Write(body)
	for _, s := range []string{credentialID, deviceID} {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}

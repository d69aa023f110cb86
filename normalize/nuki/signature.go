package nuki

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// SignatureHeader carries the signature of a Nuki webhook: the lowercase
// hex HMAC-SHA256 of the raw request body, keyed with the webhook secret.
const SignatureHeader = "X-Nuki-Signature-SHA256"

// ErrBadSignature is a signature that does not match the body.
var ErrBadSignature = errors.New("nuki webhook signature does not match the body")

// Sign returns the signature of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks signature (hex, either case, surrounding space ignored)
// against body in constant time. It is pure: no I/O, no logging.
func Verify(secret, body []byte, signature string) error {
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha256.Size {
		return ErrBadSignature
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}

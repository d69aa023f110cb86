package schlage

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// SignatureHeader carries the signature of a Schlage Home API v2 webhook:
// the base64 RSASSA-PSS (SHA-256) signature of the raw UTF-8 request body,
// made with Schlage's RSA-2048 webhook signing key. Receivers verify it
// with Schlage's published public key.
const SignatureHeader = "WebHook-Signature"

// ErrBadSignature is a signature that does not match the body.
var ErrBadSignature = errors.New("schlage webhook signature does not match the body")

// ParsePublicKey reads Schlage's webhook public key from PEM ("PUBLIC
// KEY", PKIX, or "RSA PUBLIC KEY", PKCS #1).
func ParsePublicKey(data []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block found")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is %T, want RSA", k)
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		k, err := x509.ParsePKCS1PublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse RSA public key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("PEM block %q, want PUBLIC KEY", block.Type)
}

// Verify checks a base64 signature against body. The PSS salt length is
// detected, as Schlage's reference verifier does. It is pure: no I/O, no
// logging.
func Verify(key *rsa.PublicKey, body []byte, signature string) error {
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(sig) == 0 {
		return ErrBadSignature
	}
	sum := sha256.Sum256(body)
	if rsa.VerifyPSS(key, crypto.SHA256, sum[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) != nil {
		return ErrBadSignature
	}
	return nil
}

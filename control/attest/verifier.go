package attest

import (
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// MaxEvidenceBytes bounds the evidence Verify reads (a real App Attest
// object with its receipt is about 5 KiB, an Android chain about 4 KiB).
const MaxEvidenceBytes = 64 << 10

// Attestation types of Result.AttestationType.
const (
	// AttestationFull: a certificate chain to a configured root vouches for
	// the key.
	AttestationFull = "full"
	// AttestationSelf: WebAuthn self attestation; proves possession only.
	AttestationSelf = "self"
)

// Result is what a verified attestation establishes.
type Result struct {
	Format string
	// PublicKeySHA256 is the hex SHA-256 of the attested key's DER
	// SubjectPublicKeyInfo (the same encoding for every format).
	PublicKeySHA256 string
	SecurityLevel   SecurityLevel
	// AppID is the configured app the key belongs to: the Android package
	// name, the Apple App ID or the WebAuthn relying-party id that matched.
	AppID string
	// CredentialID is the authenticator's credential id (Apple: the key
	// id, SHA-256 of the public point; WebAuthn: the credential id); nil
	// for Android.
	CredentialID    []byte
	AttestationType string
	// Environment is Apple's: "production" or "development".
	Environment string
	// VerifiedBoot is Android's hardware root of trust: verified,
	// self_signed, unverified, failed, or "" when not reported.
	VerifiedBoot string
	// OSVersion ("15", "15.1") and OSPatchLevel ("2026-01") are Android's
	// hardware-enforced osVersion and osPatchLevel: what the secure
	// hardware proves of the phone's OS. "" when not reported (and always
	// for Apple and WebAuthn, whose evidence proves no OS version).
	OSVersion, OSPatchLevel string
	// NotBefore and NotAfter bound the leaf (attestation) certificate; zero
	// for WebAuthn self attestation.
	NotBefore, NotAfter time.Time
}

// Verifier verifies attestation evidence. It is safe for concurrent use.
type Verifier struct {
	now     func() time.Time
	allowed []string
	dec     cbor.DecMode

	androidRoots    *x509.CertPool
	androidPackages []string
	androidDigests  [][]byte
	androidMin      SecurityLevel
	androidBoot     bool

	appleRoots *x509.CertPool
	appleApps  []string
	appleDev   bool

	webRoots   *x509.CertPool
	webRPIDs   []string
	webOrigins []string
	webSelf    bool
}

// New validates cfg, reads its roots and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dec, err := newDecMode()
	if err != nil {
		return nil, err
	}
	v := &Verifier{now: cfg.Now, allowed: cfg.formats(), dec: dec}
	if v.now == nil {
		v.now = time.Now
	}
	for _, f := range v.allowed {
		switch f {
		case FormatAndroidKey:
			o := cfg.Android
			if v.androidRoots, err = o.Roots.pool(DefaultAndroidRoots()); err != nil {
				return nil, fmt.Errorf("android: %w", err)
			}
			v.androidPackages = slices.Clone(o.PackageNames)
			for _, d := range o.SigningCertDigests {
				b, _ := hex.DecodeString(d) // checked by Validate
				v.androidDigests = append(v.androidDigests, b)
			}
			v.androidMin = o.MinSecurityLevel
			if v.androidMin == "" {
				v.androidMin = SecurityLevelTrustedEnvironment
			}
			v.androidBoot = o.RequireVerifiedBoot
		case FormatAppleAppAttest:
			o := cfg.Apple
			if v.appleRoots, err = o.Roots.pool(DefaultAppleRoots()); err != nil {
				return nil, fmt.Errorf("apple: %w", err)
			}
			v.appleApps = slices.Clone(o.AppIDs)
			v.appleDev = o.AllowDevelopment
		case FormatWebAuthn:
			o := cfg.WebAuthn
			if v.webRoots, err = o.Roots.pool(nil); err != nil {
				return nil, fmt.Errorf("webauthn: %w", err)
			}
			v.webRPIDs = slices.Clone(o.RPIDs)
			v.webOrigins = slices.Clone(o.Origins)
			v.webSelf = o.AllowSelfAttestation
		}
	}
	return v, nil
}

// newDecMode is the CBOR decoder of untrusted evidence: definite lengths,
// no duplicate map keys, small bounds.
func newDecMode() (cbor.DecMode, error) {
	dec, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  16,
		MaxArrayElements: 64,
		MaxMapPairs:      64,
	}.DecMode()
	if err != nil {
		return nil, fmt.Errorf("cbor decoder: %w", err)
	}
	return dec, nil
}

// Formats returns the formats v accepts.
func (v *Verifier) Formats() []string { return slices.Clone(v.allowed) }

// Verify checks evidence of the given format against challenge, the bytes
// the server handed out for this attestation. A refusal is an *Error; Verify
// returns no other error.
func (v *Verifier) Verify(format string, evidence, challenge []byte) (*Result, error) {
	switch {
	case format == FormatAliro:
		return nil, refuse(ReasonUnsupportedFormat, "aliro evidence cannot be verified here (no public specification); refused")
	case !slices.Contains(SupportedFormats(), format):
		return nil, refuse(ReasonUnsupportedFormat, "unknown format %q, want one of %s", format, strings.Join(SupportedFormats(), ", "))
	case !slices.Contains(v.allowed, format):
		return nil, refuse(ReasonFormatNotAllowed, "format %q is not enabled", format)
	case len(evidence) == 0:
		return nil, refuse(ReasonMalformed, "empty evidence")
	case len(evidence) > MaxEvidenceBytes:
		return nil, refuse(ReasonMalformed, "evidence of %d bytes, limit %d", len(evidence), MaxEvidenceBytes)
	case len(challenge) == 0:
		return nil, refuse(ReasonWrongChallenge, "no challenge to verify against")
	}
	now := v.now()
	switch format {
	case FormatAndroidKey:
		return v.verifyAndroid(evidence, challenge, now)
	case FormatAppleAppAttest:
		return v.verifyApple(evidence, challenge, now)
	default:
		return v.verifyWebAuthn(evidence, challenge, now)
	}
}

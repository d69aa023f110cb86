package attest

import (
	"errors"
	"fmt"
)

// Reason is the stable, machine-readable cause of a refusal. The API puts
// it in the code of its 4xx problem document; the values never change
// meaning (doc.go has the table).
type Reason string

// Reasons. Each refusal carries exactly one.
const (
	// ReasonUnsupportedFormat: the format (or a variant inside it, such as
	// a WebAuthn statement other than "packed") has no verifier here.
	ReasonUnsupportedFormat Reason = "unsupported_format"
	// ReasonFormatNotAllowed: a verifiable format the configuration does
	// not accept.
	ReasonFormatNotAllowed Reason = "format_not_allowed"
	// ReasonMalformed: the evidence does not follow its wire format.
	ReasonMalformed Reason = "malformed"
	// ReasonUntrustedChain: the certificate chain does not lead to a
	// configured root.
	ReasonUntrustedChain Reason = "untrusted_chain"
	// ReasonExpired: a certificate of the chain is outside its validity
	// period at the verifier's clock.
	ReasonExpired Reason = "expired"
	// ReasonBadSignature: a signature over the evidence (a certificate of
	// the chain, or the attestation statement) does not verify.
	ReasonBadSignature Reason = "bad_signature"
	// ReasonWrongChallenge: the evidence is bound to another challenge (or
	// a Challenger challenge was not issued for these ids or by this key).
	ReasonWrongChallenge Reason = "wrong_challenge"
	// ReasonChallengeExpired: a Challenger challenge is past its expiry.
	ReasonChallengeExpired Reason = "challenge_expired"
	// ReasonWrongApp: the key belongs to an app (package, signing
	// certificate, App ID, relying party, origin) not configured.
	ReasonWrongApp Reason = "wrong_app"
	// ReasonWeakSecurityLevel: the Android key lives in a weaker keystore
	// than the configured minimum.
	ReasonWeakSecurityLevel Reason = "weak_security_level"
	// ReasonUnverifiedBoot: verified boot is required and the device did
	// not boot a verified, locked image.
	ReasonUnverifiedBoot Reason = "unverified_boot"
	// ReasonWrongEnvironment: an Apple development-environment key where
	// only production keys are accepted.
	ReasonWrongEnvironment Reason = "wrong_environment"
	// ReasonSelfAttestationNotAllowed: a WebAuthn self attestation (no
	// certificate chain) while the configuration requires one.
	ReasonSelfAttestationNotAllowed Reason = "self_attestation_not_allowed"
	// ReasonInconsistent: signed parts of the evidence contradict each
	// other or the format's rules (key id ≠ credential id, counter ≠ 0,
	// attestation extension outside the leaf, wrong ceremony type ...).
	ReasonInconsistent Reason = "inconsistent"
)

// Error is a refusal: the reason code and a human-readable detail.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return "attestation refused: " + string(e.Reason)
	}
	return "attestation refused: " + string(e.Reason) + ": " + e.Detail
}

// ReasonOf returns the reason of an *Error in err's chain, or "" when
// there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// Package attest verifies device attestation evidence: that a credential's
// key was made by genuine hardware, for our app, in answer to our
// challenge. It is a pure library (no network, no storage): New(Config)
// returns a Verifier, and Verifier.Verify(format, evidence, challenge)
// returns a Result or an *Error whose Reason is a stable code.
//
// # Formats and wire formats
//
// The API carries evidence as base64 of these bytes:
//
//   - android_key_attestation: the KeyStore certificate chain of the key
//     (KeyStore.getCertificateChain), DER certificates concatenated, leaf
//     first; the last, self-signed root may be included or left out.
//     The challenge is the attestationChallenge the app set
//     (setAttestationChallenge).
//   - apple_app_attest: the attestation object DCAppAttestService.attestKey
//     returns, CBOR {fmt: "apple-appattest", attStmt: {x5c: [credCert,
//     intermediate], receipt}, authData}. The app passes SHA-256(challenge)
//     as clientDataHash.
//   - webauthn: a CBOR map {"attestationObject": bytes, "clientDataJSON":
//     bytes}, the two byte strings of navigator.credentials.create's
//     response; clientDataJSON's challenge is base64url(challenge).
//   - aliro: refused as unsupported_format. The Aliro specification (CSA) is
//     not available to verify against; accepting bytes no one can check would
//     make "attested" mean nothing, so no verifier exists and Config.Validate
//     rejects listing it.
//
// # What is verified
//
// Android: each certificate's signature by the next; validity of every
// certificate at Config.Now (expired); a path to the configured roots
// (untrusted_chain) — a trailing self-signed certificate is dropped and the
// configured pool anchors the chain, so a device's copy of Google's expired
// 2016 root certificate does not matter; the key description extension
// (OID 1.3.6.1.4.1.11129.2.1.17) in the leaf only (inconsistent otherwise);
// attestationChallenge = challenge; min(attestationSecurityLevel,
// keyMintSecurityLevel) ≥ MinSecurityLevel; attestationApplicationId (tag
// 709, either list): a configured package and, when configured, only
// configured signing-certificate digests; with RequireVerifiedBoot, the
// hardware-enforced rootOfTrust (tag 704) says verified and locked. Both
// AuthorizationLists are read, unknown tags skipped, integers read leniently.
//
// Apple (Apple's "Validating apps that connect to your server"): x5c chain
// to the App Attestation Root CA; nonce = SHA-256(authData ||
// SHA-256(challenge)) equals the credential certificate's extension
// 1.2.840.113635.100.8.2; key id = SHA-256 of the uncompressed P-256 point
// equals authData's credentialId, and authData's COSE key is the
// certificate's; rpIdHash = SHA-256 of a configured App ID; counter 0;
// aaguid "appattest"+7 zero bytes, or "appattestdevelop" when
// AllowDevelopment. The nonce binds both the challenge and authData, so
// altered authData is refused as wrong_challenge.
//
// WebAuthn ("packed", WebAuthn Level 2 §8.2, ES256 only): clientData type
// webauthn.create, challenge, origin (when Origins is set), not
// cross-origin; rpIdHash of a configured RP ID; user presence; the
// signature over authData || SHA-256(clientDataJSON) by the attestation
// certificate (x5c[0], with §8.2.1's subject, CA and aaguid requirements)
// and its chain to WebAuthn roots — or, with AllowSelfAttestation, by the
// credential key itself. Self attestation proves possession of the key, not
// which device holds it: any software can produce one, hence off by
// default.
//
// # What is not verified
//
//   - Revocation: Google's attestation status list
//     (android.googleapis.com/attestation/status) is not fetched (no
//     network); a revoked Android batch key still verifies. App Attest
//     certificates carry no revocation pointers.
//   - Apple's receipt (a fraud-risk ticket) and later App Attest assertions
//     and their counters; WebAuthn authenticator metadata (FIDO MDS status,
//     key protection), other statement formats (tpm, android-key,
//     android-safetynet, apple, fido-u2f, none) and credential keys other
//     than EC2 P-256.
//   - Single use of a challenge (see Challenger).
//   - Evidence that is not strict DER/CBOR: Go's x509 parser refuses some
//     non-conforming certificates (e.g. negative serial numbers) as
//     malformed.
//
// # Roots
//
// Empty Roots mean the shipped public roots (roots/*.pem): Apple's App
// Attestation Root CA (SHA-256 1cb9823b…c932) and Google's hardware
// attestation roots — the RSA key of SERIALNUMBER=f92009e853b6b045 in its
// 2019, 2021 and 2022 certificates and the 2025 P-384 "Key Attestation CA1".
// WebAuthn has no default. Roots.PEM and Roots.Files replace the defaults;
// check Google's list (android.googleapis.com/attestation/root) when it
// changes.
//
// # Reasons
//
//	unsupported_format            format (or WebAuthn statement/alg) without a verifier; aliro
//	format_not_allowed            verifiable, but not enabled by the configuration
//	malformed                     not the documented wire format; empty or over MaxEvidenceBytes
//	untrusted_chain               no path to a configured root
//	expired                       a certificate outside its validity at the clock
//	bad_signature                 a certificate or statement signature does not verify
//	wrong_challenge               bound to another challenge (Apple: or authData altered);
//	                              Challenger: not issued for these ids or by this key
//	challenge_expired             Challenger: past the challenge's expiry
//	wrong_app                     package, signing digest, App ID, RP ID or origin not configured
//	weak_security_level           Android keystore below MinSecurityLevel
//	unverified_boot               Android root of trust not verified and locked (RequireVerifiedBoot)
//	wrong_environment             Apple development key without AllowDevelopment
//	self_attestation_not_allowed  WebAuthn statement without x5c
//	inconsistent                  signed parts contradict each other or the format's rules
//
// # Challenges
//
// Challenger issues stateless challenges: version | expiry | nonce |
// HMAC-SHA256(key, expiry, nonce, credential id, device id). Check refuses
// a challenge of another key or other ids (wrong_challenge) or past its
// expiry (challenge_expired). It keeps no state, so a challenge can be
// answered until it expires; remember accepted ones where single use
// matters.
//
// Package attesttest mints genuine and forged evidence from a throwaway CA
// for tests and the fleet simulator.
package attest

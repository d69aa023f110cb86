package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// oidAppleNonce is the App Attest credential certificate's nonce extension.
var oidAppleNonce = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 2}

// App Attest aaguids.
var (
	aaguidAppleProduction  = []byte("appattest\x00\x00\x00\x00\x00\x00\x00")
	aaguidAppleDevelopment = []byte("appattestdevelop")
)

// attestationObject is the CBOR attestation object of WebAuthn and App
// Attest: {fmt, attStmt, authData}. Other keys are ignored.
type attestationObject struct {
	Fmt      string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

type appleStatement struct {
	X5C     [][]byte `cbor:"x5c"`
	Receipt []byte   `cbor:"receipt"`
}

// appleNonce is the extension value: SEQUENCE { [1] EXPLICIT OCTET STRING }.
type appleNonce struct {
	Nonce []byte `asn1:"explicit,tag:1"`
}

// appleEvidence is a decoded App Attest attestation object.
type appleEvidence struct {
	rawAuthData []byte
	ad          *authData
	certs       []*x509.Certificate // credCert, intermediate
	pub         *ecdsa.PublicKey    // credCert's
	nonce       []byte              // credCert's nonce extension
}

// parseApple decodes an attestation object; no signature is checked.
func parseApple(dec cbor.DecMode, evidence []byte) (*appleEvidence, error) {
	var obj attestationObject
	if err := dec.Unmarshal(evidence, &obj); err != nil {
		return nil, refuse(ReasonMalformed, "attestation object: %v", err)
	}
	if obj.Fmt != "apple-appattest" {
		return nil, refuse(ReasonMalformed, "fmt %q, want apple-appattest", obj.Fmt)
	}
	var st appleStatement
	if err := dec.Unmarshal(obj.AttStmt, &st); err != nil {
		return nil, refuse(ReasonMalformed, "attStmt: %v", err)
	}
	certs, err := parseChain(st.X5C)
	if err != nil {
		return nil, err
	}
	ad, err := parseAuthData(obj.AuthData, dec)
	if err != nil {
		return nil, refuse(ReasonMalformed, "authData: %v", err)
	}
	ev := &appleEvidence{rawAuthData: obj.AuthData, ad: ad, certs: certs}
	pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse(ReasonMalformed, "credential certificate key is not P-256")
	}
	ev.pub = pub
	for _, e := range certs[0].Extensions {
		if e.Id.Equal(oidAppleNonce) {
			var n appleNonce
			if rest, err := asn1.Unmarshal(e.Value, &n); err != nil || len(rest) != 0 {
				return nil, refuse(ReasonMalformed, "nonce extension: not SEQUENCE { [1] OCTET STRING }")
			}
			ev.nonce = n.Nonce
		}
	}
	if ev.nonce == nil {
		return nil, refuse(ReasonMalformed, "credential certificate has no nonce extension (%s)", oidAppleNonce)
	}
	return ev, nil
}

// verifyApple verifies an App Attest attestation object, following Apple's
// "Validating apps that connect to your server" steps 1-9.
func (v *Verifier) verifyApple(evidence, challenge []byte, now time.Time) (*Result, error) {
	ev, err := parseApple(v.dec, evidence)
	if err != nil {
		return nil, err
	}
	ad, pub, cred := ev.ad, ev.pub, ev.certs[0]
	// 1. The chain to Apple's App Attest root.
	if err := verifyChain(ev.certs, v.appleRoots, now); err != nil {
		return nil, err
	}
	// 2-4. nonce = SHA256(authData || SHA256(challenge)) is in the
	// credential certificate, which Apple signed.
	clientDataHash := sha256.Sum256(challenge)
	h := sha256.New()
	h.Write(ev.rawAuthData)
	h.Write(clientDataHash[:])
	if subtle.ConstantTimeCompare(h.Sum(nil), ev.nonce) != 1 {
		return nil, refuse(ReasonWrongChallenge, "nonce differs from SHA-256(authData || SHA-256(challenge)): another challenge, or altered authData")
	}
	// 5. key id = SHA256(public point) is the credential id (step 9).
	point, err := pub.Bytes()
	if err != nil {
		return nil, refuse(ReasonMalformed, "credential key: %v", err)
	}
	keyID := sha256.Sum256(point)
	if !bytes.Equal(keyID[:], ad.credentialID) {
		return nil, refuse(ReasonInconsistent, "credential id is not the key id")
	}
	if !pub.Equal(ad.key) {
		return nil, refuse(ReasonInconsistent, "credential public key differs from the certificate's")
	}
	// 6. rpIdHash = SHA256(App ID).
	app := ""
	for _, id := range v.appleApps {
		if s := sha256.Sum256([]byte(id)); bytes.Equal(s[:], ad.rpIDHash) {
			app = id
			break
		}
	}
	if app == "" {
		return nil, refuse(ReasonWrongApp, "rpIdHash matches no configured App ID")
	}
	// 7. A new key has not signed anything.
	if ad.signCount != 0 {
		return nil, refuse(ReasonInconsistent, "counter %d, want 0", ad.signCount)
	}
	// 8. The environment.
	env := ""
	switch {
	case bytes.Equal(ad.aaguid, aaguidAppleProduction):
		env = "production"
	case bytes.Equal(ad.aaguid, aaguidAppleDevelopment):
		env = "development"
		if !v.appleDev {
			return nil, refuse(ReasonWrongEnvironment, "development key (aaguid appattestdevelop), production required")
		}
	default:
		return nil, refuse(ReasonInconsistent, "aaguid %q is not App Attest's", ad.aaguid)
	}
	return &Result{
		Format:          FormatAppleAppAttest,
		PublicKeySHA256: keySHA256(cred),
		SecurityLevel:   SecurityLevelSecureEnclave,
		AppID:           app,
		CredentialID:    bytes.Clone(ad.credentialID),
		AttestationType: AttestationFull,
		Environment:     env,
		NotBefore:       cred.NotBefore,
		NotAfter:        cred.NotAfter,
	}, nil
}

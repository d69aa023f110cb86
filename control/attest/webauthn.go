package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// oidFIDOAAGUID is the attestation certificate's aaguid extension.
var oidFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// webauthnEvidence is the webauthn wire format: a CBOR map of the two
// byte strings a browser or platform returns from navigator.credentials.create.
type webauthnEvidence struct {
	AttestationObject []byte `cbor:"attestationObject"`
	ClientDataJSON    []byte `cbor:"clientDataJSON"`
}

type clientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
}

type packedStatement struct {
	Alg *int64   `cbor:"alg"`
	Sig []byte   `cbor:"sig"`
	X5C [][]byte `cbor:"x5c"`
}

// webauthnParsed is decoded webauthn evidence.
type webauthnParsed struct {
	clientDataJSON []byte
	cd             clientData
	rawAuthData    []byte
	ad             *authData
	alg            int64
	sig            []byte
	certs          []*x509.Certificate // nil: self attestation
}

// parseWebAuthn decodes webauthn evidence; no signature is checked.
func parseWebAuthn(dec cbor.DecMode, evidence []byte) (*webauthnParsed, error) {
	var ev webauthnEvidence
	if err := dec.Unmarshal(evidence, &ev); err != nil {
		return nil, refuse(ReasonMalformed, "evidence: %v", err)
	}
	if len(ev.AttestationObject) == 0 || len(ev.ClientDataJSON) == 0 {
		return nil, refuse(ReasonMalformed, "evidence: want attestationObject and clientDataJSON")
	}
	p := &webauthnParsed{clientDataJSON: ev.ClientDataJSON}
	if err := json.Unmarshal(ev.ClientDataJSON, &p.cd); err != nil {
		return nil, refuse(ReasonMalformed, "clientDataJSON: %v", err)
	}
	var obj attestationObject
	if err := dec.Unmarshal(ev.AttestationObject, &obj); err != nil {
		return nil, refuse(ReasonMalformed, "attestationObject: %v", err)
	}
	if obj.Fmt != "packed" {
		return nil, refuse(ReasonUnsupportedFormat, "webauthn attestation statement %q; only \"packed\" is verified", obj.Fmt)
	}
	var st packedStatement
	if err := dec.Unmarshal(obj.AttStmt, &st); err != nil {
		return nil, refuse(ReasonMalformed, "attStmt: %v", err)
	}
	if st.Alg == nil || len(st.Sig) == 0 {
		return nil, refuse(ReasonMalformed, "attStmt: want alg and sig")
	}
	if *st.Alg != coseAlgES256 {
		return nil, refuse(ReasonUnsupportedFormat, "attStmt alg %d; only ES256 (-7) is verified", *st.Alg)
	}
	p.alg, p.sig, p.rawAuthData = *st.Alg, st.Sig, obj.AuthData
	var err error
	if p.ad, err = parseAuthData(obj.AuthData, dec); err != nil {
		return nil, refuse(ReasonMalformed, "authData: %v", err)
	}
	if st.X5C != nil {
		if p.certs, err = parseChain(st.X5C); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// verifyWebAuthn verifies a "packed" attestation statement (WebAuthn
// Level 2, §8.2) with its client data.
func (v *Verifier) verifyWebAuthn(evidence, challenge []byte, now time.Time) (*Result, error) {
	p, err := parseWebAuthn(v.dec, evidence)
	if err != nil {
		return nil, err
	}
	cd, ad := p.cd, p.ad

	// Client data: the ceremony, the challenge, the origin.
	if cd.Type != "webauthn.create" {
		return nil, refuse(ReasonInconsistent, "clientData type %q, want webauthn.create", cd.Type)
	}
	got, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(cd.Challenge, "="))
	if err != nil || subtle.ConstantTimeCompare(got, challenge) != 1 {
		return nil, refuse(ReasonWrongChallenge, "clientData challenge differs from the challenge")
	}
	if len(v.webOrigins) > 0 && !slices.Contains(v.webOrigins, cd.Origin) {
		return nil, refuse(ReasonWrongApp, "origin %q not configured", cd.Origin)
	}
	if cd.CrossOrigin {
		return nil, refuse(ReasonWrongApp, "cross-origin ceremony")
	}
	// Authenticator data: relying party and user presence.
	rp := ""
	for _, id := range v.webRPIDs {
		if s := sha256.Sum256([]byte(id)); bytes.Equal(s[:], ad.rpIDHash) {
			rp = id
			break
		}
	}
	if rp == "" {
		return nil, refuse(ReasonWrongApp, "rpIdHash matches no configured relying party")
	}
	if ad.flags&flagUserPresent == 0 {
		return nil, refuse(ReasonInconsistent, "user presence flag unset")
	}

	clientDataHash := sha256.Sum256(p.clientDataJSON)
	signed := append(bytes.Clone(p.rawAuthData), clientDataHash[:]...)
	digest := sha256.Sum256(signed)
	res := &Result{
		Format:          FormatWebAuthn,
		SecurityLevel:   SecurityLevelUnknown,
		AppID:           rp,
		CredentialID:    bytes.Clone(ad.credentialID),
		AttestationType: AttestationFull,
	}
	der, err := x509.MarshalPKIXPublicKey(ad.key)
	if err != nil {
		return nil, refuse(ReasonMalformed, "credential key: %v", err)
	}
	sum := sha256.Sum256(der)
	res.PublicKeySHA256 = hex.EncodeToString(sum[:])

	if p.certs == nil {
		// Self attestation: signed by the credential key itself.
		if !v.webSelf {
			return nil, refuse(ReasonSelfAttestationNotAllowed, "self attestation (no x5c) proves possession only")
		}
		if ad.keyAlg != p.alg {
			return nil, refuse(ReasonInconsistent, "attStmt alg %d differs from the credential key's %d", p.alg, ad.keyAlg)
		}
		if !ecdsa.VerifyASN1(ad.key, digest[:], p.sig) {
			return nil, refuse(ReasonBadSignature, "self attestation signature does not verify")
		}
		res.AttestationType = AttestationSelf
		return res, nil
	}

	att := p.certs[0]
	pub, ok := att.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, refuse(ReasonMalformed, "attestation certificate key is not P-256")
	}
	if !ecdsa.VerifyASN1(pub, digest[:], p.sig) {
		return nil, refuse(ReasonBadSignature, "attestation signature does not verify")
	}
	if err := packedCertRequirements(att, ad.aaguid); err != nil {
		return nil, err
	}
	if err := verifyChain(p.certs, v.webRoots, now); err != nil {
		return nil, err
	}
	res.NotBefore, res.NotAfter = att.NotBefore, att.NotAfter
	return res, nil
}

// packedCertRequirements are WebAuthn §8.2.1's: version 3; subject C, O,
// CN and OU "Authenticator Attestation"; not a CA; the aaguid extension,
// when present, equal to the authenticator data's.
func packedCertRequirements(c *x509.Certificate, aaguid []byte) error {
	s := c.Subject
	switch {
	case c.Version != 3:
		return refuse(ReasonInconsistent, "attestation certificate version %d, want 3", c.Version)
	case len(s.Country) == 0 || len(s.Organization) == 0 || s.CommonName == "" ||
		!slices.Contains(s.OrganizationalUnit, "Authenticator Attestation"):
		return refuse(ReasonInconsistent, "attestation certificate subject %q lacks C, O, CN or OU=Authenticator Attestation", s.String())
	case c.BasicConstraintsValid && c.IsCA:
		return refuse(ReasonInconsistent, "attestation certificate is a CA")
	}
	for _, e := range c.Extensions {
		if !e.Id.Equal(oidFIDOAAGUID) {
			continue
		}
		var id []byte
		if rest, err := asn1.Unmarshal(e.Value, &id); err != nil || len(rest) != 0 {
			return refuse(ReasonMalformed, "aaguid extension: not an OCTET STRING")
		}
		if e.Critical || !bytes.Equal(id, aaguid) {
			return refuse(ReasonInconsistent, "aaguid extension differs from the authenticator data's (or is critical)")
		}
	}
	return nil
}

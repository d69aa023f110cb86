package attesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
)

var oidFIDOAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// AAGUID of the pretend authenticator.
const AAGUID = "keyfleet-test-au"

// WebAuthn mints webauthn evidence: the CBOR map {attestationObject,
// clientDataJSON} of a "packed" registration of a fresh P-256 credential,
// with full (x5c) attestation, or self attestation for SelfAttestation.
func (ca *CA) WebAuthn(o Options) ([]byte, error) {
	cred, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	credID := make([]byte, 16)
	_, _ = rand.Read(credID)
	rpID, challenge, auth := o.App, o.Challenge, ca.webauthn
	if rpID == "" {
		rpID = RPID
	}
	switch o.Forgery {
	case WrongApp:
		rpID = "clone.example"
	case WrongChallenge:
		challenge = otherChallenge(o.Challenge)
	case UntrustedChain:
		auth = ca.rogueWebAuthn
	}
	clientDataJSON, err := json.Marshal(map[string]any{
		"type":        "webauthn.create",
		"challenge":   base64.RawURLEncoding.EncodeToString(challenge),
		"origin":      Origin,
		"crossOrigin": false,
	})
	if err != nil {
		return nil, err
	}
	cose, err := coseKey(&cred.PublicKey)
	if err != nil {
		return nil, err
	}
	authData := authenticatorData(rpID, 0x45, []byte(AAGUID), credID, cose) // UP, UV, AT
	clientDataHash := sha256.Sum256(clientDataJSON)
	digest := sha256.Sum256(append(append([]byte(nil), authData...), clientDataHash[:]...))

	type statement struct {
		Alg int      `cbor:"alg"`
		Sig []byte   `cbor:"sig"`
		X5C [][]byte `cbor:"x5c,omitempty"`
	}
	st := statement{Alg: -7}
	if o.Forgery == SelfAttestation {
		if st.Sig, err = ecdsa.SignASN1(rand.Reader, cred, digest[:]); err != nil {
			return nil, err
		}
	} else {
		attKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		aaguidExt, err := asn1.Marshal([]byte(AAGUID))
		if err != nil {
			return nil, err
		}
		from, until := ca.validity(o.Forgery)
		att, err := auth.issue(&x509.Certificate{
			Subject: pkix.Name{Country: []string{"US"}, Organization: []string{"Keyfleet Test"},
				OrganizationalUnit: []string{"Authenticator Attestation"}, CommonName: "Keyfleet Test Authenticator"},
			NotBefore:             from,
			NotAfter:              until,
			KeyUsage:              x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
			ExtraExtensions:       []pkix.Extension{{Id: oidFIDOAAGUID, Value: aaguidExt}},
		}, &attKey.PublicKey)
		if err != nil {
			return nil, err
		}
		if st.Sig, err = ecdsa.SignASN1(rand.Reader, attKey, digest[:]); err != nil {
			return nil, err
		}
		st.X5C = [][]byte{att.Raw, auth.inter.Raw}
	}
	switch o.Forgery {
	case TamperedSignature:
		st.Sig = flipLast(st.Sig)
	case TamperedAuthData:
		authData[32] ^= 0x04 // the UV flag, after signing
	}
	obj, err := encode(struct {
		Fmt     string    `cbor:"fmt"`
		AttStmt statement `cbor:"attStmt"`
		Auth    []byte    `cbor:"authData"`
	}{"packed", st, authData})
	if err != nil {
		return nil, err
	}
	return encode(struct {
		AttestationObject []byte `cbor:"attestationObject"`
		ClientDataJSON    []byte `cbor:"clientDataJSON"`
	}{obj, clientDataJSON})
}

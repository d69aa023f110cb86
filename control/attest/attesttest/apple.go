package attesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"

	"github.com/fxamacker/cbor/v2"
)

var oidAppleNonce = asn1.ObjectIdentifier{1, 2, 840, 113635, 100, 8, 2}

// Apple mints an App Attest attestation object (CBOR) for a fresh P-256
// key: {fmt: "apple-appattest", attStmt: {x5c: [credCert, intermediate],
// receipt}, authData}.
func (ca *CA) Apple(o Options) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	point, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, err
	}
	keyID := sha256.Sum256(point)
	app, aaguid, challenge, auth := o.App, []byte("appattest\x00\x00\x00\x00\x00\x00\x00"), o.Challenge, ca.apple
	if app == "" {
		app = AppID
	}
	switch o.Forgery {
	case WrongApp:
		app = "ZZZZZ99999.com.example.clone"
	case Development:
		aaguid = []byte("appattestdevelop")
	case WrongChallenge:
		challenge = otherChallenge(o.Challenge)
	case UntrustedChain:
		auth = ca.rogueApple
	}
	cose, err := coseKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	authData := authenticatorData(app, 0x40, aaguid, keyID[:], cose)
	clientDataHash := sha256.Sum256(challenge)
	nonce := sha256.Sum256(append(append([]byte(nil), authData...), clientDataHash[:]...))
	ext, err := asn1.Marshal(struct {
		Nonce []byte `asn1:"explicit,tag:1"`
	}{nonce[:]})
	if err != nil {
		return nil, err
	}
	from, until := ca.validity(o.Forgery)
	cred, err := auth.issue(&x509.Certificate{
		Subject:               pkix.Name{CommonName: hex.EncodeToString(keyID[:]), OrganizationalUnit: []string{"AAA Certification"}, Organization: []string{"Keyfleet Test"}},
		NotBefore:             from,
		NotAfter:              until,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: oidAppleNonce, Value: ext}},
	}, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	credDER := cred.Raw
	if o.Forgery == TamperedSignature {
		credDER = flipLast(credDER)
	}
	if o.Forgery == TamperedAuthData {
		authData[0] ^= 0x01 // another rpIdHash, after Apple signed the nonce
	}
	return encode(struct {
		Fmt     string `cbor:"fmt"`
		AttStmt any    `cbor:"attStmt"`
		Auth    []byte `cbor:"authData"`
	}{"apple-appattest", struct {
		X5C     [][]byte `cbor:"x5c"`
		Receipt []byte   `cbor:"receipt"`
	}{[][]byte{credDER, auth.inter.Raw}, []byte("attesttest receipt (not verified)")}, authData})
}

// authenticatorData lays out WebAuthn authenticator data with attested
// credential data; the counter is 0.
func authenticatorData(rpID string, flags byte, aaguid, credID, cose []byte) []byte {
	rp := sha256.Sum256([]byte(rpID))
	b := append([]byte(nil), rp[:]...)
	b = append(b, flags, 0, 0, 0, 0)
	b = append(b, aaguid...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(credID)))
	b = append(b, credID...)
	return append(b, cose...)
}

// coseKey encodes an EC2 P-256 ES256 COSE_Key.
func coseKey(pub *ecdsa.PublicKey) ([]byte, error) {
	point, err := pub.Bytes()
	if err != nil {
		return nil, err
	}
	return encode(struct {
		Kty int    `cbor:"1,keyasint"`
		Alg int    `cbor:"3,keyasint"`
		Crv int    `cbor:"-1,keyasint"`
		X   []byte `cbor:"-2,keyasint"`
		Y   []byte `cbor:"-3,keyasint"`
	}{2, -7, 1, point[1:33], point[33:]})
}

// encode is CTAP2 canonical CBOR.
func encode(v any) ([]byte, error) {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		return nil, err
	}
	return em.Marshal(v)
}

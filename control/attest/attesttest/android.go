package attesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"github.com/keyfleet/keyfleet/control/attest"
)

var oidKeyDescription = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 1, 17}

// Android mints a KeyStore certificate chain (DER, leaf first, ending with
// the root as devices send it) whose leaf attests a fresh P-256 key.
func (ca *CA) Android(o Options) ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	d := androidDescription{
		challenge: o.Challenge,
		level:     o.AndroidLevel,
		pkg:       o.App,
		digest:    SigningDigest(),
		verified:  true,
		osVersion: o.AndroidOSVersion,
	}
	if d.osVersion == 0 {
		d.osVersion = 150000
	}
	if d.level == "" {
		d.level = attest.SecurityLevelTrustedEnvironment
	}
	if d.pkg == "" {
		d.pkg = PackageName
	}
	auth := ca.android
	switch o.Forgery {
	case WrongChallenge:
		d.challenge = otherChallenge(o.Challenge)
	case WrongApp:
		d.pkg = "com.example.clone"
	case WeakSecurityLevel:
		d.level = attest.SecurityLevelSoftware
	case UnverifiedBoot:
		d.verified = false
	case UntrustedChain:
		auth = ca.rogueAndroid
	}
	ext, err := d.marshal()
	if err != nil {
		return nil, err
	}
	from, until := ca.validity(o.Forgery)
	leaf, err := auth.issue(&x509.Certificate{
		Subject:         pkix.Name{CommonName: "Android Keystore Key"},
		NotBefore:       from,
		NotAfter:        until,
		KeyUsage:        x509.KeyUsageDigitalSignature,
		ExtraExtensions: []pkix.Extension{{Id: oidKeyDescription, Value: ext}},
	}, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	der := leaf.Raw
	if o.Forgery == TamperedSignature {
		der = flipLast(der)
	}
	out := append([]byte(nil), der...)
	out = append(out, auth.inter.Raw...)
	return append(out, auth.root.Raw...), nil
}

type androidDescription struct {
	challenge []byte
	level     attest.SecurityLevel
	pkg       string
	digest    []byte
	verified  bool
	osVersion int
}

// marshal encodes a KeyMint 3 (version 300) KeyDescription the way devices
// do: the application id software-enforced, the root of trust and key
// properties hardware-enforced (a software keystore enforces everything in
// software and has no root of trust), with tags the verifier skips.
func (d androidDescription) marshal() ([]byte, error) {
	type packageInfo struct {
		Name    []byte
		Version int
	}
	appID, err := asn1.Marshal(struct {
		Packages []packageInfo `asn1:"set"`
		Digests  [][]byte      `asn1:"set"`
	}{[]packageInfo{{[]byte(d.pkg), 7}}, [][]byte{d.digest}})
	if err != nil {
		return nil, err
	}
	bootKey := sha256.Sum256([]byte("keyfleet attesttest verified boot key"))
	state, locked := asn1.Enumerated(0), true
	if !d.verified {
		state, locked = 2, false
	}
	rot, err := asn1.Marshal(struct {
		Key    []byte
		Locked bool
		State  asn1.Enumerated
		Hash   []byte
	}{bootKey[:], locked, state, bootKey[:]})
	if err != nil {
		return nil, err
	}
	props := [][]byte{
		tagged(1, setOfInt(2)),      // purpose: sign
		tagged(2, mustMarshal(3)),   // algorithm: EC
		tagged(3, mustMarshal(256)), // key size
		tagged(705, mustMarshal(d.osVersion)),
		tagged(706, mustMarshal(202601)),
	}
	software := [][]byte{
		tagged(701, mustMarshal(int64(1_780_000_000_000))), // creationDateTime
		tagged(709, mustMarshal(appID)),
	}
	var hardware [][]byte
	level := asn1.Enumerated(1)
	switch d.level {
	case attest.SecurityLevelSoftware:
		level = 0
		software = append(software, props...)
	case attest.SecurityLevelStrongBox:
		level = 2
		fallthrough
	default:
		hardware = append(props, tagged(704, rot))
	}
	return asn1.Marshal(struct {
		AttestationVersion int
		AttestationLevel   asn1.Enumerated
		KeyMintVersion     int
		KeyMintLevel       asn1.Enumerated
		Challenge          []byte
		UniqueID           []byte
		Software           asn1.RawValue
		Hardware           asn1.RawValue
	}{300, level, 300, level, d.challenge, nil, sequence(software), sequence(hardware)})
}

// tagged wraps DER in an AuthorizationList field: [tag] EXPLICIT.
func tagged(tag int, inner []byte) []byte {
	return mustMarshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tag, IsCompound: true, Bytes: inner})
}

func sequence(items [][]byte) asn1.RawValue {
	var b []byte
	for _, it := range items {
		b = append(b, it...)
	}
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagSequence, IsCompound: true, Bytes: b}
}

func setOfInt(v ...int) []byte {
	b, err := asn1.MarshalWithParams(v, "set")
	if err != nil {
		panic(fmt.Sprintf("attesttest: asn1: %v", err))
	}
	return b
}

// mustMarshal encodes values that always encode (fixed shapes above).
func mustMarshal(v any) []byte {
	b, err := asn1.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("attesttest: asn1: %v", err))
	}
	return b
}

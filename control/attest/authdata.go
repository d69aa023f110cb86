package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator data flags.
const (
	flagUserPresent  = 0x01
	flagAttestedData = 0x40
	flagExtensions   = 0x80
)

// COSE values.
const (
	coseKtyEC2   = 2
	coseAlgES256 = -7
	coseCrvP256  = 1
)

// authData is WebAuthn authenticator data with attested credential data
// (App Attest uses the same layout):
//
//	rpIdHash 32 | flags 1 | signCount 4 (big endian) |
//	aaguid 16 | credentialIdLength 2 | credentialId | credentialPublicKey (COSE) |
//	extensions (CBOR map, when flag ED)
type authData struct {
	rpIDHash     []byte
	flags        byte
	signCount    uint32
	aaguid       []byte
	credentialID []byte
	key          *ecdsa.PublicKey
	keyAlg       int64
}

// coseKey is a COSE_Key; only EC2 P-256 is accepted.
type coseKey struct {
	Kty int64  `cbor:"1,keyasint"`
	Alg int64  `cbor:"3,keyasint"`
	Crv int64  `cbor:"-1,keyasint"`
	X   []byte `cbor:"-2,keyasint"`
	Y   []byte `cbor:"-3,keyasint"`
}

func parseAuthData(b []byte, dec cbor.DecMode) (*authData, error) {
	if len(b) < 37 {
		return nil, fmt.Errorf("%d bytes, want at least 37", len(b))
	}
	ad := &authData{rpIDHash: b[:32], flags: b[32], signCount: binary.BigEndian.Uint32(b[33:37])}
	if ad.flags&flagAttestedData == 0 {
		return nil, errors.New("no attested credential data (flag AT unset)")
	}
	b = b[37:]
	if len(b) < 18 {
		return nil, errors.New("attested credential data truncated")
	}
	ad.aaguid = b[:16]
	n := int(binary.BigEndian.Uint16(b[16:18]))
	b = b[18:]
	if n == 0 || n > 1023 || len(b) < n {
		return nil, fmt.Errorf("credential id of %d bytes", n)
	}
	ad.credentialID = b[:n]
	b = b[n:]
	var k coseKey
	rest, err := dec.UnmarshalFirst(b, &k)
	if err != nil {
		return nil, fmt.Errorf("credential public key: %w", err)
	}
	if ad.key, err = k.ecdsa(); err != nil {
		return nil, fmt.Errorf("credential public key: %w", err)
	}
	ad.keyAlg = k.Alg
	if ad.flags&flagExtensions != 0 {
		var ext map[string]cbor.RawMessage
		if rest, err = dec.UnmarshalFirst(rest, &ext); err != nil {
			return nil, fmt.Errorf("extensions: %w", err)
		}
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(rest))
	}
	return ad, nil
}

func (k coseKey) ecdsa() (*ecdsa.PublicKey, error) {
	if k.Kty != coseKtyEC2 || k.Crv != coseCrvP256 || k.Alg != coseAlgES256 {
		return nil, fmt.Errorf("kty %d crv %d alg %d: only EC2 P-256 ES256 supported", k.Kty, k.Crv, k.Alg)
	}
	if len(k.X) != 32 || len(k.Y) != 32 {
		return nil, errors.New("coordinates of the wrong size")
	}
	point := append(append([]byte{4}, k.X...), k.Y...)
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
}

package attest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keyDescriptionOf returns the key description extension of a testdata
// chain's leaf.
func keyDescriptionOf(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	certs, err := x509.ParseCertificates(b)
	require.NoError(t, err)
	for _, e := range certs[0].Extensions {
		if e.Id.Equal(oidKeyDescription) {
			return e.Value
		}
	}
	t.Fatalf("%s: no key description", name)
	return nil
}

func TestParseKeyDescriptionReal(t *testing.T) {
	digest := []byte{0xbd, 0xcb, 0x45, 0x60, 0xf6, 0xb3, 0xc4, 0x1d, 0xad, 0x92, 0x06, 0x68, 0x16, 0x9c, 0x28, 0xbe,
		0x1e, 0xf9, 0xea, 0x49, 0xf2, 0x3d, 0x98, 0xcd, 0x8e, 0xb2, 0xf3, 0x7a, 0xe4, 0x48, 0x8f, 0xf9}
	f := func(file string, want keyDescription) {
		t.Run(file, func(t *testing.T) {
			kd, err := parseKeyDescription(keyDescriptionOf(t, file))
			require.NoError(t, err)
			assert.Equal(t, &want, kd)
		})
	}
	rot := &rootTrust{deviceLocked: true, bootState: 0}
	pkgs := []string{"com.ubinetic.attested.executor.test.testnet"}
	// Keymaster 4 (attestation version 4, keymaster 41) in StrongBox.
	f("android_pixel_strongbox.der", keyDescription{attestationVersion: 4, attestationLevel: SecurityLevelStrongBox,
		keymintVersion: 41, keymintLevel: SecurityLevelStrongBox, challenge: []byte("testasdf"),
		packages: pkgs, digests: [][]byte{digest}, appIDPresent: true, rootOfTrust: rot})
	// KeyMint 1 (version 100) in the TEE, attested with an empty challenge.
	f("android_samsung_tee.der", keyDescription{attestationVersion: 100, attestationLevel: SecurityLevelTrustedEnvironment,
		keymintVersion: 100, keymintLevel: SecurityLevelTrustedEnvironment, challenge: []byte{},
		packages: pkgs, digests: [][]byte{digest}, appIDPresent: true, rootOfTrust: rot})
}

// TestAppleRealSteps runs the steps of Apple's validation that do not need
// the (unknown) challenge or App ID on a real development attestation.
func TestAppleRealSteps(t *testing.T) {
	b, err := os.ReadFile("testdata/apple_appattest_development.cbor")
	require.NoError(t, err)
	v, err := New(Config{Apple: AppleOptions{AppIDs: []string{"TEAMID1234.com.example.app"}}})
	require.NoError(t, err)
	ev, err := parseApple(v.dec, b)
	require.NoError(t, err)
	require.Len(t, ev.certs, 2)
	require.NoError(t, verifyChain(ev.certs, v.appleRoots, time.Date(2022, 8, 25, 0, 0, 0, 0, time.UTC)))
	ad, certs := ev.ad, ev.certs
	assert.Equal(t, aaguidAppleDevelopment, ad.aaguid)
	assert.Zero(t, ad.signCount)

	pub := certs[0].PublicKey.(*ecdsa.PublicKey)
	assert.True(t, pub.Equal(ad.key), "authData key is the credential certificate's")
	point, err := ad.key.Bytes()
	require.NoError(t, err)
	keyID := sha256.Sum256(point)
	assert.True(t, bytes.Equal(keyID[:], ad.credentialID), "credential id is the key id")
}

func FuzzKeyDescription(f *testing.F) {
	for _, name := range []string{"android_pixel_strongbox.der", "android_samsung_tee.der"} {
		kd := keyDescriptionOf(f, name)
		f.Add(kd)
		f.Add(kd[:len(kd)/2])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		kd, err := parseKeyDescription(b)
		if err == nil && (kd == nil || androidRank(kd.attestationLevel) < 0 || androidRank(kd.keymintLevel) < 0) {
			t.Fatalf("parsed without valid levels: %+v", kd)
		}
	})
}

func FuzzAuthData(f *testing.F) {
	b, err := os.ReadFile("testdata/apple_appattest_development.cbor")
	require.NoError(f, err)
	v, err := New(Config{Apple: AppleOptions{AppIDs: []string{"TEAMID1234.com.example.app"}}})
	require.NoError(f, err)
	var obj attestationObject
	require.NoError(f, v.dec.Unmarshal(b, &obj))
	f.Add(obj.AuthData)
	withExt := bytes.Clone(obj.AuthData)
	withExt[32] |= flagExtensions
	f.Add(append(withExt, 0xa1, 0x61, 'x', 0x01)) // {"x": 1}
	f.Add(obj.AuthData[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		ad, err := parseAuthData(b, v.dec)
		if err == nil && (ad.key == nil || len(ad.credentialID) == 0 || len(ad.rpIDHash) != 32) {
			t.Fatalf("parsed without key or ids: %+v", ad)
		}
	})
}

package attest_test

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/attest"
)

// Real devices' evidence (testdata/README.md says where it comes from).
const (
	realPackage = "com.ubinetic.attested.executor.test.testnet"
	realDigest  = "bdcb4560f6b3c41dad920668169c28be1ef9ea49f23d98cd8eb2f37ae4488ff9"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

func day(s string) time.Time {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		panic(err)
	}
	return d
}

// TestRealAndroid verifies chains of real phones against the shipped Google
// roots.
func TestRealAndroid(t *testing.T) {
	pixel := readTestdata(t, "android_pixel_strongbox.der")
	samsung := readTestdata(t, "android_samsung_tee.der")
	tampered := bytes.Clone(pixel)
	leaf, err := x509.ParseCertificates(pixel)
	require.NoError(t, err)
	tampered[len(leaf[0].Raw)-1] ^= 0x01 // the leaf's last signature byte

	f := func(name string, evidence []byte, challenge string, now time.Time, edit func(*attest.AndroidOptions), want attest.Reason, check func(*testing.T, *attest.Result)) {
		t.Run(name, func(t *testing.T) {
			o := attest.AndroidOptions{PackageNames: []string{realPackage}, RequireVerifiedBoot: true}
			if edit != nil {
				edit(&o)
			}
			v := newVerifier(t, attest.Config{Android: o, Now: func() time.Time { return now }})
			res, err := v.Verify(attest.FormatAndroidKey, evidence, []byte(challenge))
			if want != "" {
				requireReason(t, err, want)
				return
			}
			require.NoError(t, err)
			if check != nil {
				check(t, res)
			}
		})
	}
	strongbox := func(o *attest.AndroidOptions) { o.MinSecurityLevel = attest.SecurityLevelStrongBox }
	f("pixel strongbox", pixel, "testasdf", day("2023-06-01"), strongbox, "", func(t *testing.T, r *attest.Result) {
		assert.Equal(t, attest.SecurityLevelStrongBox, r.SecurityLevel)
		assert.Equal(t, realPackage, r.AppID)
		assert.Equal(t, "verified", r.VerifiedBoot)
		assert.Equal(t, day("2028-05-23").Add(24*time.Hour-time.Second), r.NotAfter)
	})
	// The chain ends with Google's 2016 root certificate, expired on
	// 2026-05-24; the re-issued certificates of the same key anchor it.
	f("pixel after the 2016 root expired", pixel, "testasdf", day("2026-12-01"), nil, "", nil)
	f("pixel leaf expired", pixel, "testasdf", day("2028-06-01"), nil, attest.ReasonExpired, nil)
	f("pixel signing digest", pixel, "testasdf", day("2023-06-01"),
		func(o *attest.AndroidOptions) { o.SigningCertDigests = []string{realDigest} }, "", nil)
	f("pixel other signing digest", pixel, "testasdf", day("2023-06-01"),
		func(o *attest.AndroidOptions) { o.SigningCertDigests = []string{hex.EncodeToString(make([]byte, 32))} }, attest.ReasonWrongApp, nil)
	f("pixel other package", pixel, "testasdf", day("2023-06-01"),
		func(o *attest.AndroidOptions) { o.PackageNames = []string{"com.keyfleet.wallet"} }, attest.ReasonWrongApp, nil)
	f("pixel wrong challenge", pixel, "testasdg", day("2023-06-01"), nil, attest.ReasonWrongChallenge, nil)
	f("pixel tampered leaf signature", tampered, "testasdf", day("2023-06-01"), nil, attest.ReasonBadSignature, nil)
	var noRoot []byte
	for _, c := range leaf[:3] {
		noRoot = append(noRoot, c.Raw...)
	}
	f("pixel without the root certificate", noRoot, "testasdf", day("2023-06-01"), nil, "", nil)
	f("pixel without its intermediates", leaf[0].Raw, "testasdf", day("2023-06-01"), nil, attest.ReasonUntrustedChain, nil)
	// The Samsung key was attested with an empty challenge; Verify never
	// accepts one, so the chain and extension pass and the challenge fails.
	f("samsung tee chain", samsung, "x", day("2023-06-01"), nil, attest.ReasonWrongChallenge, nil)
}

// TestRealApple checks a real development attestation object (its
// challenge is not known) as far as it can be: the chain to Apple's root
// verifies, and the nonce is what fails.
func TestRealApple(t *testing.T) {
	ev := readTestdata(t, "apple_appattest_development.cbor")
	f := func(name string, now time.Time, want attest.Reason) {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t, attest.Config{
				Apple: attest.AppleOptions{AppIDs: []string{"TEAMID1234.com.example.app"}, AllowDevelopment: true},
				Now:   func() time.Time { return now },
			})
			_, err := v.Verify(attest.FormatAppleAppAttest, ev, []byte("unknown challenge"))
			requireReason(t, err, want)
		})
	}
	f("within the credential certificate's three days", day("2022-08-25"), attest.ReasonWrongChallenge)
	f("after them", day("2022-09-01"), attest.ReasonExpired)
}

// TestShippedRoots pins the default roots: each is self-signed and has the
// SHA-256 its file header (and the publisher) states.
func TestShippedRoots(t *testing.T) {
	f := func(name string, pemBytes []byte, want []string) {
		t.Run(name, func(t *testing.T) {
			var got []string
			for rest := pemBytes; ; {
				var block *pem.Block
				block, rest = pem.Decode(rest)
				if block == nil {
					break
				}
				c, err := x509.ParseCertificate(block.Bytes)
				require.NoError(t, err)
				require.NoError(t, c.CheckSignatureFrom(c), "self-signed")
				assert.True(t, c.IsCA)
				s := sha256.Sum256(c.Raw)
				got = append(got, hex.EncodeToString(s[:]))
			}
			assert.Equal(t, want, got)
		})
	}
	f("apple", attest.DefaultAppleRoots(), []string{"1cb9823ba28ba6ad2d33a006941de2ae4f513ef1d4e831b9f7e0fa7b6242c932"})
	f("google", attest.DefaultAndroidRoots(), []string{
		"1ef1a04b8ba58ab94589ac498c8982a783f24ea7307e0159a0c3a73b377d87cc",
		"ab6641178a36e179aa0c1cdddf9a16eb45fa20943e2b8cd7c7c05c26cf8b487a",
		"cedb1cb6dc896ae5ec797348bce9286753c2b38ee71ce0fbe34a9a1248800dfc",
		"6d9db4ce6c5c0b293166d08986e05774a8776ceb525d9e4329520de12ba4bcc0",
	})
}

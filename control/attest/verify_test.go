package attest_test

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
)

// testNow is the fixed clock of the minted evidence.
var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var testChallenge = []byte("keyfleet-challenge-0001")

func newCA(t testing.TB) *attesttest.CA {
	t.Helper()
	ca, err := attesttest.New(testNow)
	require.NoError(t, err)
	return ca
}

func newVerifier(t testing.TB, cfg attest.Config) *attest.Verifier {
	t.Helper()
	v, err := attest.New(cfg)
	require.NoError(t, err)
	return v
}

func requireReason(t *testing.T, err error, want attest.Reason) {
	t.Helper()
	require.Error(t, err)
	var e *attest.Error
	require.ErrorAs(t, err, &e, "Verify returns *attest.Error only")
	assert.Equal(t, want, e.Reason, "detail: %s", e.Detail)
}

// TestVerifyMinted: every genuine piece of evidence passes and every forgery
// is refused for the right reason.
func TestVerifyMinted(t *testing.T) {
	want := map[string]attest.Reason{
		"android_key_attestation/genuine":             "",
		"android_key_attestation/wrong_challenge":     attest.ReasonWrongChallenge,
		"android_key_attestation/untrusted_chain":     attest.ReasonUntrustedChain,
		"android_key_attestation/expired_leaf":        attest.ReasonExpired,
		"android_key_attestation/wrong_app":           attest.ReasonWrongApp,
		"android_key_attestation/tampered_signature":  attest.ReasonBadSignature,
		"android_key_attestation/weak_security_level": attest.ReasonWeakSecurityLevel,
		"android_key_attestation/unverified_boot":     attest.ReasonUnverifiedBoot,
		"apple_app_attest/genuine":                    "",
		"apple_app_attest/wrong_challenge":            attest.ReasonWrongChallenge,
		"apple_app_attest/untrusted_chain":            attest.ReasonUntrustedChain,
		"apple_app_attest/expired_leaf":               attest.ReasonExpired,
		"apple_app_attest/wrong_app":                  attest.ReasonWrongApp,
		"apple_app_attest/tampered_signature":         attest.ReasonBadSignature,
		"apple_app_attest/tampered_auth_data":         attest.ReasonWrongChallenge,
		"apple_app_attest/development":                attest.ReasonWrongEnvironment,
		"webauthn/genuine":                            "",
		"webauthn/wrong_challenge":                    attest.ReasonWrongChallenge,
		"webauthn/untrusted_chain":                    attest.ReasonUntrustedChain,
		"webauthn/expired_leaf":                       attest.ReasonExpired,
		"webauthn/wrong_app":                          attest.ReasonWrongApp,
		"webauthn/tampered_signature":                 attest.ReasonBadSignature,
		"webauthn/tampered_auth_data":                 attest.ReasonBadSignature,
		"webauthn/self_attestation":                   attest.ReasonSelfAttestationNotAllowed,
	}
	ca := newCA(t)
	v := newVerifier(t, ca.Config())
	cases, err := ca.Cases(testChallenge)
	require.NoError(t, err)
	require.Len(t, cases, len(want))
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			w, ok := want[c.Name]
			require.True(t, ok, "unexpected case %s", c.Name)
			assert.Equal(t, w, c.Want, "attesttest.Want")
			res, err := v.Verify(c.Format, c.Evidence, c.Challenge)
			if w != "" {
				requireReason(t, err, w)
				assert.Nil(t, res)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.Format, res.Format)
			assert.Len(t, res.PublicKeySHA256, 64)
			assert.Equal(t, attest.AttestationFull, res.AttestationType)
			assert.True(t, res.NotBefore.Before(testNow) && res.NotAfter.After(testNow), "leaf validity %v..%v", res.NotBefore, res.NotAfter)
			switch c.Format {
			case attest.FormatAndroidKey:
				assert.Equal(t, attesttest.PackageName, res.AppID)
				assert.Equal(t, attest.SecurityLevelTrustedEnvironment, res.SecurityLevel)
				assert.Equal(t, "verified", res.VerifiedBoot)
				assert.Equal(t, "15", res.OSVersion, "hardware-enforced osVersion")
				assert.Equal(t, "2026-01", res.OSPatchLevel, "hardware-enforced osPatchLevel")
			case attest.FormatAppleAppAttest:
				assert.Empty(t, res.OSVersion, "App Attest proves no OS version")
				assert.Equal(t, attesttest.AppID, res.AppID)
				assert.Equal(t, attest.SecurityLevelSecureEnclave, res.SecurityLevel)
				assert.Equal(t, "production", res.Environment)
				assert.Len(t, res.CredentialID, 32)
			case attest.FormatWebAuthn:
				assert.Equal(t, attesttest.RPID, res.AppID)
				assert.Equal(t, attest.SecurityLevelUnknown, res.SecurityLevel)
				assert.Len(t, res.CredentialID, 16)
			}
		})
	}
}

// TestVerifyOptions: what the configuration switches change.
func TestVerifyOptions(t *testing.T) {
	ca := newCA(t)
	f := func(name, format string, o attesttest.Options, edit func(*attest.Config), want attest.Reason, check func(*testing.T, *attest.Result)) {
		t.Run(name, func(t *testing.T) {
			cfg := ca.Config()
			if edit != nil {
				edit(&cfg)
			}
			if o.Challenge == nil {
				o.Challenge = testChallenge
			}
			ev, err := ca.Mint(format, o)
			require.NoError(t, err)
			res, err := newVerifier(t, cfg).Verify(format, ev, testChallenge)
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
	android, apple, web := attest.FormatAndroidKey, attest.FormatAppleAppAttest, attest.FormatWebAuthn
	strongbox := func(c *attest.Config) { c.Android.MinSecurityLevel = attest.SecurityLevelStrongBox }

	f("android tee below strongbox minimum", android, attesttest.Options{}, strongbox, attest.ReasonWeakSecurityLevel, nil)
	f("android strongbox", android, attesttest.Options{AndroidLevel: attest.SecurityLevelStrongBox}, strongbox, "",
		func(t *testing.T, r *attest.Result) { assert.Equal(t, attest.SecurityLevelStrongBox, r.SecurityLevel) })
	f("android software accepted when allowed", android, attesttest.Options{Forgery: attesttest.WeakSecurityLevel}, func(c *attest.Config) {
		c.Android.MinSecurityLevel = attest.SecurityLevelSoftware
		c.Android.RequireVerifiedBoot = false
	}, "", func(t *testing.T, r *attest.Result) {
		assert.Equal(t, attest.SecurityLevelSoftware, r.SecurityLevel)
		assert.Empty(t, r.VerifiedBoot, "a software keystore has no root of trust")
		assert.Empty(t, r.OSVersion, "a software keystore's osVersion proves nothing")
		assert.Empty(t, r.OSPatchLevel)
	})
	f("android os version 16.1.2", android, attesttest.Options{AndroidOSVersion: 160102}, nil, "",
		func(t *testing.T, r *attest.Result) { assert.Equal(t, "16.1.2", r.OSVersion) })
	f("android software with verified boot required", android, attesttest.Options{Forgery: attesttest.WeakSecurityLevel},
		func(c *attest.Config) { c.Android.MinSecurityLevel = attest.SecurityLevelSoftware }, attest.ReasonUnverifiedBoot, nil)
	f("android unlocked bootloader accepted when boot not required", android, attesttest.Options{Forgery: attesttest.UnverifiedBoot},
		func(c *attest.Config) { c.Android.RequireVerifiedBoot = false }, "",
		func(t *testing.T, r *attest.Result) { assert.Equal(t, "unverified", r.VerifiedBoot) })
	f("android no digest configured", android, attesttest.Options{}, func(c *attest.Config) { c.Android.SigningCertDigests = nil }, "", nil)
	f("android other signing digest", android, attesttest.Options{}, func(c *attest.Config) {
		c.Android.SigningCertDigests = []string{hex.EncodeToString(make([]byte, 32))}
	}, attest.ReasonWrongApp, nil)
	f("android second configured package", android, attesttest.Options{App: "com.keyfleet.kiosk"}, func(c *attest.Config) {
		c.Android.PackageNames = append(c.Android.PackageNames, "com.keyfleet.kiosk")
	}, "", func(t *testing.T, r *attest.Result) { assert.Equal(t, "com.keyfleet.kiosk", r.AppID) })
	f("apple development allowed", apple, attesttest.Options{Forgery: attesttest.Development},
		func(c *attest.Config) { c.Apple.AllowDevelopment = true }, "",
		func(t *testing.T, r *attest.Result) { assert.Equal(t, "development", r.Environment) })
	f("apple second app id", apple, attesttest.Options{App: "KEYFLEET01.com.keyfleet.kiosk"}, func(c *attest.Config) {
		c.Apple.AppIDs = append(c.Apple.AppIDs, "KEYFLEET01.com.keyfleet.kiosk")
	}, "", func(t *testing.T, r *attest.Result) { assert.Equal(t, "KEYFLEET01.com.keyfleet.kiosk", r.AppID) })
	f("webauthn self attestation allowed", web, attesttest.Options{Forgery: attesttest.SelfAttestation},
		func(c *attest.Config) { c.WebAuthn.AllowSelfAttestation = true }, "",
		func(t *testing.T, r *attest.Result) {
			assert.Equal(t, attest.AttestationSelf, r.AttestationType)
			assert.True(t, r.NotAfter.IsZero())
		})
	f("webauthn other origin", web, attesttest.Options{}, func(c *attest.Config) { c.WebAuthn.Origins = []string{"https://other.example"} }, attest.ReasonWrongApp, nil)
	f("webauthn any origin", web, attesttest.Options{}, func(c *attest.Config) { c.WebAuthn.Origins = nil }, "", nil)
	f("webauthn no roots, self allowed, full statement", web, attesttest.Options{}, func(c *attest.Config) {
		c.WebAuthn.Roots = attest.Roots{}
		c.WebAuthn.AllowSelfAttestation = true
	}, attest.ReasonUntrustedChain, nil)
	f("format not enabled", apple, attesttest.Options{}, func(c *attest.Config) { c.Formats = []string{android} }, attest.ReasonFormatNotAllowed, nil)
	f("format not configured", web, attesttest.Options{}, func(c *attest.Config) { c.WebAuthn = attest.WebAuthnOptions{} }, attest.ReasonFormatNotAllowed, nil)
	f("leaf expired by the clock", android, attesttest.Options{}, func(c *attest.Config) {
		c.Now = func() time.Time { return testNow.Add(31 * 24 * time.Hour) }
	}, attest.ReasonExpired, nil)
	f("leaf not yet valid", apple, attesttest.Options{}, func(c *attest.Config) {
		c.Now = func() time.Time { return testNow.Add(-2 * time.Hour) }
	}, attest.ReasonExpired, nil)
	f("another CA's roots", android, attesttest.Options{}, func(c *attest.Config) {
		other, err := attesttest.New(testNow)
		require.NoError(t, err)
		c.Android.Roots = attest.Roots{PEM: other.AndroidRootsPEM()}
	}, attest.ReasonUntrustedChain, nil)
	f("google roots for a test chain", android, attesttest.Options{}, func(c *attest.Config) { c.Android.Roots = attest.Roots{} }, attest.ReasonUntrustedChain, nil)
}

func TestVerifyRefusesBeforeParsing(t *testing.T) {
	ca := newCA(t)
	v := newVerifier(t, ca.Config())
	ev, err := ca.Android(attesttest.Options{Challenge: testChallenge})
	require.NoError(t, err)
	f := func(name, format string, evidence, challenge []byte, want attest.Reason) {
		t.Run(name, func(t *testing.T) {
			_, err := v.Verify(format, evidence, challenge)
			requireReason(t, err, want)
		})
	}
	f("aliro", attest.FormatAliro, ev, testChallenge, attest.ReasonUnsupportedFormat)
	f("unknown", "tpm", ev, testChallenge, attest.ReasonUnsupportedFormat)
	f("empty evidence", attest.FormatAndroidKey, nil, testChallenge, attest.ReasonMalformed)
	f("oversize evidence", attest.FormatAndroidKey, make([]byte, attest.MaxEvidenceBytes+1), testChallenge, attest.ReasonMalformed)
	f("empty challenge", attest.FormatAndroidKey, ev, nil, attest.ReasonWrongChallenge)
	f("garbage", attest.FormatAndroidKey, []byte("not a certificate"), testChallenge, attest.ReasonMalformed)
	f("android evidence as apple", attest.FormatAppleAppAttest, ev, testChallenge, attest.ReasonMalformed)
	f("android evidence as webauthn", attest.FormatWebAuthn, ev, testChallenge, attest.ReasonMalformed)
}

func TestConfigValidate(t *testing.T) {
	ok := func() attest.Config { return newCA(t).Config() }
	f := func(name string, edit func(*attest.Config), wantErr string) {
		t.Run(name, func(t *testing.T) {
			cfg := ok()
			edit(&cfg)
			err := cfg.Validate()
			if wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, wantErr)
			_, err = attest.New(cfg)
			require.Error(t, err, "New validates")
		})
	}
	f("complete", func(*attest.Config) {}, "")
	f("aliro listed", func(c *attest.Config) { c.Formats = []string{attest.FormatAliro} }, "aliro has no verifier")
	f("unknown format", func(c *attest.Config) { c.Formats = []string{"tpm"} }, "unknown format")
	f("nothing configured", func(c *attest.Config) { *c = attest.Config{} }, "none configured")
	f("android without packages", func(c *attest.Config) {
		c.Formats = []string{attest.FormatAndroidKey}
		c.Android.PackageNames = nil
	}, "package_names required")
	f("android bad digest", func(c *attest.Config) { c.Android.SigningCertDigests = []string{"abcd"} }, "64 hex digits")
	f("android bad level", func(c *attest.Config) { c.Android.MinSecurityLevel = "tee" }, "min security level")
	f("apple bad app id", func(c *attest.Config) { c.Apple.AppIDs = []string{"com"} }, "TEAMID.bundle.id")
	f("webauthn without roots", func(c *attest.Config) {
		c.Formats = []string{attest.FormatWebAuthn}
		c.WebAuthn.Roots = attest.Roots{}
	}, "roots required")
	f("webauthn bad origin", func(c *attest.Config) { c.WebAuthn.Origins = []string{"keyfleet.example"} }, "origin")
	f("unconfigured formats are left out", func(c *attest.Config) { c.Apple, c.WebAuthn = attest.AppleOptions{}, attest.WebAuthnOptions{} }, "")
}

func TestDefaultFormats(t *testing.T) {
	ca := newCA(t)
	cfg := ca.Config()
	assert.Equal(t, attest.SupportedFormats(), newVerifier(t, cfg).Formats())
	cfg.WebAuthn.Roots = attest.Roots{}
	assert.Equal(t, []string{attest.FormatAndroidKey, attest.FormatAppleAppAttest}, newVerifier(t, cfg).Formats(),
		"webauthn without roots or self attestation is not enabled by default")
}

func TestRootsFromFiles(t *testing.T) {
	ca := newCA(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "android.pem")
	require.NoError(t, os.WriteFile(path, ca.AndroidRootsPEM(), 0o600))
	cfg := ca.Config()
	cfg.Android.Roots = attest.Roots{Files: []string{path}}
	ev, err := ca.Android(attesttest.Options{Challenge: testChallenge})
	require.NoError(t, err)
	_, err = newVerifier(t, cfg).Verify(attest.FormatAndroidKey, ev, testChallenge)
	require.NoError(t, err)

	cfg.Android.Roots = attest.Roots{Files: []string{filepath.Join(dir, "missing.pem")}}
	_, err = attest.New(cfg)
	require.Error(t, err)
	cfg.Android.Roots = attest.Roots{PEM: []byte("no pem here")}
	_, err = attest.New(cfg)
	require.ErrorContains(t, err, "no PEM CERTIFICATE block")
}

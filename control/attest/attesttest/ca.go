// Package attesttest mints device attestations for tests and the fleet
// simulator: a throwaway certificate authority, made at run time, stands in
// for Google's, Apple's and a WebAuthn authenticator vendor's, and issues
// genuine-looking evidence for a challenge and app, or one of a set of
// forgeries. Everything is relative to the clock given to New, so results
// do not depend on when a test runs.
//
// A Verifier made from CA.Config accepts the genuine evidence and refuses
// each forgery with the reason Want names.
package attesttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/keyfleet/keyfleet/control/attest"
)

// Defaults of the evidence and of Config.
const (
	PackageName = "com.keyfleet.wallet"            // Android
	AppID       = "KEYFLEET01.com.keyfleet.wallet" // Apple
	RPID        = "keyfleet.example"               // WebAuthn
	Origin      = "https://keyfleet.example"       // WebAuthn
)

// SigningDigest is the SHA-256 of the (pretend) Android signing certificate
// the genuine evidence lists.
func SigningDigest() []byte {
	s := sha256.Sum256([]byte("keyfleet attesttest app signing certificate"))
	return s[:]
}

// Forgery selects what is wrong with minted evidence; "" is genuine.
type Forgery string

// Forgeries. Not every one applies to every format (Forgeries lists them).
const (
	Genuine           Forgery = ""
	WrongChallenge    Forgery = "wrong_challenge"     // bound to another challenge
	UntrustedChain    Forgery = "untrusted_chain"     // a self-made CA with the real names
	ExpiredLeaf       Forgery = "expired_leaf"        // leaf expired a day ago
	WrongApp          Forgery = "wrong_app"           // another package / App ID / RP
	TamperedSignature Forgery = "tampered_signature"  // a flipped signature byte
	TamperedAuthData  Forgery = "tampered_auth_data"  // authenticator data altered after signing (Apple, WebAuthn)
	WeakSecurityLevel Forgery = "weak_security_level" // software keystore (Android)
	UnverifiedBoot    Forgery = "unverified_boot"     // unlocked bootloader (Android)
	Development       Forgery = "development"         // development aaguid (Apple)
	SelfAttestation   Forgery = "self_attestation"    // no certificate chain (WebAuthn)
)

// Forgeries returns the forgeries that apply to a format, Genuine first.
func Forgeries(format string) []Forgery {
	common := []Forgery{Genuine, WrongChallenge, UntrustedChain, ExpiredLeaf, WrongApp, TamperedSignature}
	switch format {
	case attest.FormatAndroidKey:
		return append(common, WeakSecurityLevel, UnverifiedBoot)
	case attest.FormatAppleAppAttest:
		return append(common, TamperedAuthData, Development)
	case attest.FormatWebAuthn:
		return append(common, TamperedAuthData, SelfAttestation)
	}
	return nil
}

// Want is the reason a Verifier made from CA.Config refuses the forgery
// with ("" for Genuine). Apple binds authData only through the nonce, so
// altered authData reads as another challenge there.
func Want(format string, f Forgery) attest.Reason {
	switch f {
	case Genuine:
		return ""
	case WrongChallenge:
		return attest.ReasonWrongChallenge
	case UntrustedChain:
		return attest.ReasonUntrustedChain
	case ExpiredLeaf:
		return attest.ReasonExpired
	case WrongApp:
		return attest.ReasonWrongApp
	case TamperedSignature:
		return attest.ReasonBadSignature
	case TamperedAuthData:
		if format == attest.FormatAppleAppAttest {
			return attest.ReasonWrongChallenge
		}
		return attest.ReasonBadSignature
	case WeakSecurityLevel:
		return attest.ReasonWeakSecurityLevel
	case UnverifiedBoot:
		return attest.ReasonUnverifiedBoot
	case Development:
		return attest.ReasonWrongEnvironment
	case SelfAttestation:
		return attest.ReasonSelfAttestationNotAllowed
	}
	return attest.ReasonMalformed
}

// Options shape minted evidence.
type Options struct {
	// Challenge the evidence is bound to; required.
	Challenge []byte
	// App overrides the Android package, Apple App ID or WebAuthn RP ID.
	App     string
	Forgery Forgery
	// AndroidLevel is the Android keystore (default trusted_environment;
	// WeakSecurityLevel makes it software).
	AndroidLevel attest.SecurityLevel
	// AndroidOSVersion is the hardware-enforced osVersion (MMmmss; default
	// 150000, Android 15); the patch level is always 2026-01.
	AndroidOSVersion int
}

// CA holds one root and intermediate per format, and a look-alike
// ("rogue") pair per format that no Config trusts.
type CA struct {
	now                      time.Time
	android, apple, webauthn *authority
	rogueAndroid, rogueApple *authority
	rogueWebAuthn            *authority
}

// New makes the authorities; certificates are valid around now.
func New(now time.Time) (*CA, error) {
	ca := &CA{now: now}
	for _, a := range []struct {
		dst    **authority
		format string
	}{
		{&ca.android, attest.FormatAndroidKey},
		{&ca.rogueAndroid, attest.FormatAndroidKey},
		{&ca.apple, attest.FormatAppleAppAttest},
		{&ca.rogueApple, attest.FormatAppleAppAttest},
		{&ca.webauthn, attest.FormatWebAuthn},
		{&ca.rogueWebAuthn, attest.FormatWebAuthn},
	} {
		root, inter := names(a.format)
		var err error
		if *a.dst, err = newAuthority(now, root, inter); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// Now is the CA's clock.
func (ca *CA) Now() time.Time { return ca.now }

// AndroidRootsPEM, AppleRootsPEM and WebAuthnRootsPEM are the trusted roots.
func (ca *CA) AndroidRootsPEM() []byte  { return certPEM(ca.android.root) }
func (ca *CA) AppleRootsPEM() []byte    { return certPEM(ca.apple.root) }
func (ca *CA) WebAuthnRootsPEM() []byte { return certPEM(ca.webauthn.root) }

// Config trusts the CA's roots, accepts the default apps (Android with
// signing digest, trusted_environment and verified boot; Apple production
// only; WebAuthn without self attestation) and stands its clock at Now.
func (ca *CA) Config() attest.Config {
	now := ca.now
	return attest.Config{
		Android: attest.AndroidOptions{
			Roots:               attest.Roots{PEM: ca.AndroidRootsPEM()},
			PackageNames:        []string{PackageName},
			SigningCertDigests:  []string{hex.EncodeToString(SigningDigest())},
			MinSecurityLevel:    attest.SecurityLevelTrustedEnvironment,
			RequireVerifiedBoot: true,
		},
		Apple: attest.AppleOptions{
			Roots:  attest.Roots{PEM: ca.AppleRootsPEM()},
			AppIDs: []string{AppID},
		},
		WebAuthn: attest.WebAuthnOptions{
			Roots:   attest.Roots{PEM: ca.WebAuthnRootsPEM()},
			RPIDs:   []string{RPID},
			Origins: []string{Origin},
		},
		Now: func() time.Time { return now },
	}
}

// Mint makes evidence of a format.
func (ca *CA) Mint(format string, o Options) ([]byte, error) {
	if len(o.Challenge) == 0 {
		return nil, errors.New("attesttest: no challenge")
	}
	switch format {
	case attest.FormatAndroidKey:
		return ca.Android(o)
	case attest.FormatAppleAppAttest:
		return ca.Apple(o)
	case attest.FormatWebAuthn:
		return ca.WebAuthn(o)
	}
	return nil, fmt.Errorf("attesttest: cannot mint %q", format)
}

// Case is minted evidence and the verdict a Verifier made from Config must
// reach.
type Case struct {
	Name      string // format/forgery
	Format    string
	Forgery   Forgery
	Evidence  []byte
	Challenge []byte
	Want      attest.Reason // "" = accepted
}

// Cases mints every applicable forgery of every supported format for
// challenge.
func (ca *CA) Cases(challenge []byte) ([]Case, error) {
	var out []Case
	for _, format := range attest.SupportedFormats() {
		for _, f := range Forgeries(format) {
			ev, err := ca.Mint(format, Options{Challenge: challenge, Forgery: f})
			if err != nil {
				return nil, fmt.Errorf("%s/%s: %w", format, f, err)
			}
			name := string(f)
			if f == Genuine {
				name = "genuine"
			}
			out = append(out, Case{Name: format + "/" + name, Format: format, Forgery: f,
				Evidence: ev, Challenge: challenge, Want: Want(format, f)})
		}
	}
	return out, nil
}

// otherChallenge is what WrongChallenge binds to.
func otherChallenge(c []byte) []byte {
	s := sha256.Sum256(append([]byte("other:"), c...))
	return s[:]
}

// flipLast returns b with its last byte changed (a DER signature stays
// parseable).
func flipLast(b []byte) []byte {
	out := append([]byte(nil), b...)
	out[len(out)-1] ^= 0x01
	return out
}

// names returns the subjects of an authority; the rogue ones copy them.
func names(format string) (root, inter pkix.Name) {
	switch format {
	case attest.FormatAndroidKey:
		return pkix.Name{SerialNumber: "keyfleet-test-android-root"},
			pkix.Name{SerialNumber: "keyfleet-test-android-tee", OrganizationalUnit: []string{"TEE"}}
	case attest.FormatAppleAppAttest:
		return pkix.Name{CommonName: "Keyfleet Test App Attestation Root CA", Organization: []string{"Keyfleet Test"}},
			pkix.Name{CommonName: "Keyfleet Test App Attestation CA 1", Organization: []string{"Keyfleet Test"}}
	}
	return pkix.Name{CommonName: "Keyfleet Test Authenticator Root", Organization: []string{"Keyfleet Test"}, Country: []string{"US"}},
		pkix.Name{CommonName: "Keyfleet Test Authenticator CA", Organization: []string{"Keyfleet Test"}, Country: []string{"US"}}
}

type authority struct {
	root, inter       *x509.Certificate
	rootKey, interKey *ecdsa.PrivateKey
}

func newAuthority(now time.Time, rootName, interName pkix.Name) (*authority, error) {
	a := &authority{}
	var err error
	if a.rootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if a.interKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	ca := func(name pkix.Name, years int) *x509.Certificate {
		return &x509.Certificate{
			Subject:               name,
			NotBefore:             now.Add(-365 * 24 * time.Hour),
			NotAfter:              now.AddDate(years, 0, 0),
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}
	}
	if a.root, err = sign(ca(rootName, 20), &a.rootKey.PublicKey, nil, a.rootKey); err != nil {
		return nil, err
	}
	if a.inter, err = sign(ca(interName, 10), &a.interKey.PublicKey, a.root, a.rootKey); err != nil {
		return nil, err
	}
	return a, nil
}

// issue signs a leaf by the intermediate.
func (a *authority) issue(tmpl *x509.Certificate, pub *ecdsa.PublicKey) (*x509.Certificate, error) {
	return sign(tmpl, pub, a.inter, a.interKey)
}

// sign signs tmpl by parent (self-signed when parent is nil).
func sign(tmpl *x509.Certificate, pub *ecdsa.PublicKey, parent *x509.Certificate, key *ecdsa.PrivateKey) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, fmt.Errorf("attesttest: create certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

// validity of a leaf: around now, or expired a day ago.
func (ca *CA) validity(f Forgery) (time.Time, time.Time) {
	if f == ExpiredLeaf {
		return ca.now.Add(-30 * 24 * time.Hour), ca.now.Add(-24 * time.Hour)
	}
	return ca.now.Add(-time.Hour), ca.now.Add(30 * 24 * time.Hour)
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

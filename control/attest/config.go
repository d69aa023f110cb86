package attest

import (
	"crypto/x509"
	"embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// Format names, as the control plane's AttestationInput.Format spells them.
const (
	FormatAndroidKey     = "android_key_attestation"
	FormatAppleAppAttest = "apple_app_attest"
	FormatWebAuthn       = "webauthn"
	FormatAliro          = "aliro"
)

// KnownFormats returns every format name the control plane knows, whether
// or not this package can verify it.
func KnownFormats() []string {
	return []string{FormatAppleAppAttest, FormatAndroidKey, FormatAliro, FormatWebAuthn}
}

// SupportedFormats returns the formats this package can verify. Aliro is
// not among them (doc.go says why).
func SupportedFormats() []string {
	return []string{FormatAndroidKey, FormatAppleAppAttest, FormatWebAuthn}
}

// SecurityLevel is where an attested key lives.
type SecurityLevel string

// Security levels. The first three are Android's KeyStore levels, in
// increasing strength.
const (
	SecurityLevelSoftware           SecurityLevel = "software"
	SecurityLevelTrustedEnvironment SecurityLevel = "trusted_environment"
	SecurityLevelStrongBox          SecurityLevel = "strongbox"
	// SecurityLevelSecureEnclave: an Apple App Attest key (always in the
	// Secure Enclave).
	SecurityLevelSecureEnclave SecurityLevel = "secure_enclave"
	// SecurityLevelUnknown: WebAuthn; the statement does not say and no
	// authenticator metadata is consulted.
	SecurityLevelUnknown SecurityLevel = "unknown"
)

// androidRank orders the Android levels; -1 for anything else.
func androidRank(l SecurityLevel) int {
	switch l {
	case SecurityLevelSoftware:
		return 0
	case SecurityLevelTrustedEnvironment:
		return 1
	case SecurityLevelStrongBox:
		return 2
	}
	return -1
}

// Roots are trust anchors: PEM CERTIFICATE blocks given inline, read from
// files, or both. Empty Roots mean the shipped defaults of the format
// (DefaultAndroidRoots, DefaultAppleRoots; WebAuthn has none).
type Roots struct {
	PEM   []byte
	Files []string
}

func (r Roots) empty() bool { return len(r.PEM) == 0 && len(r.Files) == 0 }

// pool reads the roots; defaults are used when r is empty. A nil pool
// means no roots at all.
func (r Roots) pool(defaults []byte) (*x509.CertPool, error) {
	blobs := [][]byte{r.PEM}
	if r.empty() {
		blobs = [][]byte{defaults}
	}
	for _, f := range r.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read roots: %w", err)
		}
		blobs = append(blobs, b)
	}
	var pool *x509.CertPool
	for _, b := range blobs {
		for {
			var block *pem.Block
			block, b = pem.Decode(b)
			if block == nil {
				break
			}
			if block.Type != "CERTIFICATE" {
				return nil, fmt.Errorf("roots: unexpected PEM block %q", block.Type)
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return nil, fmt.Errorf("roots: %w", err)
			}
			if pool == nil {
				pool = x509.NewCertPool()
			}
			pool.AddCert(c)
		}
	}
	if pool == nil && !r.empty() {
		return nil, errors.New("roots: no PEM CERTIFICATE block")
	}
	return pool, nil
}

//go:embed roots/*.pem
var shippedRoots embed.FS

func shipped(name string) []byte {
	b, err := shippedRoots.ReadFile("roots/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return b
}

// DefaultAndroidRoots returns Google's public hardware attestation roots
// (PEM), the Android default.
func DefaultAndroidRoots() []byte { return shipped("google_hardware_attestation_roots.pem") }

// DefaultAppleRoots returns Apple's App Attestation Root CA (PEM), the
// Apple default.
func DefaultAppleRoots() []byte { return shipped("apple_app_attestation_root_ca.pem") }

// AndroidOptions configure android_key_attestation.
type AndroidOptions struct {
	Roots Roots
	// PackageNames are the accepted application ids (attestationApplicationId
	// package names); required. One listed package must match.
	PackageNames []string
	// SigningCertDigests, when set, are the accepted SHA-256 digests (hex) of
	// the app's signing certificates: the attestation must list at least
	// one and every listed digest must be accepted.
	SigningCertDigests []string
	// MinSecurityLevel is the weakest accepted keystore: software,
	// trusted_environment (default) or strongbox. Both the attestation and
	// the KeyMint security level must reach it.
	MinSecurityLevel SecurityLevel
	// RequireVerifiedBoot refuses keys from devices whose hardware root of
	// trust does not report a verified boot state and a locked bootloader.
	RequireVerifiedBoot bool
}

// AppleOptions configure apple_app_attest.
type AppleOptions struct {
	Roots Roots
	// AppIDs are the accepted App IDs, "TEAMID.bundle.id"; required.
	AppIDs []string
	// AllowDevelopment accepts keys of the development environment (aaguid
	// "appattestdevelop", apps built by Xcode). Off: production only.
	AllowDevelopment bool
}

// WebAuthnOptions configure webauthn ("packed" attestation statements).
type WebAuthnOptions struct {
	// Roots anchor the attestation certificate chains (authenticator
	// vendors' roots, e.g. from FIDO metadata); there are no defaults.
	Roots Roots
	// RPIDs are the accepted relying-party ids (the authenticator data's
	// rpIdHash is SHA-256 of one); required.
	RPIDs []string
	// Origins, when set, are the accepted clientDataJSON origins.
	Origins []string
	// AllowSelfAttestation accepts statements without a certificate chain,
	// signed by the credential key itself. Such a statement proves that the
	// sender holds the private key, not which device or authenticator holds
	// it: any software can make one. Off by default.
	AllowSelfAttestation bool
}

// Config configures a Verifier.
type Config struct {
	// Formats are the accepted formats. Empty: every supported format whose
	// options are filled in (Android: PackageNames; Apple: AppIDs;
	// WebAuthn: RPIDs, and Roots or AllowSelfAttestation).
	Formats  []string
	Android  AndroidOptions
	Apple    AppleOptions
	WebAuthn WebAuthnOptions
	// Now is the clock certificates are checked against; default time.Now.
	Now func() time.Time
}

func (c Config) configured(format string) bool {
	switch format {
	case FormatAndroidKey:
		return len(c.Android.PackageNames) > 0
	case FormatAppleAppAttest:
		return len(c.Apple.AppIDs) > 0
	case FormatWebAuthn:
		return len(c.WebAuthn.RPIDs) > 0 && (!c.WebAuthn.Roots.empty() || c.WebAuthn.AllowSelfAttestation)
	}
	return false
}

// formats returns the accepted formats after defaulting.
func (c Config) formats() []string {
	if len(c.Formats) > 0 {
		return c.Formats
	}
	var out []string
	for _, f := range SupportedFormats() {
		if c.configured(f) {
			out = append(out, f)
		}
	}
	return out
}

// Validate checks the configuration without reading root files.
func (c Config) Validate() error {
	for _, f := range c.Formats {
		switch {
		case f == FormatAliro:
			return errors.New("formats: aliro has no verifier (no public specification to verify against)")
		case !slices.Contains(SupportedFormats(), f):
			return fmt.Errorf("formats: unknown format %q, want one of %s", f, strings.Join(SupportedFormats(), ", "))
		}
	}
	formats := c.formats()
	if len(formats) == 0 {
		return errors.New("formats: none configured (set android.package_names, apple.app_ids or webauthn.rp_ids)")
	}
	for _, f := range formats {
		var err error
		switch f {
		case FormatAndroidKey:
			err = c.Android.validate()
		case FormatAppleAppAttest:
			err = c.Apple.validate()
		case FormatWebAuthn:
			err = c.WebAuthn.validate()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (o AndroidOptions) validate() error {
	if len(o.PackageNames) == 0 {
		return errors.New("android: package_names required")
	}
	for _, p := range o.PackageNames {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			return fmt.Errorf("android: bad package name %q", p)
		}
	}
	for _, d := range o.SigningCertDigests {
		if b, err := hex.DecodeString(d); err != nil || len(b) != 32 {
			return fmt.Errorf("android: signing cert digest %q: want 64 hex digits (SHA-256)", d)
		}
	}
	if o.MinSecurityLevel != "" && androidRank(o.MinSecurityLevel) < 0 {
		return fmt.Errorf("android: min security level %q: want software, trusted_environment or strongbox", o.MinSecurityLevel)
	}
	return nil
}

func (o AppleOptions) validate() error {
	if len(o.AppIDs) == 0 {
		return errors.New("apple: app_ids required")
	}
	for _, id := range o.AppIDs {
		team, bundle, ok := strings.Cut(id, ".")
		if !ok || team == "" || bundle == "" || strings.ContainsAny(id, " \t\r\n") {
			return fmt.Errorf("apple: app id %q: want TEAMID.bundle.id", id)
		}
	}
	return nil
}

func (o WebAuthnOptions) validate() error {
	if len(o.RPIDs) == 0 {
		return errors.New("webauthn: rp_ids required")
	}
	for _, id := range o.RPIDs {
		if id == "" || strings.ContainsAny(id, " \t\r\n/") {
			return fmt.Errorf("webauthn: bad rp id %q", id)
		}
	}
	for _, o := range o.Origins {
		u, err := url.Parse(o)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return fmt.Errorf("webauthn: origin %q: want scheme://host[:port]", o)
		}
	}
	if o.Roots.empty() && !o.AllowSelfAttestation {
		return errors.New("webauthn: roots required (or allow_self_attestation)")
	}
	return nil
}

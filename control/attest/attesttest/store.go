package attesttest

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Files Save writes in its directory: the whole CA (keys included) and the
// three roots a keyfleet serve trusts (--attest-*-roots).
const (
	FileCA           = "ca.pem"
	FileAndroidRoots = "android-roots.pem"
	FileAppleRoots   = "apple-roots.pem"
	FileWebAuthnRoot = "webauthn-roots.pem"
)

// authorities names the CA's authorities in the saved file.
func (ca *CA) authorities() []struct {
	name string
	a    **authority
} {
	return []struct {
		name string
		a    **authority
	}{
		{"android", &ca.android}, {"rogue-android", &ca.rogueAndroid},
		{"apple", &ca.apple}, {"rogue-apple", &ca.rogueApple},
		{"webauthn", &ca.webauthn}, {"rogue-webauthn", &ca.rogueWebAuthn},
	}
}

// Save writes the CA to dir (created if missing), so another process (the
// fleet simulator minting evidence, keyfleet serve trusting its roots)
// uses the same one. The private keys are written too: it is a test CA.
func (ca *CA) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("attesttest: %w", err)
	}
	var all []byte
	for _, x := range ca.authorities() {
		a := *x.a
		for _, part := range []struct {
			role string
			cert *x509.Certificate
			key  any
		}{{"root", a.root, a.rootKey}, {"inter", a.inter, a.interKey}} {
			der, err := x509.MarshalPKCS8PrivateKey(part.key)
			if err != nil {
				return fmt.Errorf("attesttest: %w", err)
			}
			h := map[string]string{"authority": x.name, "role": part.role}
			all = append(all, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Headers: h, Bytes: part.cert.Raw})...)
			all = append(all, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Headers: h, Bytes: der})...)
		}
	}
	for name, data := range map[string][]byte{FileCA: all, FileAndroidRoots: ca.AndroidRootsPEM(),
		FileAppleRoots: ca.AppleRootsPEM(), FileWebAuthnRoot: ca.WebAuthnRootsPEM()} {
		tmp := filepath.Join(dir, "."+name+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			return fmt.Errorf("attesttest: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("attesttest: %w", err)
		}
	}
	return nil
}

// Load reads a CA that Save wrote to dir, with its clock at now.
func Load(dir string, now time.Time) (*CA, error) {
	data, err := os.ReadFile(filepath.Join(dir, FileCA))
	if err != nil {
		return nil, fmt.Errorf("attesttest: %w", err)
	}
	ca := &CA{now: now}
	byName := map[string]*authority{}
	for _, x := range ca.authorities() {
		*x.a = &authority{}
		byName[x.name] = *x.a
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		a := byName[b.Headers["authority"]]
		if a == nil {
			return nil, fmt.Errorf("attesttest: %s: unknown authority %q", FileCA, b.Headers["authority"])
		}
		root := b.Headers["role"] == "root"
		switch b.Type {
		case "CERTIFICATE":
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("attesttest: %w", err)
			}
			if root {
				a.root = c
			} else {
				a.inter = c
			}
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("attesttest: %w", err)
			}
			ecKey, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, errors.New("attesttest: not an ECDSA key")
			}
			if root {
				a.rootKey = ecKey
			} else {
				a.interKey = ecKey
			}
		}
	}
	for name, a := range byName {
		if a.root == nil || a.inter == nil || a.rootKey == nil || a.interKey == nil {
			return nil, fmt.Errorf("attesttest: %s: authority %s incomplete", FileCA, name)
		}
	}
	return ca, nil
}

// LoadOrNew loads the CA saved in dir, or makes one and saves it there.
func LoadOrNew(dir string, now time.Time) (*CA, error) {
	if _, err := os.Stat(filepath.Join(dir, FileCA)); err == nil {
		return Load(dir, now)
	}
	ca, err := New(now)
	if err != nil {
		return nil, err
	}
	return ca, ca.Save(dir)
}

// At returns the CA with its clock at now: evidence minted by a long-running
// process stays within its certificates' validity.
func (ca *CA) At(now time.Time) *CA {
	c := *ca
	c.now = now
	return &c
}

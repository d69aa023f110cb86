package attest

import (
	"bytes"
	"crypto/subtle"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"
)

// oidKeyDescription is Android's key attestation extension.
var oidKeyDescription = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 11129, 2, 1, 17}

// AuthorizationList tags read here; every other tag is skipped.
const (
	tagRootOfTrust              = 704
	tagOSVersion                = 705
	tagOSPatchLevel             = 706
	tagAttestationApplicationID = 709
)

// keyDescription is the part of Android's KeyDescription the verifier uses.
type keyDescription struct {
	attestationVersion int64
	attestationLevel   SecurityLevel
	keymintVersion     int64
	keymintLevel       SecurityLevel
	challenge          []byte
	// From the AuthorizationLists.
	packages     []string   // attestationApplicationId package names
	digests      [][]byte   // attestationApplicationId signature digests
	appIDPresent bool       // attestationApplicationId found
	rootOfTrust  *rootTrust // hardware-enforced list only
	// osVersion (e.g. 150000 for 15.0.0) and osPatchLevel (YYYYMM), from
	// the hardware-enforced list only; 0 when absent.
	osVersion, osPatchLevel int64
}

// androidVersion renders an AuthorizationList osVersion (MMmmss, e.g.
// 150000) as "15", "15.1" or "15.1.2"; "" for 0 (not reported).
func androidVersion(v int64) string {
	if v <= 0 {
		return ""
	}
	major, minor, sub := v/10000, v/100%100, v%100
	switch {
	case sub != 0:
		return fmt.Sprintf("%d.%d.%d", major, minor, sub)
	case minor != 0:
		return fmt.Sprintf("%d.%d", major, minor)
	}
	return fmt.Sprintf("%d", major)
}

// androidPatchLevel renders an osPatchLevel (YYYYMM) as "YYYY-MM"; "" when
// absent or not of that shape.
func androidPatchLevel(v int64) string {
	if v < 190001 || v > 999912 || v%100 == 0 || v%100 > 12 {
		return ""
	}
	return fmt.Sprintf("%04d-%02d", v/100, v%100)
}

type rootTrust struct {
	deviceLocked bool
	bootState    int64 // Verified 0, SelfSigned 1, Unverified 2, Failed 3
}

func bootStateName(s int64) string {
	switch s {
	case 0:
		return "verified"
	case 1:
		return "self_signed"
	case 2:
		return "unverified"
	case 3:
		return "failed"
	}
	return fmt.Sprintf("unknown_%d", s)
}

// parseAndroid decodes a KeyStore certificate chain (DER certificates
// concatenated, leaf first) and the leaf's key description; no signature is
// checked.
func parseAndroid(evidence []byte) ([]*x509.Certificate, *keyDescription, error) {
	certs, err := x509.ParseCertificates(evidence)
	if err != nil {
		return nil, nil, refuse(ReasonMalformed, "certificate chain: %v", err)
	}
	if len(certs) == 0 || len(certs) > maxChain {
		return nil, nil, refuse(ReasonMalformed, "%d certificates, want 1..%d", len(certs), maxChain)
	}
	var ext []byte
	for i, c := range certs {
		for _, e := range c.Extensions {
			if !e.Id.Equal(oidKeyDescription) {
				continue
			}
			if i != 0 || ext != nil {
				return nil, nil, refuse(ReasonInconsistent, "key description extension outside the leaf or repeated (certificate %d)", i)
			}
			ext = e.Value
		}
	}
	if ext == nil {
		return nil, nil, refuse(ReasonMalformed, "leaf has no key description extension (%s)", oidKeyDescription)
	}
	kd, err := parseKeyDescription(ext)
	if err != nil {
		return nil, nil, refuse(ReasonMalformed, "key description: %v", err)
	}
	return certs, kd, nil
}

// verifyAndroid verifies a KeyStore certificate chain.
func (v *Verifier) verifyAndroid(evidence, challenge []byte, now time.Time) (*Result, error) {
	certs, kd, err := parseAndroid(evidence)
	if err != nil {
		return nil, err
	}
	if err := verifyChain(certs, v.androidRoots, now); err != nil {
		return nil, err
	}
	leaf := certs[0]
	if subtle.ConstantTimeCompare(kd.challenge, challenge) != 1 {
		return nil, refuse(ReasonWrongChallenge, "attestationChallenge differs from the challenge")
	}
	level := kd.attestationLevel
	if androidRank(kd.keymintLevel) < androidRank(level) {
		level = kd.keymintLevel
	}
	if androidRank(level) < androidRank(v.androidMin) {
		return nil, refuse(ReasonWeakSecurityLevel, "attestation %s, keymint %s; want at least %s",
			kd.attestationLevel, kd.keymintLevel, v.androidMin)
	}
	app, err := v.androidApp(kd)
	if err != nil {
		return nil, err
	}
	boot := ""
	if kd.rootOfTrust != nil {
		boot = bootStateName(kd.rootOfTrust.bootState)
	}
	if v.androidBoot {
		switch {
		case kd.rootOfTrust == nil:
			return nil, refuse(ReasonUnverifiedBoot, "no hardware-enforced root of trust")
		case kd.rootOfTrust.bootState != 0:
			return nil, refuse(ReasonUnverifiedBoot, "verified boot state %s", boot)
		case !kd.rootOfTrust.deviceLocked:
			return nil, refuse(ReasonUnverifiedBoot, "bootloader unlocked")
		}
	}
	return &Result{
		Format:          FormatAndroidKey,
		PublicKeySHA256: keySHA256(leaf),
		SecurityLevel:   level,
		AppID:           app,
		AttestationType: AttestationFull,
		VerifiedBoot:    boot,
		OSVersion:       androidVersion(kd.osVersion),
		OSPatchLevel:    androidPatchLevel(kd.osPatchLevel),
		NotBefore:       leaf.NotBefore,
		NotAfter:        leaf.NotAfter,
	}, nil
}

// androidApp matches the attestationApplicationId against the options and
// returns the matched package name.
func (v *Verifier) androidApp(kd *keyDescription) (string, error) {
	if !kd.appIDPresent {
		return "", refuse(ReasonWrongApp, "no attestationApplicationId")
	}
	app := ""
	for _, p := range kd.packages {
		if slices.Contains(v.androidPackages, p) {
			app = p
			break
		}
	}
	if app == "" {
		return "", refuse(ReasonWrongApp, "packages %q not configured", kd.packages)
	}
	if len(v.androidDigests) == 0 {
		return app, nil
	}
	if len(kd.digests) == 0 {
		return "", refuse(ReasonWrongApp, "no signing certificate digest")
	}
	for _, d := range kd.digests {
		if !slices.ContainsFunc(v.androidDigests, func(a []byte) bool { return bytes.Equal(a, d) }) {
			return "", refuse(ReasonWrongApp, "signing certificate digest %s not configured", hex.EncodeToString(d))
		}
	}
	return app, nil
}

// parseKeyDescription parses the extension value:
//
//	KeyDescription ::= SEQUENCE {
//	    attestationVersion, attestationSecurityLevel,
//	    keyMintVersion, keyMintSecurityLevel,
//	    attestationChallenge OCTET STRING, uniqueId OCTET STRING,
//	    softwareEnforced AuthorizationList, hardwareEnforced AuthorizationList,
//	    ... }
//
// Integers and enumerations are read leniently (either tag, non-minimal
// encodings); fields after hardwareEnforced and unknown list tags are
// skipped.
func parseKeyDescription(b []byte) (*keyDescription, error) {
	var seq asn1.RawValue
	rest, err := asn1.Unmarshal(b, &seq)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, errors.New("trailing data")
	}
	if !isUniversal(seq, asn1.TagSequence) {
		return nil, errors.New("not a SEQUENCE")
	}
	f, err := elements(seq.Bytes)
	if err != nil {
		return nil, err
	}
	if len(f) < 8 {
		return nil, fmt.Errorf("%d fields, want 8", len(f))
	}
	kd := &keyDescription{}
	if kd.attestationVersion, err = intOf(f[0]); err != nil {
		return nil, fmt.Errorf("attestationVersion: %w", err)
	}
	if kd.attestationLevel, err = levelOf(f[1]); err != nil {
		return nil, fmt.Errorf("attestationSecurityLevel: %w", err)
	}
	if kd.keymintVersion, err = intOf(f[2]); err != nil {
		return nil, fmt.Errorf("keyMintVersion: %w", err)
	}
	if kd.keymintLevel, err = levelOf(f[3]); err != nil {
		return nil, fmt.Errorf("keyMintSecurityLevel: %w", err)
	}
	if !isUniversal(f[4], asn1.TagOctetString) {
		return nil, errors.New("attestationChallenge: not an OCTET STRING")
	}
	kd.challenge = f[4].Bytes
	for i, list := range f[6:8] {
		if !isUniversal(list, asn1.TagSequence) {
			return nil, fmt.Errorf("authorization list %d: not a SEQUENCE", i)
		}
		if err := kd.readList(list.Bytes, i == 1); err != nil {
			return nil, fmt.Errorf("authorization list %d: %w", i, err)
		}
	}
	return kd, nil
}

// readList reads one AuthorizationList: [tag] EXPLICIT fields.
func (kd *keyDescription) readList(b []byte, hardware bool) error {
	items, err := elements(b)
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.Class != asn1.ClassContextSpecific || !it.IsCompound {
			continue
		}
		switch it.Tag {
		case tagAttestationApplicationID:
			// Normally software-enforced; the first list that has it wins.
			if kd.appIDPresent {
				continue
			}
			if err := kd.readAppID(it.Bytes); err != nil {
				return fmt.Errorf("attestationApplicationId: %w", err)
			}
		case tagOSVersion, tagOSPatchLevel:
			if !hardware {
				continue // only what the secure hardware enforces is proof
			}
			var v asn1.RawValue
			if _, err := asn1.Unmarshal(it.Bytes, &v); err != nil {
				return fmt.Errorf("tag %d: %w", it.Tag, err)
			}
			n, err := intOf(v)
			if err != nil {
				return fmt.Errorf("tag %d: %w", it.Tag, err)
			}
			if it.Tag == tagOSVersion {
				kd.osVersion = n
			} else {
				kd.osPatchLevel = n
			}
		case tagRootOfTrust:
			if !hardware {
				continue // a software claim about boot is worthless
			}
			rt, err := readRootOfTrust(it.Bytes)
			if err != nil {
				return fmt.Errorf("rootOfTrust: %w", err)
			}
			kd.rootOfTrust = rt
		}
	}
	return nil
}

// readAppID reads [709] EXPLICIT OCTET STRING holding
//
//	AttestationApplicationId ::= SEQUENCE {
//	    package_infos SET OF SEQUENCE { package_name OCTET STRING, version INTEGER },
//	    signature_digests SET OF OCTET STRING }
func (kd *keyDescription) readAppID(b []byte) error {
	var wrap asn1.RawValue
	if rest, err := asn1.Unmarshal(b, &wrap); err != nil || len(rest) != 0 || !isUniversal(wrap, asn1.TagOctetString) {
		return errors.New("not an OCTET STRING")
	}
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(wrap.Bytes, &seq); err != nil || len(rest) != 0 || !isUniversal(seq, asn1.TagSequence) {
		return errors.New("not a SEQUENCE")
	}
	f, err := elements(seq.Bytes)
	if err != nil {
		return err
	}
	if len(f) < 2 || !isUniversal(f[0], asn1.TagSet) || !isUniversal(f[1], asn1.TagSet) {
		return errors.New("want two SETs")
	}
	infos, err := elements(f[0].Bytes)
	if err != nil {
		return err
	}
	for _, info := range infos {
		if !isUniversal(info, asn1.TagSequence) {
			return errors.New("package info: not a SEQUENCE")
		}
		pf, err := elements(info.Bytes)
		if err != nil {
			return err
		}
		if len(pf) < 1 || !isUniversal(pf[0], asn1.TagOctetString) {
			return errors.New("package name: not an OCTET STRING")
		}
		kd.packages = append(kd.packages, string(pf[0].Bytes))
	}
	digests, err := elements(f[1].Bytes)
	if err != nil {
		return err
	}
	for _, d := range digests {
		if !isUniversal(d, asn1.TagOctetString) {
			return errors.New("signature digest: not an OCTET STRING")
		}
		kd.digests = append(kd.digests, d.Bytes)
	}
	kd.appIDPresent = true
	return nil
}

// readRootOfTrust reads [704] EXPLICIT RootOfTrust ::= SEQUENCE {
// verifiedBootKey OCTET STRING, deviceLocked BOOLEAN, verifiedBootState
// ENUMERATED, verifiedBootHash OCTET STRING (v3+) }.
func readRootOfTrust(b []byte) (*rootTrust, error) {
	var seq asn1.RawValue
	if rest, err := asn1.Unmarshal(b, &seq); err != nil || len(rest) != 0 || !isUniversal(seq, asn1.TagSequence) {
		return nil, errors.New("not a SEQUENCE")
	}
	f, err := elements(seq.Bytes)
	if err != nil {
		return nil, err
	}
	if len(f) < 3 {
		return nil, fmt.Errorf("%d fields, want 3", len(f))
	}
	if !isUniversal(f[1], asn1.TagBoolean) || len(f[1].Bytes) != 1 {
		return nil, errors.New("deviceLocked: not a BOOLEAN")
	}
	state, err := intOf(f[2])
	if err != nil {
		return nil, fmt.Errorf("verifiedBootState: %w", err)
	}
	return &rootTrust{deviceLocked: f[1].Bytes[0] != 0, bootState: state}, nil
}

// elements splits the contents of a constructed value.
func elements(b []byte) ([]asn1.RawValue, error) {
	var out []asn1.RawValue
	for len(b) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		b = rest
	}
	return out, nil
}

func isUniversal(v asn1.RawValue, tag int) bool {
	return v.Class == asn1.ClassUniversal && v.Tag == tag
}

// intOf reads an INTEGER or ENUMERATED of up to 8 bytes, two's complement,
// without insisting on a minimal encoding.
func intOf(v asn1.RawValue) (int64, error) {
	if v.Class != asn1.ClassUniversal || (v.Tag != asn1.TagInteger && v.Tag != asn1.TagEnum) || v.IsCompound {
		return 0, errors.New("not an INTEGER")
	}
	if len(v.Bytes) == 0 || len(v.Bytes) > 8 {
		return 0, fmt.Errorf("integer of %d bytes", len(v.Bytes))
	}
	n := int64(int8(v.Bytes[0]))
	for _, c := range v.Bytes[1:] {
		n = n<<8 | int64(c)
	}
	return n, nil
}

func levelOf(v asn1.RawValue) (SecurityLevel, error) {
	n, err := intOf(v)
	if err != nil {
		return "", err
	}
	switch n {
	case 0:
		return SecurityLevelSoftware, nil
	case 1:
		return SecurityLevelTrustedEnvironment, nil
	case 2:
		return SecurityLevelStrongBox, nil
	}
	return "", fmt.Errorf("unknown security level %d", n)
}

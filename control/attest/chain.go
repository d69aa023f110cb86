package attest

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"time"
)

// maxChain bounds the certificates of one piece of evidence.
const maxChain = 8

// parseChain parses DER certificates, leaf first.
func parseChain(ders [][]byte) ([]*x509.Certificate, error) {
	if len(ders) == 0 {
		return nil, refuse(ReasonMalformed, "no certificate")
	}
	if len(ders) > maxChain {
		return nil, refuse(ReasonMalformed, "%d certificates, limit %d", len(ders), maxChain)
	}
	certs := make([]*x509.Certificate, 0, len(ders))
	for i, d := range ders {
		c, err := x509.ParseCertificate(d)
		if err != nil {
			return nil, refuse(ReasonMalformed, "certificate %d: %v", i, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// verifyChain checks certs (leaf first, as the device presented them)
// against roots at now:
//
//  1. each certificate's signature by the next one, where the next one is
//     its issuer (bad_signature);
//  2. a trailing self-signed certificate is dropped: it is the device's
//     copy of a root, and trust comes only from the configured pool (Google
//     re-issued its root with later expiry dates; devices keep sending the
//     old one);
//  3. every remaining certificate's validity period (expired);
//  4. a path from the leaf to a configured root (untrusted_chain).
func verifyChain(certs []*x509.Certificate, roots *x509.CertPool, now time.Time) error {
	for i := 0; i+1 < len(certs); i++ {
		c, parent := certs[i], certs[i+1]
		if !bytes.Equal(c.RawIssuer, parent.RawSubject) {
			continue
		}
		if err := parent.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
			return refuse(ReasonBadSignature, "certificate %d is not signed by certificate %d: %v", i, i+1, err)
		}
	}
	if n := len(certs); n > 1 && selfSigned(certs[n-1]) {
		certs = certs[:n-1]
	}
	for i, c := range certs {
		if now.Before(c.NotBefore) || now.After(c.NotAfter) {
			return refuse(ReasonExpired, "certificate %d valid %s..%s, now %s", i,
				c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	if roots == nil {
		return refuse(ReasonUntrustedChain, "no roots configured")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return refuse(ReasonExpired, "%v", err)
		}
		return refuse(ReasonUntrustedChain, "%v", err)
	}
	return nil
}

func selfSigned(c *x509.Certificate) bool {
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

// keySHA256 is Result.PublicKeySHA256 of a certificate's key.
func keySHA256(c *x509.Certificate) string {
	s := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(s[:])
}

package service

import (
	"crypto/rsa"
	"fmt"
	"os"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/normalize/nuki"
	"github.com/keyfleet/keyfleet/normalize/schlage"
	"github.com/keyfleet/keyfleet/normalize/seam"
)

// Signer verifies a vendor webhook's signature (see httpapi.Route.Signed):
// (true, nil) for a valid one, (false, nil) when the request carries none
// (token auth applies), an error for a present but wrong one (401).
type Signer = func(c *fiber.Ctx) (bool, error)

// SignerMetrics count rejected webhook signatures.
type SignerMetrics struct {
	failures *prometheus.CounterVec
}

// NewSignerMetrics creates the metrics and registers them with reg (if not nil).
func NewSignerMetrics(reg prometheus.Registerer) *SignerMetrics {
	m := &SignerMetrics{failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyfleet_ingest_signature_failures_total",
		Help: "Webhook requests rejected for a present but invalid vendor signature, by vendor.",
	}, []string{"vendor"})}
	if reg != nil {
		reg.MustRegister(m.failures)
	}
	return m
}

// Signers returns the webhook verifiers for ingest.Options.Signers, by
// vendor, for the vendors whose secret or key is configured: Nuki's
// X-Nuki-Signature-SHA256 (HMAC), Seam's Svix signatures (HMAC with a
// timestamp) and Schlage's WebHook-Signature (RSA-PSS with Schlage's public
// key). now is the clock Seam's timestamps are checked against.
func Signers(cfg Config, m *SignerMetrics, now func() time.Time) (map[string]Signer, error) {
	signers := map[string]Signer{}
	if cfg.NukiWebhookSecret != "" {
		secret := []byte(cfg.NukiWebhookSecret)
		signers[nuki.Vendor] = signer(m, nuki.Vendor, func(c *fiber.Ctx) (bool, error) {
			sig := c.Get(nuki.SignatureHeader)
			if sig == "" {
				return false, nil
			}
			return true, nuki.Verify(secret, c.Body(), sig)
		})
	}
	if cfg.SeamWebhookSecret != "" {
		key, err := seam.DecodeSecret(cfg.SeamWebhookSecret)
		if err != nil {
			return nil, fmt.Errorf("--seam-webhook-secret: %w", err)
		}
		signers[seam.Vendor] = signer(m, seam.Vendor, func(c *fiber.Ctx) (bool, error) {
			id, ts, sig := c.Get(seam.HeaderID), c.Get(seam.HeaderTimestamp), c.Get(seam.HeaderSignature)
			if sig == "" {
				id, ts, sig = c.Get(seam.HeaderIDStd), c.Get(seam.HeaderTimestampStd), c.Get(seam.HeaderSignatureStd)
			}
			if sig == "" {
				return false, nil
			}
			return true, seam.Verify(key, id, ts, sig, c.Body(), now())
		})
	}
	if cfg.SchlageWebhookKeyFile != "" {
		key, err := loadSchlageKey(cfg.SchlageWebhookKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--schlage-webhook-public-key: %w", err)
		}
		signers[schlage.Vendor] = signer(m, schlage.Vendor, func(c *fiber.Ctx) (bool, error) {
			sig := c.Get(schlage.SignatureHeader)
			if sig == "" {
				return false, nil
			}
			return true, schlage.Verify(key, c.Body(), sig)
		})
	}
	return signers, nil
}

// signer counts verify's errors as signature failures of vendor.
func signer(m *SignerMetrics, vendor string, verify Signer) Signer {
	failures := m.failures.WithLabelValues(vendor)
	return func(c *fiber.Ctx) (bool, error) {
		present, err := verify(c)
		if err != nil {
			failures.Inc()
			return false, err
		}
		return present, nil
	}
}

func loadSchlageKey(path string) (*rsa.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return schlage.ParsePublicKey(data)
}

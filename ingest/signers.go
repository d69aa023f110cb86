package ingest

import (
	"crypto/rsa"
	"errors"
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

// WebhookKeys are the vendors' webhook secrets and keys (empty: that
// vendor's webhooks authenticate with a token instead).
type WebhookKeys struct {
	NukiSecret     string // Nuki's shared HMAC secret
	SeamSecret     string // Seam's (Svix) signing secret, whsec_…
	SchlageKeyFile string // PEM file of Schlage's RSA public key
}

// Validate checks that the secret and key can be used.
func (k WebhookKeys) Validate() error {
	var errs []error
	if k.SeamSecret != "" {
		if _, err := seam.DecodeSecret(k.SeamSecret); err != nil {
			errs = append(errs, fmt.Errorf("--seam-webhook-secret: %w", err))
		}
	}
	if k.SchlageKeyFile != "" {
		if _, err := loadSchlageKey(k.SchlageKeyFile); err != nil {
			errs = append(errs, fmt.Errorf("--schlage-webhook-public-key: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Signers returns the webhook verifiers for Options.Signers, by
// vendor, for the vendors whose secret or key is configured: Nuki's
// X-Nuki-Signature-SHA256 (HMAC), Seam's Svix signatures (HMAC with a
// timestamp) and Schlage's WebHook-Signature (RSA-PSS with Schlage's public
// key). now is the clock Seam's timestamps are checked against.
func Signers(keys WebhookKeys, m *SignerMetrics, now func() time.Time) (map[string]Signer, error) {
	signers := map[string]Signer{}
	if keys.NukiSecret != "" {
		secret := []byte(keys.NukiSecret)
		signers[nuki.Vendor] = signer(m, nuki.Vendor, func(c *fiber.Ctx) (bool, error) {
			sig := c.Get(nuki.SignatureHeader)
			if sig == "" {
				return false, nil
			}
			return true, nuki.Verify(secret, c.Body(), sig)
		})
	}
	if keys.SeamSecret != "" {
		key, err := seam.DecodeSecret(keys.SeamSecret)
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
	if keys.SchlageKeyFile != "" {
		key, err := loadSchlageKey(keys.SchlageKeyFile)
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

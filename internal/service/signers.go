package service

import (
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/normalize/nuki"
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
// vendor: Nuki's X-Nuki-Signature-SHA256 when a Nuki webhook secret is set.
func Signers(cfg Config, m *SignerMetrics) map[string]Signer {
	signers := map[string]Signer{}
	if cfg.NukiWebhookSecret != "" {
		secret := []byte(cfg.NukiWebhookSecret)
		failures := m.failures.WithLabelValues(nuki.Vendor)
		signers[nuki.Vendor] = func(c *fiber.Ctx) (bool, error) {
			sig := c.Get(nuki.SignatureHeader)
			if sig == "" {
				return false, nil
			}
			if err := nuki.Verify(secret, c.Body(), sig); err != nil {
				failures.Inc()
				return false, err
			}
			return true, nil
		}
	}
	return signers
}

package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/ingest"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/nuki"
	"github.com/keyfleet/keyfleet/normalize/vendors"
)

// noTokens knows no API token: only signed webhooks get in.
type noTokens struct{}

func (noTokens) Authenticate(context.Context, string) (httpapi.Principal, error) {
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

func TestNukiWebhookSignatures(t *testing.T) {
	kc := testenv.Kafka(t, 1)
	raw := bus.NewWriter(kc, bus.TopicRaw)
	t.Cleanup(func() { raw.Close() })
	reg := prometheus.NewRegistry()
	metrics := NewSignerMetrics(reg)
	const secret = "nuki-webhook-secret-for-tests"
	h, err := ingest.New(ingest.Options{
		Normalizer: normalize.New(vendors.Adapters(), nil, []byte("k")), Raw: raw, Registerer: reg,
		Signers: Signers(Config{NukiWebhookSecret: secret}, metrics), Timeout: 30 * time.Second,
	})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: noTokens{}, Logger: testenv.Logger(t)}, h.Routes())
	require.NoError(t, err)

	body := `{"feature":"DEVICE_LOGS","smartlockLog":{"id":"6566e1b0c3a4f22e5c0d9b17","smartlockId":17171717,"authId":"a1",` +
		`"name":"Alice Example","action":1,"trigger":5,"state":0,"date":"2026-11-20T08:15:02.000Z"}}`
	post := func(vendor, sig string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/ingest/"+vendor, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set(nuki.SignatureHeader, sig)
		}
		resp, err := srv.App().Test(req, 60_000)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	code, out := post("nuki", nuki.Sign([]byte(secret), []byte(body)))
	require.Equal(t, http.StatusAccepted, code, out)
	var res ingest.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 1, res.Accepted)

	code, out = post("nuki", nuki.Sign([]byte("wrong-secret"), []byte(body)))
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Contains(t, out, "bad_signature")
	assert.NotContains(t, out, "Alice")

	code, out = post("nuki", "not-hex")
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Equal(t, 2.0, signatureFailures(t, reg))

	// No signature: token auth applies, and there is no token.
	code, out = post("nuki", "")
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Contains(t, out, "unauthenticated")

	// Other vendors are not signed: a Nuki signature header means nothing there.
	code, out = post("seam", nuki.Sign([]byte(secret), []byte(body)))
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Contains(t, out, "unauthenticated")
	assert.Equal(t, 2.0, signatureFailures(t, reg))

	// Without a configured secret there is no Nuki signer at all.
	assert.Empty(t, Signers(Config{}, NewSignerMetrics(nil)))

	// The accepted record is on lock.events.raw.
	r := bus.NewGroupReader(kc, bus.TopicRaw, "signers-test")
	t.Cleanup(func() { r.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := r.ReadMessage(ctx)
	require.NoError(t, err)
	assert.Equal(t, "17171717", string(m.Key))
	assert.Contains(t, string(m.Value), `"vendor":"nuki"`)
}

func signatureFailures(t *testing.T, g prometheus.Gatherer) float64 {
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "keyfleet_ingest_signature_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "vendor" && l.GetValue() == "nuki" {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

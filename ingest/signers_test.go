package ingest_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
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
	"github.com/keyfleet/keyfleet/normalize/schlage"
	"github.com/keyfleet/keyfleet/normalize/seam"
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
	metrics := ingest.NewSignerMetrics(reg)
	const secret = "nuki-webhook-secret-for-tests"
	h, err := ingest.New(ingest.Options{
		Normalizer: normalize.New(vendors.Adapters(), nil, []byte("k")), Raw: raw, Registerer: reg,
		Signers: mustSigners(t, ingest.WebhookKeys{NukiSecret: secret}, metrics, time.Now), Timeout: 30 * time.Second,
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
	assert.Empty(t, mustSigners(t, ingest.WebhookKeys{}, ingest.NewSignerMetrics(nil), time.Now))

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

func mustSigners(t *testing.T, cfg ingest.WebhookKeys, m *ingest.SignerMetrics, now func() time.Time) map[string]ingest.Signer {
	t.Helper()
	s, err := ingest.Signers(cfg, m, now)
	require.NoError(t, err)
	return s
}

// TestSeamAndSchlageWebhookSignatures: Seam's Svix signatures (HMAC with a
// timestamp, svix-* or webhook-* headers) and Schlage's RSA-PSS signatures
// let webhooks in without a token; wrong, stale or foreign ones get 401.
func TestSeamAndSchlageWebhookSignatures(t *testing.T) {
	kc := testenv.Kafka(t, 1)
	raw := bus.NewWriter(kc, bus.TopicRaw)
	t.Cleanup(func() { raw.Close() })
	reg := prometheus.NewRegistry()

	seamKey := []byte("seam-signing-key-for-tests-32byt")
	seamSecret := "whsec_" + base64.StdEncoding.EncodeToString(seamKey)
	schlageKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&schlageKey.PublicKey)
	require.NoError(t, err)
	keyFile := filepath.Join(t.TempDir(), "schlage.pem")
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600))
	now := time.Date(2026, 11, 20, 8, 16, 0, 0, time.UTC)
	cfg := ingest.WebhookKeys{SeamSecret: seamSecret, SchlageKeyFile: keyFile}
	require.NoError(t, cfg.Validate())
	h, err := ingest.New(ingest.Options{
		Normalizer: normalize.New(vendors.Adapters(), nil, []byte("k")), Raw: raw, Registerer: reg,
		Signers: mustSigners(t, cfg, ingest.NewSignerMetrics(reg), func() time.Time { return now }), Timeout: 30 * time.Second,
	})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: noTokens{}, Logger: testenv.Logger(t)}, h.Routes())
	require.NoError(t, err)
	post := func(vendor, body string, headers map[string]string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/ingest/"+vendor, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := srv.App().Test(req, 60_000)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	seamBody := `{"event_id":"4d1b6c8e-2f0a-4c1e-9b7d-5a6e7f8091a2","event_type":"lock.unlocked","device_id":"9f0e1d2c",` +
		`"workspace_id":"w1","created_at":"2026-11-20T08:15:03.000Z","occurred_at":"2026-11-20T08:15:02.000Z","method":"manual"}`
	svix := func(id string, at time.Time, key []byte, body string) map[string]string {
		return map[string]string{seam.HeaderID: id, seam.HeaderTimestamp: strconv.FormatInt(at.Unix(), 10),
			seam.HeaderSignature: seam.Sign(key, id, at, []byte(body))}
	}
	code, out := post("seam", seamBody, svix("msg_1", now.Add(-time.Minute), seamKey, seamBody))
	require.Equal(t, http.StatusAccepted, code, out)
	std := map[string]string{seam.HeaderIDStd: "msg_2", seam.HeaderTimestampStd: strconv.FormatInt(now.Unix(), 10),
		seam.HeaderSignatureStd: seam.Sign(seamKey, "msg_2", now, []byte(seamBody))}
	code, out = post("seam", seamBody, std)
	assert.Equal(t, http.StatusAccepted, code, out)
	code, out = post("seam", seamBody, svix("msg_3", now.Add(-10*time.Minute), seamKey, seamBody))
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Contains(t, out, "5 minutes")
	code, out = post("seam", seamBody, svix("msg_4", now, []byte("some other key"), seamBody))
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Contains(t, out, "bad_signature")
	code, out = post("seam", seamBody, nil)
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Contains(t, out, "unauthenticated")

	schlageBody := `{"eventId":"0b7e4c1a","trigger":"Device","deviceId":"a1b2c3d4e5f6","time":"2026-11-20T08:15:02.123Z",` +
		`"eventType":"DeviceLockStateChanged","data":{"lockState":0,"accessor":{"id":"7f6e5d4c","accessType":"Mobile"}},"version":"1.0"}`
	pss := func(k *rsa.PrivateKey, body string) map[string]string {
		sum := sha256.Sum256([]byte(body))
		sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		require.NoError(t, err)
		return map[string]string{schlage.SignatureHeader: base64.StdEncoding.EncodeToString(sig)}
	}
	code, out = post("schlage", schlageBody, pss(schlageKey, schlageBody))
	require.Equal(t, http.StatusAccepted, code, out)
	var res ingest.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 1, res.Accepted)
	code, out = post("schlage", schlageBody+" ", pss(schlageKey, schlageBody))
	assert.Equal(t, http.StatusUnauthorized, code, out)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	code, out = post("schlage", schlageBody, pss(other, schlageBody))
	assert.Equal(t, http.StatusUnauthorized, code, out)
	// A Schlage signature means nothing on another vendor's route.
	code, out = post("nuki", schlageBody, pss(schlageKey, schlageBody))
	assert.Equal(t, http.StatusUnauthorized, code, out)
	assert.Contains(t, out, "unauthenticated")

	assert.Equal(t, 2.0, vendorFailures(t, reg, "seam"))
	assert.Equal(t, 2.0, vendorFailures(t, reg, "schlage"))

	// Bad configuration is refused at start-up, naming the flag.
	_, err = ingest.Signers(ingest.WebhookKeys{SeamSecret: "not base64!"}, ingest.NewSignerMetrics(nil), time.Now)
	assert.ErrorContains(t, err, "--seam-webhook-secret")
	_, err = ingest.Signers(ingest.WebhookKeys{SchlageKeyFile: filepath.Join(t.TempDir(), "missing.pem")}, ingest.NewSignerMetrics(nil), time.Now)
	assert.ErrorContains(t, err, "--schlage-webhook-public-key")
	bad := ingest.WebhookKeys{SeamSecret: "whsec_", SchlageKeyFile: seamSecret}
	err = bad.Validate()
	assert.ErrorContains(t, err, "--seam-webhook-secret")
	assert.ErrorContains(t, err, "--schlage-webhook-public-key")
}

func signatureFailures(t *testing.T, g prometheus.Gatherer) float64 {
	return vendorFailures(t, g, "nuki")
}

func vendorFailures(t *testing.T, g prometheus.Gatherer, vendor string) float64 {
	mfs, err := g.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "keyfleet_ingest_signature_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "vendor" && l.GetValue() == vendor {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

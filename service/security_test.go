package service

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

const secureToken = "secure-admin-token-0123456789abcdefghij"

// keyfleet serve over HTTPS (a CA made here), with its rate limits, keyed
// audit log and input bounds, end to end.
func TestServeSecurity(t *testing.T) {
	conn, ch := testenv.ClickHouse(t)
	dir := t.TempDir()
	caPEM, certFile, keyFile := testCA(t, dir)
	checkpoints := filepath.Join(dir, "checkpoints.jsonl")
	var cfg Config
	fs := flagenv.New("serve", "")
	fs.SetLookup(func(string) (string, bool) { return "", false })
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--embedded-kafka-addr", "127.0.0.1:0", "--data-dir", dir,
		"--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database, "--access-log=false",
		"--bootstrap-token", secureToken, "--http-tls-cert", certFile, "--http-tls-key", keyFile,
		"--rate-limit-auth-failures", "20/1h", "--rate-limit-expensive", "5/1h", "--audit-chain", "serve-test",
		"--audit-checkpoint-file", checkpoints}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- Run(ctx, cfg, Options{Logger: testenv.Logger(t), Stdout: io.Discard, Listener: ln,
			Ready: func(string, string) { close(ready) }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Error("serve did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 4}}
	base := "https://" + ln.Addr().String()
	do := func(method, path, token, body string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}

	// HTTPS only. (/readyz says 503 until the control plane has rebuilt
	// its state, a moment after serve listens.)
	require.Eventually(t, func() bool { code, _, _ := do("GET", "/readyz", "", ""); return code == 200 },
		time.Minute, 100*time.Millisecond, "/readyz over HTTPS")
	if resp, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		assert.NotEqual(t, 200, resp.StatusCode, "plain HTTP is not served")
		resp.Body.Close()
	}

	// A token created through the API is audited with the creator's id and
	// name; the bootstrap token's creation is audited too.
	code, _, body := do("POST", "/v1/tokens", secureToken, `{"name":"grafana","role":"analyst","expires_at":"`+
		time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)+`"}`)
	require.Equal(t, 201, code, string(body))
	var created struct {
		Token  auth.Token `json:"token"`
		Secret string     `json:"secret"`
	}
	require.NoError(t, json.Unmarshal(body, &created))
	assert.NotZero(t, created.Token.ExpiresMs)
	store, err := audit.NewStore(conn, audit.Options{Chain: "reader"})
	require.NoError(t, err)
	rows, err := store.Entries(context.Background(), "token.", "", 10)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	assert.Equal(t, created.Token.ID, rows[0].Target)
	assert.Equal(t, auth.IDOf(secureToken), rows[0].Actor)
	assert.Equal(t, "bootstrap", rows[0].ActorName)
	assert.Equal(t, auth.IDOf(secureToken), rows[1].Target)
	assert.Equal(t, "system:bootstrap", rows[1].Actor)
	assert.NotEmpty(t, rows[0].KeyID, "entries are keyed")

	// The audit log verifies with its keys and checkpoints.
	code, _, body = do("GET", "/v1/audit/verify", secureToken, "")
	require.Equal(t, 200, code, string(body))
	var rep audit.Report
	require.NoError(t, json.Unmarshal(body, &rep))
	assert.True(t, rep.OK, "%+v", rep.Findings)
	assert.True(t, rep.KeysChecked)
	assert.Positive(t, rep.Checkpoints)
	cpFile, err := os.ReadFile(checkpoints)
	require.NoError(t, err)
	assert.Contains(t, string(cpFile), `"chain":"serve-test"`)

	// An entry another package writes with only the token id as actor gets
	// the token's name beside it from the audit store.
	code, _, body = do("GET", "/v1/export/events?from=now-1h", secureToken, "")
	require.Equal(t, 200, code, string(body))
	rows, err = store.Entries(context.Background(), "export.", "", 10)
	require.NoError(t, err)
	require.Len(t, rows, 1)
	assert.Equal(t, auth.IDOf(secureToken), rows[0].Actor)
	assert.Equal(t, "bootstrap", rows[0].ActorName)

	// Expensive routes: 5 per token, then 429 with Retry-After.
	var expensive []int
	for range 7 {
		code, _, _ := do("GET", "/v1/events?from=now-1h", created.Secret, "")
		expensive = append(expensive, code)
	}
	assert.Equal(t, []int{200, 200, 200, 200, 200, 429, 429}, expensive)

	// Event times out of range and invalid UTF-8 are refused at ingest.
	rec := func(n int, ts time.Time) string {
		return fmt.Sprintf(`{"nodeId":"0x9","endpointId":1,"clusterId":257,"eventName":"DoorStateChange","eventNumber":%d,"timestampMs":%d,"data":{"doorState":0}}`,
			n, ts.UnixMilli())
	}
	code, _, body = do("POST", "/v1/ingest/matter", secureToken, rec(1, time.Now())+"\n"+rec(2, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))
	require.Equal(t, 202, code, string(body))
	assert.Contains(t, string(body), `"rejected":1`)
	assert.Contains(t, string(body), "time_out_of_range")
	code, _, body = do("POST", "/v1/ingest/matter", secureToken, "{\"nodeId\":\"\xff\"}")
	assert.Equal(t, 400, code, string(body))
	assert.Contains(t, string(body), "invalid_utf8")
	code, _, body = do("DELETE", "/v1/tokens/tok%5Fnope", secureToken, "")
	assert.Equal(t, 404, code, string(body))
	assert.Contains(t, string(body), "token_not_found", "the path parameter was decoded")

	// 3,000 wrong-token requests: 20 × 401, then 429 with Retry-After.
	counts := map[int]int{}
	retry := ""
	for i := range 3000 {
		code, h, _ := do("GET", "/v1/alerts", fmt.Sprintf("wrong-%d", i), "")
		counts[code]++
		if code == 429 {
			retry = h.Get("Retry-After")
		}
	}
	t.Logf("3000 wrong-token requests over HTTPS: %d × 401, %d × 429 (Retry-After %s s)", counts[401], counts[429], retry)
	assert.Equal(t, map[int]int{401: 20, 429: 2980}, counts)
	assert.NotEmpty(t, retry)
	code, _, _ = do("GET", "/v1/alerts", secureToken, "")
	assert.Equal(t, 429, code, "the address waits, whatever it sends")
}

// testCA writes a throwaway CA and a server certificate for 127.0.0.1 into
// dir and returns the CA (PEM) and the server's certificate and key files.
func testCA(t *testing.T, dir string) ([]byte, string, string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	now := time.Now()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyfleet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	caCert, err := x509.ParseCertificate(caDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

package httpapi

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
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a fixed clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestParseRate(t *testing.T) {
	f := func(in string, want Rate, wantErr bool) {
		t.Helper()
		got, err := ParseRate(in)
		if wantErr {
			assert.Error(t, err, in)
			return
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	f("20/1m", Rate{N: 20, Per: time.Minute}, false)
	f("5/10s", Rate{N: 5, Per: 10 * time.Second}, false)
	f("off", Rate{}, false)
	f("0", Rate{}, false)
	f("20", Rate{}, true)
	f("x/1m", Rate{}, true)
	f("0/1m", Rate{}, true)
	f("5/1ms", Rate{}, true)
}

func status(t *testing.T, s *Server, method, path, token, remote string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if remote != "" {
		req.Header.Set("X-Real-IP", remote)
	}
	resp, err := s.App().Test(req, -1)
	require.NoError(t, err)
	return resp
}

// 3,000 wrong-token requests from one address: the first 20 are 401, the
// rest 429 with Retry-After; a good token from that address waits too, one
// from another address does not; after the window the address may try again.
func TestAuthFailuresAreRateLimited(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)}
	ok := func(c *fiber.Ctx) error { return c.SendString("ok") }
	s, err := New(Options{Auth: tokens{"good": RoleAnalyst}, AuthFailures: Rate{N: 20, Per: time.Minute}, Now: clk.now,
		ProxyHeader: "X-Real-IP", TrustedProxies: []string{"0.0.0.0"}},
		[]Route{{Method: "GET", Path: "/read", Roles: ReadRoles, Handler: ok}, {Method: "GET", Path: "/public", Public: true, Handler: ok}})
	require.NoError(t, err)
	counts := map[int]int{}
	retryAfter := ""
	for range 3000 {
		resp := status(t, s, "GET", "/read", "wrong", "192.0.2.7")
		counts[resp.StatusCode]++
		if resp.StatusCode == 429 {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	t.Logf("3000 wrong-token requests: %d × 401, %d × 429", counts[401], counts[429])
	assert.Equal(t, map[int]int{401: 20, 429: 2980}, counts)
	assert.Equal(t, "3", retryAfter) // one failure refills in 60s/20
	assert.Equal(t, 429, status(t, s, "GET", "/read", "good", "192.0.2.7").StatusCode)
	assert.Equal(t, 200, status(t, s, "GET", "/read", "good", "192.0.2.8").StatusCode)
	assert.Equal(t, 200, status(t, s, "GET", "/public", "", "192.0.2.7").StatusCode)
	clk.add(3 * time.Second)
	assert.Equal(t, 200, status(t, s, "GET", "/read", "good", "192.0.2.7").StatusCode)
	assert.Equal(t, 401, status(t, s, "GET", "/read", "", "192.0.2.7").StatusCode)
	assert.Equal(t, 429, status(t, s, "GET", "/read", "good", "192.0.2.7").StatusCode)
}

func TestExpensiveRoutesAreRateLimitedPerCaller(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 5, 12, 0, 0, 0, time.UTC)}
	ok := func(c *fiber.Ctx) error { return c.SendString("ok") }
	auth := authFunc(func(token string) (Principal, error) {
		if token == "a" || token == "b" {
			return Principal{TokenID: "tok_" + token, Role: RoleAnalyst}, nil
		}
		return Principal{}, ErrUnauthenticated
	})
	s, err := New(Options{Auth: auth, Expensive: Rate{N: 3, Per: time.Minute}, ExpensiveRoutes: []string{"GET /export"}, Now: clk.now},
		[]Route{{Method: "GET", Path: "/export", Roles: ReadRoles, Handler: ok}, {Method: "GET", Path: "/cheap", Roles: ReadRoles, Handler: ok}})
	require.NoError(t, err)
	var got []int
	for range 5 {
		got = append(got, status(t, s, "GET", "/export", "a", "").StatusCode)
	}
	assert.Equal(t, []int{200, 200, 200, 429, 429}, got)
	resp := status(t, s, "GET", "/export", "a", "")
	assert.Equal(t, "20", resp.Header.Get("Retry-After"))
	body, _ := io.ReadAll(resp.Body)
	var p Problem
	require.NoError(t, json.Unmarshal(body, &p))
	assert.Equal(t, "rate_limited", p.Code)
	assert.Equal(t, 200, status(t, s, "GET", "/export", "b", "").StatusCode, "another token has its own budget")
	assert.Equal(t, 200, status(t, s, "GET", "/cheap", "a", "").StatusCode, "other routes are not limited")
	clk.add(20 * time.Second)
	assert.Equal(t, 200, status(t, s, "GET", "/export", "a", "").StatusCode)

	_, err = New(Options{Auth: auth, ExpensiveRoutes: []string{"GET /nowhere"}}, nil)
	assert.Error(t, err, "a stale route name fails loudly")
}

type authFunc func(string) (Principal, error)

func (f authFunc) Authenticate(_ context.Context, token string) (Principal, error) { return f(token) }

func TestPathParametersAreDecodedAndInputMustBeUTF8(t *testing.T) {
	echo := func(c *fiber.Ctx) error {
		v, err := PathParam(c, "id")
		if err != nil {
			return err
		}
		return c.SendString(v)
	}
	s, err := New(Options{Auth: tokens{"a": RoleAdmin}}, []Route{
		{Method: "GET", Path: "/things/:id", Roles: ReadRoles, Handler: echo},
		{Method: "POST", Path: "/things/:id", Roles: ReadRoles, Handler: echo},
		{Method: "POST", Path: "/blob/:id", Roles: ReadRoles, BinaryBody: true, Handler: echo},
	})
	require.NoError(t, err)
	f := func(method, target, body string, want int, wantBody string) {
		t.Helper()
		req := httptest.NewRequest(method, "/", strings.NewReader(body))
		req.URL.RawPath, req.URL.Path = "", ""
		req.RequestURI = target
		req.URL, _ = req.URL.Parse(target)
		req.Header.Set("Authorization", "Bearer a")
		resp, err := s.App().Test(req, -1)
		require.NoError(t, err)
		got, _ := io.ReadAll(resp.Body)
		assert.Equal(t, want, resp.StatusCode, "%s %s: %s", method, target, got)
		assert.Contains(t, string(got), wantBody, "%s %s", method, target)
	}
	f("GET", "/things/tok%5F1", "", 200, "tok_1")
	f("GET", "/things/caf%C3%A9", "", 200, "café")
	f("GET", "/things/a+b", "", 200, "a+b")
	f("GET", "/things/%FF", "", 400, "invalid_utf8")
	f("GET", "/things/%zz", "", 400, "percent-escape")
	f("GET", "/things/x?q=%FF", "", 400, "invalid_utf8")
	f("POST", "/things/x", "{\"name\":\"\xff\"}", 400, `"field":"body"`)
	f("POST", "/things/x", `{"name":"ok"}`, 200, "x")
	f("POST", "/blob/x", "\xff\xfe", 200, "x")
}

// HTTPS with a CA made here: a client trusting the CA talks to Serve; one
// that does not is refused by its own verification.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	caPEM, certFile, keyFile := testCA(t, dir)
	tlsCfg, err := LoadTLS(certFile, keyFile)
	require.NoError(t, err)
	s, err := New(Options{Auth: tokens{}, TLS: tlsCfg}, []Route{{Method: "GET", Path: "/healthz", Public: true,
		Handler: func(c *fiber.Ctx) error { return c.SendString("ok " + c.Protocol()) }}})
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + ln.Addr().String() + "/healthz"
	var resp *http.Response
	require.Eventually(t, func() bool {
		resp, err = client.Get(url)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "last error: %v", err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "ok https", string(body))
	assert.Equal(t, uint16(tls.VersionTLS13), resp.TLS.Version)

	_, err = (&http.Client{Timeout: 10 * time.Second}).Get(url)
	assert.ErrorContains(t, err, "certificate", "a client without the CA does not trust the server")
	plain, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + ln.Addr().String() + "/healthz")
	if err == nil {
		assert.NotEqual(t, 200, plain.StatusCode, "plain HTTP is not served")
		plain.Body.Close()
	}
	_, err = LoadTLS(filepath.Join(dir, "missing.pem"), keyFile)
	assert.Error(t, err)
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
		DNSNames: []string{"localhost"}, KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), certFile, keyFile
}

// Package wallet simulates what sits on the phone side of keyfleet's
// control plane: the wallet provider (or MDM) that receives the signed
// session-revocation webhook (control/session) and ends the key's session
// on the device, and the phones that attest their keys (evidence minted by
// control/attest/attesttest's CA, now and then a forgery). It is an HTTP
// service on loopback with realistic latency and some failures, started by
// `keyfleet simulate --wallet-addr` (make run) and by tests.
//
//	POST /v1/sessions/revoke                  the webhook: 200 revoked (or already), 401 bad signature, 503 now and then
//	GET  /v1/sessions/{key}                   what became of one revocation (tests, demos)
//	POST /v1/devices/{device}/attestations    {"format","challenge"} → {"format","evidence","forged"}
//	GET  /healthz
package wallet

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/session"
)

// Options configure a Service.
type Options struct {
	// Secret is the session webhook's HMAC key (keyfleet's
	// --session-revoke-secret); required.
	Secret []byte
	// CA mints the devices' attestations; nil: the attestation route
	// answers 501.
	CA *attesttest.CA
	// Latency is the median time to revoke a session (log-normal, sigma
	// Spread; default 80 ms, 0.5); FailRate the share of webhook calls
	// answered 503 (transient: keyfleet retries).
	Latency  time.Duration
	Spread   float64
	FailRate float64
	// ForgeRate is the share of attestations minted forged (a cloned or
	// rooted phone); the answer says which, as ground truth.
	ForgeRate float64
	Seed      uint64
	Now       func() time.Time
	// Sleep waits out the simulated latency (tests: none).
	Sleep  func(ctx context.Context, d time.Duration) error
	Logger *slog.Logger
}

// Revocation is what the provider did with one session revocation.
type Revocation struct {
	Key          string `json:"key"`
	RevocationID string `json:"revocation_id,omitempty"`
	CredentialID string `json:"credential_id"`
	DeviceID     string `json:"device_id"`
	Calls        int    `json:"calls"`   // webhook calls received for it
	Failed       int    `json:"failed"`  // answered 503
	Revoked      bool   `json:"revoked"` // the session is gone
	RevokedMs    int64  `json:"revoked_ms,omitempty"`
	Attempts     []int  `json:"attempts"` // the attempt numbers keyfleet sent
}

// Stats count the service's work.
type Stats struct {
	Calls         int `json:"calls"`
	Revoked       int `json:"revoked"`
	Repeats       int `json:"repeats"` // calls for a session already revoked
	Failed        int `json:"failed"`
	BadSignature  int `json:"bad_signature"`
	Attestations  int `json:"attestations"`
	ForgedMinted  int `json:"forged_minted"`
	SessionsByDev int `json:"devices_with_revoked_sessions"`
}

// Service is the simulated wallet provider and its phones.
type Service struct {
	o     Options
	mu    sync.Mutex
	r     *rand.Rand
	revs  map[string]*Revocation
	devs  map[string]bool
	stats Stats
}

// New returns a Service.
func New(o Options) (*Service, error) {
	if len(o.Secret) < 16 {
		return nil, errors.New("wallet: a webhook secret of at least 16 bytes is required")
	}
	if o.FailRate < 0 || o.FailRate >= 1 || o.ForgeRate < 0 || o.ForgeRate > 1 {
		return nil, errors.New("wallet: fail rate in [0,1), forge rate in [0,1]")
	}
	if o.Latency <= 0 {
		o.Latency = 80 * time.Millisecond
	}
	if o.Spread <= 0 {
		o.Spread = 0.5
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Service{o: o, r: rand.New(rand.NewPCG(o.Seed, 0x77616c6c6574)), revs: map[string]*Revocation{},
		devs: map[string]bool{}}, nil
}

// Handler serves the routes.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/sessions/revoke", s.revoke)
	mux.HandleFunc("GET /v1/sessions/{key...}", s.session)
	mux.HandleFunc("POST /v1/devices/{device}/attestations", s.attest)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	return mux
}

// Serve serves on ln until ctx ends.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.o.Logger.Info("simulated wallet provider serving", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("wallet: %w", err)
	}
	return nil
}

// Stats returns the counts so far.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.SessionsByDev = len(s.devs)
	return st
}

// Revocation returns what became of a session revocation.
func (s *Service) Revocation(key string) (Revocation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.revs[key]
	if !ok {
		return Revocation{}, false
	}
	c := *r
	c.Attempts = append([]int(nil), r.Attempts...)
	return c, true
}

// SetFailRate changes the share of webhook calls answered 503 (1: the
// provider is down).
func (s *Service) SetFailRate(rate float64) {
	s.mu.Lock()
	s.o.FailRate = rate
	s.mu.Unlock()
}

func (s *Service) revoke(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "read body", http.StatusBadRequest)
		return
	}
	if err := session.Verify(s.o.Secret, r.Header.Get(session.HeaderTimestamp), r.Header.Get(session.HeaderSignature),
		body, s.o.Now()); err != nil {
		s.mu.Lock()
		s.stats.BadSignature++
		s.mu.Unlock()
		http.Error(w, "bad signature: "+err.Error(), http.StatusUnauthorized)
		return
	}
	var in session.Request
	if err := json.Unmarshal(body, &in); err != nil || in.Type != session.TypeRevoke || in.DeviceID == "" {
		http.Error(w, "want a session.revoke request with a device_id", http.StatusBadRequest)
		return
	}
	key := r.Header.Get(session.HeaderIdempotencyKey)
	if key == "" {
		key = in.Key
	}
	s.mu.Lock()
	s.stats.Calls++
	rv := s.revs[key]
	if rv == nil {
		rv = &Revocation{Key: key, RevocationID: in.RevocationID, CredentialID: in.CredentialID, DeviceID: in.DeviceID}
		s.revs[key] = rv
	}
	rv.Calls++
	rv.Attempts = append(rv.Attempts, in.Attempt)
	fail := s.r.Float64() < s.o.FailRate
	delay := time.Duration(float64(s.o.Latency) * math.Min(math.Exp(s.r.NormFloat64()*s.o.Spread), 20))
	s.mu.Unlock()
	if err := s.o.Sleep(r.Context(), delay); err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if fail {
		rv.Failed++
		s.stats.Failed++
		w.Header().Set("Retry-After", "1")
		http.Error(w, "wallet backend busy", http.StatusServiceUnavailable)
		return
	}
	status := "revoked"
	if rv.Revoked {
		status = "already_revoked" // idempotent by key
		s.stats.Repeats++
	} else {
		rv.Revoked, rv.RevokedMs = true, s.o.Now().UnixMilli()
		s.stats.Revoked++
		s.devs[in.DeviceID] = true
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": status, "key": key})
}

func (s *Service) session(w http.ResponseWriter, r *http.Request) {
	rv, ok := s.Revocation(r.PathValue("key"))
	if !ok {
		http.Error(w, "no such session revocation", http.StatusNotFound)
		return
	}
	writeJSON(w, http.StatusOK, rv)
}

// AttestRequest asks a simulated phone to attest its key for a challenge.
type AttestRequest struct {
	Format    string `json:"format"`
	Challenge string `json:"challenge"` // base64
	// Forgery, when set, makes that forgery (attesttest.Forgery names).
	Forgery string `json:"forgery,omitempty"`
}

// AttestResponse is the phone's evidence; Forged is the ground truth.
type AttestResponse struct {
	Format   string `json:"format"`
	Evidence string `json:"evidence"` // base64
	Forged   bool   `json:"forged"`
	Forgery  string `json:"forgery,omitempty"`
	// Device is what the phone's wallet app reports of it with an
	// activation (the shape of the activation's attestation.device).
	Device DeviceReport `json:"device"`
}

// DeviceReport is a phone's self-report: model, OS and app version.
type DeviceReport struct {
	PhoneModel string `json:"phone_model"`
	OSName     string `json:"os_name"`
	OSVersion  string `json:"os_version"`
	AppVersion string `json:"app_version"`
}

// reportOf is what a simulated phone reports: a pick by a hash of its id
// from the phones of its evidence format's platform.
func reportOf(device, format string) DeviceReport {
	h := fnv.New32a()
	h.Write([]byte(device))
	n := h.Sum32()
	apps := []string{"2026.10.2", "2026.11.0", "2026.11.1"}
	if format == attest.FormatAndroidKey {
		models := []string{"Pixel 8", "Pixel 9", "Galaxy S24", "Galaxy A54"}
		versions := []string{"14", "15", "16"}
		return DeviceReport{models[n%4], "android", versions[n/4%3], apps[n/12%3]}
	}
	models := []string{"iPhone 13", "iPhone 14", "iPhone 15", "iPhone 16"}
	versions := []string{"17.6", "18.1", "18.2"}
	return DeviceReport{models[n%4], "ios", versions[n/4%3], apps[n/12%3]}
}

func (s *Service) attest(w http.ResponseWriter, r *http.Request) {
	if s.o.CA == nil {
		http.Error(w, "no attestation CA configured", http.StatusNotImplemented)
		return
	}
	var in AttestRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&in); err != nil {
		http.Error(w, "want {format, challenge}", http.StatusBadRequest)
		return
	}
	if in.Format == "" {
		in.Format = attest.FormatAppleAppAttest
	}
	challenge, err := base64.StdEncoding.DecodeString(in.Challenge)
	if err != nil || len(challenge) == 0 {
		http.Error(w, "challenge: want base64", http.StatusBadRequest)
		return
	}
	forgery := attesttest.Forgery(in.Forgery)
	s.mu.Lock()
	if forgery == attesttest.Genuine && s.o.ForgeRate > 0 && s.r.Float64() < s.o.ForgeRate {
		options := attesttest.Forgeries(in.Format)
		if len(options) > 1 {
			forgery = options[1+s.r.IntN(len(options)-1)]
		}
	}
	s.stats.Attestations++
	if forgery != attesttest.Genuine {
		s.stats.ForgedMinted++
	}
	ca := s.o.CA.At(s.o.Now())
	s.mu.Unlock()
	ev, err := ca.Mint(in.Format, attesttest.Options{Challenge: challenge, Forgery: forgery})
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusOK, AttestResponse{Format: in.Format, Evidence: base64.StdEncoding.EncodeToString(ev),
		Forged: forgery != attesttest.Genuine, Forgery: string(forgery), Device: reportOf(r.PathValue("device"), in.Format)})
}

// Attest asks the phone device of a wallet service at baseURL to attest
// for challenge (a client of POST /v1/devices/{device}/attestations).
func Attest(ctx context.Context, hc *http.Client, baseURL, device string, in AttestRequest) (*AttestResponse, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		strings.TrimRight(baseURL, "/")+"/v1/devices/"+device+"/attestations", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("attest device %s: %w", device, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("attest device %s: %s: %s", device, resp.Status, strings.TrimSpace(string(data)))
	}
	var out AttestResponse
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("attest device %s: %w", device, err)
	}
	return &out, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Package controltest starts a control plane on a simulated estate for
// tests and benchmarks: the credential control plane (control/stream and
// control/api behind an HTTP server on loopback) on a real Kafka and
// ClickHouse, the estate's lock gateways (sim/locks) answering
// lock.commands, the wallet provider (sim/wallet) answering the session
// webhook and attesting phones, and the test CA the control plane trusts.
package controltest

import (
	"context"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/api"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/session"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
	"github.com/keyfleet/keyfleet/sim/wallet"
)

// Tokens of the estate's API (token → principal).
const (
	TokenManager  = "mgr1"
	TokenApprover = "mgr2"
	TokenAnalyst  = "analyst"
	TokenAdmin    = "admin"
)

var principals = map[string]httpapi.Principal{
	TokenManager:  {TokenID: "t1", Name: "manager-1", Role: httpapi.RoleManager},
	TokenApprover: {TokenID: "t2", Name: "manager-2", Role: httpapi.RoleManager},
	TokenAnalyst:  {TokenID: "t5", Name: "analyst-1", Role: httpapi.RoleAnalyst},
	TokenAdmin:    {TokenID: "t6", Name: "admin-1", Role: httpapi.RoleAdmin},
}

type auth struct{}

func (auth) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if p, ok := principals[token]; ok {
		return p, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

// PseudonymKey keys the estate's pseudonyms.
var PseudonymKey = []byte("controltest-pseudonym-key-0123")

// Options shape an estate.
type Options struct {
	Bus  bus.Config
	Conn driver.Conn
	// Fleet is the simulated estate (default: seed 5, 1 site, 24 doors,
	// 40 subjects, every vendor).
	Fleet *fleet.Options
	// Profiles are the gateways' behaviour (default: fast and reliable:
	// no loss, nobody offline); DropOffline loses commands sent to an
	// offline lock.
	Profiles    map[string]locks.Profile
	DropOffline bool
	// NoSessions leaves the session layer unconfigured; SessionURL points
	// it elsewhere than the estate's wallet (e.g. a dead endpoint);
	// SessionFailRate makes the wallet answer that share 503.
	NoSessions      bool
	SessionURL      string
	SessionFailRate float64
	SessionAttempts int
	// Stream tweaks the control plane's options (ResendAfter ...).
	Stream func(*stream.Options)
}

// Estate is a running control plane on a simulated estate.
type Estate struct {
	t     testing.TB
	o     Options
	Fleet *fleet.Fleet
	// Registry is the control plane's lock registry (the fleet's locks).
	Registry *registry.Registry
	Set      *locks.Set
	Wallet   *wallet.Service
	// URL is the control plane's API; WalletURL the wallet's.
	URL, WalletURL string
	CA             *attesttest.CA
	Challenges     *attest.Challenger
	Metrics        *prometheus.Registry
	Audit          *audit.Store

	mu   sync.Mutex
	Proc *stream.Processor
	API  *api.API
	stop func()
}

// Start starts an estate; everything stops at the test's end.
func Start(t testing.TB, o Options) *Estate {
	t.Helper()
	fo := fleet.Options{Seed: 5, Sites: 1, DoorsPerSite: 24, Subjects: 40}
	if o.Fleet != nil {
		fo = *o.Fleet
	}
	f, err := fleet.Generate(fo)
	require.NoError(t, err)
	if o.Profiles == nil {
		o.Profiles = FastProfiles()
	}
	e := &Estate{t: t, o: o, Fleet: f}
	e.CA, err = attesttest.New(time.Now())
	require.NoError(t, err)
	e.Challenges, err = attest.NewChallenger([]byte("controltest-challenge-key-0123456789"), 10*time.Minute)
	require.NoError(t, err)

	// Gateways: the estate's locks, empty (the control plane grants).
	e.Set = locks.NewSet(locks.SetOptions{Fleet: f, Profiles: o.Profiles, Seed: 7, OriginMs: time.Now().UnixMilli(),
		KeepAcks: true, DropOffline: o.DropOffline})
	runner, err := locks.NewRunner(locks.RunnerOptions{Set: e.Set, Bus: o.Bus, Group: "controltest-gateways",
		Logger: testenv.Logger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- runner.Run(ctx) }()

	// The wallet provider and its phones.
	e.Wallet, err = wallet.New(wallet.Options{Secret: []byte(sessionSecret), CA: e.CA, FailRate: o.SessionFailRate,
		Latency: 5 * time.Millisecond, Seed: 11, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	e.WalletURL = "http://" + wl.Addr().String()
	go func() { done <- e.Wallet.Serve(ctx, wl) }()
	t.Cleanup(func() {
		e.StopControl()
		cancel()
		for range 2 {
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("estate: %v", err)
			}
		}
	})

	e.Registry = registry.New()
	e.Registry.Apply(f.Registry())
	e.Audit, err = audit.NewStore(o.Conn, audit.Options{Chain: "controltest-" + testenv.ID()})
	require.NoError(t, err)
	e.StartControl()
	return e
}

const sessionSecret = "controltest-session-secret-0123"

// FastProfiles are gateways that answer in a few milliseconds and lose
// nothing.
func FastProfiles() map[string]locks.Profile {
	p := map[string]locks.Profile{}
	for _, v := range []string{"matter", "nuki", "schlage", "seam", "legacy"} {
		p[v] = locks.Profile{LatencyMedian: 5 * time.Millisecond, LatencySpread: 0.3}
	}
	return p
}

// StartControl starts the control plane (again, after StopControl: a
// restart on the same topics and database).
func (e *Estate) StartControl() {
	t := e.t
	t.Helper()
	reg := prometheus.NewRegistry()
	so := stream.Options{Bus: e.o.Bus, Conn: e.o.Conn, Registry: e.Registry, Audit: e.Audit, Logger: testenv.Logger(t),
		Registerer: reg, SweepInterval: 100 * time.Millisecond, ResendAfter: 300 * time.Millisecond,
		ResendMax: 2 * time.Second, AdoptInterval: 2 * time.Second, Seed: 3}
	if !e.o.NoSessions {
		url := e.o.SessionURL
		if url == "" {
			url = e.WalletURL + "/v1/sessions/revoke"
		}
		attempts := e.o.SessionAttempts
		if attempts == 0 {
			attempts = 8
		}
		c, err := session.New(session.Options{URL: url, Secret: []byte(sessionSecret), Attempts: attempts,
			Backoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Timeout: 5 * time.Second})
		require.NoError(t, err)
		so.Sessions = c
	}
	if e.o.Stream != nil {
		e.o.Stream(&so)
	}
	proc, err := stream.New(so)
	require.NoError(t, err)
	v, err := attest.New(e.CA.Config())
	require.NoError(t, err)
	a, err := api.New(api.Options{State: proc, Conn: e.o.Conn, Audit: e.Audit, Verifier: e.Audit, PseudonymKey: PseudonymKey,
		Logger: testenv.Logger(t), Registerer: reg, WaitTimeout: 10 * time.Second, Attester: v, Challenges: e.Challenges,
		PendingSLA: so.PendingSLA})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: auth{}, Logger: testenv.Logger(t)}, a.Routes())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- proc.Run(ctx) }()
	go func() { done <- srv.Serve(ctx, ln) }()
	select {
	case <-proc.Ready():
	case err := <-done:
		t.Fatalf("control plane stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("control plane not ready after 60s")
	}
	e.mu.Lock()
	e.Proc, e.API, e.Metrics, e.URL = proc, a, reg, "http://"+ln.Addr().String()
	e.stop = func() {
		cancel()
		for range 2 {
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("control plane: %v", err)
				}
			case <-time.After(60 * time.Second):
				t.Error("control plane did not stop within 60s")
			}
		}
	}
	e.mu.Unlock()
}

// StopControl stops the control plane (the gateways and wallet go on).
func (e *Estate) StopControl() {
	e.mu.Lock()
	stop := e.stop
	e.stop = nil
	e.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// Attestation is a phone's attestation for a challenge the control plane
// issued for the credential ("" for a request) and device.
func (e *Estate) Attestation(credentialID, device string, forgery attesttest.Forgery) *control.AttestationInput {
	e.t.Helper()
	ch, _ := e.Challenges.Issue(credentialID, device, time.Now())
	out, err := wallet.Attest(context.Background(), http.DefaultClient, e.WalletURL, device, wallet.AttestRequest{
		Format: attest.FormatAppleAppAttest, Challenge: base64.StdEncoding.EncodeToString(ch), Forgery: string(forgery)})
	require.NoError(e.t, err)
	return &control.AttestationInput{Format: out.Format, Evidence: out.Evidence, Challenge: base64.StdEncoding.EncodeToString(ch)}
}

// Locks returns the estate's locks of a door group.
func (e *Estate) Locks(group string) []control.LockRef {
	var out []control.LockRef
	for _, l := range e.Fleet.Locks {
		for _, g := range l.Groups {
			if g == group {
				out = append(out, control.LockRef{Vendor: l.Vendor, LockID: l.LockID})
			}
		}
	}
	return out
}

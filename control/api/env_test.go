package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/api"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

var pseudonymKey = []byte("test-pseudonym-key-0123456789")

// tokens are the test principals: token secret → principal.
var tokens = map[string]httpapi.Principal{
	"mgr1":      {TokenID: "t1", Name: "manager-1", Role: httpapi.RoleManager},
	"mgr2":      {TokenID: "t2", Name: "manager-2", Role: httpapi.RoleManager},
	"mgr3":      {TokenID: "t3", Name: "manager-3", Role: httpapi.RoleManager},
	"responder": {TokenID: "t4", Name: "responder-bot", Role: httpapi.RoleResponder},
	"analyst":   {TokenID: "t5", Name: "analyst-1", Role: httpapi.RoleAnalyst},
	"admin":     {TokenID: "t6", Name: "admin-1", Role: httpapi.RoleAdmin},
}

type staticAuth struct{}

func (staticAuth) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if p, ok := tokens[token]; ok {
		return p, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

// estate is the test lock registry: one site, six locks in door groups.
func estate() *registry.Registry {
	r := registry.New()
	lock := func(vendor, id, door string, groups ...string) registry.Lock {
		return registry.Lock{Vendor: vendor, LockID: id, Groups: groups,
			LockInfo: registry.LockInfo{SiteID: "site-a", DoorID: door}}
	}
	r.Apply(registry.File{Locks: []registry.Lock{
		lock("matter", "m-lobby", "lobby", "entrance"),
		lock("nuki", "n-side", "side-door", "entrance"),
		lock("matter", "m-gym", "gym", "amenity"),
		lock("schlage", "s-garage", "garage", "garage"),
		lock("seam", "se-service", "service", "service"),
		lock("matter", "m-b204", "unit-b204", "unit:B-204"),
	}})
	return r
}

// testCA mints the tests' device attestations; every env trusts it, and
// challenges are keyed alike, so two envs on one bus accept each other's.
var (
	testCAOnce sync.Once
	testCA     *attesttest.CA
	challenges *attest.Challenger
	attester   *attest.Verifier
)

func setupAttestation(t testing.TB) {
	testCAOnce.Do(func() {
		var err error
		testCA, err = attesttest.New(time.Now())
		if err != nil {
			panic(err)
		}
		if attester, err = attest.New(testCA.Config()); err != nil {
			panic(err)
		}
		if challenges, err = attest.NewChallenger([]byte("test-challenge-key-0123456789abcdef"), 10*time.Minute); err != nil {
			panic(err)
		}
	})
	require.NotNil(t, testCA)
}

type env struct {
	t       testing.TB
	proc    *stream.Processor
	api     *api.API
	server  *httpapi.Server
	conn    driver.Conn
	bus     bus.Config
	locks   *registry.Registry
	audit   *audit.Store
	metrics *prometheus.Registry
	cancel  context.CancelFunc
	done    chan error
}

var _ api.State = (*stream.Processor)(nil)

// newEnv starts a control plane (stream processor and API) on its own
// topics and database.
func newEnv(t testing.TB, bc bus.Config, conn driver.Conn, tweak ...func(*stream.Options)) *env {
	t.Helper()
	setupAttestation(t)
	reg := prometheus.NewRegistry()
	store, err := audit.NewStore(conn, audit.Options{Chain: "test-" + testenv.ID()})
	require.NoError(t, err)
	e := &env{t: t, conn: conn, bus: bc, locks: estate(), audit: store, metrics: reg, done: make(chan error, 1)}
	opts := stream.Options{Bus: bc, Conn: conn, Registry: e.locks, Audit: store, Logger: testenv.Logger(t),
		Registerer: reg, SweepInterval: 100 * time.Millisecond, Seed: 1}
	for _, f := range tweak {
		f(&opts)
	}
	e.proc, err = stream.New(opts)
	require.NoError(t, err)
	e.api, err = api.New(api.Options{State: e.proc, Conn: conn, Audit: store, Verifier: store,
		PseudonymKey: pseudonymKey, Logger: testenv.Logger(t), Registerer: reg, WaitTimeout: 10 * time.Second,
		Attester: attester, Challenges: challenges})
	require.NoError(t, err)
	e.server, err = httpapi.New(httpapi.Options{Auth: staticAuth{}, Logger: testenv.Logger(t)}, e.api.Routes())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- e.proc.Run(ctx) }()
	t.Cleanup(e.stop)
	select {
	case <-e.proc.Ready():
	case err := <-e.done:
		t.Fatalf("control plane stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("control plane not ready after 60s")
	}
	return e
}

func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		require.NoError(e.t, err)
	case <-time.After(60 * time.Second):
		e.t.Error("control plane did not stop within 60s")
	}
}

// do calls the API and decodes a JSON answer into out (if not nil).
func (e *env) do(method, path, token string, body any, out any, headers ...string) *http.Response {
	e.t.Helper()
	var rd io.Reader
	ctype := "application/json"
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
		ctype = "text/csv"
	default:
		data, err := json.Marshal(b)
		require.NoError(e.t, err)
		rd = bytes.NewReader(data)
	}
	req := httptest.NewRequest(method, path, rd)
	req.Header.Set("Content-Type", ctype)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.server.App().Test(req, -1)
	require.NoError(e.t, err)
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if out != nil && len(data) > 0 {
		require.NoError(e.t, json.Unmarshal(data, out), "body: %s", data)
	}
	return resp
}

func body(resp *http.Response) string {
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return string(b)
}

// attestation is App Attest evidence of a device for a challenge issued
// for the credential ("" for a request that carries it), as the device
// makes it (genuine) or forged.
func attestation(t testing.TB, credentialID, device string, forgery attesttest.Forgery) *control.AttestationInput {
	t.Helper()
	setupAttestation(t)
	ch, _ := challenges.Issue(credentialID, device, time.Now())
	ev, err := testCA.Mint(attest.FormatAppleAppAttest, attesttest.Options{Challenge: ch, Forgery: forgery})
	require.NoError(t, err)
	return &control.AttestationInput{Format: attest.FormatAppleAppAttest, Evidence: base64.StdEncoding.EncodeToString(ev),
		Challenge: base64.StdEncoding.EncodeToString(ch)}
}

func (e *env) attested(device string) (string, *control.AttestationInput) {
	return device, attestation(e.t, "", device, attesttest.Genuine)
}

// issue requests one credential and waits until its request completed.
func (e *env) issue(token string, req control.CredentialRequest) string {
	e.t.Helper()
	id, requestID := e.request(token, req)
	e.waitRequest(requestID, func(st control.RequestStatus) bool { return st.Status != control.StatusPending })
	return id
}

// request requests one credential and returns its id and request id.
func (e *env) request(token string, req control.CredentialRequest) (string, string) {
	e.t.Helper()
	var pr control.ProvisionResponse
	resp := e.do("POST", "/v1/credentials", token, req, &pr)
	require.Equal(e.t, http.StatusAccepted, resp.StatusCode, body(resp))
	return pr.CredentialIDs[0], pr.RequestID
}

func (e *env) waitRequest(id string, done func(control.RequestStatus) bool) control.RequestStatus {
	e.t.Helper()
	var st control.RequestStatus
	require.Eventually(e.t, func() bool {
		st = control.RequestStatus{}
		resp := e.do("GET", "/v1/requests/"+id, "mgr1", nil, &st)
		if resp.StatusCode != http.StatusOK {
			e.t.Logf("GET request %s: %d %s", id, resp.StatusCode, body(resp))
		}
		return resp.StatusCode == http.StatusOK && done(st)
	}, 60*time.Second, 50*time.Millisecond, "request %s", id)
	return st
}

func (e *env) credential(id string) control.CredentialView {
	e.t.Helper()
	var v control.CredentialView
	resp := e.do("GET", "/v1/credentials/"+id, "analyst", nil, &v)
	require.Equal(e.t, http.StatusOK, resp.StatusCode, body(resp))
	return v
}

func (e *env) waitState(id, state string) control.CredentialView {
	e.t.Helper()
	var v control.CredentialView
	require.Eventually(e.t, func() bool {
		v = control.CredentialView{}
		resp := e.do("GET", "/v1/credentials/"+id, "analyst", nil, &v)
		return resp.StatusCode == http.StatusOK && v.Credential.State == state
	}, 30*time.Second, 20*time.Millisecond, "credential %s never reached %s", id, state)
	return v
}

// histogramCount returns the sample count of a histogram (all label sets).
func (e *env) histogramCount(name string) uint64 {
	mfs, err := e.metrics.Gather()
	require.NoError(e.t, err)
	var n uint64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			n += m.GetHistogram().GetSampleCount()
		}
	}
	return n
}

// testGateway stands in for lock gateways: it consumes lock.commands and
// acknowledges each on lock.acks after a delay; an offline lock holds its
// commands until it reconnects.
type testGateway struct {
	bus   bus.Config
	delay time.Duration

	mu       sync.Mutex
	offline  map[string]bool
	held     []gateway.Command
	received []gateway.Command
	writer   *kafka.Writer
}

func startGateway(t testing.TB, bc bus.Config, delay time.Duration, offline ...string) *testGateway {
	g := &testGateway{bus: bc, delay: delay, offline: map[string]bool{}, writer: bus.NewWriter(bc, bus.TopicLockAcks)}
	for _, l := range offline {
		g.offline[l] = true
	}
	r := bus.NewGroupReader(bc, bus.TopicLockCommands, "test-gateway")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 1000, MaxWait: 2 * time.Millisecond, Name: "test-gateway"},
			func(ctx context.Context, batch []kafka.Message) error {
				for _, m := range batch {
					var c gateway.Command
					if err := json.Unmarshal(m.Value, &c); err != nil {
						return err
					}
					g.receive(ctx, c)
				}
				return nil
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("test gateway: %v", err)
		}
		r.Close()
		g.writer.Close()
	})
	return g
}

func (g *testGateway) receive(ctx context.Context, c gateway.Command) {
	g.mu.Lock()
	g.received = append(g.received, c)
	if g.offline[c.LockID] {
		g.held = append(g.held, c)
		g.mu.Unlock()
		return
	}
	g.mu.Unlock()
	g.ack(c, time.Now().UnixMilli())
}

func (g *testGateway) ack(c gateway.Command, receivedMs int64) {
	time.AfterFunc(g.delay, func() {
		a := gateway.Ack{CommandID: c.CommandID, RevocationID: c.RevocationID, Type: c.Type, Vendor: c.Vendor,
			LockID: c.LockID, CredentialID: c.CredentialID, Status: gateway.AckApplied,
			ReceivedMs: receivedMs, AppliedMs: time.Now().UnixMilli()}
		v, _ := json.Marshal(a)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = g.writer.WriteMessages(ctx, kafka.Message{Key: []byte(c.LockID), Value: v})
	})
}

// reconnect brings a lock back: it applies the commands it missed.
func (g *testGateway) reconnect(lockID string) {
	g.mu.Lock()
	delete(g.offline, lockID)
	var keep, send []gateway.Command
	for _, c := range g.held {
		if c.LockID == lockID {
			send = append(send, c)
		} else {
			keep = append(keep, c)
		}
	}
	g.held = keep
	g.mu.Unlock()
	now := time.Now().UnixMilli()
	for _, c := range send {
		g.ack(c, now)
	}
}

// commands returns the received commands of a type for a credential.
func (g *testGateway) commands(typ, credentialID string) []gateway.Command {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []gateway.Command
	for _, c := range g.received {
		if c.Type == typ && (credentialID == "" || c.CredentialID == credentialID) {
			out = append(out, c)
		}
	}
	return out
}

func lockIDs(cmds []gateway.Command) []string {
	var out []string
	for _, c := range cmds {
		out = append(out, c.LockID)
	}
	return out
}

func locksOf(r *control.Record) []string {
	var out []string
	for _, l := range r.Locks {
		out = append(out, l.LockID)
	}
	return out
}

func (e *env) resident(subject string) control.CredentialRequest {
	dev, att := e.attested("dev-" + subject)
	return control.CredentialRequest{SubjectID: subject, Role: "resident", SiteID: "site-a",
		DoorGroups: []string{"unit:B-204"}, DeviceID: dev, Attestation: att,
		Refs: []control.RefInput{{Vendor: "matter", UserRef: fmt.Sprintf("user-%s", subject)}}, Reason: "move-in"}
}

func insertAccess(conn driver.Conn, row []any) error {
	row[0] = uuid.MustParse(row[0].(string))
	return chstorage.InsertRows(context.Background(), conn, "access_events", pipeline.AccessColumns, row)
}

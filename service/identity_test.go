package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/identity/feed"
	"github.com/keyfleet/keyfleet/identity/scim"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

const identityTestKey = "identity-test-pseudonym-key-0123"

// live is a running `keyfleet serve` for identity tests: on the real Kafka
// broker when one is configured (the embedded one otherwise) and a test
// ClickHouse database, with a small estate (one site, four locks).
type live struct {
	t     testing.TB
	base  string
	admin string
	scim  string
	bus   bus.Config
	conn  driver.Conn
	// att is the test CA serve trusts: activate mints a phone's evidence.
	att *testAttestation
}

func serveLive(t testing.TB, args ...string) *live {
	t.Helper()
	return serveLiveWith(t, registry.File{Locks: []registry.Lock{
		{Vendor: "matter", LockID: "m-lobby", Groups: []string{"entrance"}, LockInfo: registry.LockInfo{SiteID: "site-a", DoorID: "lobby"}},
		{Vendor: "schlage", LockID: "s-garage", Groups: []string{"garage"}, LockInfo: registry.LockInfo{SiteID: "site-a", DoorID: "garage"}},
		{Vendor: "nuki", LockID: "n-gym", Groups: []string{"amenity"}, LockInfo: registry.LockInfo{SiteID: "site-a", DoorID: "gym"}},
		{Vendor: "seam", LockID: "se-service", Groups: []string{"service"}, LockInfo: registry.LockInfo{SiteID: "site-a", DoorID: "service"}},
	}}, args...)
}

// serveLiveWith starts serve on an estate (a lock registry).
func serveLiveWith(t testing.TB, reg registry.File, args ...string) *live {
	t.Helper()
	conn, ch := testenv.ClickHouse(t)
	dir := t.TempDir()
	data, err := json.Marshal(reg)
	require.NoError(t, err)
	regPath := filepath.Join(dir, "registry.json")
	require.NoError(t, os.WriteFile(regPath, data, 0o600))

	base := []string{"--data-dir", dir, "--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database,
		"--access-log=false", "--bootstrap-token", "test-admin-token-0123456789abcdefghij", "--registry", regPath,
		"--pseudonym-key", identityTestKey, "--detect=false", "--audit-key", "identity-test-audit-key-0123456789abcdef"}
	att := newTestAttestation(t)
	base = append(base, att.Args...)
	if testenv.RealKafka() {
		bc := testenv.Kafka(t, 4)
		base = append(base, "--kafka-brokers", strings.Join(bc.Brokers, ","), "--topic-prefix", bc.TopicPrefix)
	} else {
		base = append(base, "--embedded-kafka-addr", "127.0.0.1:0")
	}
	var cfg Config
	fs := flagenv.New("serve", "")
	fs.SetLookup(func(string) (string, bool) { return "", false })
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(append(base, args...)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: testenv.Logger(t), Stdout: io.Discard, Listener: ln,
			Ready: func(_, kafkaAddr string) { ready <- kafkaAddr }})
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
	l := &live{t: t, base: "http://" + ln.Addr().String(), admin: "test-admin-token-0123456789abcdefghij", conn: conn, att: att}
	select {
	case addr := <-ready:
		l.bus = cfg.Bus([]string{addr})
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not start")
	}
	var tok struct{ Secret string }
	l.mustJSON("POST", "/v1/tokens", l.admin, map[string]string{"name": "idp", "role": "scim"}, 201, &tok)
	l.scim = tok.Secret
	require.Eventually(t, func() bool {
		code, _ := l.call("GET", "/v1/templates", l.admin, nil)
		return code == 200
	}, 60*time.Second, 100*time.Millisecond, "control plane ready")
	return l
}

func (l *live) call(method, path, token string, body any) (int, []byte) {
	l.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(l.t, err)
		rd = strings.NewReader(string(b))
	}
	req, err := http.NewRequest(method, l.base+path, rd)
	require.NoError(l.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
		if strings.HasPrefix(path, scim.Prefix) {
			req.Header.Set("Content-Type", scim.ContentType)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(l.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(l.t, err)
	return resp.StatusCode, b
}

func (l *live) mustJSON(method, path, token string, body any, status int, out any) {
	l.t.Helper()
	code, b := l.call(method, path, token, body)
	require.Equal(l.t, status, code, "%s %s: %s", method, path, b)
	if out != nil {
		require.NoError(l.t, json.Unmarshal(b, out), string(b))
	}
}

// scimID creates a SCIM resource and returns its id.
func (l *live) scimCreate(typ string, doc map[string]any) string {
	l.t.Helper()
	var out struct{ ID string }
	l.mustJSON("POST", scim.Prefix+"/"+typ, l.scim, doc, 201, &out)
	return out.ID
}

func (l *live) scimPatch(typ, id string, ops ...map[string]any) {
	l.t.Helper()
	l.mustJSON("PATCH", scim.Prefix+"/"+typ+"/"+id, l.scim,
		map[string]any{"schemas": []string{"urn:ietf:params:scim:api:messages:2.0:PatchOp"}, "Operations": ops}, 200, nil)
}

// activate activates a pending credential with its phone's attestation:
// only then do its locks hold it.
func (l *live) activate(credentialID, deviceID string) {
	l.t.Helper()
	ev := l.att.evidence(l.t, deviceID, func(r control.ChallengeRequest) control.ChallengeResponse {
		var ch control.ChallengeResponse
		r.CredentialID = credentialID
		l.mustJSON("POST", "/v1/attestation/challenge", l.admin, r, 200, &ch)
		return ch
	})
	code, b := l.call("POST", "/v1/credentials/"+credentialID+":activate", l.admin,
		map[string]any{"device_id": deviceID, "attestation": ev})
	require.Contains(l.t, []int{200, 202}, code, "activate %s: %s", credentialID, b)
}

func (l *live) credentials(subject string) []*control.Record {
	l.t.Helper()
	var out struct{ Credentials []*control.Record }
	l.mustJSON("GET", "/v1/credentials?limit=1000&subject_id="+subject, l.admin, nil, 200, &out)
	return out.Credentials
}

// live returns a subject's live credentials by role, and the locks they are on.
func liveOf(recs []*control.Record) (roles []string, locks []string) {
	for _, r := range recs {
		switch r.State {
		case "revoked", "archived":
			continue
		}
		roles = append(roles, r.Role+"/"+r.State)
		for _, l := range r.Locks {
			if !slices.Contains(locks, l.LockID) {
				locks = append(locks, l.LockID)
			}
		}
	}
	sort.Strings(roles)
	sort.Strings(locks)
	return roles, locks
}

// lockGateway acknowledges every lock command (applied), as lock gateways
// do, and remembers which credentials each lock holds.
type lockGateway struct {
	mu    sync.Mutex
	holds map[string]map[string]bool // lock → credential ids
}

func startLockGateway(t *testing.T, bc bus.Config) *lockGateway {
	g := &lockGateway{holds: map[string]map[string]bool{}}
	w := bus.NewWriter(bc, bus.TopicLockAcks)
	r := bus.NewGroupReader(bc, bus.TopicLockCommands, "identity-test-gateway")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxBatch: 1000, MaxWait: 2 * time.Millisecond, Name: "test-gateway"},
			func(ctx context.Context, batch []kafka.Message) error {
				var acks []kafka.Message
				for _, m := range batch {
					var c gateway.Command
					if err := json.Unmarshal(m.Value, &c); err != nil {
						return err
					}
					received := time.Now().UnixMilli()
					g.mu.Lock()
					if g.holds[c.LockID] == nil {
						g.holds[c.LockID] = map[string]bool{}
					}
					if c.Type == gateway.CommandRevoke {
						delete(g.holds[c.LockID], c.CredentialID)
					} else {
						g.holds[c.LockID][c.CredentialID] = true
					}
					g.mu.Unlock()
					a := gateway.Ack{CommandID: c.CommandID, RevocationID: c.RevocationID, Type: c.Type, Vendor: c.Vendor,
						LockID: c.LockID, CredentialID: c.CredentialID, Status: gateway.AckApplied,
						ReceivedMs: received, AppliedMs: time.Now().UnixMilli() + 5}
					v, _ := json.Marshal(a)
					acks = append(acks, kafka.Message{Key: []byte(c.LockID), Value: v})
				}
				return w.WriteMessages(ctx, acks...)
			})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("test gateway: %v", err)
		}
		r.Close()
		w.Close()
	})
	return g
}

// locksHolding returns the locks that hold any of the credentials.
func (g *lockGateway) locksHolding(recs []*control.Record) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for lock, creds := range g.holds {
		for _, r := range recs {
			if creds[r.CredentialID] && !slices.Contains(out, lock) {
				out = append(out, lock)
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestIdentityJoinerMoverLeaver drives one person through SCIM on a live
// serve (ClickHouse store, Kafka, control plane, lock gateways acking):
// joiner (a resident credential, auto-approved, on no lock until its phone
// activates it, then granted on the resident doors), mover (to maintenance:
// the resident credential is revoked on its locks, the maintenance one waits
// for its approval rule and its activation, then is granted on the
// maintenance doors), leaver (deactivated: every credential revoked,
// every lock confirms), and the leaver latency in the KPIs and metrics.
func TestIdentityJoinerMoverLeaver(t *testing.T) {
	l := serveLive(t)
	gw := startLockGateway(t, l.bus)
	residents := l.scimCreate("Groups", map[string]any{"displayName": "Resident"})
	maintenance := l.scimCreate("Groups", map[string]any{"displayName": "maintenance"})
	access := "urn:keyfleet:params:scim:schemas:extension:access:2.0:User"
	pat := l.scimCreate("Users", map[string]any{
		"schemas":  []string{"urn:ietf:params:scim:schemas:core:2.0:User", access},
		"userName": "pat.doe@example.com", "externalId": "emp-0042",
		"name":   map[string]any{"givenName": "Pat", "familyName": "Doe"},
		"emails": []any{map[string]any{"value": "pat.doe@example.com", "primary": true}},
		access:   map[string]any{"site": "site-a"},
	})
	subject := identity.SubjectID([]byte(identityTestKey), "emp-0042")

	// Joiner: in the residents' group → a resident credential.
	l.scimPatch("Groups", residents, map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": pat}}})
	var recs []*control.Record
	require.Eventually(t, func() bool {
		recs = l.credentials(subject)
		roles, locks := liveOf(recs)
		return slices.Equal(roles, []string{"resident/pending_activation"}) &&
			slices.Equal(locks, []string{"m-lobby", "n-gym", "s-garage"})
	}, 60*time.Second, 100*time.Millisecond, "joiner's resident credential issued for its doors: %+v", recs)
	assert.Empty(t, gw.locksHolding(recs), "a pending_activation key is on no lock")
	// The joiner's phone proves possession: only now do the locks hold it.
	l.activate(recs[0].CredentialID, "phone-pat")
	require.Eventually(t, func() bool {
		recs = l.credentials(subject)
		roles, locks := liveOf(recs)
		return slices.Equal(roles, []string{"resident/active"}) && slices.Equal(gw.locksHolding(recs), locks)
	}, 60*time.Second, 100*time.Millisecond, "joiner's resident credential granted on its doors once activated: %+v", recs)
	var view control.CredentialView
	l.mustJSON("GET", "/v1/credentials/"+recs[0].CredentialID, l.admin, nil, 200, &view)
	assert.Equal(t, "identity-sync", view.Summary.IssuedBy, "requested through control's API as identity sync")
	assert.Equal(t, control.ApprovalAuto, view.Summary.ApprovalRule)

	// Mover: residents → maintenance. The maintenance template needs one
	// approval: requested until a manager approves, then granted.
	l.scimPatch("Groups", residents, map[string]any{"op": "remove", "path": fmt.Sprintf(`members[value eq "%s"]`, pat)})
	l.scimPatch("Groups", maintenance, map[string]any{"op": "add", "path": "members", "value": []any{map[string]any{"value": pat}}})
	var pending *control.Record
	require.Eventually(t, func() bool {
		recs = l.credentials(subject)
		roles, _ := liveOf(recs)
		pending = nil
		for _, r := range recs {
			if r.Role == "maintenance" {
				pending = r
			}
		}
		return slices.Equal(roles, []string{"maintenance/requested"}) && len(gw.locksHolding(recs)) == 0
	}, 60*time.Second, 100*time.Millisecond, "mover: resident revoked on its locks, maintenance awaiting approval: %+v", recs)
	var op control.OpResponse
	l.mustJSON("POST", "/v1/credentials/"+pending.CredentialID+":approve", l.admin, map[string]string{"reason": "moved to facilities"}, 200, &op)
	require.Eventually(t, func() bool {
		recs = l.credentials(subject)
		roles, locks := liveOf(recs)
		return slices.Equal(roles, []string{"maintenance/pending_activation"}) &&
			slices.Equal(locks, []string{"m-lobby", "s-garage", "se-service"})
	}, 60*time.Second, 100*time.Millisecond, "mover's door set: entrance, garage, service: %+v", recs)
	l.activate(pending.CredentialID, "phone-pat")
	require.Eventually(t, func() bool {
		recs = l.credentials(subject)
		roles, locks := liveOf(recs)
		return slices.Equal(roles, []string{"maintenance/active"}) && slices.Equal(gw.locksHolding(recs), locks)
	}, 60*time.Second, 100*time.Millisecond, "mover's maintenance credential granted once activated: %+v", recs)

	// Leaver: deactivated → every credential revoked, every lock confirms.
	l.scimPatch("Users", pat, map[string]any{"op": "replace", "path": "active", "value": false})
	var rid string
	require.Eventually(t, func() bool {
		recs = l.credentials(subject)
		roles, _ := liveOf(recs)
		rid = ""
		for _, r := range recs {
			if r.Role == "maintenance" {
				rid = r.RevocationID
			}
		}
		return len(roles) == 0 && rid != ""
	}, 60*time.Second, 100*time.Millisecond, "leaver's credentials revoked: %+v", recs)
	var rv control.Revocation
	require.Eventually(t, func() bool {
		// The revocation record lands a moment after the credentials read
		// revoked: 404 until then.
		code, b := l.call("GET", "/v1/revocations/"+rid, l.admin, nil)
		if code == 404 {
			return false
		}
		require.Equal(t, 200, code, "GET /v1/revocations/%s: %s", rid, b)
		require.NoError(t, json.Unmarshal(b, &rv), string(b))
		return rv.Status == "confirmed"
	}, 60*time.Second, 100*time.Millisecond, "leaver revocation confirmed by every lock: %+v", rv)
	assert.Equal(t, "subject", rv.Scope)
	assert.Empty(t, rv.PendingLocks)
	assert.Len(t, rv.ConfirmedLocks, 3)
	assert.Empty(t, gw.locksHolding(recs), "no lock holds any of the leaver's credentials")

	var k struct {
		Credentials struct {
			LeaverLatency identity.LeaverLatency `json:"leaver_latency"`
		} `json:"credentials"`
	}
	require.Eventually(t, func() bool {
		from := time.Now().Add(-time.Hour).UnixMilli()
		l.mustJSON("GET", fmt.Sprintf("/v1/kpis?from=%d", from), l.admin, nil, 200, &k)
		return k.Credentials.LeaverLatency.Confirmed == 1
	}, 30*time.Second, 200*time.Millisecond, "leaver latency KPI: %+v", k)
	assert.Equal(t, 1, k.Credentials.LeaverLatency.Count)
	assert.Positive(t, k.Credentials.LeaverLatency.P99)
	require.Eventually(t, func() bool {
		_, m := l.call("GET", "/metrics", l.admin, nil)
		return strings.Contains(string(m), "keyfleet_identity_leaver_latency_seconds_count 1")
	}, 30*time.Second, 200*time.Millisecond, "leaver latency histogram observed")
}

// TestIdentityVerifiedIssuance: with people in the identity source, a
// credential goes only to a known, active subject, or to anyone under a
// visitor role; the refusal says why.
func TestIdentityVerifiedIssuance(t *testing.T) {
	l := serveLive(t)
	// Before anyone is in the identity source (auto), nothing is checked.
	var pr control.ProvisionResponse
	l.mustJSON("POST", "/v1/credentials", l.admin, control.CredentialRequest{SubjectID: "subj-early", Role: "resident", SiteID: "site-a"}, 202, &pr)

	access := "urn:keyfleet:params:scim:schemas:extension:access:2.0:User"
	for _, u := range []struct {
		name, subject string
		active        bool
	}{{"kim", "subj-kim", true}, {"lee", "subj-lee", false}} {
		l.scimCreate("Users", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:User", access},
			"userName": u.name, "active": u.active, access: map[string]any{"subject_id": u.subject, "site": "site-a"}})
	}
	type problem struct {
		Code, Detail, Field string
	}
	var p problem
	require.Eventually(t, func() bool { // the count of people is re-read every 2 s while empty
		code, b := l.call("POST", "/v1/credentials", l.admin, control.CredentialRequest{SubjectID: "subj-nobody", Role: "resident", SiteID: "site-a"})
		_ = json.Unmarshal(b, &p)
		return code == 422
	}, 30*time.Second, 200*time.Millisecond, "unknown subject refused")
	assert.Equal(t, "subject_not_verified", p.Code)
	assert.Equal(t, "subject_id", p.Field)
	assert.Contains(t, p.Detail, "subject subj-nobody is not in the identity source")

	code, b := l.call("POST", "/v1/credentials", l.admin, control.CredentialRequest{SubjectID: "subj-lee", Role: "staff", SiteID: "site-a"})
	require.Equal(t, 422, code, string(b))
	require.NoError(t, json.Unmarshal(b, &p))
	assert.Contains(t, p.Detail, "subject subj-lee left: it is deactivated")

	l.mustJSON("POST", "/v1/credentials", l.admin, control.CredentialRequest{SubjectID: "subj-kim", Role: "staff", SiteID: "site-a"}, 202, &pr)
	l.mustJSON("POST", "/v1/credentials", l.admin, control.CredentialRequest{SubjectID: "subj-visitor", Role: "guest", SiteID: "site-a"}, 202, &pr)

	// Bulk: each refused item says why; the others go ahead.
	l.mustJSON("POST", "/v1/credentials:bulk", l.admin, []control.CredentialRequest{
		{SubjectID: "subj-kim", Role: "resident", SiteID: "site-a"},
		{SubjectID: "subj-nobody", Role: "resident", SiteID: "site-a"},
		{SubjectID: "subj-nobody", Role: "guest", SiteID: "site-a"},
	}, 202, &pr)
	assert.Equal(t, 2, pr.Accepted)
	require.Len(t, pr.Failures, 1)
	assert.Equal(t, 1, *pr.Failures[0].Index)
	assert.Equal(t, "subject_id", pr.Failures[0].Field)
	assert.Contains(t, pr.Failures[0].Reason, "not in the identity source")
}

// TestSCIMConformanceLive runs scim2-tester (PyPI, pinned in
// scripts/scim-check.sh) against /scim/v2 of a live serve: the ClickHouse
// store, writes decided by the identity owner through Kafka, with a token
// of role scim. Every check must pass.
func TestSCIMConformanceLive(t *testing.T) {
	if testing.Short() {
		t.Skip("starts serve and runs scim2-tester")
	}
	if _, err := exec.LookPath("python3"); err != nil {
		if testenv.Required() {
			t.Fatal("python3 is required for scim2-tester")
		}
		t.Skip("python3 is not installed")
	}
	l := serveLive(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	script, err := filepath.Abs("../scripts/scim-check.sh")
	require.NoError(t, err)
	cmd := exec.CommandContext(ctx, "bash", script, l.base+scim.Prefix, l.scim)
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	t.Logf("scim-check output:\n%s", out)
	require.NoError(t, err, "scim2-tester reported failing checks (output above)")
	assert.Contains(t, string(out), "scim2-tester: ")
}

// TestIdentityImport: the HR feed through the API — a dry run plans, the
// import creates people whose groups map to roles (joiners get their
// credentials), a full import without someone makes them a leaver.
func TestIdentityImport(t *testing.T) {
	l := serveLive(t)
	post := func(query, csv string) feed.Plan {
		t.Helper()
		req, err := http.NewRequest("POST", l.base+feed.PathImport+query, strings.NewReader(csv))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+l.scim)
		req.Header.Set("Content-Type", "text/csv")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, 200, resp.StatusCode, string(b))
		var p feed.Plan
		require.NoError(t, json.Unmarshal(b, &p))
		return p
	}
	csv := "external_id,user_name,given_name,family_name,email,site,groups,subject_id\n" +
		"hr-1,ada@example.com,Ada,Byron,ada@example.com,site-a,resident,subj-ada\n" +
		"hr-2,bo@example.com,Bo,Chen,,site-a,guest,\n"
	p := post("?dry_run=true", csv)
	assert.True(t, p.DryRun)
	assert.False(t, p.Applied)
	assert.Equal(t, map[string]int{"joined": 2}, p.Counts)
	var st identity.Status
	l.mustJSON("GET", "/v1/identity/subjects/subj-ada", l.admin, nil, 200, &st)
	assert.False(t, st.Known, "a dry run writes nothing")

	p = post("", csv)
	require.True(t, p.Applied)
	assert.Zero(t, p.Failed, "%+v", p)
	bo := identity.SubjectID([]byte(identityTestKey), "hr-2")
	require.Eventually(t, func() bool {
		ra, _ := liveOf(l.credentials("subj-ada"))
		rb, _ := liveOf(l.credentials(bo))
		return slices.Equal(ra, []string{"resident/pending_activation"}) && slices.Equal(rb, []string{"guest/pending_activation"})
	}, 60*time.Second, 100*time.Millisecond, "joiners from the feed got their credentials")
	l.mustJSON("GET", "/v1/identity/subjects/subj-ada", l.admin, nil, 200, &st)
	assert.True(t, st.Entitled)
	assert.Equal(t, "site-a", st.Site)
	require.Len(t, st.Groups, 1)
	assert.Equal(t, "resident", st.Groups[0].DisplayName)

	// The next full file no longer lists Ada: she is deactivated, a leaver.
	p = post("", "external_id,user_name,given_name,family_name,site,groups\nhr-2,bo@example.com,Bo,Chen,site-a,guest\n")
	assert.Equal(t, map[string]int{"left": 1, "none": 1}, p.Counts)
	require.Eventually(t, func() bool {
		ra, _ := liveOf(l.credentials("subj-ada"))
		return len(ra) == 0
	}, 60*time.Second, 100*time.Millisecond, "the feed's leaver has no live credential")
	l.mustJSON("GET", "/v1/identity/subjects/subj-ada", l.admin, nil, 200, &st)
	assert.Equal(t, identity.Status{SubjectID: "subj-ada", Known: true, Site: "site-a", Reason: "deactivated",
		Groups: st.Groups}, st)
}

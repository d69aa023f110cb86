package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/estate/migrate"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

const estateToken = "estate-admin-token-0123456789-abcdef"

// estateServe is `keyfleet serve` in-process on the real Kafka broker and
// ClickHouse, with a registry file.
type estateServe struct {
	t    *testing.T
	base string
	bus  bus.Config
	conn driver.Conn
	att  *testAttestation // the test CA serve trusts for App Attest
}

func startEstateServe(t *testing.T, file registry.File, extraArgs ...string) *estateServe {
	t.Helper()
	bc := testenv.RequireRealKafka(t, 2)
	conn, chCfg := testenv.ClickHouse(t)
	regPath := filepath.Join(t.TempDir(), "registry.json")
	data, err := json.Marshal(file)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(regPath, data, 0o644))
	att := newTestAttestation(t)
	var cfg Config
	fs := flagenv.New("serve", "")
	fs.SetLookup(func(string) (string, bool) { return "", false })
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(append([]string{
		"--kafka-brokers", strings.Join(bc.Brokers, ","), "--topic-prefix", bc.TopicPrefix, "--topic-partitions", "2",
		"--clickhouse-addr", chCfg.Addr, "--clickhouse-database", chCfg.Database, "--registry", regPath,
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--access-log=false", "--detect=false", "--report-schedule=false",
		"--clickhouse-flush-interval", "100ms", "--pseudonym-key", "estate-test-pseudonym-key",
		"--audit-key", "estate-test-audit-key-0123456789-abcdef",
	}, append(att.Args, extraArgs...)...)))
	cfg.BootstrapToken = estateToken
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ready := make(chan string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: testenv.Logger(t), Stdout: io.Discard, Listener: ln,
			Ready: func(h, _ string) { ready <- h }})
	}()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(90 * time.Second):
		t.Fatal("serve did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(90 * time.Second):
			t.Error("serve did not stop")
		}
	})
	s := &estateServe{t: t, base: "http://" + addr, bus: bc, conn: conn, att: att}
	// Ready once the registry and the control plane have caught up.
	require.Eventually(t, func() bool {
		return s.call("GET", "/v1/locks", "", "", nil) == http.StatusOK && s.call("GET", "/v1/templates", "", "", nil) == http.StatusOK
	}, 90*time.Second, 100*time.Millisecond)
	return s
}

// call sends a request with the admin token (or another) and decodes the
// answer into out.
func (s *estateServe) call(method, path, contentType, body string, out any, token ...string) int {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	require.NoError(s.t, err)
	tok := estateToken
	if len(token) > 0 {
		tok = token[0]
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	if out != nil {
		if b, ok := out.(*[]byte); ok {
			*b = data
		} else {
			require.NoError(s.t, json.Unmarshal(data, out), "%s %s: %s", method, path, data)
		}
	}
	return resp.StatusCode
}

// attestation is a phone's App Attest evidence for a challenge serve issued.
func (s *estateServe) attestation(deviceID string) *control.AttestationInput {
	return s.att.evidence(s.t, deviceID, func(r control.ChallengeRequest) control.ChallengeResponse {
		var ch control.ChallengeResponse
		require.Equal(s.t, http.StatusOK, s.json("POST", "/v1/attestation/challenge", r, &ch))
		return ch
	})
}

func (s *estateServe) json(method, path string, in, out any) int {
	s.t.Helper()
	body, err := json.Marshal(in)
	require.NoError(s.t, err)
	return s.call(method, path, "application/json", string(body), out)
}

// acker plays the lock gateways: every lock command is acknowledged as
// applied on lock.acks.
func acker(t *testing.T, bc bus.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	r := bus.NewGroupReader(bc, bus.TopicLockCommands, "estate-test-gateways")
	w := bus.NewWriter(bc, bus.TopicLockAcks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxWait: 10 * time.Millisecond}, func(ctx context.Context, batch []kafka.Message) error {
			var out []kafka.Message
			for _, m := range batch {
				var c gateway.Command
				if json.Unmarshal(m.Value, &c) != nil {
					continue
				}
				now := time.Now().UnixMilli()
				a := gateway.Ack{CommandID: c.CommandID, RevocationID: c.RevocationID, Type: c.Type, Vendor: c.Vendor, LockID: c.LockID,
					CredentialID: c.CredentialID, Status: gateway.AckApplied, ReceivedMs: now, AppliedMs: now}
				v, _ := json.Marshal(a)
				out = append(out, kafka.Message{Key: []byte(c.LockID), Value: v})
			}
			return w.WriteMessages(ctx, out...)
		})
	}()
	t.Cleanup(func() { cancel(); <-done; r.Close(); w.Close() })
}

func lockOf(vendor, id, site, door, model string, tier int, groups ...string) registry.Lock {
	return registry.Lock{Vendor: vendor, LockID: id, Groups: groups, Model: model, Tier: tier,
		LockInfo: registry.LockInfo{SiteID: site, DoorID: door}}
}

type problem struct {
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Extra  struct {
		Refusals []control.Refusal `json:"refusals"`
	} `json:"extra"`
}

// TestEstatePolicyAndRegistry: locks created and changed through the
// registry API are audited, kept in ClickHouse and seen at once by the
// control plane; a grant a lock cannot enforce is refused with a 422 naming
// the lock and the capability (single, bulk, template); once the door's
// tier no longer demands it, the grant carries only what the lock enforces
// and its record says where enforcement is weaker.
func TestEstatePolicyAndRegistry(t *testing.T) {
	s := startEstateServe(t, registry.File{Locks: []registry.Lock{
		lockOf("matter", "m-lobby", "s1", "lobby", "door-lock-aliro", 1, "entrance"),
		lockOf("nuki", "n-staff", "s1", "staff", "smart-lock-4-pro", 2, "service"),
	}})
	acker(t, s.bus)

	// Register a keypad lock on a restricted (tier-2) staff door.
	var created struct {
		Lock       registry.Record `json:"lock"`
		Assessment struct {
			Profile string       `json:"profile"`
			Gaps    []estate.Gap `json:"gaps"`
		} `json:"assessment"`
	}
	boiler := lockOf("seam", "k-boiler", "s1", "boiler", "generic-keypad-lock", 2, "service")
	require.Equal(t, http.StatusCreated, s.json("POST", "/v1/locks", map[string]any{"vendor": boiler.Vendor, "lock_id": boiler.LockID,
		"site_id": "s1", "door_id": "boiler", "groups": boiler.Groups, "model": boiler.Model, "tier": 2, "reason": "new boiler room lock"}, &created))
	assert.Equal(t, "seam/generic-keypad-lock", created.Assessment.Profile)
	assert.NotEmpty(t, created.Assessment.Gaps, "a keypad lock on tier 2 is a weak link")
	var p problem
	require.Equal(t, http.StatusConflict, s.json("POST", "/v1/locks", map[string]any{"vendor": "seam", "lock_id": "k-boiler",
		"site_id": "s1", "door_id": "boiler", "groups": []string{"service"}, "tier": 2}, &p))
	assert.Equal(t, "lock_exists", p.Code)
	require.Equal(t, http.StatusBadRequest, s.json("POST", "/v1/locks", map[string]any{"vendor": "seam", "lock_id": "k-x",
		"site_id": "s1", "door_id": "x", "tier": 7}, &p))
	assert.Contains(t, p.Detail, "tier 7")

	// A contractor's key has a weekly window and an end date: refused on the keypad lock.
	contractor := control.CredentialRequest{SubjectID: "contractor-1", Role: "contractor", SiteID: "s1"}
	require.Equal(t, http.StatusUnprocessableEntity, s.json("POST", "/v1/credentials", contractor, &p))
	assert.Equal(t, "capability_missing", p.Code)
	assert.Contains(t, p.Detail, "lock seam/k-boiler (door s1/boiler, tier 2) lacks schedules")
	assert.Contains(t, p.Detail, "no recorded exception covers it")
	var caps []string
	for _, r := range p.Extra.Refusals {
		assert.Equal(t, "k-boiler", r.LockID)
		caps = append(caps, r.Capability)
	}
	assert.Equal(t, []string{estate.CapSchedules, estate.CapExpiry}, caps)

	// In bulk only that item fails, naming the lock.
	var pr control.ProvisionResponse
	require.Equal(t, http.StatusAccepted, s.json("POST", "/v1/credentials:bulk", []control.CredentialRequest{contractor,
		{SubjectID: "resident-1", Role: "resident", SiteID: "s1"}}, &pr))
	assert.Equal(t, 1, pr.Rejected)
	require.Len(t, pr.Failures, 1)
	assert.Contains(t, pr.Failures[0].Reason, "seam/k-boiler")
	// A template whose keys the keypad lock cannot hold is refused too.
	require.Equal(t, http.StatusUnprocessableEntity, s.json("PUT", "/v1/templates/cleaning", control.DefaultTemplates()["cleaning"], &p))
	assert.Contains(t, p.Detail, "seam/k-boiler")

	// The boiler room is re-classified as an amenity-grade door: granted, weaker.
	var upd struct {
		Lock registry.Record `json:"lock"`
	}
	boiler.Tier = 3
	require.Equal(t, http.StatusOK, s.json("PUT", "/v1/locks/seam/k-boiler", map[string]any{"site_id": "s1", "door_id": "boiler",
		"groups": boiler.Groups, "model": boiler.Model, "tier": 3, "reason": "re-classified"}, &upd))
	assert.Greater(t, upd.Lock.Version, created.Lock.Version)
	require.Equal(t, http.StatusAccepted, s.json("POST", "/v1/credentials", contractor, &pr))
	id := pr.CredentialIDs[0]
	mgr := s.token("manager")
	var view control.CredentialView
	require.Eventually(t, func() bool { return s.call("GET", "/v1/credentials/"+id, "", "", &view) == http.StatusOK },
		60*time.Second, 100*time.Millisecond)
	require.Equal(t, http.StatusOK, s.call("POST", "/v1/credentials/"+id+":approve", "application/json", `{}`, nil, mgr))
	require.Eventually(t, func() bool {
		return s.call("GET", "/v1/credentials/"+id, "", "", &view) == http.StatusOK && len(view.Credential.Locks) == 3
	}, 60*time.Second, 100*time.Millisecond)
	assert.Equal(t, []control.WeakerLock{{Vendor: "seam", LockID: "k-boiler", Schedule: estate.DetectOnly, Expiry: estate.ByRevocation,
		ExpiryLateS: 3600}}, view.Credential.Weaker, "the record says where enforcement is weaker")

	// Retire, list, history, export → import round trip.
	require.Equal(t, http.StatusOK, s.json("POST", "/v1/locks:retire", map[string]any{
		"locks": []map[string]string{{"vendor": "seam", "lock_id": "k-boiler"}}, "reason": "replaced"}, nil))
	var list struct {
		Total int               `json:"total"`
		Locks []registry.Record `json:"locks"`
	}
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/locks?vendor=seam", "", "", &list))
	assert.Zero(t, list.Total)
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/locks?vendor=seam&retired=true", "", "", &list))
	require.Equal(t, 1, list.Total)
	var one struct {
		History []registry.Record `json:"history"`
	}
	require.Eventually(t, func() bool {
		return s.call("GET", "/v1/locks/seam/k-boiler", "", "", &one) == http.StatusOK && len(one.History) == 3
	}, 30*time.Second, 100*time.Millisecond, "the history is in ClickHouse")
	assert.Equal(t, []string{registry.OpRetire, registry.OpUpdate, registry.OpCreate}, []string{one.History[0].Op, one.History[1].Op, one.History[2].Op})
	assert.Equal(t, "new boiler room lock", one.History[2].Reason)

	var csv []byte
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/locks:export?format=csv", "", "", &csv))
	assert.True(t, strings.HasPrefix(string(csv), "vendor,lock_id,"), "a header row")
	rows, err := registry.ParseCSV(csv)
	require.NoError(t, err)
	require.Len(t, rows, 2)
	edited := strings.Replace(string(csv), "smart-lock-4-pro", "smart-lock-3-pro", 1) +
		"legacy,P1/R2,s1,,gate,garage,osdp-panel,2.3,3,false,0\n"
	var res map[string]int
	require.Equal(t, http.StatusOK, s.call("POST", "/v1/locks:import", "text/csv", edited, &res))
	assert.Equal(t, map[string]int{"rows": 3, "created": 1, "updated": 1, "retired": 0, "unchanged": 1}, res)
	require.Equal(t, http.StatusBadRequest, s.call("POST", "/v1/locks:import", "text/csv", "vendor,lock_id,tier\nacme,a1,1\nnuki,n9,9\n", &p))
	assert.Contains(t, p.Detail, "2 row(s) refused")
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/locks/legacy/P1%2FR2", "", "", nil), "lock ids with slashes")

	// Every change is in the audit log.
	actions := s.auditActions()
	for _, want := range []string{"lock.create seam/k-boiler", "lock.update seam/k-boiler", "lock.retire seam/k-boiler",
		"lock.import lock_registry", "lock.export lock_registry"} {
		assert.Contains(t, actions, want)
	}
	// Reads for analysts; writes for admins only.
	analyst := s.token("analyst")
	assert.Equal(t, http.StatusOK, s.call("GET", "/v1/locks", "", "", nil, analyst))
	assert.Equal(t, http.StatusForbidden, s.call("POST", "/v1/locks:retire", "application/json", `{"locks":[]}`, nil, analyst))
	assert.Equal(t, http.StatusForbidden, s.call("POST", "/v1/locks:retire", "application/json", `{"locks":[]}`, nil, mgr))
}

// token creates an API token of a role and returns its secret.
func (s *estateServe) token(role string) string {
	s.t.Helper()
	var out struct {
		Secret string `json:"secret"`
	}
	require.Equal(s.t, http.StatusCreated, s.json("POST", "/v1/tokens", map[string]string{"name": role + "-" + testenv.ID(), "role": role}, &out))
	return out.Secret
}

// auditActions reads "action target" of every audit entry.
func (s *estateServe) auditActions() []string {
	s.t.Helper()
	rows, err := s.conn.Query(context.Background(), "SELECT action, target FROM audit_log ORDER BY ts_ms")
	require.NoError(s.t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var a, t string
		require.NoError(s.t, rows.Scan(&a, &t))
		out = append(out, a+" "+t)
	}
	require.NoError(s.t, rows.Err())
	return out
}

// TestEstateSimulatedWeakLinks: the simulated estate (its registry file)
// has exactly the planted weak links, ranked with the door traffic in
// ClickHouse, and the upgrade plan puts tier 1 first.
func TestEstateSimulatedWeakLinks(t *testing.T) {
	f, err := fleet.Generate(fleet.Options{Seed: 7, Sites: 3, DoorsPerSite: 80, Subjects: 300, SpareDevices: 1})
	require.NoError(t, err)
	planted := f.PlantedWeakLinks()
	require.NotEmpty(t, planted)
	s := startEstateServe(t, f.Registry())

	// Traffic: the last planted door is the busiest (uses rank within the
	// tier), a door that is no weak link has more still, and events of an
	// hour ago count while a denied health event does not.
	// The events go straight into access_events, the table the traffic is
	// read from (serve's one pass writes it from raw records; the simulated
	// locks' raw shapes are not what this test is about).
	now := time.Now()
	batch, err := s.conn.PrepareBatch(context.Background(), "INSERT INTO access_events (event_id, ts, ts_ms, received_ms, vendor, "+
		"site_id, door_id, lock_id, attested, action, outcome, method)")
	require.NoError(t, err)
	n := 0
	add := func(l fleet.PlantedWeakLink, count int, action, outcome string) {
		for i := range count {
			tsMs := now.Add(-time.Hour).UnixMilli() + int64(i)
			require.NoError(t, batch.Append(event.ID("estate-test", fmt.Sprintf("%s/%s/%d", l.LockID, action, i)),
				time.UnixMilli(tsMs), tsMs, now.UnixMilli(), l.Vendor, l.SiteID, l.DoorID, l.LockID, "unknown", action, outcome, "phone_ble"))
			n++
		}
	}
	busiest := planted[len(planted)-1]
	add(busiest, 40, "unlock", "granted")
	add(busiest, 5, "access_denied", "denied")
	add(busiest, 7, "battery_low", "info")
	require.NoError(t, batch.Send())
	var stored uint64
	require.NoError(t, s.conn.QueryRow(context.Background(), "SELECT count() FROM access_events").Scan(&stored))
	require.Equal(t, uint64(n), stored)

	var rep estate.WeakLinkReport
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/estate/weak-links?days=7&limit=1000", "", "", &rep))
	var got, want []string
	for _, l := range rep.WeakLinks {
		got = append(got, l.Lock.Vendor+"/"+l.Lock.LockID)
		assert.NotNil(t, l.Upgrade, "every planted weak link can be fixed from the matrix")
	}
	for _, p := range planted {
		want = append(want, p.Vendor+"/"+p.LockID)
	}
	sort.Strings(got)
	sort.Strings(want)
	assert.Equal(t, want, got, "the planted weak links and nothing else")
	assert.Equal(t, len(f.Locks), rep.Locks)
	assert.Zero(t, rep.Unclassified)
	require.NotEmpty(t, rep.WeakLinks)
	assert.Equal(t, busiest.LockID, rep.WeakLinks[0].Lock.LockID, "ranked by risk × traffic")
	assert.Equal(t, 45, rep.WeakLinks[0].Uses, "unlocks and denials count, health events do not")

	var plan estate.WeakLinkReport
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/estate/plan?days=7", "", "", &plan))
	assert.Equal(t, "plan", plan.Order)
	require.Len(t, plan.WeakLinks, len(rep.WeakLinks))
	for i := 1; i < len(plan.WeakLinks); i++ {
		assert.LessOrEqual(t, plan.WeakLinks[i-1].Lock.Tier, plan.WeakLinks[i].Lock.Tier, "critical doors first")
	}

	// The weekly report has the section.
	var md []byte
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/reports/weekly?format=md&week="+weekOf(now), "", "", &md))
	assert.Contains(t, string(md), "## Weak links and the upgrade plan")
	assert.Contains(t, string(md), busiest.LockID)
}

func weekOf(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%d-W%02d", y, w)
}

// TestEstateVendorMigration: a vendor exit moves every key on the old
// vendor's locks to the new locks through the control plane — grants on
// the new locks, revocations on the old ones, each confirmed by its lock —
// and the registry keeps the old locks retired; `keyfleet estate migrate`'s
// client follows it to the end.
func TestEstateVendorMigration(t *testing.T) {
	s := startEstateServe(t, registry.File{Locks: []registry.Lock{
		lockOf("seam", "k-lobby", "s1", "lobby", "generic-keypad-lock", 3, "entrance"),
		lockOf("seam", "k-gym", "s1", "gym", "generic-keypad-lock", 3, "amenity"),
		lockOf("matter", "m-garage", "s1", "garage", "door-lock", 2, "garage"),
		lockOf("seam", "k-other", "s2", "lobby", "generic-keypad-lock", 3, "entrance"),
	}})
	acker(t, s.bus)

	// Three residents with attested phones (active at once); the third is suspended.
	var ids []string
	for i := range 3 {
		var pr control.ProvisionResponse
		sub := fmt.Sprintf("resident-%d", i)
		require.Equal(t, http.StatusAccepted, s.json("POST", "/v1/credentials", control.CredentialRequest{SubjectID: sub, Role: "resident",
			SiteID: "s1", DeviceID: "phone-" + sub, Attestation: s.attestation("phone-" + sub)}, &pr))
		ids = append(ids, pr.CredentialIDs[0])
	}
	cred := func(id string) *control.Record {
		var v control.CredentialView
		if s.call("GET", "/v1/credentials/"+id, "", "", &v) != http.StatusOK {
			return nil
		}
		return v.Credential
	}
	for _, id := range ids {
		require.Eventually(t, func() bool { r := cred(id); return r != nil && r.State == "active" }, 60*time.Second, 100*time.Millisecond)
	}
	require.Equal(t, http.StatusOK, s.call("POST", "/v1/credentials/"+ids[2]+":suspend", "application/json", `{"reason":"lost phone"}`, nil))

	req := migrate.Request{FromVendor: "seam", ToVendor: "nuki", Reason: "seam contract ends", Locks: []migrate.LockMap{
		{From: "k-lobby", To: "n-lobby", Model: "smart-lock-4-pro", Firmware: "4.2.1"},
		{From: "k-gym", To: "n-gym", Model: "smart-lock-4-pro", Firmware: "4.2.1"},
	}}
	c := &migrate.Client{URL: s.base, Token: estateToken}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dry, err := c.Start(ctx, req, true)
	require.NoError(t, err)
	assert.Equal(t, 3, dry.Credentials)
	assert.Equal(t, 1, dry.Deferred)
	assert.Empty(t, dry.MigrationID, "a dry run changes nothing")
	var list struct{ Total int }
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/locks?vendor=nuki", "", "", &list))
	assert.Zero(t, list.Total)

	_, err = c.Start(ctx, migrate.Request{FromVendor: "seam", ToVendor: "nuki", Locks: []migrate.LockMap{{From: "k-none", To: "n-x"}}}, false)
	require.ErrorContains(t, err, "lock seam/k-none is not registered")

	started, err := c.Start(ctx, req, false)
	require.NoError(t, err)
	require.NotEmpty(t, started.MigrationID)
	st, err := c.Wait(ctx, started.MigrationID, 200*time.Millisecond, nil)
	require.NoError(t, err)
	require.Equal(t, migrate.StatusConfirmed, st.Status, "stragglers: %+v", st.Stragglers)
	assert.Equal(t, 2, st.Moved)
	assert.Equal(t, 2, st.Total)
	assert.Equal(t, 1, st.Deferred)
	require.Len(t, st.Locks, 2)
	for _, l := range st.Locks {
		assert.Equal(t, migrate.LockProgress{From: l.From, To: l.To, Credentials: 3, Granted: 2, Revoked: 2, Status: migrate.StatusConfirmed}, l)
	}

	// Every key moved: the active ones on the new locks, the suspended one on its record.
	for _, id := range ids {
		r := cred(id)
		require.NotNil(t, r)
		var locks []string
		for _, l := range r.Locks {
			locks = append(locks, l.String())
		}
		assert.ElementsMatch(t, []string{"matter/m-garage", "nuki/n-gym", "nuki/n-lobby"}, locks, id)
	}
	// The old locks are retired, the new ones took their doors; a new key lands on the new locks.
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/locks?vendor=seam", "", "", &list))
	assert.Equal(t, 1, list.Total, "only the other site's seam lock is left")
	var one struct {
		Lock registry.Record `json:"lock"`
	}
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/locks/nuki/n-lobby", "", "", &one))
	assert.Equal(t, "lobby", one.Lock.DoorID)
	assert.Equal(t, []string{"entrance"}, one.Lock.Groups)
	assert.Equal(t, 3, one.Lock.Tier)
	var pr control.ProvisionResponse
	require.Equal(t, http.StatusAccepted, s.json("POST", "/v1/credentials", control.CredentialRequest{SubjectID: "resident-new", Role: "resident",
		SiteID: "s1", DeviceID: "phone-new", Attestation: s.attestation("phone-new")}, &pr))
	require.Eventually(t, func() bool {
		r := cred(pr.CredentialIDs[0])
		return r != nil && r.State == "active" && len(r.Locks) == 3 && r.Locks[2].Vendor == "nuki"
	}, 60*time.Second, 100*time.Millisecond)

	assert.Contains(t, s.auditActions(), "estate.migrate "+started.MigrationID)
	var ml struct {
		Migrations []migrate.Head `json:"migrations"`
	}
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/estate/migrations", "", "", &ml))
	require.Len(t, ml.Migrations, 1)
	assert.Equal(t, "seam contract ends", ml.Migrations[0].Reason)
}

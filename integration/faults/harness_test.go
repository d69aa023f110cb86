package faults

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/respond"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

const token = "faults-admin-token-0123456789abcdef"

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// keyfleetBin builds cmd/keyfleet once for the whole suite (or uses
// $KEYFLEET_BIN).
func keyfleetBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYFLEET_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyfleet-faults-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "keyfleet")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/keyfleet/keyfleet/cmd/keyfleet").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

// repoRoot is the repository's root directory (for scripts/).
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

var quiet = slog.New(slog.DiscardHandler)

// serve is one `keyfleet serve` process, started again on the same
// addresses after a kill.
type serve struct {
	t    *testing.T
	args []string
	http string
	logs *testenv.SyncBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

func newServe(t *testing.T, args ...string) *serve {
	addr := testenv.FreeAddr(t)
	s := &serve{t: t, http: "http://" + addr, logs: &testenv.SyncBuffer{},
		args: append([]string{"serve", "--http-addr", addr, "--access-log=false", "--clickhouse-flush-interval", "200ms"}, args...)}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("keyfleet serve output:\n%s", s.logs.String())
		}
	})
	s.start()
	return s
}

// start starts the process and waits until /readyz answers 200.
func (s *serve) start() {
	s.t.Helper()
	cmd := exec.Command(keyfleetBin(s.t), s.args...)
	cmd.Env = append(os.Environ(), "KEYFLEET_BOOTSTRAP_TOKEN="+token, "KEYFLEET_PSEUDONYM_KEY=faults-test-pseudonym-key",
		"KEYFLEET_AUDIT_KEY=faults-test-audit-key-0123456789abcdef")
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	cmd.SysProcAttr = dieWithParent() // a test binary killed by its timeout runs no cleanup
	require.NoError(s.t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			s.t.Fatalf("keyfleet serve exited at start-up:\n%s", s.logs.String())
		default:
		}
		if code, _ := s.readyz(); code == http.StatusOK {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("keyfleet serve not ready within 90s:\n%s", s.logs.String())
}

func (s *serve) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// running reports whether the current process is still alive.
func (s *serve) running() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// kill stops the process with SIGKILL: no flush, no commit.
func (s *serve) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

var client = &http.Client{Timeout: 15 * time.Second}

// call sends a request with the admin token; status 0 means no answer.
func (s *serve) call(method, path string, body any) (int, []byte) {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(s.t, err)
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, s.http+path, r)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// readiness is the part of /readyz the suite reads.
type readiness struct {
	Status       string            `json:"status"`
	Checks       map[string]string `json:"checks"`
	Dependencies map[string]struct {
		Up    bool      `json:"up"`
		Since time.Time `json:"since"`
	} `json:"dependencies"`
	Degraded []struct {
		Loop string `json:"loop"`
	} `json:"degraded_loops"`
}

func (s *serve) readyz() (int, readiness) {
	var r readiness
	code, body := s.call(http.MethodGet, "/readyz", nil)
	_ = json.Unmarshal(body, &r)
	return code, r
}

// scenario is one serve under a known workload.
type scenario struct {
	t     *testing.T
	name  string
	conn  driver.Conn // the scenario's database, directly
	bus   bus.Config  // serve's topics as the test reaches them
	serve *serve
	locks []string
	ca    *attesttest.CA // mints the phones' App Attest evidence; serve trusts its roots

	mu       sync.Mutex
	seq      int64
	base     int64
	sent     map[int64]bool // ts_ms of every event sent
	acked    map[int64]bool // ... and of those ingest acknowledged (202)
	subjects []string
	revoked  map[string]string // subject → revocation id, acknowledged
	samples  []sample          // /readyz while the workload ran
	over     time.Time         // when the fault ended (zero: no fault to recover from)

	gw   *gatewayStats
	stop context.CancelFunc
	wg   sync.WaitGroup
}

// gatewayStats counts what the simulated gateway did.
type gatewayStats struct {
	mu             sync.Mutex
	commands, acks int
	lastErr        error
}

func (g *gatewayStats) String() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return fmt.Sprintf("%d commands, %d acks, last error %v", g.commands, g.acks, g.lastErr)
}

type sample struct {
	at   time.Time
	code int
	r    readiness
}

// registryFile writes the lock registry serve starts with: matter locks in
// two door groups, each its own door.
func registryFile(t *testing.T) (string, []string) {
	var f registry.File
	var locks []string
	for i := range 6 {
		id := fmt.Sprintf("0xF0%02X", i+1)
		group := "entrance"
		if i%2 == 1 {
			group = "garage"
		}
		locks = append(locks, id)
		f.Locks = append(f.Locks, registry.Lock{Vendor: "matter", LockID: id, Groups: []string{group},
			LockInfo: registry.LockInfo{SiteID: "site-f", DoorID: "door-" + id}})
	}
	data, err := json.Marshal(f)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "registry.json")
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path, locks
}

// newScenario starts serve with args (plus the registry) and the simulated
// lock gateway, and issues the credentials the scenario revokes later.
func newScenario(t *testing.T, conn driver.Conn, bc bus.Config, args ...string) *scenario {
	reg, locks := registryFile(t)
	s := &scenario{t: t, name: t.Name(), conn: conn, bus: bc, locks: locks,
		base: time.Now().Add(-24 * time.Hour).UnixMilli(), sent: map[int64]bool{}, acked: map[int64]bool{}, revoked: map[string]string{}}
	// Credentials are active (on the locks) only with attestation serve
	// verifies: it trusts a test CA that the scenario's phones attest with.
	caDir := t.TempDir()
	ca, err := attesttest.LoadOrNew(caDir, time.Now())
	require.NoError(t, err)
	s.ca = ca
	s.serve = newServe(t, append(args, "--registry", reg, "--attest-apple-roots", filepath.Join(caDir, attesttest.FileAppleRoots),
		"--attest-apple-app-ids", attesttest.AppID)...)
	// The gateway outlives the workload: it confirms the last revocations
	// while verify waits for them.
	ctx, cancel := context.WithCancel(context.Background())
	s.gw = &gatewayStats{}
	var gw sync.WaitGroup
	gw.Add(1)
	go func() { defer gw.Done(); runGateway(ctx, bc, s.gw) }()
	t.Cleanup(func() { cancel(); gw.Wait() })
	s.stop = func() {}
	t.Cleanup(s.finish)
	s.issue(4)
	return s
}

// issue requests n credentials (one subject each) and waits until they are issued.
func (s *scenario) issue(n int) {
	t := s.t
	reqs := make([]control.CredentialRequest, n)
	for i := range reqs {
		subject := fmt.Sprintf("faults-%d", i)
		s.subjects = append(s.subjects, subject)
		code, body := s.serve.call(http.MethodPost, "/v1/attestation/challenge", control.ChallengeRequest{DeviceID: "dev-" + subject})
		require.Equal(t, http.StatusOK, code, string(body))
		var ch control.ChallengeResponse
		require.NoError(t, json.Unmarshal(body, &ch))
		challenge, err := base64.StdEncoding.DecodeString(ch.Challenge)
		require.NoError(t, err)
		evidence, err := s.ca.At(time.Now()).Mint(attest.FormatAppleAppAttest, attesttest.Options{Challenge: challenge})
		require.NoError(t, err)
		reqs[i] = control.CredentialRequest{SubjectID: subject, Role: "resident", DoorGroups: []string{"entrance", "garage"},
			DeviceID: "dev-" + subject, Reason: "fault-injection suite",
			Attestation: &control.AttestationInput{Format: attest.FormatAppleAppAttest,
				Evidence: base64.StdEncoding.EncodeToString(evidence), Challenge: ch.Challenge}}
	}
	code, body := s.serve.call(http.MethodPost, "/v1/credentials:bulk", reqs)
	require.Equal(t, http.StatusAccepted, code, string(body))
	var pr control.ProvisionResponse
	require.NoError(t, json.Unmarshal(body, &pr))
	require.Equal(t, n, pr.Accepted, string(body))
	require.Eventually(t, func() bool {
		code, body := s.serve.call(http.MethodGet, "/v1/requests/"+pr.RequestID, nil)
		var st control.RequestStatus
		return code == http.StatusOK && json.Unmarshal(body, &st) == nil && st.Status == "completed"
	}, 2*time.Minute, 250*time.Millisecond, "credentials issued")
}

// runGateway stands in for every lock gateway: it applies each lock
// command and acknowledges it on lock.acks, riding out broker restarts.
func runGateway(ctx context.Context, bc bus.Config, stats *gatewayStats) {
	r := bus.NewGroupReader(bc, bus.TopicLockCommands, "faults-gateway")
	defer r.Close()
	w := bus.NewWriter(bc, bus.TopicLockAcks)
	defer w.Close()
	err := bus.ConsumeBatches(ctx, r, bus.BatchOptions{MaxWait: 20 * time.Millisecond, Logger: quiet, Name: "gateway"},
		func(ctx context.Context, batch []kafka.Message) error {
			var acks []kafka.Message
			for _, m := range batch {
				var c gateway.Command
				if json.Unmarshal(m.Value, &c) != nil || c.CommandID == "" {
					continue
				}
				now := time.Now().UnixMilli()
				v, _ := json.Marshal(gateway.Ack{CommandID: c.CommandID, RevocationID: c.RevocationID, Type: c.Type,
					Vendor: c.Vendor, LockID: c.LockID, CredentialID: c.CredentialID, Status: gateway.AckApplied,
					ReceivedMs: now, AppliedMs: now})
				acks = append(acks, kafka.Message{Key: []byte(c.LockID), Value: v})
			}
			stats.mu.Lock()
			stats.commands += len(batch)
			stats.mu.Unlock()
			if len(acks) == 0 {
				return nil
			}
			err := bus.Retry(ctx, quiet, "ack lock commands", func(ctx context.Context) error {
				err := w.WriteMessages(ctx, acks...)
				if err != nil {
					stats.mu.Lock()
					stats.lastErr = err
					stats.mu.Unlock()
				}
				return err
			})
			if err == nil {
				stats.mu.Lock()
				stats.acks += len(acks)
				stats.mu.Unlock()
			}
			return err
		})
	if err != nil {
		stats.mu.Lock()
		stats.lastErr = err
		stats.mu.Unlock()
	}
}

// startWorkload sends events through HTTP ingest (20 every 150 ms, with a
// door-forced alarm now and then, which the detectors turn into alerts for
// the responders) and samples /readyz, until finish.
func (s *scenario) startWorkload() {
	ctx, cancel := context.WithCancel(context.Background())
	prev := s.stop
	s.stop = func() { cancel(); prev() }
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		for bus.Wait(ctx, 150*time.Millisecond) {
			s.sendBatch(20)
		}
	}()
	go func() {
		defer s.wg.Done()
		for bus.Wait(ctx, 250*time.Millisecond) {
			code, r := s.serve.readyz()
			s.mu.Lock()
			s.samples = append(s.samples, sample{at: time.Now(), code: code, r: r})
			s.mu.Unlock()
		}
	}()
}

// sendBatch posts n matter events with fresh event numbers and times. Event
// time runs ten seconds per event (from a day ago, about 1,300 times the
// wall clock), so each door's alarm (every 240 events) falls outside
// door_forced's ten-minute suppression of the previous one and alerts keep
// flowing to the responders.
func (s *scenario) sendBatch(n int) {
	s.mu.Lock()
	var parts []string
	var ts []int64
	for range n {
		s.seq++
		t := s.base + s.seq*10_000
		lock := s.locks[int(s.seq)%len(s.locks)]
		if s.seq%40 == 0 { // DoorForcedOpen: a door_forced alert per door and window
			parts = append(parts, fmt.Sprintf(`{"nodeId":"%s","endpointId":1,"clusterId":257,"eventName":"DoorLockAlarm","eventNumber":%d,"timestampMs":%d,"data":{"alarmCode":6}}`,
				lock, s.seq, t))
		} else {
			parts = append(parts, fmt.Sprintf(`{"nodeId":"%s","endpointId":1,"clusterId":257,"eventName":"LockOperation","eventNumber":%d,"timestampMs":%d,"data":{"lockOperationType":1,"operationSource":10,"userIndex":%d,"fabricIndex":1,"credentials":[{"credentialType":7,"credentialIndex":%d}]}}`,
				lock, s.seq, t, s.seq%7, s.seq%7))
		}
		ts = append(ts, t)
		s.sent[t] = true
	}
	s.mu.Unlock()
	code, body := s.serve.call(http.MethodPost, "/v1/ingest/matter", []byte("["+strings.Join(parts, ",")+"]"))
	if code != http.StatusAccepted {
		return // not acknowledged (the queue is away): may or may not be stored
	}
	var res struct {
		Accepted int `json:"accepted"`
		Rejected int `json:"rejected"`
	}
	if json.Unmarshal(body, &res) != nil || res.Accepted != n {
		s.t.Errorf("ingest accepted %s of %d valid events", body, n)
		return
	}
	s.mu.Lock()
	for _, t := range ts {
		s.acked[t] = true
	}
	s.mu.Unlock()
}

// revoke revokes a subject's credentials; an acknowledged revocation is
// remembered (and must complete).
func (s *scenario) revoke(subject string) bool {
	code, body := s.serve.call(http.MethodPost, "/v1/subjects/"+subject+":revoke", map[string]string{"reason": "fault-injection suite"})
	if code != http.StatusAccepted {
		s.t.Logf("revoke %s: %d %s (not acknowledged)", subject, code, body)
		return false
	}
	var rv control.SubjectRevokeResponse
	require.NoError(s.t, json.Unmarshal(body, &rv))
	s.mu.Lock()
	s.revoked[subject] = rv.RevocationID
	s.mu.Unlock()
	return true
}

// faultOver records that the fault has just ended and starts measuring
// the recovery: how long until /readyz says 200 (from the samples, every
// 250 ms), until the API acknowledges a revocation again (revokeSoon) and
// until every event acknowledged before the fault ended is stored (polled
// every 500 ms). Logged, never asserted: the machine may be loaded.
func (s *scenario) faultOver() {
	s.mu.Lock()
	s.over = time.Now()
	backlog := make([]int64, 0, len(s.acked))
	for ts := range s.acked {
		backlog = append(backlog, ts)
	}
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	done := make(chan struct{})
	s.t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for bus.Wait(ctx, 500*time.Millisecond) {
			stored, err := s.queryStored(ctx)
			if err != nil {
				continue // ClickHouse is the dependency that was away; verify asserts
			}
			all := true
			for _, ts := range backlog {
				if _, ok := stored[ts]; !ok {
					all = false
					break
				}
			}
			if all {
				s.sinceOver(fmt.Sprintf("the %d events acknowledged before the fault ended all stored", len(backlog)))
				return
			}
		}
	}()
}

// sinceOver logs how long after the fault ended something happened.
func (s *scenario) sinceOver(what string) {
	s.mu.Lock()
	over := s.over
	s.mu.Unlock()
	if !over.IsZero() {
		s.t.Logf("recovery: %s %.1fs after the fault ended", what, time.Since(over).Seconds())
	}
}

// readyAgain logs when /readyz first said 200 after the fault ended (from
// the samples, which verify extends until it does).
func (s *scenario) readyAgain() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.over.IsZero() {
		return
	}
	for _, x := range s.samples {
		if x.at.After(s.over) && x.code == http.StatusOK {
			s.t.Logf("recovery: /readyz 200 again %.1fs after the fault ended", x.at.Sub(s.over).Seconds())
			return
		}
	}
}

// finish stops the workload.
func (s *scenario) finish() {
	s.stop()
	s.wg.Wait()
}

// sawUnready reports whether /readyz answered 503 naming dependency (its
// check not ok) while the workload ran.
func (s *scenario) sawUnready(dependency string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.samples {
		if x.code == http.StatusServiceUnavailable && x.r.Checks[dependency] != "ok" && !x.r.Dependencies[dependency].Up {
			return true
		}
	}
	return false
}

// waitUnready waits until /readyz answers 503 naming dependency.
func (s *scenario) waitUnready(dependency string, within time.Duration) {
	s.t.Helper()
	require.Eventually(s.t, func() bool {
		code, r := s.serve.readyz()
		return code == http.StatusServiceUnavailable && r.Checks[dependency] != "ok"
	}, within, 250*time.Millisecond, "/readyz should name %s unavailable", dependency)
}

// verify checks what every scenario promises once the fault is over:
// ready again, every acknowledged event stored exactly once, every
// acknowledged revocation confirmed, the audit log whole.
func (s *scenario) verify() {
	t := s.t
	require.Eventually(t, func() bool {
		code, r := s.serve.readyz()
		s.mu.Lock()
		s.samples = append(s.samples, sample{at: time.Now(), code: code, r: r})
		s.mu.Unlock()
		return code == http.StatusOK
	}, 2*time.Minute, 250*time.Millisecond, "/readyz should answer 200 again after the fault")
	s.readyAgain()

	s.mu.Lock()
	acked, sent := len(s.acked), len(s.sent)
	s.mu.Unlock()
	require.Positive(t, acked)
	var stored map[int64][2]uint64
	require.Eventually(t, func() bool {
		stored = s.storedEvents()
		s.mu.Lock()
		defer s.mu.Unlock()
		for ts := range s.acked {
			if _, ok := stored[ts]; !ok {
				return false
			}
		}
		return true
	}, 3*time.Minute, time.Second, "every acknowledged event should be stored")
	s.mu.Lock()
	for ts, n := range stored {
		assert.True(t, s.sent[ts], "stored event at %d was never sent", ts)
		assert.Equal(t, [2]uint64{1, 1}, n, "event at %d: rows after FINAL, distinct event ids", ts)
	}
	s.mu.Unlock()
	t.Logf("events: %d sent, %d acknowledged, %d stored", sent, acked, len(stored))

	s.mu.Lock()
	revoked := make(map[string]string, len(s.revoked))
	for k, v := range s.revoked {
		revoked[k] = v
	}
	s.mu.Unlock()
	for subject, id := range revoked {
		var last []byte
		require.Eventually(t, func() bool {
			code, body := s.serve.call(http.MethodGet, "/v1/revocations/"+id, nil)
			last = body
			var rv control.Revocation
			return code == http.StatusOK && json.Unmarshal(body, &rv) == nil && rv.Status == "confirmed" &&
				len(rv.PendingLocks) == 0 && len(rv.ConfirmedLocks) > 0
		}, 3*time.Minute, 500*time.Millisecond, "acknowledged revocation of %s (%s) should be confirmed by every lock; last: %s; gateway: %s; %s",
			subject, id, &last, s.gw, s.positions())
	}
	t.Logf("revocations: %d acknowledged, all confirmed", len(revoked))

	// The responders may still be auditing the last alerts' actions, and
	// audit.Store.Verify compares the rows it read with the head it holds
	// after reading them: an entry appended in between reads as a
	// truncation. So verification must come out clean once appends settle.
	var rep struct {
		OK      bool `json:"ok"`
		Entries int  `json:"entries"`
	}
	var body []byte
	attempts := 0
	require.Eventually(t, func() bool {
		attempts++
		var code int
		code, body = s.serve.call(http.MethodGet, "/v1/audit/verify", nil)
		return code == http.StatusOK && json.Unmarshal(body, &rep) == nil && rep.OK
	}, time.Minute, time.Second, "audit verify: %s", &body)
	if attempts > 1 {
		t.Logf("audit verify clean at attempt %d", attempts)
	}
	audited := s.ids("SELECT target FROM audit_log WHERE action = 'subject.revoke'")
	for subject := range revoked {
		assert.True(t, audited[subject], "the revocation of %s is in the audit log", subject)
	}
	t.Logf("audit log: %d entries, verified", rep.Entries)

	// Every alert the detectors produced is stored, and the responders
	// recorded every action their rules plan for it.
	produced := s.alerts()
	rules := detect.DefaultRules()
	var want []string
	for _, a := range produced {
		for _, st := range respond.Plan(rules, &a) {
			want = append(want, respond.ActionID(a.AlertID, st.Action))
		}
	}
	var missing []string
	require.Eventually(t, func() bool {
		alerts := s.ids("SELECT DISTINCT alert_id FROM alerts")
		actions := s.ids("SELECT DISTINCT action_id FROM alert_actions")
		missing = missing[:0]
		for id := range produced {
			if !alerts[id] {
				missing = append(missing, "alert "+id)
			}
		}
		for _, id := range want {
			if !actions[id] {
				missing = append(missing, "action "+id)
			}
		}
		return len(missing) == 0
	}, 2*time.Minute, time.Second, "every produced alert stored and acted on; missing %v", &missing)
	t.Logf("alerts: %d produced, all stored; %d responder actions planned, all recorded", len(produced), len(want))
}

// ids runs a query of one string column and returns its values.
func (s *scenario) ids(query string) map[string]bool {
	rows, err := s.conn.Query(context.Background(), query)
	require.NoError(s.t, err)
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var id string
		require.NoError(s.t, rows.Scan(&id))
		out[id] = true
	}
	require.NoError(s.t, rows.Err())
	return out
}

// alerts reads the alerts topic to its end and returns the alerts on it as
// raised (revision 0), by id.
func (s *scenario) alerts() map[string]detect.Alert {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	parts, err := bus.Partitions(ctx, s.bus, bus.TopicAlerts, "")
	require.NoError(s.t, err)
	out := map[string]detect.Alert{}
	for _, p := range parts {
		if p.End <= p.First {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.bus.Brokers, Topic: s.bus.Topic(bus.TopicAlerts), Partition: p.ID,
			MaxWait: 100 * time.Millisecond})
		require.NoError(s.t, r.SetOffset(p.First))
		for {
			m, err := r.FetchMessage(ctx)
			require.NoError(s.t, err)
			var a detect.Alert
			if json.Unmarshal(m.Value, &a) == nil && a.AlertID != "" && a.Revision == 0 {
				out[a.AlertID] = a
			}
			if m.Offset >= p.End-1 {
				break
			}
		}
		require.NoError(s.t, r.Close())
	}
	return out
}

// positions says where the lock commands and acks stand (for failures).
func (s *scenario) positions() string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	for _, c := range []bus.Consumer{{Group: "faults-gateway", Topic: bus.TopicLockCommands}, {Group: bus.GroupAcks, Topic: bus.TopicLockAcks},
		{Group: bus.GroupControl, Topic: bus.TopicControlCommands}} {
		parts, err := bus.Partitions(ctx, s.bus, c.Topic, c.Group)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", c.Topic, err))
			continue
		}
		for _, p := range parts {
			out = append(out, fmt.Sprintf("%s/%d end %d committed %d", c.Topic, p.ID, p.End, p.Committed))
		}
	}
	return strings.Join(out, ", ")
}

// storedEvents returns, per event time, the rows left after FINAL and the
// distinct event ids.
func (s *scenario) storedEvents() map[int64][2]uint64 {
	out, err := s.queryStored(context.Background())
	require.NoError(s.t, err)
	return out
}

func (s *scenario) queryStored(ctx context.Context) (map[int64][2]uint64, error) {
	rows, err := s.conn.Query(ctx, "SELECT ts_ms, count(), uniqExact(event_id) FROM access_events FINAL GROUP BY ts_ms")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64][2]uint64{}
	for rows.Next() {
		var ts int64
		var n, ids uint64
		if err := rows.Scan(&ts, &n, &ids); err != nil {
			return nil, err
		}
		out[ts] = [2]uint64{n, ids}
	}
	return out, rows.Err()
}

// requireRunning asserts serve is still the process it was.
func (s *scenario) requireRunning(pid int) {
	s.t.Helper()
	require.True(s.t, s.serve.running(), "keyfleet serve exited:\n%s", s.serve.logs.String())
	require.Equal(s.t, pid, s.serve.pid(), "keyfleet serve is not the process it was")
}

// logSamples summarizes /readyz while the workload ran: each change of
// status with its time, the dependencies down and the degraded loops.
func (s *scenario) logSamples() {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	prev := -1
	var start time.Time
	for _, x := range s.samples {
		if start.IsZero() {
			start = x.at
		}
		if x.code == prev {
			continue
		}
		var down, loops []string
		for dep, st := range x.r.Checks {
			if st != "ok" {
				down = append(down, dep)
			}
		}
		for _, l := range x.r.Degraded {
			loops = append(loops, l.Loop)
		}
		sort.Strings(down)
		lines = append(lines, fmt.Sprintf("+%.1fs %d down=%v degraded=%v", x.at.Sub(start).Seconds(), x.code, down, loops))
		prev = x.code
	}
	s.t.Logf("/readyz: %s", strings.Join(lines, "; "))
}

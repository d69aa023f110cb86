package drill

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/internal/controltest"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
)

func TestDistribution(t *testing.T) {
	f := func(ms []int64, want Distribution) {
		t.Helper()
		assert.Equal(t, want, distribution(ms))
	}
	f(nil, Distribution{})
	f([]int64{7}, Distribution{Count: 1, P50: 7, P95: 7, P99: 7, Max: 7})
	f([]int64{40, 10, 30, 20}, Distribution{Count: 4, P50: 30, P95: 40, P99: 40, Max: 40})
	ms := make([]int64, 100)
	for i := range ms {
		ms[i] = int64(100 - i)
	}
	f(ms, Distribution{Count: 100, P50: 51, P95: 96, P99: 100, Max: 100})
}

// lossy are the estate's gateways losing 2 % of what they are sent.
func lossy() map[string]locks.Profile {
	p := controltest.FastProfiles()
	for v, prof := range p {
		prof.MissRate = 0.02
		p[v] = prof
	}
	return p
}

// tickets is an incident ticket system: it records what it was told.
type tickets struct {
	mu     sync.Mutex
	opened []string
	closed []string
}

func (s *tickets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in map[string]any
	_ = json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch in["action"] {
	case "open":
		s.opened = append(s.opened, in["run_id"].(string))
		_ = json.NewEncoder(w).Encode(map[string]string{"ticket_id": "INC-" + in["run_id"].(string)})
	case "close":
		s.closed = append(s.closed, in["ticket_id"].(string))
	default:
		http.Error(w, "unknown action", http.StatusBadRequest)
	}
}

// TestDrillScenarios runs each scenario on a simulated estate whose
// gateways lose 2 % of the commands: every lock confirms, the layers are
// timed, the run is stored and listed.
func TestDrillScenarios(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := controltest.Start(t, controltest.Options{Bus: bc, Conn: conn, Profiles: lossy(),
		Fleet: &fleet.Options{Seed: 5, Sites: 2, DoorsPerSite: 24, Subjects: 40}})
	tk := &tickets{}
	ts := httptest.NewServer(tk)
	defer ts.Close()
	site := e.Fleet.Sites[0].ID
	for _, sc := range []struct {
		scenario string
		site     string
	}{{control.DrillTermination, ""}, {control.DrillLostDevice, site}, {control.DrillBreach, site}} {
		t.Run(sc.scenario, func(t *testing.T) {
			var progress bytes.Buffer
			rep, err := Run(context.Background(), Options{URL: e.URL, Token: controltest.TokenManager, Scenario: sc.scenario,
				Subjects: 6, Role: "resident", Site: sc.site, DoorGroups: []string{fleet.KindEntrance, fleet.KindAmenity},
				Timeout: 60 * time.Second, DeviceURL: e.WalletURL, TicketURL: ts.URL}, &progress)
			require.NoError(t, err, progress.String())
			assert.Equal(t, sc.scenario, rep.Scenario)
			assert.Positive(t, rep.Locks)
			assert.Equal(t, rep.Locks, rep.Confirmed, "every lock confirms: %+v", rep.Stragglers)
			assert.Empty(t, rep.Stragglers)
			assert.Empty(t, rep.Unconfirmed)
			assert.Equal(t, rep.Locks, rep.LockConfirm.Count, "time to confirm is measured per lock")
			assert.Equal(t, rep.Revocations, rep.TimeToConfirm.Count)
			assert.Equal(t, rep.Revocations, rep.TimeToDisable.Count)
			assert.Equal(t, control.LayerDone, rep.Sessions.State)
			assert.Equal(t, rep.Credentials-rep.KeptExpected, rep.Sessions.Done)
			require.NotNil(t, rep.Ticket)
			assert.Positive(t, rep.Ticket.TimeToCloseMs)
			assert.True(t, rep.Stored)
			switch sc.scenario {
			case control.DrillTermination:
				assert.Equal(t, 6, rep.Credentials)
				assert.Equal(t, 6, rep.Revocations)
			case control.DrillLostDevice:
				assert.Equal(t, 12, rep.Credentials, "a phone and a tablet each")
				assert.Equal(t, 6, rep.Revocations)
				assert.Equal(t, 6, rep.KeptExpected)
				assert.Equal(t, 6, rep.KeptActive, "the tablets' credentials stay active")
			case control.DrillBreach:
				assert.Equal(t, 1, rep.Revocations, "one mass revocation")
				assert.Equal(t, site, rep.Site)
			}
		})
	}
	assert.Len(t, tk.closed, 3)

	// GET /v1/drills lists the runs, newest first, one with its report.
	var list struct {
		Drills []control.DrillRun `json:"drills"`
	}
	get(t, e.URL+"/v1/drills", &list)
	require.Len(t, list.Drills, 3)
	assert.Equal(t, control.DrillBreach, list.Drills[0].Scenario)
	for _, r := range list.Drills {
		assert.Equal(t, r.Locks, r.Confirmed)
		assert.Positive(t, r.ConfirmP50Ms)
		assert.GreaterOrEqual(t, r.ConfirmP99Ms, r.ConfirmP50Ms)
		assert.Equal(t, control.LayerDone, r.SessionState)
		assert.Positive(t, r.TicketCloseMs)
		assert.Equal(t, "manager-1", r.Actor)
	}
	var one control.DrillRun
	get(t, e.URL+"/v1/drills?run_id="+list.Drills[1].RunID, &one)
	var rep Report
	require.NoError(t, json.Unmarshal(one.Report, &rep))
	assert.Equal(t, list.Drills[1].RunID, rep.RunID)
}

func get(t *testing.T, u string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+controltest.TokenAnalyst)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
}

// BenchmarkDrill200 runs a 200-subject termination drill on the simulated
// estate (3 sites, every vendor) whose gateways lose 2 % of the commands
// and answer in ~5 ms (legacy panels ~50 ms), and reports the per-lock time
// to confirm (p50, p99), the share of locks confirmed, and how many
// commands were re-sent. A command without an applied ack is re-sent after
// 5 s (--lock-resend-after), doubling: the lost ones set the tail.
//
//	go test ./control/drill -run '^$' -bench Drill200 -benchtime 1x
func BenchmarkDrill200(b *testing.B) {
	bc := testenv.RequireRealKafka(b, 4)
	conn, _ := testenv.ClickHouse(b)
	p := lossy()
	legacy := p["legacy"]
	legacy.LatencyMedian = 50 * time.Millisecond
	p["legacy"] = legacy
	e := controltest.Start(b, controltest.Options{Bus: bc, Conn: conn, Profiles: p,
		Fleet:  &fleet.Options{Seed: 7, Sites: 3, DoorsPerSite: 40, Subjects: 300},
		Stream: func(o *stream.Options) { o.ResendAfter, o.ResendMax = 5*time.Second, 20*time.Second }})
	var rep *Report
	for b.Loop() {
		var err error
		rep, err = Run(context.Background(), Options{URL: e.URL, Token: controltest.TokenManager, Scenario: control.DrillTermination,
			Subjects: 200, Role: "resident", DoorGroups: []string{fleet.KindEntrance, fleet.KindAmenity, fleet.KindGarage},
			Timeout: 5 * time.Minute, DeviceURL: e.WalletURL}, &bytes.Buffer{})
		require.NoError(b, err)
	}
	var resent uint64
	require.NoError(b, conn.QueryRow(context.Background(), `SELECT count() FROM (SELECT command_id FROM lock_command_sends
		GROUP BY command_id HAVING max(attempt) > 1)`).Scan(&resent))
	// Where the time goes, per lock revocation: request → the owner applied
	// it (the command's issue), → the gateway received it, → the lock
	// applied it (first send only).
	var q [3][]float64
	require.NoError(b, conn.QueryRow(context.Background(), `SELECT
			quantilesExact(0.5, 0.99)(toFloat64(issued_ms - requested_ms)),
			quantilesExact(0.5, 0.99)(toFloat64(received_ms - issued_ms)),
			quantilesExact(0.5, 0.99)(toFloat64(applied_ms - received_ms))
		FROM (
			SELECT command_id, issued_ms, requested_ms FROM (SELECT command_id, revocation_id, credential_id,
				min(issued_ms) AS issued_ms FROM lock_command_sends WHERE type = 'revoke' GROUP BY command_id, revocation_id, credential_id) AS s
			ANY INNER JOIN (SELECT revocation_id, credential_id, min(requested_ms) AS requested_ms FROM revocations
				GROUP BY revocation_id, credential_id) AS r USING (revocation_id, credential_id)
		) AS sr
		ANY INNER JOIN (SELECT command_id, min(received_ms) AS received_ms, min(applied_ms) AS applied_ms FROM lock_acks
			WHERE status = 'applied' GROUP BY command_id) AS a USING (command_id)`).Scan(&q[0], &q[1], &q[2]))
	b.Logf("per lock revocation, p50/p99 ms: request → owner applied %v, → gateway received %v, → lock applied %v", q[0], q[1], q[2])
	if mfs, err := e.Metrics.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "keyfleet_control_batch_duration_seconds" {
				h := mf.GetMetric()[0].GetHistogram()
				b.Logf("owner batches: %d, mean %.0f ms", h.GetSampleCount(), 1000*h.GetSampleSum()/float64(h.GetSampleCount()))
			}
		}
	}
	b.ReportMetric(float64(rep.LockConfirm.P50), "p50-ms/lock")
	b.ReportMetric(float64(rep.LockConfirm.P99), "p99-ms/lock")
	b.ReportMetric(float64(rep.TimeToConfirm.P99), "p99-ms/revocation")
	b.ReportMetric(100*float64(rep.Confirmed)/float64(rep.Locks), "%confirmed")
	b.ReportMetric(float64(rep.Locks), "locks")
	b.ReportMetric(float64(resent), "resent-commands")
	b.Logf("drill %s: %d subjects, %d lock revocations, %d confirmed; per lock p50 %d ms p95 %d ms p99 %d ms max %d ms; "+
		"per revocation p50 %d ms p99 %d ms; disable p50 %d ms; sessions %s; %d commands re-sent (grants and revokes)",
		rep.RunID, rep.Subjects, rep.Locks, rep.Confirmed, rep.LockConfirm.P50, rep.LockConfirm.P95, rep.LockConfirm.P99,
		rep.LockConfirm.Max, rep.TimeToConfirm.P50, rep.TimeToConfirm.P99, rep.TimeToDisable.P50, rep.Sessions.State, resent)
}

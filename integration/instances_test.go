package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// Three `keyfleet serve` instances share one Kafka cluster and one
// ClickHouse (--access-events topic). A known set of events, planted denied
// storms and revocations go in; one instance is SIGKILLed mid-stream. Every
// event is stored exactly once, every revocation completes, each planted
// storm raises exactly one alert (its first half judged by the dead
// instance, its second by the new owner of its partition), the leases the
// dead instance held move to survivors, and the fleet figures of
// /v1/health/ingest are the sum of the live instances' own counters.
func TestThreeInstancesSurviveKill(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 6)
	// On the ClickHouse cluster when make test names one (every instance
	// with --clickhouse-cluster and both nodes; reads through the
	// Distributed tables), else on the single server.
	var conn driver.Conn
	var ch chstorage.Config
	var chFlags []string
	if testenv.ClickHouseClusterAddrs() != "" {
		ch = testenv.ClickHouseClusterConfig(t)
		chFlags = []string{"--clickhouse-cluster", ch.Cluster}
		t.Logf("on the ClickHouse cluster %s (%s)", ch.Cluster, ch.Addr)
	} else {
		conn, ch = testenv.ClickHouse(t)
		t.Logf("on the single ClickHouse server %s", ch.Addr)
	}
	dir := t.TempDir()
	regPath := filepath.Join(dir, "registry.json")
	fleetFlags := []string{"--seed", "5", "--sites", "1", "--doors-per-site", "20", "--subjects", "40"}
	kafkaFlags := []string{"--kafka-brokers", strings.Join(cfg.Brokers, ","), "--topic-prefix", cfg.TopicPrefix}
	env := append(os.Environ(), "KEYFLEET_PSEUDONYM_KEY=integration-test-pseudonym-key")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(binary(t), args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, string(out))
	}
	run(append(append([]string{"simulate"}, fleetFlags...), "--registry-only", "--registry-out", regPath)...)

	procs := map[string]*proc{}
	var names []string
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("kf-%d", i)
		names = append(names, name)
		procs[name] = startServe(t, serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database,
			extra: append([]string{"--registry", regPath, "--access-events", "topic", "--instance-id", name}, chFlags...)})
	}
	if conn == nil { // the cluster's database exists once the first instance migrated it
		c, err := chstorage.Open(context.Background(), ch)
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		conn = c
	}
	// The simulated estate's credentials (and a day of its traffic).
	run(append(append(append([]string{"simulate"}, fleetFlags...), kafkaFlags...), "--days", "1", "--log-level", "warn")...)
	gw := exec.Command(binary(t), append(append(append([]string{"simulate", "gateways"}, fleetFlags...), kafkaFlags...),
		"--duration", "5m", "--gateway-profile", "legacy.latency=200ms,legacy.miss=0,matter.offline=0,nuki.offline=0,schlage.offline=0,seam.offline=0,legacy.offline=0")...)
	gw.Env = env
	gwOut := &testenv.SyncBuffer{}
	gw.Stdout, gw.Stderr = gwOut, gwOut
	require.NoError(t, gw.Start())
	t.Cleanup(func() {
		_ = gw.Process.Kill()
		_ = gw.Wait()
		if t.Failed() {
			t.Logf("gateways:\n%s", gwOut.String())
		}
	})

	// Every lease is held by exactly one instance.
	var holders map[string]string
	require.Eventually(t, func() bool {
		holders = leaseHolders(t, procs)
		return holders != nil
	}, 90*time.Second, 500*time.Millisecond, "every lease held by exactly one instance")
	t.Logf("lease holders before the kill: %v", holders)
	// The victim: the instance holding the most leases.
	count := map[string]int{}
	for _, h := range holders {
		count[h]++
	}
	victim := names[0]
	for _, n := range names {
		if count[n] > count[victim] {
			victim = n
		}
	}

	// Phase 1: background events and the first half of every storm.
	// Background events are older than every storm attempt; the storms'
	// attempts are timestamped when produced (near the watermark, so their
	// suppression stays open across the kill).
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	const background, storms, perStorm, firstHalf = 40000, 12, 9, 5
	produceMatter(t, cfg, 0, background/2, base)
	produceStorms(t, cfg, storms, 0, firstHalf, time.Now().UnixMilli())
	where := "vendor = 'matter' AND match(lock_id, '^0x[0-9A-F]{4}$')"
	waitCount(t, conn, where, background/2+storms*firstHalf, 3*time.Minute)
	waitDetectLag(t, procs)

	// Revocations: subjects of the estate, asked of different instances
	// before and after the kill.
	data, err := os.ReadFile(regPath)
	require.NoError(t, err)
	var file registry.File
	require.NoError(t, json.Unmarshal(data, &file))
	var subjects []string
	seen := map[string]bool{}
	for _, c := range file.Credentials {
		if !seen[c.SubjectID] {
			seen[c.SubjectID] = true
			subjects = append(subjects, c.SubjectID)
		}
	}
	require.GreaterOrEqual(t, len(subjects), 6)
	var revocations []string
	revoke := func(p *proc, subject string) {
		t.Helper()
		var resp *http.Response
		var body []byte
		require.Eventually(t, func() bool {
			resp, body = p.do("POST", "/v1/subjects/"+subject+":revoke", "application/json",
				strings.NewReader(`{"reason":"instances test"}`), p.token)
			return resp.StatusCode == http.StatusAccepted
		}, 60*time.Second, 500*time.Millisecond, "revoke %s", subject)
		var rv struct {
			RevocationURL string `json:"revocation_url"`
		}
		require.NoError(t, json.Unmarshal(body, &rv), string(body))
		revocations = append(revocations, rv.RevocationURL)
	}
	for i, n := range names {
		revoke(procs[n], subjects[i])
	}

	// Phase 2: the rest, with the victim SIGKILLed while it flows.
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		produceMatter(t, cfg, background/2, background/2, base)
	}()
	time.Sleep(300 * time.Millisecond)
	procs[victim].kill()
	killed := time.Now()
	t.Logf("SIGKILLed %s (held %d leases)", victim, count[victim])
	live := map[string]*proc{}
	for _, n := range names {
		if n != victim {
			live[n] = procs[n]
		}
	}
	moved := make(chan time.Duration, 1)
	go func() {
		for time.Since(killed) < 2*time.Minute {
			if h := leaseHoldersQuiet(live); h != nil {
				moved <- time.Since(killed)
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		moved <- -1
	}()
	<-produced
	produceStorms(t, cfg, storms, firstHalf, perStorm, time.Now().UnixMilli())
	for i, n := range sortedKeys(live) {
		revoke(live[n], subjects[3+i])
	}

	// Every event stored exactly once.
	waitCount(t, conn, where, background+storms*perStorm, 4*time.Minute)
	var final uint64
	require.NoError(t, conn.QueryRow(context.Background(),
		"SELECT count() FROM access_events FINAL WHERE "+where).Scan(&final))
	assert.Equal(t, uint64(background+storms*perStorm), final, "count() FINAL")

	// Every revocation completed.
	any := live[sortedKeys(live)[0]]
	for _, url := range revocations {
		require.Eventually(t, func() bool {
			resp, body := any.do("GET", url, "", nil, any.token)
			if resp.StatusCode != http.StatusOK {
				return false
			}
			var st struct {
				Status string `json:"status"`
			}
			require.NoError(t, json.Unmarshal(body, &st), string(body))
			return st.Status == "confirmed"
		}, 3*time.Minute, 500*time.Millisecond, "revocation %s confirmed", url)
	}

	// Each planted storm raised exactly one alert, by whichever instance.
	waitDetectLag(t, live)
	stormAlerts := func() map[string]uint64 {
		rows, err := conn.Query(context.Background(), `SELECT door_id, uniqExact(alert_id) FROM alerts
			WHERE detector = 'denied_storm' AND subject_id = '' AND credential_id = '' AND match(door_id, '^0x7[0-9A-F]{3}$')
			GROUP BY door_id`)
		require.NoError(t, err)
		defer rows.Close()
		out := map[string]uint64{}
		for rows.Next() {
			var door string
			var n uint64
			require.NoError(t, rows.Scan(&door, &n))
			out[door] = n
		}
		require.NoError(t, rows.Err())
		return out
	}
	var got map[string]uint64
	require.Eventually(t, func() bool {
		got = stormAlerts()
		return len(got) == storms
	}, 2*time.Minute, time.Second, "an alert for every planted storm")
	for door, n := range got {
		assert.Equal(t, uint64(1), n, "alerts for the storm at %s", door)
	}
	// Nothing more arrives later (a doubled alert would be a second id).
	time.Sleep(3 * time.Second)
	assert.Equal(t, got, stormAlerts())

	refills := 0
	for _, p := range live {
		refills += strings.Count(p.logs.String(), "detector windows refilled for access.events partitions judged elsewhere")
	}
	t.Logf("survivors refilled moved partitions %d times", refills)
	assert.Positive(t, refills, "the victim's partitions were refilled on their new owners")

	// The leases the victim held moved to survivors.
	require.Eventually(t, func() bool {
		h := leaseHolders(t, live)
		if h == nil {
			return false
		}
		holders = h
		return true
	}, 90*time.Second, 500*time.Millisecond, "every lease held by exactly one survivor")
	t.Logf("lease holders after the kill: %v (every lease on a survivor %s after the kill)", holders, <-moved)
	for job, h := range holders {
		assert.NotEqual(t, victim, h, job)
	}

	// The fleet figures are the sum of the live instances' own counters
	// (the victim's row ages out of the fleet after 20 s).
	var fleet fleetHealth
	require.Eventually(t, func() bool {
		_, body := any.do("GET", "/v1/health/ingest", "", nil, any.token)
		fleet = fleetHealth{}
		require.NoError(t, json.Unmarshal(body, &fleet), string(body))
		if fleet.Fleet == nil || fleet.Fleet.Instances != len(live) {
			return false
		}
		var inserted, consumed float64
		for _, p := range live {
			inserted += metricValue(t, p, "keyfleet_pipeline_events_inserted_total")
			consumed += metricValue(t, p, "keyfleet_pipeline_records_consumed_total")
		}
		return fleet.Fleet.InsertedTotal == inserted && fleet.Fleet.ConsumedTotal == consumed
	}, 90*time.Second, time.Second, "fleet figures = the sum over live instances")
	var sum float64
	for _, i := range fleet.Instances {
		sum += i.InsertedTotal
	}
	assert.Equal(t, fleet.Fleet.InsertedTotal, sum)
	t.Logf("fleet: %d instances, %.0f records consumed, %.0f events inserted (%.0f distinct stored)",
		fleet.Fleet.Instances, fleet.Fleet.ConsumedTotal, fleet.Fleet.InsertedTotal, float64(background+storms*perStorm))
}

type fleetHealth struct {
	Fleet *struct {
		Instances     int     `json:"instances"`
		ConsumedTotal float64 `json:"consumed_total"`
		InsertedTotal float64 `json:"inserted_total"`
	} `json:"fleet"`
	Instances []struct {
		Instance      string  `json:"instance"`
		InsertedTotal float64 `json:"inserted_total"`
	} `json:"instances"`
}

// leaseHolders returns job → instance when every job's lease is held by
// exactly one of procs and every one of them names that holder; else nil.
func leaseHolders(t *testing.T, procs map[string]*proc) map[string]string {
	t.Helper()
	return leaseHoldersQuiet(procs)
}

func leaseHoldersQuiet(procs map[string]*proc) map[string]string {
	out := map[string]string{}
	heldBy := map[string][]string{}
	for name, p := range procs {
		resp, err := http.Get(p.http + "/readyz")
		if err != nil {
			return nil
		}
		var r struct {
			Leases map[string]struct {
				Holder string `json:"holder"`
				Here   bool   `json:"held_here"`
			} `json:"leases"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || len(r.Leases) == 0 {
			return nil
		}
		for job, st := range r.Leases {
			if st.Here {
				heldBy[job] = append(heldBy[job], name)
			}
			if prev, ok := out[job]; ok && prev != st.Holder {
				return nil
			}
			out[job] = st.Holder
		}
	}
	for job, h := range out {
		if len(heldBy[job]) != 1 || heldBy[job][0] != h {
			return nil
		}
	}
	return out
}

// waitDetectLag waits until the detectors' group has read everything.
func waitDetectLag(t *testing.T, procs map[string]*proc) {
	t.Helper()
	cfgLag := func() float64 {
		for _, p := range procs {
			_, body := p.do("GET", "/metrics", "", nil, p.token)
			var total float64
			found := false
			for _, line := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(line, "keyfleet_kafka_consumer_lag_messages{") && strings.Contains(line, `group="keyfleet-detect"`) {
					var v float64
					_, _ = fmt.Sscanf(line[strings.LastIndexByte(line, ' ')+1:], "%g", &v)
					total += v
					found = true
				}
			}
			if found {
				return total
			}
		}
		return -1
	}
	require.Eventually(t, func() bool { return cfgLag() == 0 }, 3*time.Minute, time.Second, "detectors caught up")
}

// produceStorms writes denied attempts [from, to) of each planted storm,
// 2 s apart from atMs: storm s is at lock 0x7%03X (9 attempts within
// 15 m raise denied_storm at the door: threshold 8), unknown credentials.
func produceStorms(t *testing.T, cfg bus.Config, storms, from, to int, atMs int64) {
	t.Helper()
	w := bus.NewWriter(cfg, bus.TopicRaw)
	defer w.Close()
	var msgs []kafka.Message
	for s := 0; s < storms; s++ {
		node := fmt.Sprintf("0x7%03X", s)
		for i := from; i < to; i++ {
			ts := atMs + int64(i-from)*2000
			payload := fmt.Sprintf(`{"nodeId":"%s","endpointId":1,"clusterId":257,"eventName":"LockOperationError","eventNumber":%d,`+
				`"timestampMs":%d,"priority":"info","data":{"lockOperationType":1,"operationSource":8,"operationError":1,`+
				`"credentials":[{"credentialType":2,"credentialIndex":%d}]}}`, node, 900000+s*100+i, ts, 100+i)
			raw := event.NewRaw("matter", ts, []byte(payload))
			msgs = append(msgs, kafka.Message{Key: []byte(node), Value: raw.AppendJSON(nil)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
}

func sortedKeys(m map[string]*proc) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestInstancesIngestRate measures the ingest rate (events stored per
// second of wall clock, from the first produced record to the last stored)
// with 1 and 3 instances, interleaved; a measurement for the notes, not a
// test of speed: it runs only with KEYFLEET_INSTANCES_RATE=1.
func TestInstancesIngestRate(t *testing.T) {
	if os.Getenv("KEYFLEET_INSTANCES_RATE") != "1" {
		t.Skip("set KEYFLEET_INSTANCES_RATE=1 to measure")
	}
	const events = 200000
	rounds := 3
	rates := map[int][]float64{}
	for r := 0; r < rounds; r++ {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("round%d-%d", r, n), func(t *testing.T) {
				cfg := testenv.RequireRealKafka(t, 6)
				conn, ch := testenv.ClickHouse(t)
				var procs []*proc
				for i := 0; i < n; i++ {
					procs = append(procs, startServe(t, serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database,
						extra: []string{"--access-events", "topic", "--instance-id", fmt.Sprintf("rate-%d", i)}}))
				}
				time.Sleep(5 * time.Second) // the groups settle
				start := time.Now()
				produceMatter(t, cfg, 0, events, time.Now().Add(-time.Hour).UnixMilli())
				waitCount(t, conn, "", events, 10*time.Minute)
				secs := time.Since(start).Seconds()
				rates[n] = append(rates[n], events/secs)
				t.Logf("%d instance(s): %d events in %.1f s = %.0f events/s", n, events, secs, events/secs)
				for _, p := range procs {
					p.stop()
				}
			})
		}
	}
	for n, rs := range rates {
		sort.Float64s(rs)
		t.Logf("%d instance(s): rates %v", n, rs)
	}
	if len(rates[1]) == rounds && len(rates[3]) == rounds {
		t.Logf("ratio 3/1 (medians): %.2f", median(rates[3])/median(rates[1]))
	}
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

package service

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/identity/store"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
)

// BenchmarkLeaverLatency measures the leaver latency on the simulated
// estate (make run's: seed 7, 4 sites, 80 doors each, the default vendor
// mix) with the simulated lock gateways' default behaviour (cloud vendors in
// a few hundred ms, Matter bridges in about a second, legacy panels in tens
// of seconds and one command at a time, some locks offline, 2 % of legacy
// commands lost). N residents (KEYFLEET_BENCH_LEAVERS, default 40) join over
// SCIM and get their credentials (granted on every lock before the leavers
// start); then one is deactivated every KEYFLEET_BENCH_LEAVER_EVERY (default
// 10 s, so a site's legacy panel is not still busy with the previous
// leaver). It reports, over the leavers every lock confirmed (waiting until
// 5 minutes after the last one), the latency from the deactivation to the
// last lock confirmation (p50, p99), keyfleet's own share (to the last lock
// receiving the revoke command), and how many confirmed. A benchmark, not a
// test: it runs once.
//
//	KEYFLEET_TEST_CLICKHOUSE_ADDR=127.0.0.1:19000 KEYFLEET_TEST_KAFKA_BROKERS=127.0.0.1:19092 \
//	  go test -run '^$' -bench LeaverLatency -benchtime 1x ./service/
func BenchmarkLeaverLatency(b *testing.B) {
	n, every := 40, 10*time.Second
	if v, err := strconv.Atoi(os.Getenv("KEYFLEET_BENCH_LEAVERS")); err == nil && v > 0 {
		n = v
	}
	if v, err := time.ParseDuration(os.Getenv("KEYFLEET_BENCH_LEAVER_EVERY")); err == nil && v > 0 {
		every = v
	}
	mix, err := fleet.ParseVendorMix("matter=30,nuki=20,schlage=20,seam=15,legacy=15")
	require.NoError(b, err)
	f, err := fleet.Generate(fleet.Options{Seed: 7, Sites: 4, DoorsPerSite: 80, Subjects: 600, VendorMix: mix})
	require.NoError(b, err)
	l := serveLiveWith(b, f.Registry(), "--identity-sweep-interval", "5s")
	set := locks.NewSet(locks.SetOptions{Fleet: f, Seed: 7, OriginMs: time.Now().UnixMilli(), KeepAcks: true})
	runner, err := locks.NewRunner(locks.RunnerOptions{Set: set, Bus: l.bus, Group: "bench-gateways"})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})

	group := l.scimCreate("Groups", map[string]any{"displayName": "resident"})
	access := "urn:keyfleet:params:scim:schemas:extension:access:2.0:User"
	ids := make([]string, n)
	var members []any
	for i := range n {
		ids[i] = l.scimCreate("Users", map[string]any{"userName": fmt.Sprintf("bench-%d@example.com", i),
			"externalId": fmt.Sprintf("bench-%d", i), access: map[string]any{"site": f.Sites[i%len(f.Sites)].ID}})
		members = append(members, map[string]any{"value": ids[i]})
	}
	l.scimPatch("Groups", group, map[string]any{"op": "add", "path": "members", "value": members})
	require.Eventually(b, func() bool {
		var out struct{ Total int }
		l.mustJSON("GET", "/v1/credentials?role=resident&state=pending_activation&limit=1", l.admin, nil, 200, &out)
		return out.Total == n
	}, 5*time.Minute, time.Second, "joiners' credentials issued")
	// Their phones activate them: only active keys are on locks.
	var pending struct{ Credentials []*control.Record }
	l.mustJSON("GET", fmt.Sprintf("/v1/credentials?role=resident&state=pending_activation&limit=%d", n), l.admin, nil, 200, &pending)
	for _, r := range pending.Credentials {
		l.activate(r.CredentialID, "phone-"+r.SubjectID)
	}
	// Let the grants reach the locks first, so the revocations do not queue
	// behind them.
	deadline := time.Now().Add(15 * time.Minute)
	for set.PendingAcks() > 0 && time.Now().Before(deadline) {
		time.Sleep(time.Second)
	}

	b.ResetTimer()
	start := time.Now()
	for _, id := range ids {
		l.scimPatch("Users", id, map[string]any{"op": "replace", "path": "active", "value": false})
		time.Sleep(every)
	}
	var k struct{ Count, Confirmed int }
	kctx := context.Background()
	until := time.Now().Add(5 * time.Minute)
	for time.Now().Before(until) {
		lat, err := store.LeaverKPI(kctx, l.conn, start.Add(-time.Minute), time.Now().Add(time.Minute))
		require.NoError(b, err)
		k.Count, k.Confirmed = lat.Count, lat.Confirmed
		if lat.Count == n && lat.Confirmed == n {
			break
		}
		time.Sleep(2 * time.Second)
	}
	b.StopTimer()
	lat, err := store.LeaverKPI(kctx, l.conn, start.Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(b, err)
	// keyfleet's share: the identity change to the last lock receiving the
	// revoke command (the gateways' simulated device delays excluded).
	var share []float64
	require.NoError(b, l.conn.QueryRow(kctx, `SELECT quantilesExact(0.5, 0.99)(toFloat64(last_recv - change_ms)) FROM (
			SELECT subject_id, change_ms, max(received_ms) AS last_recv
			FROM identity_leavers AS l ALL INNER JOIN (
				SELECT revocation_id, received_ms FROM lock_acks WHERE revocation_id != ''
			) AS a USING (revocation_id)
			GROUP BY subject_id, change_ms)`).Scan(&share))
	b.ReportMetric(float64(lat.Count), "leavers")
	b.ReportMetric(float64(lat.Confirmed), "confirmed")
	b.ReportMetric(lat.P50, "p50_s")
	b.ReportMetric(lat.P99, "p99_s")
	if len(share) == 2 {
		b.ReportMetric(share[0]/1000, "keyfleet_p50_s")
		b.ReportMetric(share[1]/1000, "keyfleet_p99_s")
	}
	b.Logf("%d leavers, %d confirmed by every lock within 5 min of the last: p50 %.2f s, p95 %.2f s, p99 %.2f s; keyfleet's share p50/p99 %v ms",
		lat.Count, lat.Confirmed, lat.P50, lat.P95, lat.P99, share)
}

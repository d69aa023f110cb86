package api_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// benchEnv starts a control plane for a benchmark (real Kafka when
// KEYFLEET_TEST_KAFKA_BROKERS is set, else the embedded broker).
func benchEnv(b *testing.B) *env {
	bc := testenv.Kafka(b, 4)
	conn, _ := testenv.ClickHouse(b)
	return newEnv(b, bc, conn)
}

// BenchmarkBulkIssuance measures bulk issuance throughput: each op is one
// bulk request of 1,000 residents (JSON), from the POST until the request
// status says every credential is issued. Reports credentials/s.
func BenchmarkBulkIssuance(b *testing.B) {
	e := benchEnv(b)
	const per = 1000
	total := 0
	var elapsed time.Duration
	for i := 0; b.Loop(); i++ {
		reqs := make([]control.CredentialRequest, per)
		for j := range reqs {
			reqs[j] = e.resident(fmt.Sprintf("bench-%d-%d", i, j))
		}
		start := time.Now()
		var pr control.ProvisionResponse
		resp := e.do("POST", "/v1/credentials:bulk", "mgr1", reqs, &pr)
		require.Equal(b, http.StatusAccepted, resp.StatusCode)
		st := e.waitRequest(pr.RequestID, func(st control.RequestStatus) bool { return st.Status != control.StatusPending })
		require.Equal(b, "completed", st.Status)
		elapsed += time.Since(start)
		total += per
	}
	b.ReportMetric(float64(total)/elapsed.Seconds(), "credentials/s")
}

// BenchmarkRevocationLatency measures revocation latency (request → last
// lock ack) with test gateways acknowledging after 5 ms: b.N subjects, each
// with one credential on five locks, are revoked one every 20 ms; p50/p99
// come from ClickHouse (the same numbers as GET /v1/kpis). Run with
// -benchtime Nx.
func BenchmarkRevocationLatency(b *testing.B) {
	e := benchEnv(b)
	startGateway(b, e.bus, 5*time.Millisecond)
	n := b.N
	reqs := make([]control.CredentialRequest, n)
	for j := range reqs {
		reqs[j] = e.resident(fmt.Sprintf("rev-%d", j))
	}
	var pr control.ProvisionResponse
	require.Equal(b, http.StatusAccepted, e.do("POST", "/v1/credentials:bulk", "mgr1", reqs, &pr).StatusCode)
	e.waitRequest(pr.RequestID, func(st control.RequestStatus) bool { return st.Status == "completed" })
	ctx := context.Background()
	from := time.Now()
	b.ResetTimer()
	for j := range n {
		_, err := e.api.RevokeSubject(ctx, fmt.Sprintf("rev-%d", j), "bench", "manager-1")
		require.NoError(b, err)
		time.Sleep(20 * time.Millisecond)
	}
	var k *control.FleetKPIs
	require.Eventually(b, func() bool {
		var err error
		k, err = store.KPIs(ctx, e.conn, from, time.Now().Add(time.Minute))
		return err == nil && k.RevocationLatency.Confirmed == n
	}, 2*time.Minute, 100*time.Millisecond)
	b.StopTimer()
	b.ReportMetric(k.RevocationLatency.P50*1000, "p50_ms")
	b.ReportMetric(k.RevocationLatency.P95*1000, "p95_ms")
	b.ReportMetric(k.RevocationLatency.P99*1000, "p99_ms")
}

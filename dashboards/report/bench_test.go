package report

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/query/querytest"
)

// BenchmarkGenerate times one weekly report over five weeks of generated
// access events (KEYFLEET_BENCH_REPORT_EVENTS, default 1,000,000) plus the
// fixed data set's credentials, revocations and alerts.
//
//	KEYFLEET_BENCH_REPORT_EVENTS=5000000 go test -run '^$' -bench Generate -benchtime 3x ./dashboards/report/
func BenchmarkGenerate(b *testing.B) {
	n := uint64(1_000_000)
	if v := os.Getenv("KEYFLEET_BENCH_REPORT_EVENTS"); v != "" {
		var err error
		n, err = strconv.ParseUint(v, 10, 64)
		require.NoError(b, err)
	}
	conn, _ := testenv.ClickHouse(b)
	ctx := context.Background()
	start := fixtureWeek.Add(-4).Start()
	for off := uint64(0); off < n; off += 500_000 { // in chunks: one insert stays within the client's read timeout
		require.NoError(b, querytest.Load(ctx, conn, querytest.Fleet{Events: min(500_000, n-off), Offset: off, Seed: 1,
			Start: start, Span: 5 * 7 * 24 * time.Hour}))
	}
	loadFixture(b, conn)
	b.ResetTimer()
	for range b.N {
		r, err := Generate(ctx, conn, Query{Week: fixtureWeek, Now: fixtureNow})
		require.NoError(b, err)
		require.Positive(b, r.Current().Events)
	}
	b.ReportMetric(float64(n), "events")
}

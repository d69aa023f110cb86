package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// TestHarnessQuick runs the whole harness on tiny sizes against the real
// services: the real binary as serve, every phase, cleanup. It checks that
// each phase measured something, never how fast (speed is reported by
// `keyfleet bench`, not asserted).
func TestHarnessQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds keyfleet and runs it against real Kafka and ClickHouse")
	}
	bc := testenv.RequireRealKafka(t, 4)
	_, ch := testenv.ClickHouse(t) // skips (or fails under KEYFLEET_TEST_REQUIRE) without ClickHouse
	bin := testenv.KeyfleetBinary(t)

	o := QuickOptions()
	o.Binary, o.KafkaBrokers, o.ClickHouse.Addr = bin, bc.Brokers, ch.Addr
	o.Sites, o.DoorsPerSite, o.Subjects = 2, 20, 100
	o.ThroughputRecords, o.ProfileSeconds = 20_000, 1
	o.Rates, o.RateDuration, o.QueryRate = []float64{2000}, 3*time.Second, 2000
	o.Revocations, o.RevocationSpread, o.QueryRounds = 4, time.Second, 2
	o.GatewayProfile = "matter.latency=20ms,nuki.latency=20ms,schlage.latency=20ms,seam.latency=20ms,legacy.latency=20ms," + noOutages
	o.Timeout, o.Logger = 5*time.Minute, testenv.Logger(t)
	o.BaselineRounds = 1
	res, err := Run(context.Background(), o)
	require.NoError(t, err)

	require.NotNil(t, res.Throughput)
	assert.Positive(t, res.Throughput.RawRecords)
	assert.Positive(t, res.Throughput.Events)
	assert.Positive(t, res.Throughput.ServeCPUPerMillionTotal)
	assert.Positive(t, res.Throughput.PeakRSSMiB)
	require.Len(t, res.Rates, 1)
	assert.Positive(t, res.Rates[0].Sent)
	assert.Positive(t, res.Rates[0].Stored)
	assert.Positive(t, res.Rates[0].Freshness.Count)
	require.NotNil(t, res.Revocation)
	assert.Equal(t, 4, res.Revocation.Revocations)
	assert.Positive(t, res.Revocation.Locks)
	assert.LessOrEqual(t, res.Revocation.Acked, res.Revocation.Locks)
	require.Len(t, res.Queries, 2) // under ingest, idle
	for _, q := range res.Queries[1].Queries {
		assert.NotEqual(t, "errors", q.Status, q.Name)
	}
	assert.Len(t, res.Goals, 8)
	require.NotNil(t, res.Comparison)
	require.Len(t, res.Comparison.Rounds, 2) // baseline, keyfleet
	for _, rd := range res.Comparison.Rounds {
		assert.Positive(t, rd.Events, rd.Kind)
	}
	assert.NotEmpty(t, res.Setup.ClickHousePIDs, "the server listening on the ClickHouse port")
	assert.NotEmpty(t, res.Setup.KafkaPIDs, "the broker listening on the Kafka port")
	assert.Positive(t, res.Serve.PeakRSSMiB)

	var buf bytes.Buffer
	WriteTable(&buf, res)
	for _, s := range []string{"INGEST", "AGAINST THE BASELINE LOOP", "RATE 2000/s", "REVOCATION", "QUERIES idle", "GOALS"} {
		assert.Contains(t, buf.String(), s)
	}
	_, err = json.Marshal(res)
	require.NoError(t, err)

	// The run's database and topics are gone.
	ctx := context.Background()
	conn, err := chstorage.Open(ctx, chstorage.Config{Addr: ch.Addr, Database: "default", Username: "default"})
	require.NoError(t, err)
	defer conn.Close()
	var n uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = ?", res.Setup.Database).Scan(&n))
	assert.Zero(t, n, "database %s left behind", res.Setup.Database)
	assert.True(t, strings.HasPrefix(res.Setup.TopicPrefix, "kfbench."))
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics([]byte(`# HELP x y
# TYPE keyfleet_clickhouse_rows_inserted_total counter
keyfleet_clickhouse_rows_inserted_total{table="access_events"} 1.5e+06
keyfleet_clickhouse_rows_inserted_total{table="dead_letters"} 7
keyfleet_clickhouse_rows_inserted_total_extra 3
lat_bucket{detector="a",le="0.1"} 50
lat_bucket{detector="a",le="1"} 90
lat_bucket{detector="a",le="+Inf"} 100
lat_bucket{detector="b",le="0.1"} 0
lat_bucket{detector="b",le="1"} 10
lat_bucket{detector="b",le="+Inf"} 10
`))
	assert.Equal(t, 1.5e6, m.sum("keyfleet_clickhouse_rows_inserted_total", `table="access_events"`))
	assert.Equal(t, 1.5e6+7, m.sum("keyfleet_clickhouse_rows_inserted_total"))

	h := m.histogram("lat")
	assert.Equal(t, []float64{0.1, 1}, h.bounds[:2])
	assert.Equal(t, 110.0, h.total())
	// 50 of 110 are at or below 0.1 s, 100 at or below 1 s: the median
	// (rank 55) is a tenth into the (0.1, 1] bucket.
	assert.InDelta(t, 190, h.quantile(0.5), 0.1)
	assert.Equal(t, 1000.0, h.quantile(0.99)) // beyond the last finite bound
	prev := parseMetrics([]byte(`lat_bucket{detector="a",le="0.1"} 50
lat_bucket{detector="a",le="1"} 50
lat_bucket{detector="a",le="+Inf"} 50
`)).histogram("lat")
	d := h.minus(prev)
	assert.Equal(t, 60.0, d.total())
	assert.Zero(t, histogram{}.quantile(0.5))
}

func TestDistOf(t *testing.T) {
	f := func(in []float64, want Dist) {
		t.Helper()
		assert.Equal(t, want, distOf(in))
	}
	f(nil, Dist{})
	f([]float64{5}, Dist{Count: 1, P50: 5, P95: 5, P99: 5, Max: 5})
	vs := make([]float64, 100)
	for i := range vs {
		vs[i] = float64(100 - i)
	}
	f(vs, Dist{Count: 100, P50: 51, P95: 96, P99: 100, Max: 100})
}

func TestRates(t *testing.T) {
	assert.Equal(t, 68000.0, roundRate(67_890))
	assert.Equal(t, 950.0, roundRate(951))
	assert.Equal(t, []float64{20_000, 68_000, 100_000}, insertRate([]float64{20_000, 100_000}, 68_000))
	assert.Equal(t, []float64{20_000, 100_000}, insertRate([]float64{20_000, 100_000}, 90_000)) // within 15% of 100k
	assert.Equal(t, []float64{5_000, 20_000, 200_000}, insertRate([]float64{5_000, 20_000}, 200_000))
}

func TestParseRates(t *testing.T) {
	f := func(in string, want []float64, wantErr bool) {
		t.Helper()
		got, err := ParseRates(in)
		if wantErr {
			assert.Error(t, err, in)
			return
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	f("20000,100000", []float64{20_000, 100_000}, false)
	f("20k, 1.5k/s", []float64{20_000, 1500}, false)
	f("", nil, false)
	f("0", nil, true)
	f("-5", nil, true)
	f("fast", nil, true)
}

func TestTimeline(t *testing.T) {
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	tl := newTimeline(func() time.Time { return now }, 1000, 10_001, 4)
	a := tl.next(7_001, 2)
	b := tl.next(3_000, 2)
	require.Len(t, a, 2)
	assert.Equal(t, int64(3500), a[0].count)
	assert.Equal(t, int64(3501), a[1].count)
	all := append(a, b...)
	seeds := map[uint64]bool{}
	for i, s := range all {
		assert.Less(t, s.startMs, s.endMs)
		if i > 0 {
			assert.Equal(t, all[i-1].endMs, s.startMs, "segments follow each other")
		}
		assert.False(t, seeds[s.seed], "distinct seeds")
		seeds[s.seed] = true
	}
	assert.LessOrEqual(t, all[len(all)-1].endMs, now.Add(-time.Hour).UnixMilli(), "every feed lies in the past")

	// More than was planned for: the timeline moves back rather than into
	// the future.
	c := tl.next(50_000, 2)
	assert.Less(t, c[0].startMs, b[1].endMs)
	assert.LessOrEqual(t, c[1].endMs, now.Add(-time.Hour).UnixMilli())
}

func TestParsePprofTop(t *testing.T) {
	text := `File: keyfleet
Type: cpu
Duration: 20.01s, Total samples = 25.34s (126.63%)
Showing nodes accounting for 25.34s, 100% of 25.34s total
      flat  flat%   sum%        cum   cum%
     2.50s  9.87%  9.87%      2.50s  9.87%  runtime.memmove
     1.00s  3.95% 13.82%      9.00s 35.52%  github.com/keyfleet/keyfleet/normalize.(*Stage).Run
     0.50s  1.97% 15.79%      0.60s  2.37%  github.com/keyfleet/keyfleet/internal/event.appendString (inline)
`
	lines, total, dur := parsePprofTop(text)
	require.Len(t, lines, 3)
	assert.InDelta(t, 25.34, total, 1e-9)
	assert.InDelta(t, 20.01, dur, 1e-9)
	assert.Equal(t, pprofLine{fn: "github.com/keyfleet/keyfleet/internal/event.appendString", flat: 1.97, cum: 2.37}, lines[2])
	assert.Equal(t, "memory copies and compares", groupOf(lines[0].fn))
	assert.Equal(t, "JSON and field decoding/encoding", groupOf(lines[2].fn))
	assert.Equal(t, "allocation and garbage collection", groupOf("runtime.mallocgc"))
	assert.Equal(t, "Kafka client (kafka-go, lz4)", groupOf("github.com/pierrec/lz4/v4/internal/lz4block.decodeBlock"))
}

package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/query"
	"github.com/keyfleet/keyfleet/query/querytest"
	"github.com/keyfleet/keyfleet/query/rollup"
)

// Query benchmark configuration (environment):
//
//	KEYFLEET_BENCH_QUERY_EVENTS    events in ClickHouse (default 300000; the performance goal is stated for 30000000)
//	KEYFLEET_BENCH_QUERY_DATABASE  keep the data in this database across runs (loaded once; default: a
//	                               fresh test database, dropped afterwards)
//	KEYFLEET_BENCH_QUERY_INGEST    events/s inserted in the background while measuring (default 0: idle)
//	KEYFLEET_BENCH_QUERY_EXPORT_ROWS  1: exports scan rows through clickhouse-go (the fallback) instead of
//	                               reading native blocks with ch-go
//
// The fleet: 20 sites × 50 doors, 20,000 subjects, events spread over the
// last 90 days.
//
//	go test ./bench -run '^$' -bench Query -benchtime 200x
//	KEYFLEET_BENCH_QUERY_EVENTS=30000000 KEYFLEET_BENCH_QUERY_DATABASE=kfbench_query go test ./bench -run '^$' -bench Query -benchtime 200x -timeout 60m
func envInt(name string, def int64) int64 {
	if v, err := strconv.ParseInt(os.Getenv(name), 10, 64); err == nil {
		return v
	}
	return def
}

type queryBench struct {
	conn  driver.Conn
	base  string
	token string
	now   time.Time
}

type nopAudit struct{}

func (nopAudit) Append(context.Context, audit.Entry) error { return nil }

func setupQueryBench(b *testing.B) *queryBench {
	b.Helper()
	ctx := context.Background()
	n := uint64(envInt("KEYFLEET_BENCH_QUERY_EVENTS", 300_000))
	var conn driver.Conn
	var cfg chstorage.Config
	if db := os.Getenv("KEYFLEET_BENCH_QUERY_DATABASE"); db != "" {
		cfg = chstorage.Config{Addr: testenv.ClickHouseAddr(), Database: db, Username: "default"}
		c, err := chstorage.Open(ctx, cfg)
		require.NoError(b, err)
		b.Cleanup(func() { c.Close() })
		require.NoError(b, chstorage.Migrate(ctx, c, testenv.Logger(b)))
		conn = c
	} else {
		conn, cfg = testenv.ClickHouse(b)
	}
	// Exports read native blocks (ch-go) unless told to scan rows through conn.
	native := &cfg
	if os.Getenv("KEYFLEET_BENCH_QUERY_EXPORT_ROWS") == "1" {
		native = nil
	}
	now := time.Now().UTC()
	var have uint64
	require.NoError(b, conn.QueryRow(ctx, "SELECT count() FROM access_events").Scan(&have))
	if have < n {
		start := time.Now()
		const step = 5_000_000
		for off := have; off < n; off += step {
			cnt := min(step, n-off)
			require.NoError(b, querytest.Load(ctx, conn, querytest.Fleet{Events: cnt, Offset: off,
				Start: now.Add(-90 * 24 * time.Hour), Span: 90 * 24 * time.Hour, Subjects: 20000, Sites: 20, Doors: 50}))
		}
		b.Logf("loaded %d events in %s", n-have, time.Since(start).Round(time.Millisecond))
	}
	// serve runs the rollup job every 10 s; here once to catch up, then
	// again past the slack so the load's marks count as rolled up.
	roll, err := rollup.New(rollup.Options{Conn: conn, Logger: testenv.Logger(b)})
	require.NoError(b, err)
	start := time.Now()
	require.NoError(b, roll.RunOnce(ctx))
	b.Logf("rollup catch-up in %s", time.Since(start).Round(time.Millisecond))
	time.Sleep(rollup.Slack + time.Second)
	require.NoError(b, roll.RunOnce(ctx))
	store := auth.NewStore(conn, testenv.Logger(b))
	require.NoError(b, store.Load(ctx))
	secret, _, err := store.Create(ctx, "bench", httpapi.RoleAdmin)
	require.NoError(b, err)
	svc, err := query.New(query.Options{Conn: conn, ClickHouse: native, Audit: nopAudit{}, ExportKey: []byte("bench-export-key-0123456789"),
		Timeout: 30 * time.Second, ExportMaxRows: 100_000_000})
	require.NoError(b, err)
	srv, err := httpapi.New(httpapi.Options{Auth: store, Logger: testenv.Logger(b)}, svc.Routes())
	require.NoError(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = srv.Serve(sctx, ln); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	if rate := envInt("KEYFLEET_BENCH_QUERY_INGEST", 0); rate > 0 {
		ictx, stop := context.WithCancel(ctx)
		idone := make(chan struct{})
		go func() {
			defer close(idone)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for off := uint64(1 << 40); ictx.Err() == nil; off += uint64(rate) {
				_ = querytest.Load(ictx, conn, querytest.Fleet{Events: uint64(rate), Offset: off, Seed: 9,
					Start: time.Now().Add(-time.Hour), Span: time.Hour, Subjects: 20000, Sites: 20, Doors: 50})
				select {
				case <-ictx.Done():
				case <-t.C:
				}
			}
		}()
		b.Cleanup(func() { stop(); <-idone })
	}
	return &queryBench{conn: conn, base: "http://" + ln.Addr().String(), token: secret, now: now}
}

func (q *queryBench) get(b *testing.B, path string) (time.Duration, int64) {
	req, err := http.NewRequest("GET", q.base+path, nil)
	require.NoError(b, err)
	req.Header.Set("Authorization", "Bearer "+q.token)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.NoError(b, err)
	require.Equal(b, 200, resp.StatusCode, path)
	return time.Since(start), n
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

// BenchmarkQueryAPI measures p50/p95 latency of the analyst's common
// queries through the HTTP API (in-process server on loopback, real
// ClickHouse), each request with a random subject, door or site.
func BenchmarkQueryAPI(b *testing.B) {
	q := setupQueryBench(b)
	rng := rand.New(rand.NewPCG(1, 2))
	cases := []struct {
		name string
		path func() string
	}{
		{"subject_30d", func() string {
			return fmt.Sprintf("/v1/events?subject=%s&from=now-30d&limit=100", querytest.Subject(rng.Uint64N(20000)))
		}},
		{"door_1d", func() string {
			s := rng.Uint64N(20)
			return fmt.Sprintf("/v1/events?door=%s&from=now-1d&limit=100", querytest.Door(s, rng.Uint64N(50)))
		}},
		{"site_summary_hourly_7d", func() string {
			return fmt.Sprintf("/v1/events/summary?site=%s&bucket=hour&by=outcome&from=now-7d", querytest.Site(rng.Uint64N(20)))
		}},
		{"fleet_summary_hourly_7d", func() string {
			return "/v1/events/summary?bucket=hour&by=action&from=now-7d"
		}},
		{"top_denied_subjects_30d", func() string {
			return "/v1/events/summary?outcome=denied&by=subject&bucket=all&top=10&from=now-30d"
		}},
		{"top_denied_subjects_30d_daily", func() string {
			return "/v1/events/summary?outcome=denied&by=subject&bucket=day&top=10&from=now-30d"
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			q.get(b, c.path()) // warm
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				d, _ := q.get(b, c.path())
				lat = append(lat, d)
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.5).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(percentile(lat, 0.95).Microseconds())/1000, "p95-ms")
		})
	}
}

// BenchmarkQueryExport measures export throughput (rows/s) per format over
// the last N days (KEYFLEET_BENCH_QUERY_EXPORT_DAYS, default 3).
func BenchmarkQueryExport(b *testing.B) {
	q := setupQueryBench(b)
	days := envInt("KEYFLEET_BENCH_QUERY_EXPORT_DAYS", 3)
	from := q.now.Add(-time.Duration(days) * 24 * time.Hour).UnixMilli()
	to := q.now.UnixMilli()
	var rows uint64
	require.NoError(b, q.conn.QueryRow(context.Background(),
		"SELECT uniqExact(event_id) FROM access_events WHERE ts_ms >= ? AND ts_ms < ?", from, to).Scan(&rows))
	for _, format := range []string{"csv", "arrow", "parquet"} {
		b.Run(format, func(b *testing.B) {
			var total time.Duration
			var bytes int64
			cpu := processCPU(b)
			for i := 0; i < b.N; i++ {
				d, n := q.get(b, fmt.Sprintf("/v1/export/events?format=%s&from=%d&to=%d", format, from, to))
				total += d
				bytes += n
			}
			cpu = processCPU(b) - cpu
			b.ReportMetric(float64(rows)*float64(b.N)/total.Seconds(), "rows/s")
			b.ReportMetric(float64(bytes)/float64(b.N)/float64(rows), "bytes/row")
			// This process's CPU time (serve's side and the HTTP client's),
			// ClickHouse's not included: what a row costs whatever the load.
			b.ReportMetric(float64(cpu.Microseconds())/float64(b.N)/float64(rows), "cpu-µs/row")
		})
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

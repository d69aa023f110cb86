// Package bench measures keyfleet end to end: the real `keyfleet serve`
// binary as a separate process, real Kafka and ClickHouse.
package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// BenchmarkIngestEndToEnd pre-fills lock.events.raw with b.N matter events,
// starts keyfleet serve and times raw topic → rows in ClickHouse. Reports
// events/s (sustained, from first to last stored row).
//
//	go test ./bench -run '^$' -bench IngestEndToEnd -benchtime 2000000x
func BenchmarkIngestEndToEnd(b *testing.B) {
	cfg := testenv.RequireRealKafka(b, 4)
	conn, ch := testenv.ClickHouse(b)
	bin := testenv.KeyfleetBinary(b)
	n := b.N
	fill(b, cfg, n)

	httpAddr := testenv.FreeAddr(b)
	cmd := exec.Command(bin, "serve", "--kafka-brokers", strings.Join(cfg.Brokers, ","), "--topic-prefix", cfg.TopicPrefix,
		"--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database, "--http-addr", httpAddr,
		"--data-dir", b.TempDir(), "--access-log=false", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "KEYFLEET_PSEUDONYM_KEY=bench-pseudonym-key-0123456789", "KEYFLEET_BOOTSTRAP_TOKEN=bench-admin-token-0123456789abcdefgh",
		"KEYFLEET_AUDIT_KEY=bench-audit-key-0123456789abcdefghijklmn")
	cmd.Stderr = os.Stderr
	b.ResetTimer()
	start := time.Now()
	require.NoError(b, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	ctx := context.Background()
	if path := os.Getenv("KEYFLEET_BENCH_CPUPROFILE"); path != "" {
		go captureProfile(b, "http://"+httpAddr, path)
	}
	var stored uint64
	for stored < uint64(n) {
		time.Sleep(200 * time.Millisecond)
		require.NoError(b, conn.QueryRow(ctx, "SELECT count() FROM access_events").Scan(&stored))
		require.Less(b, time.Since(start), 10*time.Minute, "stalled at %d of %d", stored, n)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var first, last int64
	require.NoError(b, conn.QueryRow(ctx, "SELECT min(inserted_ms), max(inserted_ms) FROM access_events").Scan(&first, &last))
	var cpu string
	if out, err := exec.Command("ps", "-o", "cputime=", "-p", fmt.Sprint(cmd.Process.Pid)).Output(); err == nil {
		cpu = strings.TrimSpace(string(out))
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "events/s")
	if last > first {
		b.ReportMetric(float64(n)/(float64(last-first)/1000), "sustained-events/s")
	}
	b.Logf("%d events in %s (incl. start-up); keyfleet CPU %s", n, elapsed.Round(time.Millisecond), cpu)
}

func fill(b *testing.B, cfg bus.Config, n int) {
	w := bus.NewWriter(cfg, bus.TopicRaw)
	defer w.Close()
	ctx := context.Background()
	base := time.Now().Add(-24 * time.Hour).UnixMilli()
	msgs := make([]kafka.Message, 0, 20000)
	for i := 0; i < n; i++ {
		node := i % 997
		p := fmt.Sprintf(`{"nodeId":"0x%06X","endpointId":1,"clusterId":257,"eventName":"LockOperation","eventNumber":%d,"timestampMs":%d,"priority":"info","data":{"lockOperationType":1,"operationSource":10,"userIndex":%d,"fabricIndex":1,"credentials":[{"credentialType":7,"credentialIndex":%d}]}}`,
			node, i, base+int64(i), i%40, i%40)
		raw := event.NewRaw("matter", base+int64(i), []byte(p))
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("0x%06X", node)), Value: raw.AppendJSON(nil)})
		if len(msgs) == cap(msgs) || i == n-1 {
			require.NoError(b, w.WriteMessages(ctx, msgs...))
			msgs = msgs[:0]
		}
	}
}

// captureProfile saves a 20 s CPU profile of the running keyfleet.
func captureProfile(b *testing.B, base, path string) {
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest("GET", base+"/debug/pprof/profile?seconds=20", nil)
		req.Header.Set("Authorization", "Bearer bench-admin-token-0123456789abcdefgh")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err != nil {
			b.Logf("profile: %v", err)
			return
		}
		defer f.Close()
		_, _ = io.Copy(f, resp.Body)
		return
	}
}

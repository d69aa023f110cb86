// Package integration runs the real keyfleet binary against the real services
// `make test` starts: ClickHouse and an Apache Kafka broker.
package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/keyfleet once per test run (or uses KEYFLEET_BIN).
func binary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("KEYFLEET_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "keyfleet-bin-")
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

// proc is a running keyfleet serve.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	http  string
	token string
	logs  *testenv.SyncBuffer
	done  chan struct{}
}

type serveOpts struct {
	bus        bus.Config
	clickhouse string
	database   string
	extra      []string
	env        []string
}

const testToken = "integration-admin-token-0123456789abcdef"

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// startServe starts `keyfleet serve` and waits until /readyz answers 200.
func startServe(t *testing.T, o serveOpts) *proc {
	t.Helper()
	httpAddr := freePort(t)
	args := []string{"serve",
		"--http-addr", httpAddr,
		"--clickhouse-addr", o.clickhouse,
		"--clickhouse-database", o.database,
		"--data-dir", t.TempDir(),
		"--clickhouse-flush-interval", "200ms",
		"--access-log=false",
	}
	if len(o.bus.Brokers) > 0 {
		args = append(args, "--kafka-brokers", strings.Join(o.bus.Brokers, ","), "--topic-prefix", o.bus.TopicPrefix)
	}
	args = append(args, o.extra...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "KEYFLEET_BOOTSTRAP_TOKEN="+testToken,
		"KEYFLEET_PSEUDONYM_KEY=integration-test-pseudonym-key", "KEYFLEET_AUDIT_KEY=integration-test-audit-key-0123456789abcdef")
	cmd.Env = append(cmd.Env, o.env...)
	logs := &testenv.SyncBuffer{}
	cmd.Stdout = logs
	cmd.Stderr = logs
	require.NoError(t, cmd.Start())
	p := &proc{t: t, cmd: cmd, http: "http://" + httpAddr, token: testToken, logs: logs, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("keyfleet serve output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("keyfleet serve exited early:\n%s", logs.String())
		default:
		}
		if resp, err := http.Get(p.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("keyfleet serve not ready within 60s:\n%s", logs.String())
	return nil
}

// kill stops the process abruptly (SIGKILL): no flush, no commit.
func (p *proc) kill() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
}

// stop stops the process gracefully (SIGTERM) and waits.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Errorf("keyfleet serve did not stop within 60s after SIGTERM")
		p.kill()
	}
}

func (p *proc) do(method, path, contentType string, body io.Reader, token string) (*http.Response, []byte) {
	p.t.Helper()
	req, err := http.NewRequest(method, p.http+path, body)
	require.NoError(p.t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(p.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(p.t, err)
	return resp, b
}

// matterPayload is one Matter LockOperation event with a unique event number.
func matterPayload(node int, n int, tsMs int64) []byte {
	return []byte(fmt.Sprintf(`{"nodeId":"0x%04X","endpointId":1,"clusterId":257,"eventName":"LockOperation","eventNumber":%d,"timestampMs":%d,"priority":"info","data":{"lockOperationType":1,"operationSource":10,"userIndex":%d,"fabricIndex":1,"credentials":[{"credentialType":7,"credentialIndex":%d}]}}`,
		node, n, tsMs, n%50, n%50))
}

// produceMatter writes n matter events (event numbers from..from+n-1) to the raw topic.
func produceMatter(t *testing.T, cfg bus.Config, from, n int, baseMs int64) {
	t.Helper()
	w := bus.NewWriter(cfg, bus.TopicRaw)
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const chunk = 10000
	msgs := make([]kafka.Message, 0, chunk)
	for i := from; i < from+n; i++ {
		node := i % 97
		raw := event.NewRaw("matter", baseMs+int64(i), matterPayload(node, i, baseMs+int64(i)*10))
		msgs = append(msgs, kafka.Message{Key: []byte(fmt.Sprintf("0x%04X", node)), Value: raw.AppendJSON(nil)})
		if len(msgs) == chunk || i == from+n-1 {
			require.NoError(t, w.WriteMessages(ctx, msgs...))
			msgs = msgs[:0]
		}
	}
}

// countEvents returns the dedup-safe number of stored access events.
func countEvents(t *testing.T, conn driver.Conn, where string) uint64 {
	t.Helper()
	var n uint64
	q := "SELECT uniqExact(event_id) FROM access_events"
	if where != "" {
		q += " WHERE " + where
	}
	require.NoError(t, conn.QueryRow(context.Background(), q).Scan(&n))
	return n
}

func waitCount(t *testing.T, conn driver.Conn, where string, want uint64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var got uint64
	for time.Now().Before(deadline) {
		if got = countEvents(t, conn, where); got >= want {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	require.Equal(t, want, got, "stored events (dedup-safe)")
}

func metricValue(t *testing.T, p *proc, name string) float64 {
	t.Helper()
	_, body := p.do("GET", "/metrics", "", nil, p.token)
	var total float64
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			require.NoError(t, err)
			total += v
		}
	}
	return total
}

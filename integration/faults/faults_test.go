package faults

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// How long each fault lasts (the numbers where it gives them).
const (
	clickHouseOutage = 30 * time.Second
	kafkaOutage      = 20 * time.Second
	slowFor          = 20 * time.Second
	slowBy           = 150 * time.Millisecond
	diskFullFor      = 10 * time.Second
	warm             = 5 * time.Second // workload before the fault
	tail             = 5 * time.Second // ... and after it
)

// sharedArgs are serve's flags for the shared broker and ClickHouse server.
func sharedArgs(bc bus.Config, chAddr, database string) []string {
	return []string{"--kafka-brokers", strings.Join(bc.Brokers, ","), "--topic-prefix", bc.TopicPrefix,
		"--clickhouse-addr", chAddr, "--clickhouse-database", database}
}

// revokeSoon revokes subject, retrying until serve acknowledges it.
func (s *scenario) revokeSoon(subject string) {
	require.Eventually(s.t, func() bool { return s.revoke(subject) }, time.Minute, time.Second,
		"revoking %s once the fault is over", subject)
	s.sinceOver("a revocation acknowledged")
}

// ClickHouse unreachable for 30 s while events, alerts and revocations
// flow: serve holds, says so, and catches up.
func TestClickHouseDown(t *testing.T) {
	t.Parallel()
	bc := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	proxy := testenv.NewProxy(t, ch.Addr)
	s := newScenario(t, conn, bc, sharedArgs(bc, proxy.Addr(), ch.Database)...)
	pid := s.serve.pid()
	s.startWorkload()
	require.True(t, s.revoke(s.subjects[0]))
	bus.Wait(context.Background(), warm)

	proxy.Cut()
	cut := time.Now()
	s.waitUnready("clickhouse", 30*time.Second)
	s.revoke(s.subjects[1]) // the audit log is in ClickHouse: refused, or acknowledged once it is back
	bus.Wait(context.Background(), time.Until(cut.Add(clickHouseOutage)))
	s.requireRunning(pid)
	proxy.Restore()
	s.faultOver()

	s.revokeSoon(s.subjects[2])
	bus.Wait(context.Background(), tail)
	s.finish()
	s.logSamples()
	s.requireRunning(pid)
	assert.True(t, s.sawUnready("clickhouse"), "/readyz said 503 naming clickhouse during the outage")
	s.verify()
}

// The Kafka broker stops and starts again (a private broker; the shared
// one is never restarted): serve rides it out and loses nothing it
// acknowledged.
func TestKafkaBrokerRestart(t *testing.T) {
	t.Parallel()
	if !testenv.RealKafka() {
		skipOrFail(t, "a real Kafka broker (KEYFLEET_TEST_KAFKA_BROKERS; its jars start the private one)")
	}
	dir := t.TempDir()
	port := freePortPair(t)
	broker := func(args ...string) {
		t.Helper()
		cmd := exec.Command(filepath.Join(repoRoot(), "scripts", "kafka.sh"), args...)
		cmd.Env = append(os.Environ(), fmt.Sprintf("KEYFLEET_KAFKA_OWNER_PID=%d", os.Getpid())) // dies with the test binary
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "scripts/kafka.sh %s:\n%s", strings.Join(args, " "), out)
	}
	broker("start-private", dir, fmt.Sprint(port))
	t.Cleanup(func() { broker("stop-private", dir, "--kill") })
	bc := bus.Config{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", port)}, TopicPrefix: "faults.", Partitions: 4}
	conn, ch := testenv.ClickHouse(t)
	s := newScenario(t, conn, bc, sharedArgs(bc, ch.Addr, ch.Database)...)
	pid := s.serve.pid()
	s.startWorkload()
	require.True(t, s.revoke(s.subjects[0]))
	bus.Wait(context.Background(), warm)

	broker("stop-private", dir)
	down := time.Now()
	s.waitUnready("kafka", 30*time.Second)
	s.revoke(s.subjects[1]) // queued on Kafka: refused while it is away
	bus.Wait(context.Background(), time.Until(down.Add(kafkaOutage)))
	s.requireRunning(pid)
	broker("start-private", dir, fmt.Sprint(port))
	s.faultOver()

	s.revokeSoon(s.subjects[2])
	bus.Wait(context.Background(), tail)
	s.finish()
	s.logSamples()
	s.requireRunning(pid)
	assert.True(t, s.sawUnready("kafka"), "/readyz said 503 naming kafka while the broker was down")
	s.verify()
}

// serve killed with SIGKILL mid-stream (no flush, no commit) and started
// again: nothing acknowledged is lost or doubled.
func TestServeKilled(t *testing.T) {
	t.Parallel()
	bc := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	s := newScenario(t, conn, bc, sharedArgs(bc, ch.Addr, ch.Database)...)
	pid := s.serve.pid()
	s.startWorkload()
	require.True(t, s.revoke(s.subjects[0]))
	bus.Wait(context.Background(), warm)

	s.serve.kill()
	require.False(t, s.serve.running())
	s.faultOver()
	s.serve.start()
	require.NotEqual(t, pid, s.serve.pid())
	s.sinceOver("restarted serve ready (its first /readyz 200)")

	s.revokeSoon(s.subjects[1])
	bus.Wait(context.Background(), tail)
	s.finish()
	s.logSamples()
	s.requireRunning(s.serve.pid())
	s.verify()
}

// A record no stage can process lands in every topic serve consumes: each
// is dead-lettered with a reason (lock.events.dlq's own is stored as it
// is), the stages go on, and readiness never wavers. serve runs with
// --access-events topic, the only mode in which it consumes access.events
// (its detectors read it; by default they are fed in-process by the one
// pass, and the poison on lock.events.raw covers that path).
func TestPoisonRecords(t *testing.T) {
	t.Parallel()
	bc := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	s := newScenario(t, conn, bc, append(sharedArgs(bc, ch.Addr, ch.Database), "--access-events", "topic")...)
	pid := s.serve.pid()
	s.startWorkload()
	bus.Wait(context.Background(), warm)

	topics := []string{bus.TopicRaw, bus.TopicAccess, bus.TopicDLQ, bus.TopicAlerts, bus.TopicCredentialEvents,
		bus.TopicControlCommands, bus.TopicLockAcks, bus.TopicLockRegistry, bus.TopicIdentityWrites, bus.TopicIdentityChanges}
	poison := map[string][]byte{}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, topic := range topics {
		w := bus.NewWriter(bc, topic)
		poison[topic] = []byte("\x00poison for " + topic + "\xff{not json")
		require.NoError(t, w.WriteMessages(ctx, kafka.Message{Key: []byte("poison"), Value: poison[topic]}))
		require.NoError(t, w.Close())
	}
	require.True(t, s.revoke(s.subjects[0]))
	bus.Wait(context.Background(), tail)
	s.revokeSoon(s.subjects[1])
	bus.Wait(context.Background(), tail)
	s.finish()
	s.logSamples()
	s.requireRunning(pid)
	s.verify()

	// Every poison record is in dead_letters: with the stage's reason and
	// its source position, or (the DLQ's own) as it was.
	type row struct{ reason, source string }
	var got map[string]row
	require.Eventually(t, func() bool {
		got = map[string]row{}
		rows, err := conn.Query(ctx, "SELECT payload_sha256, reason, source FROM dead_letters FINAL")
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var sum, reason, source string
			require.NoError(t, rows.Scan(&sum, &reason, &source))
			got[sum] = row{reason, source}
		}
		for _, v := range poison {
			if _, ok := got[sha(v)]; !ok {
				return false
			}
		}
		return true
	}, 2*time.Minute, time.Second, "every poison record dead-lettered")
	for topic, v := range poison {
		r := got[sha(v)]
		if topic == bus.TopicDLQ {
			continue
		}
		assert.NotEmpty(t, r.reason, topic)
		assert.True(t, strings.HasPrefix(r.source, bc.Topic(topic)+"/"), "%s: source %q", topic, r.source)
		t.Logf("poison on %s: dead-lettered as %s (%s)", topic, r.reason, r.source)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range s.samples {
		assert.NotEqual(t, http.StatusServiceUnavailable, x.code, "/readyz at %s: %+v", x.at.Format(time.TimeOnly), x.r)
	}
}

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ClickHouse answers slowly (every chunk either way held 150 ms) for 20 s.
func TestSlowClickHouse(t *testing.T) {
	t.Parallel()
	bc := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	proxy := testenv.NewProxy(t, ch.Addr)
	s := newScenario(t, conn, bc, sharedArgs(bc, proxy.Addr(), ch.Database)...)
	pid := s.serve.pid()
	s.startWorkload()
	bus.Wait(context.Background(), warm)

	proxy.SetLatency(slowBy)
	s.revoke(s.subjects[0]) // slow, but it may well be acknowledged
	bus.Wait(context.Background(), slowFor)
	proxy.SetLatency(0)
	s.faultOver()

	s.revokeSoon(s.subjects[1])
	bus.Wait(context.Background(), tail)
	s.finish()
	s.logSamples()
	s.requireRunning(pid)
	s.verify()
}

// The embedded broker's data dir fills up (a 64 MiB tmpfs; root only):
// ingest refuses with 503 instead of acknowledging, readiness names Kafka,
// and once there is room again everything acknowledged is stored.
func TestEmbeddedBrokerDiskFull(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs as the embedded broker's data dir")
	}
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.MkdirAll(dir, 0o750))
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): the disk-full scenario needs CAP_SYS_ADMIN", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	conn, ch := testenv.ClickHouse(t)
	kafkaAddr := testenv.FreeAddr(t)
	bc := bus.Config{Brokers: []string{kafkaAddr}, Partitions: 2}
	s := newScenario(t, conn, bc, "--embedded-kafka-addr", kafkaAddr, "--data-dir", dir, "--topic-partitions", "2",
		"--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database)
	pid := s.serve.pid()
	s.startWorkload()
	require.True(t, s.revoke(s.subjects[0]))
	bus.Wait(context.Background(), warm)

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	full := time.Now()
	s.waitUnready("kafka", 30*time.Second)
	bus.Wait(context.Background(), time.Until(full.Add(diskFullFor)))
	s.requireRunning(pid)
	require.NoError(t, os.Remove(filler))
	s.faultOver()

	s.revokeSoon(s.subjects[1])
	bus.Wait(context.Background(), tail)
	s.finish()
	s.logSamples()
	s.requireRunning(pid)
	assert.True(t, s.sawUnready("kafka"), "/readyz said 503 naming kafka while its disk was full")
	s.verify()
}

// fill writes path until the file system is full.
func fill(t *testing.T, path string) {
	f, err := os.Create(path)
	require.NoError(t, err)
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for {
		if _, err := f.Write(chunk); err != nil {
			require.True(t, errors.Is(err, syscall.ENOSPC), "fill: %v", err)
			return
		}
	}
}

// freePortPair returns a loopback port p with p+1 free too (a broker and
// its controller), below Linux's ephemeral range (32768 and up), so that no
// outgoing connection takes one while the broker is down for its restart.
func freePortPair(t *testing.T) int {
	for range 200 {
		p := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		ln2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1))
		ln.Close()
		if err == nil {
			ln2.Close()
			return p
		}
	}
	t.Fatal("no free pair of loopback ports")
	return 0
}

func skipOrFail(t *testing.T, what string) {
	if os.Getenv("KEYFLEET_TEST_REQUIRE") == "1" {
		t.Fatalf("%s is required (KEYFLEET_TEST_REQUIRE=1)", what)
	}
	t.Skipf("%s unavailable (make services)", what)
}

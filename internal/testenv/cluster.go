package testenv

import (
	"context"
	"fmt"
	"log/slog"
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
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// The ClickHouse cluster of scripts/clickhouse-cluster.sh, which `make test`
// starts and names in:
//
//	KEYFLEET_TEST_CLICKHOUSE_CLUSTER_ADDRS  the nodes' native addresses, comma-separated
//	                                        (127.0.0.1:19101,127.0.0.1:19102)
//	KEYFLEET_TEST_CLICKHOUSE_CLUSTER        the cluster's name (default keyfleet:
//	                                        1 shard × 2 replicas)

// ClickHouseClusterAddrs returns the cluster nodes' addresses ("" when no
// cluster is configured).
func ClickHouseClusterAddrs() string { return os.Getenv("KEYFLEET_TEST_CLICKHOUSE_CLUSTER_ADDRS") }

// ClickHouseClusterName returns the cluster's name.
func ClickHouseClusterName() string {
	if n := os.Getenv("KEYFLEET_TEST_CLICKHOUSE_CLUSTER"); n != "" {
		return n
	}
	return "keyfleet"
}

// ClickHouseClusterConfig returns a cluster-mode config with a database of
// the test's own (not created yet), dropped on every node when the test
// ends. It skips the test (fails it under KEYFLEET_TEST_REQUIRE=1) when no
// cluster is configured.
func ClickHouseClusterConfig(t testing.TB) chstorage.Config {
	t.Helper()
	addrs := ClickHouseClusterAddrs()
	if addrs == "" {
		unavailable(t, "a ClickHouse cluster (KEYFLEET_TEST_CLICKHOUSE_CLUSTER_ADDRS)", nil)
	}
	cfg := chstorage.Config{Addr: addrs, Database: "kftest_" + ID(), Username: "default",
		Cluster: ClickHouseClusterName()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		conn, err := chstorage.Open(ctx, chstorage.Config{Addr: addrs, Database: "default", Username: "default"})
		if err != nil {
			t.Logf("drop cluster database %s: %v", cfg.Database, err)
			return
		}
		defer conn.Close()
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database+" ON CLUSTER "+cfg.Cluster); err != nil {
			t.Logf("drop cluster database %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

// ClickHouseCluster creates a fresh database on the cluster with keyfleet's
// schema migrated in cluster mode (X_local replicated on every node, X
// Distributed) and returns a connection to it (all nodes' addresses, in
// order) and its config.
func ClickHouseCluster(t testing.TB) (driver.Conn, chstorage.Config) {
	t.Helper()
	cfg := ClickHouseClusterConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := chstorage.Open(ctx, cfg)
	if err != nil {
		unavailable(t, "ClickHouse cluster at "+cfg.Addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	require.NoError(t, chstorage.Migrate(ctx, conn, slog.New(slog.DiscardHandler)))
	return conn, cfg
}

// StopClusterNode stops node n (1 or 2) of scripts/clickhouse-cluster.sh's
// cluster and returns a function that starts it again (and waits until it
// answers); the test's cleanup starts it too if the test did not. Tests in
// other packages share the cluster and `go test ./...` runs packages at
// once, so a process-wide lock (a file lock in the temp dir) keeps two tests
// from stopping nodes at the same time: the second waits until the first
// started its node again. A test that merely uses the cluster meanwhile sees
// reads and writes fail over, and ON CLUSTER DDL wait for the node.
func StopClusterNode(t testing.TB, n int) (start func()) {
	t.Helper()
	lock, err := os.OpenFile(filepath.Join(os.TempDir(), "keyfleet-clickhouse-cluster-node.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	require.NoError(t, syscall.Flock(int(lock.Fd()), syscall.LOCK_EX))
	script := filepath.Join(repoRoot(t), "scripts", "clickhouse-cluster.sh")
	run := func(args ...string) error {
		out, err := exec.Command(script, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("clickhouse-cluster.sh %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	var once sync.Once
	start = func() {
		once.Do(func() {
			err := run("start-node", strconv.Itoa(n))
			_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
			lock.Close()
			require.NoError(t, err)
		})
	}
	t.Cleanup(start)
	require.NoError(t, run("stop-node", strconv.Itoa(n)))
	return start
}

// repoRoot is the directory of the module's go.mod above the working directory.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "scripts", "clickhouse-cluster.sh")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "repository root (scripts/clickhouse-cluster.sh) not found")
		dir = parent
	}
}

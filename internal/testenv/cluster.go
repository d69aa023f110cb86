package testenv

import (
	"context"
	"log/slog"
	"os"
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

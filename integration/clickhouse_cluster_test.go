package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// keyfleet serve in cluster mode (--clickhouse-cluster, both nodes'
// addresses) on the two-node cluster of scripts/clickhouse-cluster.sh: it
// migrates a fresh database (X_local replicated on both nodes, X
// Distributed), becomes ready, and what it ingests (over HTTP, a record sent
// twice, and from Kafka) is stored once, on both replicas.
func TestServeOnClickHouseCluster(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 2)
	ch := testenv.ClickHouseClusterConfig(t)
	p := startServe(t, serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database,
		extra: []string{"--clickhouse-cluster", ch.Cluster}})

	ts := time.Now().Add(-time.Minute).UnixMilli()
	one := func(n int) string { return string(matterPayload(7, n, ts+int64(n))) }
	resp, body := p.do("POST", "/v1/ingest/matter", "application/json",
		strings.NewReader("["+one(1)+","+one(2)+","+one(3)+"]"), p.token)
	require.Equal(t, 202, resp.StatusCode, string(body))
	resp, body = p.do("POST", "/v1/ingest/matter", "application/json", strings.NewReader(one(3)), p.token)
	require.Equal(t, 202, resp.StatusCode, string(body))
	base := time.Now().Add(-time.Hour).UnixMilli()
	produceMatter(t, cfg, 100, 2000, base)

	ctx := context.Background()
	conn, err := chstorage.Open(ctx, ch)
	require.NoError(t, err)
	defer conn.Close()
	waitCount(t, conn, "", 2003, 2*time.Minute)

	// Both replicas hold every event.
	for _, addr := range ch.Addrs() {
		node, err := chstorage.Open(ctx, chstorage.Config{Addr: addr, Database: ch.Database, Username: "default"})
		require.NoError(t, err)
		require.NoError(t, node.Exec(ctx, "SYSTEM SYNC REPLICA access_events_local"))
		var n uint64
		require.NoError(t, node.QueryRow(ctx, "SELECT count() FROM access_events_local FINAL").Scan(&n))
		assert.Equal(t, uint64(2003), n, "node %s", addr)
		node.Close()
	}
	resp, body = p.do("GET", "/readyz", "", nil, "")
	assert.Equal(t, 200, resp.StatusCode, string(body))
}

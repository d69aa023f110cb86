package chstorage_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/pipeline"
)

// The tests below run on the two-node cluster of scripts/clickhouse-cluster.sh
// (`make test` starts it): 1 shard × 2 replicas, named keyfleet.

// nodeConns opens one single-server connection per cluster node, to look at
// each node's own tables.
func nodeConns(t *testing.T, cfg chstorage.Config) []driver.Conn {
	t.Helper()
	var out []driver.Conn
	for _, a := range cfg.Addrs() {
		c, err := chstorage.Open(context.Background(), chstorage.Config{Addr: a, Database: "default", Username: "default"})
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		out = append(out, c)
	}
	return out
}

// TestClusterMigrate: on a fresh database, migrations apply from two
// instances at once, and again; every table is X_local (Replicated) on every
// node and X (Distributed over it); schema_migrations is shared. The
// migrations include h/dims' column migrations (test fixtures), folded into
// the CREATEs; run again statement by statement (as after a stop before
// their record), they change nothing.
func TestClusterMigrate(t *testing.T) {
	cfg := testenv.ClickHouseClusterConfig(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ms, err := chstorage.Migrations()
	require.NoError(t, err)
	fixtures := clusterFixtures(t)

	// Two instances starting at once, each on its own node.
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, addr := range cfg.Addrs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.Addr = addr
			conn, err := chstorage.Open(ctx, c)
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close()
			errs[i] = chstorage.MigrateWith(ctx, conn, fixtures...)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	t.Logf("fresh database migrated by two instances at once in %s", time.Since(start).Round(time.Millisecond))

	conn, err := chstorage.Open(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close()
	assert.Equal(t, cfg.Cluster, chstorage.ClusterOf(conn))
	start = time.Now()
	require.NoError(t, chstorage.MigrateWith(ctx, conn, fixtures...), "again")
	t.Logf("again (nothing pending) in %s", time.Since(start).Round(time.Millisecond))
	n, err := chstorage.Pending(ctx, conn)
	require.NoError(t, err)
	assert.Zero(t, n)
	var versions uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT uniqExact(version) FROM schema_migrations").Scan(&versions))
	assert.Equal(t, uint64(len(ms)+len(fixtures)), versions)
	start = time.Now()
	for _, m := range fixtures {
		require.NoError(t, chstorage.ReapplyOnCluster(ctx, conn, m), "%04d again, statement by statement", m.Version)
	}
	t.Logf("the column migrations again, statement by statement, in %s", time.Since(start).Round(time.Millisecond))

	want := fixtureColumns(t, fixtures)
	for _, tb := range []chstorage.Table{chstorage.Alerts, chstorage.SchemaMigrations} {
		want[tb.Name] = tb.ColumnNames()
	}
	for i, node := range nodeConns(t, cfg) {
		engines := map[string]string{}
		rows, err := node.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = ?", cfg.Database)
		require.NoError(t, err)
		for rows.Next() {
			var name, engine string
			require.NoError(t, rows.Scan(&name, &engine))
			engines[name] = engine
		}
		require.NoError(t, rows.Err())
		for _, tb := range chstorage.Tables {
			assert.Equal(t, "Distributed", engines[tb.Name], "node %d: %s", i+1, tb.Name)
			assert.True(t, strings.HasPrefix(engines[tb.Name+"_local"], "Replicated"), "node %d: %s_local is %q", i+1, tb.Name, engines[tb.Name+"_local"])
		}
		for _, v := range chstorage.Views {
			assert.Equal(t, "MaterializedView", engines[v], "node %d: %s", i+1, v)
		}
		assert.Len(t, engines, 2*len(chstorage.Tables)+len(chstorage.Views), "node %d: no other tables", i+1)
		// The local and Distributed tables have the schema's columns, in
		// order, and the fixtures'.
		assertColumns(t, node, cfg.Database, want, fmt.Sprintf("node %d", i+1))
	}
}

// assertColumns checks that X and X_local of a node have the columns want
// names for X, in order.
func assertColumns(t *testing.T, node driver.Conn, database string, want map[string][]string, where string) {
	t.Helper()
	for table, cols := range want {
		for _, name := range []string{table, table + "_local"} {
			var got []string
			rows, err := node.Query(context.Background(), "SELECT name FROM system.columns WHERE database = ? AND table = ?", database, name)
			require.NoError(t, err)
			for rows.Next() {
				var c string
				require.NoError(t, rows.Scan(&c))
				got = append(got, c)
			}
			require.NoError(t, rows.Err())
			assert.Equal(t, cols, got, "%s: %s", where, name)
		}
	}
}

// accessBatch inserts events the way the pipeline's bulk writer does: the
// AccessRows columns as one columnar block.
func accessBatch(ctx context.Context, conn driver.Conn, events []*event.Access) error {
	rows := pipeline.NewAccessRows(nil)
	for _, e := range events {
		if err := rows.AppendEvent(e); err != nil {
			return err
		}
	}
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+rows.Table()+" ("+strings.Join(rows.Columns(), ", ")+")")
	if err != nil {
		return err
	}
	for i, col := range rows.Data() {
		if err := batch.Column(i).Append(col); err != nil {
			return err
		}
	}
	return batch.Send()
}

func testEvents(from, n int, tsMs int64) []*event.Access {
	var out []*event.Access
	for i := from; i < from+n; i++ {
		out = append(out, &event.Access{
			EventID: uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("cluster-%d", i))).String(),
			TsMs:    tsMs + int64(i), ReceivedMs: tsMs + int64(i), Vendor: "matter",
			SiteID: fmt.Sprintf("site-%02d", i%4), DoorID: fmt.Sprintf("door-%d", i%10), LockID: fmt.Sprintf("lock-%d", i%10),
			SubjectID: fmt.Sprintf("subj-%d", i%7), Action: "unlock", Outcome: "granted", Method: "phone",
		})
	}
	return out
}

// countEvents counts access_events through the Distributed table: rows,
// rows after FINAL, distinct event ids.
func countEvents(ctx context.Context, conn driver.Conn) (rows, final, distinct uint64, err error) {
	if err = conn.QueryRow(ctx, "SELECT count() FROM access_events").Scan(&rows); err != nil {
		return
	}
	if err = conn.QueryRow(ctx, "SELECT count() FROM access_events FINAL").Scan(&final); err != nil {
		return
	}
	err = conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM access_events").Scan(&distinct)
	return
}

// TestClusterStorage runs the storage checks on one migrated cluster
// database (a cluster migration takes ~15 s of ON CLUSTER DDL), in order:
// partitions (an empty table first), writes, the SQL checker's fixture and
// statements.
func TestClusterStorage(t *testing.T) {
	conn, cfg := testenv.ClickHouseCluster(t)
	for _, c := range []struct {
		name string
		f    func(*testing.T, driver.Conn, chstorage.Config)
	}{{"partitions", testPartitions}, {"new migration", testNewMigration},
		{"writes dedup and failover", testWritesDedupAndFailover}, {"sql checker", testSQLCheckerOnCluster},
		{"column migrations", testColumnMigrations}} {
		if !t.Run(c.name, func(t *testing.T) { c.f(t, conn, cfg) }) {
			return
		}
	}
}

// testWritesDedupAndFailover: events written through the Distributed
// table (synchronously) with re-deliveries read back once with FINAL and
// uniqExact; with node 2 stopped, reads and writes go on through node 1 (the
// connection's second address); node 2 catches up when it returns.
func testWritesDedupAndFailover(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	tsMs := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()

	// 100 events, 40 of them delivered again in a later batch.
	require.NoError(t, accessBatch(ctx, conn, testEvents(0, 100, tsMs)))
	require.NoError(t, accessBatch(ctx, conn, testEvents(60, 40, tsMs)))
	rows, final, distinct, err := countEvents(ctx, conn)
	require.NoError(t, err)
	assert.Equal(t, uint64(140), rows, "a synchronous Distributed insert is readable at once")
	assert.Equal(t, uint64(100), final)
	assert.Equal(t, uint64(100), distinct)

	// Node 2 down (the first address of a connection that starts with it).
	nodes := cfg.Addrs()
	require.Len(t, nodes, 2)
	down := cfg
	down.Addr = nodes[1] + "," + nodes[0]
	startNode2 := testenv.StopClusterNode(t, 2)
	conn2, err := chstorage.Open(ctx, down)
	require.NoError(t, err, "the connection skips the stopped node")
	defer conn2.Close()
	require.Eventually(t, func() bool {
		return accessBatch(ctx, conn2, testEvents(100, 50, tsMs)) == nil
	}, time.Minute, 500*time.Millisecond, "writes through node 1")
	require.NoError(t, accessBatch(ctx, conn2, testEvents(120, 30, tsMs)), "a re-delivery")
	rows, final, distinct, err = countEvents(ctx, conn2)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, rows, uint64(200))
	assert.Equal(t, uint64(150), final)
	assert.Equal(t, uint64(150), distinct)

	// Node 2 returns and catches up.
	startNode2()
	n2, err := chstorage.Open(ctx, chstorage.Config{Addr: nodes[1], Database: cfg.Database, Username: "default"})
	require.NoError(t, err)
	defer n2.Close()
	require.NoError(t, n2.Exec(ctx, "SYSTEM SYNC REPLICA access_events_local"))
	var local uint64
	require.NoError(t, n2.QueryRow(ctx, "SELECT count() FROM access_events_local FINAL").Scan(&local))
	assert.Equal(t, uint64(150), local, "node 2's replica has every event")
}

// testSQLCheckerOnCluster: the SQL checker's fixture (a row in every table)
// and every statement with its examples, on a database migrated in cluster
// mode: reads and writes through the Distributed tables, and the cluster
// variants (partitions, OPTIMIZE, system.parts) where a statement has one.
func testSQLCheckerOnCluster(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
	var steps []step
	for _, s := range checkSteps(t) {
		if !strings.HasPrefix(s.name, "migration") {
			steps = append(steps, s)
		}
	}
	// Rebind the statements that have a cluster variant, as a cluster
	// connection runs them.
	stmts, err := chstorage.Statements()
	require.NoError(t, err)
	variants := 0
	for _, s := range stmts {
		v := s.Cluster()
		if v == nil {
			continue
		}
		var bound []step
		for _, ex := range s.Variants() {
			args := chstorage.Args{}
			for k, a := range ex.Args {
				args[k] = a
			}
			for _, p := range v.Params {
				switch p.Name {
				case "cluster":
					args["cluster"] = cfg.Cluster
				case "database":
					if _, ok := args["database"]; !ok {
						args["database"] = cfg.Database
					}
				}
			}
			sql, vals, err := v.Bind(args)
			require.NoError(t, err, v.Name)
			bound = append(bound, step{name: v.Name, file: v.File, sql: sql, args: vals})
		}
		// Replace the statement's steps by the variant's.
		var out []step
		for _, st := range steps {
			if st.file != s.File {
				out = append(out, st)
			}
		}
		steps = append(out, bound...)
		variants += len(bound)
	}
	require.Positive(t, variants)
	// create_database's example names a database of its own: drop it on
	// every node afterwards.
	t.Cleanup(func() {
		_ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS kfcheck_created ON CLUSTER "+cfg.Cluster)
	})
	start := time.Now()
	var failures []failure
	for _, f := range run1816(t, conn, steps) {
		// Statement.Exec takes this answer to OPTIMIZE FINAL of a replicated
		// table with nothing to merge as done (optimizeNothing).
		if !(strings.HasPrefix(f.sql, "OPTIMIZE") && strings.Contains(f.err, "Unknown log entry type: 0")) {
			failures = append(failures, f)
		}
	}
	reportFailures(t, "ClickHouse 18.16 cluster", failures)
	t.Logf("%d statements (%d cluster variants) in %s", len(steps), variants, time.Since(start).Round(time.Millisecond))
}

// testPartitions: retention's and identity's partition statements
// see and drop the local tables' partitions on every node.
func testPartitions(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
	ctx := context.Background()
	tsMs := time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC).UnixMilli()
	// Events of March 2024, written like the fixture (InsertRows).
	for i := 0; i < 3; i++ {
		id := uuid.NewSHA1(uuid.NameSpaceOID, []byte(fmt.Sprintf("p-%d", i)))
		require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", []string{"event_id", "ts", "ts_ms", "site_id"},
			[]any{id, time.UnixMilli(tsMs).UTC(), tsMs, "s1"}))
	}
	partitions := chstorage.Query("retention/partitions")
	r, err := partitions.Query(ctx, conn, chstorage.Args{"table": "access_events"})
	require.NoError(t, err)
	var got []string
	for r.Next() {
		var id string
		var n, b uint64
		require.NoError(t, r.Scan(&id, &n, &b))
		got = append(got, fmt.Sprintf("%s:%d", id, n))
	}
	require.NoError(t, r.Err())
	assert.Equal(t, []string{"202403:3"}, got, "one replica of the one shard counted")

	var minTime uint32
	var parts uint64
	require.NoError(t, chstorage.Query("report/history_start").QueryRow(ctx, conn, nil).Scan(&minTime, &parts))
	assert.Positive(t, parts)
	assert.Equal(t, uint32(tsMs/1000), minTime)

	require.NoError(t, chstorage.Query("retention/drop_partition").Exec(ctx, conn,
		chstorage.Args{"table": "access_events", "partition": "202403"}))
	for _, addr := range cfg.Addrs() {
		node, err := chstorage.Open(ctx, chstorage.Config{Addr: addr, Database: cfg.Database, Username: "default"})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			var n uint64
			return node.QueryRow(ctx, "SELECT count() FROM access_events_local").Scan(&n) == nil && n == 0
		}, time.Minute, 200*time.Millisecond, "partition dropped on %s", addr)
		node.Close()
	}
	require.NoError(t, chstorage.Query("identity/optimize_resources").Exec(ctx, conn, nil))
}

// testNewMigration: a migration added after the cluster exists runs
// statement by statement: a new table (local + Distributed), a copy into it,
// a column added (on each shard's replica, replicated; the Distributed table
// re-created over it), a delete.
func testNewMigration(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
	ctx := context.Background()
	m := chstorage.Migration{Version: 9990, Name: "probe", Statements: []string{
		"CREATE TABLE IF NOT EXISTS cluster_probe (\n    id String,\n    v UInt64\n) ENGINE = ReplacingMergeTree(v)\nORDER BY id",
		"INSERT INTO cluster_probe (id, v) SELECT toString(number), 1 FROM system.numbers LIMIT 10",
		"ALTER TABLE cluster_probe ADD COLUMN extra UInt8 DEFAULT 7",
		"ALTER TABLE cluster_probe DELETE WHERE id = '3'",
		// 18.16 has no IF NOT EXISTS here: each shard's replica checks its
		// columns first (ExecMigration), so the repeat changes nothing.
		"ALTER TABLE cluster_probe ADD COLUMN IF NOT EXISTS more UInt8 DEFAULT 2",
		"ALTER TABLE cluster_probe ADD COLUMN IF NOT EXISTS more UInt8 DEFAULT 2",
	}, Shards: []string{"cityHash64(id)", "", "", "", "", ""}}
	require.NoError(t, chstorage.MigrateWith(ctx, conn, m))
	for _, addr := range cfg.Addrs() {
		node, err := chstorage.Open(ctx, chstorage.Config{Addr: addr, Database: cfg.Database, Username: "default"})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			var n, extra, more uint64
			return node.QueryRow(ctx, "SELECT count(), sum(extra), sum(more) FROM cluster_probe_local").Scan(&n, &extra, &more) == nil &&
				n == 9 && extra == 63 && more == 18
		}, time.Minute, 200*time.Millisecond, "node %s: the local table replicated the columns and the delete", addr)
		var n, extra, more uint64
		require.NoError(t, node.QueryRow(ctx, "SELECT count(), sum(extra), sum(more) FROM cluster_probe").Scan(&n, &extra, &more),
			"node %s: Distributed", addr)
		assert.Equal(t, []uint64{9, 63, 18}, []uint64{n, extra, more}, "node %s: Distributed", addr)
		node.Close()
	}
}

// testColumnMigrations: h/dims' column migrations (test fixtures, ADD
// COLUMN IF NOT EXISTS) on a database migrated before them run statement by
// statement: the columns on each shard's replica (replicated to the other),
// the Distributed tables re-created over them on every node; rows written
// with them through one node read back through the other; run again, they
// change nothing. (Once h/dims is merged the database has the columns from
// its fresh start, and this shows the re-run only: TestClusterSharded
// starts from 0120.)
func testColumnMigrations(t *testing.T, conn driver.Conn, cfg chstorage.Config) {
	ctx := context.Background()
	fixtures := clusterFixtures(t)
	start := time.Now()
	require.NoError(t, chstorage.MigrateWith(ctx, conn, fixtures...))
	t.Logf("column migrations, statement by statement, in %s", time.Since(start).Round(time.Millisecond))
	want := fixtureColumns(t, fixtures)
	nodes := nodeConns(t, cfg)
	for i, node := range nodes {
		assertColumns(t, node, cfg.Database, want, fmt.Sprintf("node %d", i+1))
	}
	require.NoError(t, chstorage.InsertRows(ctx, conn, "access_events", []string{"event_id", "ts", "site_id", "lock_model", "app_version"},
		[]any{uuid.NewSHA1(uuid.NameSpaceOID, []byte("dims")), time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), "s-dims", "L200", "3.1"}))
	// Through node 2's Distributed table, which reads its own replica
	// (replication is asynchronous).
	var model, app string
	require.Eventually(t, func() bool {
		return nodes[1].QueryRow(ctx, "SELECT lock_model, app_version FROM "+cfg.Database+".access_events WHERE site_id = 's-dims'").Scan(&model, &app) == nil
	}, time.Minute, 200*time.Millisecond, "the row through node 2")
	assert.Equal(t, []string{"L200", "3.1"}, []string{model, app})
	for _, m := range fixtures {
		require.NoError(t, chstorage.ReapplyOnCluster(ctx, conn, m), "%04d again", m.Version)
	}
	for i, node := range nodes {
		assertColumns(t, node, cfg.Database, want, fmt.Sprintf("node %d, again", i+1))
	}
}

// TestClusterSharded: the same schema on the local two-shard cluster
// (keyfleet_sharded, 2 shards × 1 replica; its nodes tell shards apart by
// the {sharded_shard} macro): events split between the shards by the
// sharding key, re-deliveries meet their first copy (FINAL through the
// Distributed table counts each once), partitions are listed and dropped on
// both shards, and every statement runs (distributed_product_mode=global in
// the nodes' profile, as docs/deploy.md asks).
func TestClusterSharded(t *testing.T) {
	cfg := testenv.ClickHouseClusterConfig(t)
	cfg.Cluster = "keyfleet_sharded"
	cfg = chstorage.WithShardMacro(cfg, "sharded_shard")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, node := range nodeConns(t, cfg) {
		var mode string
		require.NoError(t, node.QueryRow(ctx, "SELECT value FROM system.settings WHERE name = 'distributed_product_mode'").Scan(&mode))
		require.Equal(t, "global", mode, "the cluster's nodes predate their keyfleet profile: "+
			"scripts/clickhouse-cluster.sh stop; scripts/clickhouse-cluster.sh start")
	}
	conn, err := chstorage.Open(ctx, cfg)
	require.NoError(t, err)
	defer conn.Close()
	// The database as cluster mode's first release left it (0120), then
	// the migrations since and h/dims' column migrations (test fixtures),
	// statement by statement on each shard, by two instances at once.
	require.NoError(t, chstorage.MigrateTo(ctx, conn, slog.New(slog.DiscardHandler), 120))
	fixtures := clusterFixtures(t)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, addr := range cfg.Addrs() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := cfg
			c.Addr = addr
			conn, err := chstorage.Open(ctx, c)
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close()
			errs[i] = chstorage.MigrateWith(ctx, conn, fixtures...)
		}()
	}
	wg.Wait()
	require.NoError(t, errs[0])
	require.NoError(t, errs[1])
	t.Logf("migrations after 0120, statement by statement, by two instances at once in %s", time.Since(start).Round(time.Millisecond))
	n, err := chstorage.Pending(ctx, conn)
	require.NoError(t, err)
	require.Zero(t, n)
	want := fixtureColumns(t, fixtures)
	shards := nodeConns(t, cfg)
	for i, node := range shards {
		assertColumns(t, node, cfg.Database, want, fmt.Sprintf("shard %d", i+1))
	}
	for _, m := range fixtures {
		require.NoError(t, chstorage.ReapplyOnCluster(ctx, conn, m), "%04d again", m.Version)
	}
	for i, node := range shards {
		assertColumns(t, node, cfg.Database, want, fmt.Sprintf("shard %d, again", i+1))
	}

	t.Run("partitions", func(t *testing.T) { testPartitions(t, conn, cfg) })
	t.Run("writes split and dedup", func(t *testing.T) {
		tsMs := time.Now().Add(-time.Hour).Truncate(time.Hour).UnixMilli()
		require.NoError(t, accessBatch(ctx, conn, testEvents(0, 100, tsMs)))
		require.NoError(t, accessBatch(ctx, conn, testEvents(60, 40, tsMs)))
		rows, final, distinct, err := countEvents(ctx, conn)
		require.NoError(t, err)
		assert.Equal(t, []uint64{140, 100, 100}, []uint64{rows, final, distinct}, "rows, FINAL, uniqExact")
		var total uint64
		for _, addr := range cfg.Addrs() {
			node, err := chstorage.Open(ctx, chstorage.Config{Addr: addr, Database: cfg.Database, Username: "default"})
			require.NoError(t, err)
			var n, f uint64
			require.NoError(t, node.QueryRow(ctx, "SELECT count() FROM access_events_local").Scan(&n))
			require.NoError(t, node.QueryRow(ctx, "SELECT count() FROM access_events_local FINAL").Scan(&f))
			node.Close()
			t.Logf("shard at %s: %d rows, %d after FINAL", addr, n, f)
			assert.Positive(t, f, "both shards hold events")
			total += f
		}
		assert.Equal(t, uint64(100), total, "every event on exactly one shard")
	})
	t.Run("sql checker", func(t *testing.T) { testSQLCheckerOnCluster(t, conn, cfg) })
}

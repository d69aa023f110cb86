package chstorage_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
)

var (
	createTableRE = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS ([a-z_0-9]+) .*ORDER BY \(?([^)]*?)\)?\s*$`)
	shardIdentRE  = regexp.MustCompile(`[A-Za-z_][A-Za-z0-9_]*`)
)

// TestClusterShardKeys: every table a migration creates declares a sharding
// key ("-- shard: <expression>") made of columns of its sorting key, so rows
// a ReplacingMergeTree collapses land on one shard.
func TestClusterShardKeys(t *testing.T) {
	ms, err := chstorage.Migrations()
	require.NoError(t, err)
	n := 0
	for _, m := range ms {
		require.Len(t, m.Shards, len(m.Statements))
		for i, stmt := range m.Statements {
			cm := createTableRE.FindStringSubmatch(stmt)
			if cm == nil {
				assert.Empty(t, m.Shards[i], "migration %04d statement %d: a shard key on a statement that is no CREATE TABLE", m.Version, i+1)
				continue
			}
			n++
			table, shard := cm[1], m.Shards[i]
			if !assert.NotEmpty(t, shard, "migration %04d: table %s has no \"-- shard:\" line", m.Version, table) {
				continue
			}
			sortKey := map[string]bool{}
			for _, c := range strings.Split(cm[2], ",") {
				sortKey[strings.TrimSpace(c)] = true
			}
			for _, loc := range shardIdentRE.FindAllStringIndex(shard, -1) {
				id := shard[loc[0]:loc[1]]
				if strings.HasPrefix(shard[loc[1]:], "(") {
					continue // a function
				}
				assert.True(t, sortKey[id], "migration %04d: table %s shards by %s, not a column of its sorting key (%s)",
					m.Version, table, id, cm[2])
			}
		}
	}
	assert.Greater(t, n, 40)
}

// TestClusterDDL: a fresh cluster database gets every table of the schema as
// X_local (Replicated, ON CLUSTER) and X (Distributed over X_local), and no
// table the migrations dropped or renamed away.
func TestClusterDDL(t *testing.T) {
	ddl, err := chstorage.ClusterDDL("keyfleet", "kf")
	require.NoError(t, err)
	all := strings.Join(ddl, "\n")
	for _, tb := range chstorage.Tables {
		assert.Contains(t, all, "CREATE TABLE IF NOT EXISTS kf."+tb.Name+"_local ON CLUSTER keyfleet (", tb.Name)
		assert.Contains(t, all, "CREATE TABLE IF NOT EXISTS kf."+tb.Name+" ON CLUSTER keyfleet (", tb.Name)
		assert.Contains(t, all, "ENGINE = Distributed(keyfleet, kf, "+tb.Name+"_local, ", tb.Name)
		assert.Contains(t, all, "'/clickhouse/tables/{shard}/kf/"+tb.Name+"_local', '{replica}'", tb.Name)
	}
	for _, gone := range []string{"access_events_by_time", "access_events_0090", "access_events_0001", "access_events_by_subject_mv",
		"access_rollup_hourly_0090", "access_rollup_dirty_mv"} {
		assert.NotContains(t, all, "kf."+gone+" ", gone)
		assert.NotContains(t, all, "kf."+gone+"_local ", gone)
	}
	for _, v := range chstorage.Views {
		assert.Contains(t, all, "CREATE MATERIALIZED VIEW IF NOT EXISTS kf."+v+" ON CLUSTER keyfleet TO kf.")
	}
	// 0090's re-keyed access_events, under its final name.
	assert.Regexp(t, `(?s)kf\.access_events_local ON CLUSTER keyfleet .*ORDER BY \(site_id, ts, event_id\)`, ddl[indexOf(ddl, "kf.access_events_local ")])
	assert.Contains(t, all, "TO kf.credential_subjects_local AS SELECT subject_id, credential_id, min(ts_ms) AS first_ms\nFROM kf.credential_events_local")
	assert.Contains(t, all, "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/kf/alerts_local', '{replica}', version)")
	assert.NotContains(t, all, "INSERT")
	assert.NotContains(t, all, "RENAME")
}

func indexOf(stmts []string, sub string) int {
	for i, s := range stmts {
		if strings.Contains(s, sub) {
			return i
		}
	}
	return -1
}

// TestClusterRewrite: how a migration added after a cluster exists runs.
func TestClusterRewrite(t *testing.T) {
	for _, tc := range []struct {
		name, stmt, shard string
		want              []string
		err               string
	}{
		{name: "create", shard: "cityHash64(id)",
			stmt: "CREATE TABLE IF NOT EXISTS things (\n    id String,\n    version UInt64\n) ENGINE = ReplacingMergeTree(version)\nORDER BY id",
			want: []string{
				"CREATE TABLE IF NOT EXISTS kf.things_local ON CLUSTER c (\n    id String,\n    version UInt64\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/kf/things_local', '{replica}', version)\nORDER BY id",
				"CREATE TABLE IF NOT EXISTS kf.things ON CLUSTER c (\n    id String,\n    version UInt64\n) ENGINE = Distributed(c, kf, things_local, cityHash64(id))",
			}},
		{name: "create without a shard key",
			stmt: "CREATE TABLE IF NOT EXISTS things (id String) ENGINE = MergeTree ORDER BY id", err: "no sharding key"},
		{name: "add column", stmt: "ALTER TABLE alerts ADD COLUMN extra String",
			want: []string{
				"/* each shard */ ALTER TABLE kf.alerts_local ADD COLUMN extra String",
				"DROP TABLE IF EXISTS kf.alerts ON CLUSTER c",
				"CREATE TABLE IF NOT EXISTS kf.alerts ON CLUSTER c AS kf.alerts_local ENGINE = Distributed(c, kf, alerts_local, cityHash64(alert_id))",
			}},
		{name: "delete", stmt: "ALTER TABLE access_rollup_subject_daily DELETE WHERE outcome = 'x'",
			want: []string{"/* each shard */ ALTER TABLE kf.access_rollup_subject_daily_local DELETE WHERE outcome = 'x'"}},
		{name: "drop table", stmt: "DROP TABLE IF EXISTS alerts",
			want: []string{"DROP TABLE IF EXISTS kf.alerts ON CLUSTER c", "DROP TABLE IF EXISTS kf.alerts_local ON CLUSTER c"}},
		{name: "drop view", stmt: "DROP TABLE IF EXISTS credential_subjects_mv",
			want: []string{"DROP TABLE IF EXISTS kf.credential_subjects_mv ON CLUSTER c"}},
		{name: "copy", stmt: "INSERT INTO alert_index (site_id) SELECT site_id FROM alerts",
			want: []string{"INSERT INTO alert_index (site_id) SELECT site_id FROM alerts"}},
		{name: "rename", stmt: "RENAME TABLE alerts TO alerts_old", err: "RENAME TABLE is not supported"},
		{name: "alter of a view", stmt: "ALTER TABLE credential_subjects_mv DELETE WHERE 1", err: "not a table"},
		{name: "optimize", stmt: "OPTIMIZE TABLE alerts FINAL", err: "does not know"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := chstorage.Migration{Version: 9999, Name: "test", Statements: []string{tc.stmt}, Shards: []string{tc.shard}}
			got, err := chstorage.ClusterRewrite("c", "kf", m, 0)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestClusterRewritesNewMigrations: a migration added after cluster mode
// (after 0120, the last one a fresh cluster folds into its baseline when
// cluster mode came) must run statement by statement on an existing cluster.
func TestClusterRewritesNewMigrations(t *testing.T) {
	ms, err := chstorage.Migrations()
	require.NoError(t, err)
	for _, m := range ms {
		if m.Version <= 120 {
			continue
		}
		for i := range m.Statements {
			_, err := chstorage.ClusterRewrite("c", "kf", m, i)
			assert.NoError(t, err, "migration %04d_%s statement %d", m.Version, m.Name, i+1)
		}
	}
}

// TestClusterVariants: the statements with a cluster variant declare the
// same parameters plus the connection's cluster and database.
func TestClusterVariants(t *testing.T) {
	stmts, err := chstorage.Statements()
	require.NoError(t, err)
	n := 0
	for _, s := range stmts {
		v := s.Cluster()
		if v == nil {
			continue
		}
		n++
		have := map[string]bool{}
		for _, p := range v.Params {
			have[p.Name] = true
		}
		for _, p := range s.Params {
			assert.True(t, have[p.Name], "%s: the cluster variant lacks param %s", v.File, p.Name)
		}
		for name := range have {
			if name == "cluster" || name == "database" {
				continue
			}
			assert.True(t, hasParam(s, name), "%s: param %s the statement does not have", v.File, name)
		}
	}
	assert.GreaterOrEqual(t, n, 9)
}

func hasParam(s *chstorage.Statement, name string) bool {
	for _, p := range s.Params {
		if p.Name == name {
			return true
		}
	}
	return false
}

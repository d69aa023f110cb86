package chstorage_test

import (
	"path/filepath"
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
	// 0130/0131's ADD COLUMNs are folded into the CREATEs, last.
	assert.Regexp(t, `(?s)kf\.access_events_local ON CLUSTER keyfleet \(.*inserted_ms Int64,\n    lock_model String DEFAULT ''.*app_version String DEFAULT ''\n\) ENGINE`,
		ddl[indexOf(ddl, "kf.access_events_local ")])
	assert.Contains(t, ddl[indexOf(ddl, "kf.credential_events_local ")], "device_facts String DEFAULT ''\n) ENGINE")
	assert.NotContains(t, all, "ALTER")
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
		{name: "add column if not exists", stmt: "ALTER TABLE alerts ADD COLUMN IF NOT EXISTS extra String DEFAULT ''",
			want: []string{
				"/* each shard */ ALTER TABLE kf.alerts_local ADD COLUMN IF NOT EXISTS extra String DEFAULT ''",
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

// clusterFixtures are h/dims' column migrations (0130, 0131: ADD COLUMN IF
// NOT EXISTS on access_events, access_events_by_subject and
// credential_events), renumbered 9130 and 9131: a fresh cluster folds them
// into its CREATEs, an existing one runs them statement by statement.
func clusterFixtures(t *testing.T) []chstorage.Migration {
	t.Helper()
	var out []chstorage.Migration
	for _, f := range []string{"9130_access_dimensions.sql", "9131_credential_device.sql"} {
		m, err := chstorage.LoadMigration(filepath.Join("testdata", "cluster", f))
		require.NoError(t, err)
		require.NotEmpty(t, m.Statements, f)
		out = append(out, m)
	}
	return out
}

var addColumnRE = regexp.MustCompile(`^ALTER TABLE ([a-z_0-9]+) ADD COLUMN IF NOT EXISTS ([a-z_0-9]+) `)

// fixtureColumns returns the columns tables have after the migrations and
// fixtures: schema.go's, then the fixtures' additions it does not list yet
// (all of them before h/dims is merged, none after).
func fixtureColumns(t *testing.T, fixtures []chstorage.Migration) map[string][]string {
	t.Helper()
	want := map[string][]string{}
	for _, m := range fixtures {
		for _, stmt := range m.Statements {
			am := addColumnRE.FindStringSubmatch(stmt)
			require.NotNil(t, am, stmt)
			tb := tableNamed(t, am[1])
			if want[tb.Name] == nil {
				want[tb.Name] = tb.ColumnNames()
			}
			if !tb.Has(am[2]) {
				want[tb.Name] = append(want[tb.Name], am[2])
			}
		}
	}
	return want
}

func tableNamed(t *testing.T, name string) chstorage.Table {
	t.Helper()
	for _, tb := range chstorage.Tables {
		if tb.Name == name {
			return tb
		}
	}
	require.Failf(t, "no such table", name)
	return chstorage.Table{}
}

// TestClusterFoldColumns: the cluster baseline folds ALTER … COLUMN into
// the table's CREATE as the server applies it.
func TestClusterFoldColumns(t *testing.T) {
	create := func(cols ...string) string {
		return "CREATE TABLE IF NOT EXISTS t (\n    " + strings.Join(cols, ",\n    ") + "\n) ENGINE = ReplacingMergeTree(v)\nORDER BY id"
	}
	base := []string{"id String", "v UInt64 DEFAULT 7", "s String"}
	for _, tc := range []struct {
		name, op string
		want     []string
		err      string
	}{
		{name: "add", op: "ADD COLUMN x String DEFAULT ''", want: append(base[:3:3], "x String DEFAULT ''")},
		{name: "add if not exists", op: "ADD COLUMN IF NOT EXISTS x Int64", want: append(base[:3:3], "x Int64")},
		{name: "add if not exists, present", op: "ADD COLUMN IF NOT EXISTS s UInt8", want: base},
		{name: "add, present", op: "ADD COLUMN s UInt8", err: "the table has it"},
		{name: "add after", op: "add column q String DEFAULT 'a, b' AFTER id",
			want: []string{"id String", "q String DEFAULT 'a, b'", "v UInt64 DEFAULT 7", "s String"}},
		{name: "add first", op: "ADD COLUMN q Decimal(9, 2) FIRST", want: append([]string{"q Decimal(9, 2)"}, base...)},
		{name: "add after nothing", op: "ADD COLUMN q String AFTER nope", err: "AFTER nope: no such column"},
		{name: "add without type", op: "ADD COLUMN q", err: "no type or default"},
		{name: "several", op: "ADD COLUMN a Map(String, UInt8), DROP COLUMN s, ADD COLUMN b String AFTER a",
			want: []string{"id String", "v UInt64 DEFAULT 7", "a Map(String, UInt8)", "b String"}},
		{name: "drop", op: "DROP COLUMN s", want: base[:2]},
		{name: "drop if exists, absent", op: "DROP COLUMN IF EXISTS nope", want: base},
		{name: "drop, absent", op: "DROP COLUMN nope", err: "no such column"},
		{name: "drop with a type", op: "DROP COLUMN s String", err: "a name only"},
		{name: "modify type", op: "MODIFY COLUMN s LowCardinality(String)",
			want: []string{"id String", "v UInt64 DEFAULT 7", "s LowCardinality(String)"}},
		{name: "modify default", op: "MODIFY COLUMN v DEFAULT 9",
			want: []string{"id String", "v UInt64 DEFAULT 9", "s String"}},
		{name: "modify type and default", op: "MODIFY COLUMN v UInt32 DEFAULT 9",
			want: []string{"id String", "v UInt32 DEFAULT 9", "s String"}},
		{name: "modify the type of a column with a default", op: "MODIFY COLUMN v UInt32", err: "18.16 drops it, 26.x keeps it"},
		{name: "modify if exists, absent", op: "MODIFY COLUMN IF EXISTS nope String", want: base},
		{name: "wrong clause", op: "ADD COLUMN IF EXISTS x String", err: "ADD COLUMN takes IF NOT EXISTS"},
		{name: "not a column command", op: "ADD COLUMN x String, DELETE WHERE 1", err: "not ADD, DROP or MODIFY COLUMN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := chstorage.FoldColumns(create(base...), tc.op)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, create(tc.want...), got)
		})
	}
	// A comment in the column list is dropped, not left to swallow a comma.
	got, err := chstorage.FoldColumns("CREATE TABLE IF NOT EXISTS t (\n    id String, -- the id, (sic\n    s String\n) ENGINE = MergeTree\nORDER BY id", "ADD COLUMN x String")
	require.NoError(t, err)
	assert.Equal(t, "CREATE TABLE IF NOT EXISTS t (\n    id String,\n    s String,\n    x String\n) ENGINE = MergeTree\nORDER BY id", got)
}

// TestClusterDDLFoldsColumnMigrations: a fresh cluster database gets the
// columns h/dims' migrations add on the local and the Distributed tables,
// with their defaults, after the columns they had; no ALTER runs.
func TestClusterDDLFoldsColumnMigrations(t *testing.T) {
	fixtures := clusterFixtures(t)
	ddl, err := chstorage.ClusterDDLWith("keyfleet", "kf", fixtures...)
	require.NoError(t, err)
	for table, cols := range fixtureColumns(t, fixtures) {
		for _, name := range []string{"kf." + table + "_local ", "kf." + table + " "} {
			i := indexOf(ddl, "CREATE TABLE IF NOT EXISTS "+name)
			require.GreaterOrEqual(t, i, 0, name)
			var got []string
			for _, line := range strings.Split(ddl[i], "\n")[1:] {
				if strings.HasPrefix(line, ")") {
					break
				}
				got = append(got, strings.Fields(line)[0])
			}
			assert.Equal(t, cols, got, name)
		}
	}
	all := strings.Join(ddl, "\n")
	assert.Contains(t, all, "    inserted_ms Int64,\n    lock_model String DEFAULT '',\n    lock_firmware String DEFAULT '',")
	assert.Contains(t, all, "    device_facts String DEFAULT ''\n) ENGINE = ReplicatedReplacingMergeTree(")
	assert.NotContains(t, all, "ALTER")
	// Folding them twice (h/dims' own 0130 and 0131 beside the fixtures)
	// changes nothing: ADD COLUMN IF NOT EXISTS.
	again, err := chstorage.ClusterDDLWith("keyfleet", "kf", append(fixtures, fixtures...)...)
	require.NoError(t, err)
	assert.Equal(t, ddl, again)
}

// TestClusterPlanColumnMigration: on an existing cluster a column
// migration runs its ALTERs on each shard's replica and re-creates each
// Distributed table it changed once, after the ALTERs, or before a
// statement that follows them.
func TestClusterPlanColumnMigration(t *testing.T) {
	m := clusterFixtures(t)[0]
	plan, err := chstorage.ClusterPlan("c", "kf", m)
	require.NoError(t, err)
	require.Len(t, plan, len(m.Statements)+4)
	for i, stmt := range m.Statements {
		want := "/* each shard */ " + strings.Replace(stmt, "ALTER TABLE access_events", "ALTER TABLE kf.access_events", 1)
		want = strings.Replace(want, "ALTER TABLE kf.access_events ", "ALTER TABLE kf.access_events_local ", 1)
		want = strings.Replace(want, "ALTER TABLE kf.access_events_by_subject ", "ALTER TABLE kf.access_events_by_subject_local ", 1)
		assert.Equal(t, want, plan[i])
	}
	assert.Equal(t, []string{
		"DROP TABLE IF EXISTS kf.access_events ON CLUSTER c",
		"CREATE TABLE IF NOT EXISTS kf.access_events ON CLUSTER c AS kf.access_events_local ENGINE = Distributed(c, kf, access_events_local, cityHash64(toString(event_id)))",
		"DROP TABLE IF EXISTS kf.access_events_by_subject ON CLUSTER c",
		"CREATE TABLE IF NOT EXISTS kf.access_events_by_subject ON CLUSTER c AS kf.access_events_by_subject_local ENGINE = Distributed(c, kf, access_events_by_subject_local, cityHash64(toString(event_id)))",
	}, plan[len(m.Statements):])

	// A back-fill after the ALTER reads and writes the new column through
	// the Distributed table: it is re-created first.
	m = chstorage.Migration{Version: 9999, Name: "backfill", Statements: []string{
		"ALTER TABLE alerts ADD COLUMN IF NOT EXISTS extra String",
		"INSERT INTO alerts (alert_id, extra) SELECT alert_id, 'x' FROM alerts",
		"ALTER TABLE alerts DROP COLUMN IF EXISTS extra",
	}, Shards: []string{"", "", ""}}
	plan, err = chstorage.ClusterPlan("c", "kf", m)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"/* each shard */ ALTER TABLE kf.alerts_local ADD COLUMN IF NOT EXISTS extra String",
		"DROP TABLE IF EXISTS kf.alerts ON CLUSTER c",
		"CREATE TABLE IF NOT EXISTS kf.alerts ON CLUSTER c AS kf.alerts_local ENGINE = Distributed(c, kf, alerts_local, cityHash64(alert_id))",
		"INSERT INTO alerts (alert_id, extra) SELECT alert_id, 'x' FROM alerts",
		"/* each shard */ ALTER TABLE kf.alerts_local DROP COLUMN IF EXISTS extra",
		"DROP TABLE IF EXISTS kf.alerts ON CLUSTER c",
		"CREATE TABLE IF NOT EXISTS kf.alerts ON CLUSTER c AS kf.alerts_local ENGINE = Distributed(c, kf, alerts_local, cityHash64(alert_id))",
	}, plan)
}

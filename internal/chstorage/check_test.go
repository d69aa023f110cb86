package chstorage_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// The SQL checker: every migration, a fixture (a row in every table) and
// every statement of queries/ with its header's examples, run in a fresh
// database on the ClickHouse 18.16 server and on current ClickHouse (chDB,
// ClickHouse 26.x in-process, through scripts/chdb_check.py). A statement
// one engine refuses fails the test with its file and SQL.

// step is one statement of the checker's sequence.
type step struct {
	name, file string
	sql        string // with ? placeholders
	args       []any
	// A batch insert: sent as a native block to 18.16 (as keyfleet sends
	// it), as INSERT … VALUES to chDB.
	table   string
	columns []string
	row     []any
}

// text is the statement with its arguments inlined, as chDB gets it.
func (s step) text() (string, error) {
	if s.table != "" {
		lits := make([]string, len(s.row))
		for i, v := range s.row {
			l, err := chstorage.Literal(v)
			if err != nil {
				return "", err
			}
			lits[i] = l
		}
		return fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", s.table, strings.Join(s.columns, ", "), strings.Join(lits, ", ")), nil
	}
	return chstorage.Inline(s.sql, s.args)
}

// failure is a statement an engine refused.
type failure struct {
	step
	err string
}

func (f failure) String() string {
	text, _ := f.text()
	return fmt.Sprintf("%s (%s): %s\n    %s", f.name, f.file, f.err, strings.ReplaceAll(text, "\n", "\n    "))
}

// fixtureTime is the fixture's event time; examples use it too.
var fixtureTime = time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC)

// checkSteps returns the checker's sequence: migrations, fixture, queries.
func checkSteps(t *testing.T) []step {
	t.Helper()
	// Migrate creates schema_migrations first.
	create, err := chstorage.Lookup("chstorage/create_schema_migrations")
	require.NoError(t, err)
	steps := []step{{name: create.Name, file: create.File, sql: create.SQL()}}
	ms, err := chstorage.Migrations()
	require.NoError(t, err)
	for _, m := range ms {
		file := fmt.Sprintf("internal/chstorage/migrations/%04d_%s.sql", m.Version, m.Name)
		for i, sql := range m.Statements {
			steps = append(steps, step{name: fmt.Sprintf("migration %04d_%s #%d", m.Version, m.Name, i+1), file: file, sql: sql})
		}
	}
	stmts, err := chstorage.Statements()
	require.NoError(t, err)
	// Fixture: the example row of every batch insert keyfleet sends, then a
	// row in every table (tables other packages fill included).
	for _, s := range stmts {
		if s.Table() != "" {
			steps = append(steps, step{name: s.Name, file: s.File, table: s.Table(), columns: s.Columns(), row: s.ExampleRow()})
		}
	}
	for _, tb := range chstorage.Tables {
		steps = append(steps, step{name: "fixture " + tb.Name, file: "internal/chstorage/check_test.go",
			table: tb.Name, columns: tb.ColumnNames(), row: fixtureRow(tb)})
	}
	for _, s := range stmts {
		if s.Table() != "" {
			continue
		}
		for _, v := range s.Variants() {
			sql, args, err := s.Bind(v.Args)
			require.NoError(t, err, "%s %s", s.Name, v.Label)
			name := s.Name
			if v.Label != "" {
				name += " [" + v.Label + "]"
			}
			steps = append(steps, step{name: name, file: s.File, sql: sql, args: args})
		}
	}
	return steps
}

// fixtureValues are the fixture's values of columns by name; ids match the
// statements' examples, so joins and filters meet rows.
var fixtureValues = map[string]any{
	"site_id": "s1", "site": "s1", "zone_id": "z1", "door_id": "d1", "lock_id": "l1", "vendor": "nuki",
	"subject_id": "sub1", "credential_id": "c1", "device_id": "dev1", "alert_id": "a1", "action_id": "act1",
	"revocation_id": "r1", "request_id": "req1", "command_id": "cmd1", "chain": "main", "token_id": "t1",
	"report_id": "2024-W10", "week": "2024-W10", "state": "active", "status": "applied", "outcome": "granted",
	"action": "unlock", "attested": "attested", "method": "phone_ble", "detector": "unlock_burst",
	"severity": "high", "role": "resident", "name": "access_rollups", "event_id": "6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b21",
	"scope": "credential", "evidence": []string{"6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b21"},
}

// fixtureRow is one row of t: fixtureValues by name, else a value of the
// column's type (times are fixtureTime).
func fixtureRow(t chstorage.Table) []any {
	row := make([]any, len(t.Columns))
	for i, c := range t.Columns {
		if v, ok := fixtureValues[c.Name]; ok && (c.Type == "String" || c.Type == "UUID" || c.Type == "Array(String)") {
			row[i] = v
			continue
		}
		switch {
		case c.Type == "DateTime":
			row[i] = fixtureTime
		case c.Type == "Int64" && strings.HasSuffix(c.Name, "_ms"):
			row[i] = fixtureTime.UnixMilli()
		case c.Type == "Int64":
			row[i] = int64(1)
		case c.Type == "Int32":
			row[i] = int32(1)
		case c.Type == "UInt64":
			row[i] = uint64(1)
		case c.Type == "UInt32":
			row[i] = uint32(1)
		case c.Type == "UInt8":
			row[i] = uint8(1)
		case c.Type == "Int8":
			row[i] = int8(1)
		case c.Type == "Float64":
			row[i] = 1.5
		case c.Type == "Array(String)":
			row[i] = []string{"x"}
		case c.Type == "UUID":
			row[i] = "6f1c6a0e-2b4c-4b8e-9d51-0c1f3a7e9b22"
		default:
			row[i] = c.Name
		}
	}
	return row
}

// checkDatabase opens a fresh, empty database on the 18.16 server.
func checkDatabase(t *testing.T) driver.Conn {
	t.Helper()
	cfg := chstorage.Config{Addr: testenv.ClickHouseAddr(), Database: "kfcheck_" + testenv.ID(), Username: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chstorage.Open(ctx, cfg)
	if err != nil {
		if testenv.Required() {
			t.Fatalf("ClickHouse at %s is required (KEYFLEET_TEST_REQUIRE=1): %v", cfg.Addr, err)
		}
		t.Skipf("ClickHouse at %s unavailable: %v", cfg.Addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	return conn
}

// run1816 runs steps on the 18.16 server, the way keyfleet sends them.
func run1816(t *testing.T, conn driver.Conn, steps []step) []failure {
	t.Helper()
	var out []failure
	for _, s := range steps {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var err error
		switch {
		case s.table != "":
			err = chstorage.InsertRows(ctx, conn, s.table, s.columns, s.row)
		case returnsRows(s.sql):
			var rows driver.Rows
			if rows, err = conn.Query(ctx, s.sql, s.args...); err == nil {
				for rows.Next() {
				}
				err = rows.Err()
				rows.Close()
			}
		case strings.HasPrefix(s.name, "migration ") && len(s.args) == 0:
			err = chstorage.ExecMigration(ctx, conn, s.sql)
		default:
			err = conn.Exec(ctx, s.sql, s.args...)
		}
		cancel()
		if err != nil {
			out = append(out, failure{s, err.Error()})
		}
	}
	return out
}

func returnsRows(sql string) bool {
	word, _, _ := strings.Cut(strings.TrimSpace(sql), " ")
	switch strings.ToUpper(strings.TrimSpace(word)) {
	case "SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS":
		return true
	}
	return false
}

// repoRoot is the repository's top directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "scripts", "chdb_check.py")); err == nil {
				return dir
			}
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "repository root not found")
		dir = parent
	}
}

// chdbPython returns the chDB venv's python (scripts/chdb.sh installs it;
// `make test` runs that first). Without it the chDB check is skipped, or
// fails under KEYFLEET_TEST_REQUIRE=1.
func chdbPython(t *testing.T) string {
	t.Helper()
	venv := os.Getenv("KEYFLEET_CHDB_VENV")
	if venv == "" {
		venv = filepath.Join(repoRoot(t), "var", "venv-chdb")
	}
	py := filepath.Join(venv, "bin", "python")
	if _, err := os.Stat(py); err != nil {
		if testenv.Required() {
			t.Fatalf("chDB is required (KEYFLEET_TEST_REQUIRE=1) but %s is missing: run scripts/chdb.sh", py)
		}
		t.Skipf("chDB not installed (%s missing): run scripts/chdb.sh", py)
	}
	return py
}

// runChdb runs steps in order in a fresh chDB session (current ClickHouse).
func runChdb(t *testing.T, py string, steps []step) []failure {
	t.Helper()
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	for i, s := range steps {
		text, err := s.text()
		require.NoError(t, err, s.name)
		require.NoError(t, enc.Encode(map[string]any{"name": s.name, "file": s.file, "step": i, "sql": text}))
	}
	if dump := os.Getenv("KEYFLEET_CHDB_DUMP"); dump != "" {
		// To rerun by hand: scripts/chdb_check.py --database kfcheck <dump
		require.NoError(t, os.WriteFile(dump, in.Bytes(), 0o644))
	}
	cmd := exec.Command(py, filepath.Join(repoRoot(t), "scripts", "chdb_check.py"), "--database", "kfcheck")
	cmd.Stdin = &in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 0 && code != 1 {
		t.Fatalf("chdb_check.py: %v\n%s", err, stderr.String())
	}
	var out []failure
	seen := 0
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var res struct {
			Step  int    `json:"step"`
			OK    bool   `json:"ok"`
			Error string `json:"error"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &res), sc.Text())
		seen++
		if !res.OK {
			out = append(out, failure{steps[res.Step], res.Error})
		}
	}
	require.Equal(t, len(steps), seen, "chdb_check.py answered for %d of %d statements\n%s", seen, len(steps), stderr.String())
	return out
}

func reportFailures(t *testing.T, engine string, fs []failure) {
	t.Helper()
	for _, f := range fs {
		t.Errorf("%s refused %s", engine, f)
	}
}

// TestSQLChecker runs every migration, the fixture and every statement on
// ClickHouse 18.16 and on current ClickHouse (chDB).
func TestSQLChecker(t *testing.T) {
	steps := checkSteps(t)
	queries := 0
	for _, s := range steps {
		if !strings.HasPrefix(s.name, "migration") && !strings.HasPrefix(s.name, "fixture") && s.table == "" {
			queries++
		}
	}
	t.Logf("%d statements: %d query runs after migrations and fixture", len(steps), queries)
	t.Run("clickhouse-18.16", func(t *testing.T) {
		conn := checkDatabase(t)
		start := time.Now()
		reportFailures(t, "ClickHouse 18.16", run1816(t, conn, steps))
		t.Logf("%d statements in %s", len(steps), time.Since(start).Round(time.Millisecond))
	})
	t.Run("chdb", func(t *testing.T) {
		py := chdbPython(t)
		start := time.Now()
		reportFailures(t, "ClickHouse 26 (chDB)", runChdb(t, py, steps))
		t.Logf("%d statements in %s", len(steps), time.Since(start).Round(time.Millisecond))
	})
}

// The checker bites: a subquery JOIN without an alias, which 18.16 runs,
// fails the current-ClickHouse half with ClickHouse's ALIAS_REQUIRED.
func TestSQLCheckerRejectsUnaliasedSubqueryJoin(t *testing.T) {
	var steps []step
	for _, s := range checkSteps(t) {
		if strings.HasPrefix(s.name, "migration") {
			steps = append(steps, s)
		}
	}
	bad := step{name: "non-portable join", file: "check_test.go",
		sql: `SELECT event_id, subject_ref FROM (SELECT event_id, subject_id FROM access_events)
ANY LEFT JOIN (SELECT subject_id, argMax(subject_ref, updated_ms) AS subject_ref FROM subject_identities GROUP BY subject_id)
USING subject_id`}
	steps = append(steps, bad)
	t.Run("clickhouse-18.16", func(t *testing.T) {
		assert.Empty(t, run1816(t, checkDatabase(t), steps), "18.16 runs the statement")
	})
	t.Run("chdb", func(t *testing.T) {
		fs := runChdb(t, chdbPython(t), steps)
		require.Len(t, fs, 1)
		assert.Equal(t, "non-portable join", fs[0].name)
		assert.Contains(t, fs[0].err, "ALIAS_REQUIRED")
		t.Logf("chDB refused it, as wanted: %s", fs[0].err)
	})
}

// TestSchema checks the Go table definitions (schema.go) against the
// migrated tables, and every batch insert's declared types against them.
func TestSchema(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	rows, err := conn.Query(ctx, "SELECT name, engine FROM system.tables WHERE database = currentDatabase() ORDER BY name")
	require.NoError(t, err)
	engines := map[string]string{}
	for rows.Next() {
		var name, engine string
		require.NoError(t, rows.Scan(&name, &engine))
		engines[name] = engine
	}
	require.NoError(t, rows.Err())
	rows.Close()

	byName := map[string]chstorage.Table{}
	for _, tb := range chstorage.Tables {
		byName[tb.Name] = tb
		_, ok := engines[tb.Name]
		if !assert.True(t, ok, "schema.go names table %s, which the migrations do not create", tb.Name) {
			continue
		}
		rows, err := conn.Query(ctx, "DESCRIBE TABLE "+tb.Name)
		require.NoError(t, err)
		var got []chstorage.Column
		for rows.Next() {
			vals := make([]string, len(rows.Columns()))
			dst := make([]any, len(vals))
			for i := range vals {
				dst[i] = &vals[i]
			}
			require.NoError(t, rows.Scan(dst...))
			got = append(got, chstorage.Column{Name: vals[0], Type: vals[1]})
		}
		require.NoError(t, rows.Err())
		rows.Close()
		assert.Equal(t, got, tb.Columns, "columns of %s: the migrated table (got) and schema.go (want)", tb.Name)
	}
	var views []string
	for name, engine := range engines {
		switch {
		case engine == "MaterializedView":
			views = append(views, name)
		case byName[name].Name == "":
			t.Errorf("table %s (%s) is missing from schema.go", name, engine)
		}
	}
	assert.ElementsMatch(t, views, chstorage.Views, "materialized views: the database (got) and schema.go (want)")

	stmts, err := chstorage.Statements()
	require.NoError(t, err)
	for _, s := range stmts {
		if s.Table() == "" {
			continue
		}
		tb, ok := byName[s.Table()]
		if !assert.True(t, ok, "%s inserts into %s, which schema.go does not name", s.File, s.Table()) {
			continue
		}
		types := map[string]string{}
		for _, c := range tb.Columns {
			types[c.Name] = c.Type
		}
		for _, p := range s.Params {
			assert.Equal(t, types[p.Name], p.Type, "%s: column %s.%s", s.File, tb.Name, p.Name)
		}
	}
}

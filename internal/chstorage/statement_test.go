package chstorage

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStatementsParse(t *testing.T) {
	stmts, err := Statements()
	require.NoError(t, err)
	require.NotEmpty(t, stmts)
	for _, s := range stmts {
		for _, v := range s.Variants() {
			_, _, err := s.Bind(v.Args)
			assert.NoError(t, err, "%s %s", s.Name, v.Label)
		}
	}
}

func TestBind(t *testing.T) {
	s, err := parseStatement("t/x", `-- A test statement.
-- param: table Choice = access_events | access_events_by_time
-- param: ids Set(String) = ['a', 'b']
-- param: from DateTime = '2024-03-04 05:06:07'
-- param: site String = 's1'
-- param: pending Bool = true
-- param: where Fragment = 1
-- param: limit UInt32 = 10
SELECT a FROM {table:Choice}
WHERE id IN {ids:Set(String)} AND ts >= {from:DateTime} AND {where:Fragment}
/*if site*/ AND site_id = {site:String} /*end*/
/*if pending*/ HAVING n > 0 /*else*/ HAVING 1 /*end*/
LIMIT {limit:UInt32}`)
	require.NoError(t, err)
	from := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	f := func(args Args, wantSQL string, wantArgs ...any) {
		t.Helper()
		sql, got, err := s.Bind(args)
		require.NoError(t, err)
		assert.Equal(t, wantSQL, strings.Join(strings.Fields(sql), " "))
		assert.Equal(t, wantArgs, got)
	}
	f(Args{"table": "access_events", "ids": []string{"x"}, "from": from, "where": Fragment{SQL: "b IN (?, ?)", Args: []any{1, 2}},
		"site": "s9", "pending": true, "limit": 5},
		"SELECT a FROM access_events WHERE id IN ? AND ts >= ? AND b IN (?, ?) AND site_id = ? HAVING n > 0 LIMIT ?",
		clickhouse.GroupSet{Value: []any{"x"}}, from, 1, 2, "s9", 5)
	f(Args{"table": "access_events_by_time", "ids": []string{"x", "y"}, "from": from, "where": Fragment{SQL: "1"}, "limit": uint32(5)},
		"SELECT a FROM access_events_by_time WHERE id IN ? AND ts >= ? AND 1 HAVING 1 LIMIT ?",
		clickhouse.GroupSet{Value: []any{"x", "y"}}, from, uint32(5))

	bad := func(args Args, want string) {
		t.Helper()
		_, _, err := s.Bind(args)
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
	}
	ok := Args{"table": "access_events", "ids": []string{"x"}, "from": from, "where": Fragment{SQL: "1"}, "limit": 1}
	with := func(k string, v any) Args {
		a := copyArgs(ok)
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
		return a
	}
	bad(with("table", "users; DROP TABLE x"), "want one of access_events | access_events_by_time")
	bad(with("ids", []string{}), "empty set")
	bad(with("ids", "x"), "want a slice")
	bad(with("from", 1700000000), "want DateTime")
	bad(with("limit", -1), "want UInt32")
	bad(with("limit", nil), "param limit not given")
	bad(with("nope", 1), "no param nope")
	bad(with("where", Fragment{SQL: "a = ?"}), "1 placeholders and 0 args")
	bad(with("where", "1"), "want a chstorage.Fragment")
}

func TestParseStatementRefuses(t *testing.T) {
	f := func(text, want string) {
		t.Helper()
		_, err := parseStatement("t/x", text)
		require.Error(t, err, text)
		assert.Contains(t, err.Error(), want)
	}
	f("SELECT 1 WHERE a = ?", "a ? placeholder")
	f("SELECT {a:String}", "not declared")
	f("-- param: a String = 'x'\nSELECT {a:Int64}", "declared as String")
	f("-- param: a String = 'x'\nSELECT 1", "declared but not used")
	f("-- param: a Strin = 'x'\nSELECT {a:Strin}", "unknown type")
	f("-- param: a String\nSELECT {a:String}", "no example")
	f("-- param: a Int64 = 'x'\nSELECT {a:Int64}", "example")
	f("-- param: a String = 'x'\nSELECT 1 /*if a*/ /*if a*/ /*end*/", "do not nest")
	f("-- param: a String = 'x'\nSELECT 1 /*if a*/", "without /*end*/")
	f("SELECT 1; SELECT 2", "one statement per file")
	f("-- param: a String = 'x'\nINSERT INTO t (a, b) VALUES ({a:String}, 1)", "insert: value 2 must be {b:Type}")
}

func TestInline(t *testing.T) {
	sql, err := Inline("SELECT '?', ? -- ?\n, ?, ?, ?, ?, ?, ?", []any{"it's \\", int64(-3), uint8(2), 1.5,
		time.Date(2024, 3, 4, 5, 6, 7, 0, time.UTC), []string{"a"}, clickhouse.GroupSet{Value: []any{"x", 2}}})
	require.NoError(t, err)
	assert.Equal(t, `SELECT '?', 'it\'s \\' -- ?
, -3, 2, 1.5, toDateTime('2024-03-04 05:06:07', 'UTC'), ['a'], ('x', 2)`, sql)
	_, err = Inline("SELECT ?", nil)
	assert.Error(t, err)
}

// TestStatementNames: every name Go code passes to chstorage.Query is a
// string literal naming a file of queries/, and every file is used.
func TestStatementNames(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	used := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "var" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, src, 0)
		if err != nil {
			return err
		}
		inChstorage := f.Name.Name == "chstorage"
		rel, _ := filepath.Rel(root, path)
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 1 {
				return true
			}
			switch fn := call.Fun.(type) {
			case *ast.SelectorExpr:
				if x, ok := fn.X.(*ast.Ident); !ok || x.Name != "chstorage" || fn.Sel.Name != "Query" {
					return true
				}
			case *ast.Ident:
				if !inChstorage || fn.Name != "Query" {
					return true
				}
			default:
				return true
			}
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				t.Errorf("%s: chstorage.Query with a name that is not a string literal", rel)
				return true
			}
			name, _ := strconv.Unquote(lit.Value)
			used[name] = append(used[name], rel)
			return true
		})
		return nil
	})
	require.NoError(t, err)
	stmts, err := Statements()
	require.NoError(t, err)
	have := map[string]bool{}
	for _, s := range stmts {
		have[s.Name] = true
		if len(used[s.Name]) == 0 {
			t.Errorf("%s is used by no Go code (chstorage.Query(%q))", s.File, s.Name)
		}
	}
	var names []string
	for name := range used {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !have[name] {
			t.Errorf("%s: chstorage.Query(%q): no file queries/%s.sql", strings.Join(used[name], ", "), name, name)
		}
	}
}

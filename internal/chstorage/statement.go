package chstorage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The SQL keyfleet sends, one statement per file:
// queries/<area>/<name>.sql, where area is the package that sends it. A
// file starts with a header of comment lines; the lines
//
//	-- param: name Type = example
//
// declare its parameters, in any order. The body uses ClickHouse's
// placeholder spelling {name:Type}. ClickHouse 18.16 has no server-side
// parameters, so Bind turns the placeholders into clickhouse-go's positional
// ? arguments (bound client-side, escaped by the driver). Types:
//
//	String, UUID, Int8…Int64, UInt8…UInt64, Float32, Float64, DateTime,
//	Array(T)     a Go slice, sent as an array literal [a, b]
//	Set(T)       a non-empty Go slice, sent as a list (a, b) for x IN {p:Set(T)}
//	Bool         a Go bool (1/0); mostly a section gate, see below
//	Choice       one of the words the header lists (a | b | c), spliced as is:
//	             a table name, ASC or DESC
//	Identifier   a name matching [A-Za-z_][A-Za-z0-9_]*, spliced as is (a database)
//	Fragment     SQL that code builds from allow-listed parts, with its own ?
//	             arguments (Fragment); the header's example is literal SQL
//
// Optional parts are sections: /*if name*/ … /*end*/, or
// /*if name*/ … /*else*/ … /*end*/, kept when the argument name is given and
// is not its type's zero value (a non-empty string or list, a non-zero
// number, true). Sections do not nest.
//
// A batch insert is a file whose body is exactly
//
//	INSERT INTO table (a, b) VALUES ({a:T}, {b:T})
//
// with one placeholder per column, named like it: Insert sends
// "INSERT INTO table (a, b)" and the rows as one native block, which is what
// ClickHouse 18.16 needs (an INSERT … VALUES through the native protocol
// hangs); the VALUES part declares the column types for the checker.
//
// The header examples are what the checker (check_test.go) runs every
// statement with, on the 18.16 server and on current ClickHouse (chDB).

//go:embed queries
var queryFiles embed.FS

// Args are a statement's arguments by parameter name.
type Args map[string]any

// Fragment is a piece of SQL built by code from allow-listed parts, with ?
// placeholders and their arguments in order.
type Fragment struct {
	SQL  string
	Args []any
}

// Param is one declared parameter.
type Param struct {
	Name    string
	Type    string   // as declared: String, Array(String), Choice, …
	Example string   // the header's example, as written
	Choices []string // a Choice's words
}

// Statement is one SQL file, parsed.
type Statement struct {
	Name   string // <area>/<name>
	File   string // path in the repository
	Params []Param
	body   string
	parts  []segment
	params map[string]*Param
	gates  map[string]bool // parameters that gate a section
	// batch inserts
	table   string
	columns []string
	// cluster is the statement's cluster variant (<name>.cluster.sql), run
	// instead of it on a connection opened with Config.Cluster.
	cluster *Statement
	// eachShard: a cluster variant's header says "-- run: each shard": Exec
	// runs it on one replica of every shard (a replicated table's ALTER or
	// OPTIMIZE), not through the connection.
	eachShard bool
}

type segKind int

const (
	segText segKind = iota
	segParam
	segIf
	segElse
	segEnd
)

type segment struct {
	kind segKind
	text string // text, or the parameter name
}

var (
	loadOnce   sync.Once
	statements map[string]*Statement
	loadErr    error
)

// Statements returns every statement, sorted by name.
func Statements() ([]*Statement, error) {
	loadOnce.Do(loadStatements)
	if loadErr != nil {
		return nil, loadErr
	}
	out := make([]*Statement, 0, len(statements))
	for _, s := range statements {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Lookup returns the statement of queries/<name>.sql.
func Lookup(name string) (*Statement, error) {
	loadOnce.Do(loadStatements)
	if loadErr != nil {
		return nil, loadErr
	}
	s, ok := statements[name]
	if !ok {
		return nil, fmt.Errorf("no SQL statement %q (internal/chstorage/queries/%s.sql)", name, name)
	}
	return s, nil
}

// Query returns the statement of queries/<name>.sql and panics when there is
// none: callers keep it in a package variable, so a wrong name fails the
// program at start (and TestStatementNames before that). name must be a
// string literal, so that the test can find it.
func Query(name string) *Statement {
	s, err := Lookup(name)
	if err != nil {
		panic(err)
	}
	return s
}

func loadStatements() {
	statements = map[string]*Statement{}
	var errs []error
	err := fs.WalkDir(queryFiles, "queries", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".sql") {
			return nil
		}
		body, err := queryFiles.ReadFile(path)
		if err != nil {
			return err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path, "queries/"), ".sql")
		s, err := parseStatement(name, string(body))
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		statements[name] = s
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	for name, s := range statements {
		base, ok := strings.CutSuffix(name, clusterSuffix)
		if !ok {
			continue
		}
		delete(statements, name)
		if statements[base] == nil {
			errs = append(errs, fmt.Errorf("%s: a cluster variant of no statement", s.File))
			continue
		}
		statements[base].cluster = s
	}
	loadErr = errors.Join(errs...)
}

// clusterSuffix names a cluster variant: queries/<area>/<name>.cluster.sql.
const clusterSuffix = ".cluster"

// Cluster returns the statement's cluster variant, nil when it has none.
// A variant runs instead of the statement on a connection opened with
// Config.Cluster; its parameters cluster and database, when it declares
// them and the caller does not give them, are the connection's.
func (s *Statement) Cluster() *Statement { return s.cluster }

// forConn returns the statement to run on conn and its arguments.
func (s *Statement) forConn(conn driver.Conn, args Args) (*Statement, Args) {
	cc, ok := conn.(*clusterConn)
	if !ok || s.cluster == nil {
		return s, args
	}
	v := s.cluster
	out := Args{}
	for k, a := range args {
		out[k] = a
	}
	for k, a := range map[string]string{"cluster": cc.cluster, "database": cc.database} {
		if _, given := out[k]; !given && v.params[k] != nil {
			out[k] = a
		}
	}
	return v, out
}

var (
	paramLineRE   = regexp.MustCompile(`^--\s*param:\s*([a-z_][a-z0-9_]*)\s+([A-Za-z0-9()]+)\s*(?:=\s*(.*))?$`)
	placeholderRE = regexp.MustCompile(`\{([a-z_][a-z0-9_]*):([A-Za-z0-9()]+)\}|/\*(if [a-z_][a-z0-9_]*|else|end)\*/`)
	insertRE      = regexp.MustCompile(`(?s)^INSERT INTO ([A-Za-z_][A-Za-z0-9_]*) \(([^)]*)\)\s*VALUES\s*\((.*)\)$`)
	scalarTypes   = map[string]reflect.Kind{
		"String": reflect.String, "UUID": reflect.String, "Bool": reflect.Bool,
		"Int8": reflect.Int, "Int16": reflect.Int, "Int32": reflect.Int, "Int64": reflect.Int,
		"UInt8": reflect.Uint, "UInt16": reflect.Uint, "UInt32": reflect.Uint, "UInt64": reflect.Uint,
		"Float32": reflect.Float64, "Float64": reflect.Float64, "DateTime": reflect.Struct,
	}
)

// elemType returns T of Array(T) or Set(T), and the wrapper.
func elemType(typ string) (wrapper, elem string) {
	for _, w := range []string{"Array", "Set"} {
		if strings.HasPrefix(typ, w+"(") && strings.HasSuffix(typ, ")") {
			return w, typ[len(w)+1 : len(typ)-1]
		}
	}
	return "", typ
}

func validType(typ string) bool {
	switch typ {
	case "Choice", "Identifier", "Fragment":
		return true
	}
	w, elem := elemType(typ)
	if _, ok := scalarTypes[elem]; !ok || elem == "Bool" && w != "" {
		return false
	}
	return true
}

func parseStatement(name, text string) (*Statement, error) {
	s := &Statement{Name: name, File: "internal/chstorage/queries/" + name + ".sql",
		params: map[string]*Param{}, gates: map[string]bool{}}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%s: %s", s.File, fmt.Sprintf(format, args...))
	}
	lines := strings.Split(text, "\n")
	i := 0
	for ; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		if line == "" {
			continue
		}
		if !strings.HasPrefix(line, "--") {
			break
		}
		if strings.TrimSpace(strings.TrimPrefix(line, "--")) == "run: each shard" {
			s.eachShard = true
			continue
		}
		if !strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(line, "--")), "param:") {
			continue
		}
		m := paramLineRE.FindStringSubmatch(line)
		if m == nil {
			return nil, bad("want \"-- param: name Type = example\", got %q", line)
		}
		p := Param{Name: m[1], Type: m[2], Example: strings.TrimSpace(m[3])}
		if !validType(p.Type) {
			return nil, bad("param %s: unknown type %s", p.Name, p.Type)
		}
		if _, dup := s.params[p.Name]; dup {
			return nil, bad("param %s declared twice", p.Name)
		}
		if p.Example == "" {
			return nil, bad("param %s: no example", p.Name)
		}
		if p.Type == "Choice" {
			for _, c := range strings.Split(p.Example, "|") {
				c = strings.TrimSpace(c)
				if !choiceRE.MatchString(c) {
					return nil, bad("param %s: choice %q is not a word", p.Name, c)
				}
				p.Choices = append(p.Choices, c)
			}
		}
		s.Params = append(s.Params, p)
		s.params[p.Name] = &s.Params[len(s.Params)-1]
	}
	// Params is complete: repoint the map at its final elements.
	for k := range s.Params {
		s.params[s.Params[k].Name] = &s.Params[k]
	}
	s.body = strings.TrimSuffix(strings.TrimSpace(strings.Join(lines[i:], "\n")), ";")
	if s.body == "" {
		return nil, bad("no statement")
	}
	if strings.Contains(stripLiterals(s.body), ";") {
		return nil, bad("one statement per file")
	}
	if strings.Contains(stripLiterals(s.body), "?") {
		return nil, bad("a ? placeholder: declare a {name:Type} parameter instead")
	}
	used := map[string]bool{}
	last, open := 0, ""
	for _, loc := range placeholderRE.FindAllStringSubmatchIndex(s.body, -1) {
		s.parts = append(s.parts, segment{kind: segText, text: s.body[last:loc[0]]})
		last = loc[1]
		if loc[6] >= 0 { // a section marker
			marker := s.body[loc[6]:loc[7]]
			switch {
			case strings.HasPrefix(marker, "if "):
				if open != "" {
					return nil, bad("sections do not nest (/*%s*/ inside /*if %s*/)", marker, open)
				}
				open = strings.TrimPrefix(marker, "if ")
				if s.params[open] == nil {
					return nil, bad("section /*if %s*/: no such param", open)
				}
				used[open], s.gates[open] = true, true
				s.parts = append(s.parts, segment{kind: segIf, text: open})
			case marker == "else":
				if open == "" {
					return nil, bad("/*else*/ outside a section")
				}
				s.parts = append(s.parts, segment{kind: segElse})
			default:
				if open == "" {
					return nil, bad("/*end*/ outside a section")
				}
				open = ""
				s.parts = append(s.parts, segment{kind: segEnd})
			}
			continue
		}
		pname, ptype := s.body[loc[2]:loc[3]], s.body[loc[4]:loc[5]]
		p := s.params[pname]
		if p == nil {
			return nil, bad("{%s:%s}: not declared in the header", pname, ptype)
		}
		if p.Type != ptype {
			return nil, bad("{%s:%s}: declared as %s", pname, ptype, p.Type)
		}
		used[pname] = true
		s.parts = append(s.parts, segment{kind: segParam, text: pname})
	}
	if open != "" {
		return nil, bad("/*if %s*/ without /*end*/", open)
	}
	s.parts = append(s.parts, segment{kind: segText, text: s.body[last:]})
	for _, p := range s.Params {
		if !used[p.Name] {
			return nil, bad("param %s is declared but not used", p.Name)
		}
		if _, err := p.example(); err != nil {
			return nil, bad("param %s: example: %v", p.Name, err)
		}
	}
	if m := insertRE.FindStringSubmatch(s.body); m != nil && !strings.Contains(m[3], "SELECT") {
		s.table = m[1]
		for _, c := range strings.Split(m[2], ",") {
			s.columns = append(s.columns, strings.TrimSpace(c))
		}
		vals := strings.Split(m[3], ",")
		if len(vals) != len(s.columns) {
			return nil, bad("insert: %d columns, %d values", len(s.columns), len(vals))
		}
		for k, v := range vals {
			col := s.columns[k]
			if p := s.params[col]; p == nil || strings.TrimSpace(v) != "{"+col+":"+p.Type+"}" {
				return nil, bad("insert: value %d must be {%s:Type}", k+1, col)
			}
		}
		if len(s.gates) > 0 {
			return nil, bad("insert: no sections")
		}
	}
	return s, nil
}

var choiceRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// stripLiterals blanks out string literals and comments (a section marker
// is a comment), for checks on the SQL around them.
func stripLiterals(sql string) string {
	var b strings.Builder
	scanSQL(sql, func(i int, code bool) {
		if code {
			b.WriteByte(sql[i])
		} else {
			b.WriteByte(' ')
		}
	})
	return b.String()
}

// scanSQL calls f for every byte of sql, saying whether it is code (not in
// a string literal, quoted identifier or comment).
func scanSQL(sql string, f func(i int, code bool)) {
	var quote byte
	lineComment, blockComment := false, false
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		switch {
		case lineComment:
			f(i, false)
			if c == '\n' {
				lineComment = false
			}
		case blockComment:
			f(i, false)
			if c == '*' && i+1 < len(sql) && sql[i+1] == '/' {
				f(i+1, false)
				i++
				blockComment = false
			}
		case quote != 0:
			f(i, false)
			if c == '\\' && i+1 < len(sql) {
				f(i+1, false)
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"' || c == '`':
			quote = c
			f(i, false)
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			lineComment = true
			f(i, false)
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			blockComment = true
			f(i, false)
			f(i+1, false)
			i++
		default:
			f(i, true)
		}
	}
}

// SQL returns the statement's text as written (placeholders and sections
// included).
func (s *Statement) SQL() string { return s.body }

// Table and Columns name a batch insert's target ("" and nil for other
// statements).
func (s *Statement) Table() string     { return s.table }
func (s *Statement) Columns() []string { return s.columns }

// Bind renders the statement for args: the SQL with ? placeholders and the
// arguments in order. Every parameter a kept part uses must be given with a
// value of its type; names the header does not declare are an error.
func (s *Statement) Bind(args Args) (string, []any, error) {
	for name := range args {
		if s.params[name] == nil {
			return "", nil, fmt.Errorf("%s: no param %s", s.Name, name)
		}
	}
	var b strings.Builder
	var out []any
	skip := false
	for _, seg := range s.parts {
		switch seg.kind {
		case segIf:
			skip = isZero(args[seg.text])
			continue
		case segElse:
			skip = !skip
			continue
		case segEnd:
			skip = false
			continue
		}
		if skip {
			continue
		}
		if seg.kind == segText {
			b.WriteString(seg.text)
			continue
		}
		p := s.params[seg.text]
		v, ok := args[p.Name]
		if !ok {
			return "", nil, fmt.Errorf("%s: param %s not given", s.Name, p.Name)
		}
		sql, vals, err := p.bind(v)
		if err != nil {
			return "", nil, fmt.Errorf("%s: param %s: %w", s.Name, p.Name, err)
		}
		b.WriteString(sql)
		out = append(out, vals...)
	}
	return b.String(), out, nil
}

func (p *Param) bind(v any) (string, []any, error) {
	switch p.Type {
	case "Fragment":
		f, ok := v.(Fragment)
		if !ok {
			return "", nil, fmt.Errorf("want a chstorage.Fragment, got %T", v)
		}
		if n := countPlaceholders(f.SQL); n != len(f.Args) {
			return "", nil, fmt.Errorf("fragment has %d placeholders and %d args", n, len(f.Args))
		}
		return f.SQL, f.Args, nil
	case "Choice":
		w, ok := v.(string)
		if !ok || !contains(p.Choices, w) {
			return "", nil, fmt.Errorf("want one of %s, got %v", strings.Join(p.Choices, " | "), v)
		}
		return w, nil, nil
	case "Identifier":
		w, ok := v.(string)
		if !ok || !choiceRE.MatchString(w) {
			return "", nil, fmt.Errorf("want a name of letters, digits and _, got %v", v)
		}
		return w, nil, nil
	}
	wrapper, elem := elemType(p.Type)
	if wrapper == "" {
		if err := checkScalar(elem, v); err != nil {
			return "", nil, err
		}
		return "?", []any{v}, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return "", nil, fmt.Errorf("want a slice for %s, got %T", p.Type, v)
	}
	items := make([]any, rv.Len())
	for i := range items {
		items[i] = rv.Index(i).Interface()
		if err := checkScalar(elem, items[i]); err != nil {
			return "", nil, fmt.Errorf("item %d: %w", i, err)
		}
	}
	if wrapper == "Set" {
		if len(items) == 0 {
			return "", nil, errors.New("an empty set (x IN () is not SQL): leave the condition out")
		}
		return "?", []any{clickhouse.GroupSet{Value: items}}, nil
	}
	return "?", []any{v}, nil
}

func checkScalar(typ string, v any) error {
	want := scalarTypes[typ]
	rv := reflect.ValueOf(v)
	var k reflect.Kind
	if rv.IsValid() {
		k = rv.Kind()
	}
	switch {
	case k >= reflect.Int && k <= reflect.Int64:
		k = reflect.Int
	case k >= reflect.Uint && k <= reflect.Uint64:
		k = reflect.Uint
	case k == reflect.Float32:
		k = reflect.Float64
	}
	switch {
	case want == reflect.Struct:
		if _, ok := v.(time.Time); ok {
			return nil
		}
	case typ == "UUID":
		if _, ok := v.(fmt.Stringer); ok || k == reflect.String {
			return nil
		}
	case want == reflect.Uint && k == reflect.Int:
		if rv.Int() >= 0 {
			return nil
		}
	case want == k:
		return nil
	}
	return fmt.Errorf("want %s, got %T", typ, v)
}

func isZero(v any) bool {
	if v == nil {
		return true
	}
	if f, ok := v.(Fragment); ok {
		return f.SQL == ""
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Slice {
		return rv.Len() == 0
	}
	return rv.IsZero()
}

func countPlaceholders(sql string) int {
	n := 0
	scanSQL(sql, func(i int, code bool) {
		if code && sql[i] == '?' {
			n++
		}
	})
	return n
}

func contains(vals []string, v string) bool {
	for _, x := range vals {
		if x == v {
			return true
		}
	}
	return false
}

// Fragment binds args and returns the statement as a fragment of another
// (a subquery, a part of a UNION ALL).
func (s *Statement) Fragment(args Args) (Fragment, error) {
	sql, vals, err := s.Bind(args)
	return Fragment{SQL: sql, Args: vals}, err
}

// Query binds args and runs the statement, returning its rows.
func (s *Statement) Query(ctx context.Context, conn driver.Conn, args Args) (driver.Rows, error) {
	s, args = s.forConn(conn, args)
	sql, vals, err := s.Bind(args)
	if err != nil {
		return nil, err
	}
	return conn.Query(ctx, sql, vals...)
}

// QueryRow binds args and runs the statement, returning its first row.
func (s *Statement) QueryRow(ctx context.Context, conn driver.Conn, args Args) driver.Row {
	s, args = s.forConn(conn, args)
	sql, vals, err := s.Bind(args)
	if err != nil {
		return errRow{err}
	}
	return conn.QueryRow(ctx, sql, vals...)
}

// Exec binds args and runs a statement that returns no rows.
func (s *Statement) Exec(ctx context.Context, conn driver.Conn, args Args) error {
	s, args = s.forConn(conn, args)
	sql, vals, err := s.Bind(args)
	if err != nil {
		return err
	}
	if cc, ok := conn.(*clusterConn); ok && s.eachShard {
		return cc.execEachShard(ctx, sql, vals...)
	}
	err = conn.Exec(ctx, sql, vals...)
	if err != nil && optimizeNothing(sql, err) {
		return nil
	}
	return err
}

// optimizeNothing reports 18.16's answer to OPTIMIZE … FINAL of a
// replicated table with nothing to merge (no part, or a part a merge just
// produced): code 49, "Unknown log entry type: 0". The merge it asked for is
// moot; every other error stands.
func optimizeNothing(sql string, err error) bool {
	return strings.HasPrefix(strings.TrimSpace(sql), "OPTIMIZE TABLE") && strings.Contains(err.Error(), "Unknown log entry type: 0")
}

// Insert sends rows (one value per column, in Columns order) with a batch
// insert statement, as one native block.
func (s *Statement) Insert(ctx context.Context, conn driver.Conn, rows ...[]any) error {
	if s.table == "" {
		return fmt.Errorf("%s: not a batch insert", s.Name)
	}
	for i, r := range rows {
		if len(r) != len(s.columns) {
			return fmt.Errorf("%s: row %d has %d values for %d columns", s.Name, i, len(r), len(s.columns))
		}
	}
	return InsertRows(ctx, conn, s.table, s.columns, rows...)
}

type errRow struct{ err error }

func (r errRow) Err() error           { return r.err }
func (r errRow) Scan(...any) error    { return r.err }
func (r errRow) ScanStruct(any) error { return r.err }

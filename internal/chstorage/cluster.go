package chstorage

// Cluster mode (Config.Cluster, --clickhouse-cluster): keyfleet's tables on a
// ClickHouse cluster. Every table X of the migrations becomes
//
//	X_local  Replicated<engine>('/clickhouse/tables/{shard}/<db>/X_local', '{replica}', …)
//	         on every node (ON CLUSTER)
//	X        Distributed(<cluster>, <db>, X_local, <shard key>) on every node
//
// so every query file keeps reading and writing X. The migration files stay
// single-server SQL; this file rewrites them:
//
//   - A fresh database (schema_migrations empty) gets the migrations'
//     end state: the tables and views that remain after every migration, each
//     with its final definition (clusterSchema.baseline). The one-off data
//     moves of the history (0090's copy and swap, back-fills, 0093's delete)
//     have nothing to move on a database that was just created, and a RENAME
//     of replicated tables is not idempotent, so the baseline skips them;
//     ALTER … ADD/DROP/MODIFY COLUMN is folded into the CREATE (foldColumns).
//     All of it is CREATE … IF NOT EXISTS: instances starting at once
//     converge, and a start that failed half-way is completed by the next.
//   - A migration added after a cluster exists runs statement by statement
//     (clusterSchema.rewrite): CREATE TABLE as above; CREATE MATERIALIZED
//     VIEW on the local tables; DROP TABLE of both; ALTER … ADD/DROP/MODIFY
//     COLUMN on X_local on one replica of each shard (alterColumnsOn: IF [NOT]
//     EXISTS resolved there), and X re-created over it once per run of such
//     ALTERs (plan; 18.16 refuses ALTER … ON CLUSTER of a Distributed
//     table on a replicated cluster); ALTER … DELETE/UPDATE on X_local the
//     same way; INSERT … SELECT as written, through the Distributed tables.
//     RENAME is refused.
//
// Every CREATE TABLE of a migration is preceded by a line
//
//	-- shard: <expression>
//
// its sharding key: an expression of columns of the sorting key, so that rows
// a ReplacingMergeTree collapses (equal sorting keys) always land on the same
// shard and FINAL, which a Distributed table runs per shard, sees them
// together. TestClusterShardKeys checks every table has one.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"unicode"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// clusterConn is a connection opened with Config.Cluster: statements with a
// cluster variant run it (Statement.Cluster), Migrate rewrites the migrations.
type clusterConn struct {
	driver.Conn
	cluster, database string
	cfg               Config
}

var clusterReplicas = Query("chstorage/cluster_replicas")

// execEachShard runs sql on one replica of every shard of the cluster (the
// first of its replicas that answers), over a connection of its own to the
// replica as remote_servers names it. A replicated table's ALTER (DROP
// PARTITION, ADD COLUMN, DELETE) and OPTIMIZE go this way: the replica
// writes it to the replication log and the shard's other replicas follow.
// Not ON CLUSTER: 18.16's DDL worker runs such an ALTER on one replica per
// shard under a ZooKeeper lock, and a race in it ("Node exists: …/executed")
// stops the node's DDL worker for good (every later ON CLUSTER query waits
// on that node until it restarts); seen here on the 1 × 2 test cluster.
func (cc *clusterConn) execEachShard(ctx context.Context, sql string, args ...any) error {
	return cc.onEachShard(ctx, func(ctx context.Context, conn driver.Conn) error {
		if err := conn.Exec(ctx, sql, args...); err != nil && !optimizeNothing(sql, err) {
			return err
		}
		return nil
	})
}

// onEachShard calls f with a connection (to the cluster's database) to one
// replica of every shard: the first of the shard's replicas that answers.
func (cc *clusterConn) onEachShard(ctx context.Context, f func(context.Context, driver.Conn) error) error {
	rows, err := clusterReplicas.Query(ctx, cc.Conn, Args{"cluster": cc.cluster})
	if err != nil {
		return fmt.Errorf("replicas of cluster %s: %w", cc.cluster, err)
	}
	shards := map[uint32][]string{}
	var order []uint32
	for rows.Next() {
		var shard uint32
		var host string
		var port uint16
		if err := rows.Scan(&shard, &host, &port); err != nil {
			rows.Close()
			return fmt.Errorf("replicas of cluster %s: %w", cc.cluster, err)
		}
		if shards[shard] == nil {
			order = append(order, shard)
		}
		shards[shard] = append(shards[shard], net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("replicas of cluster %s: %w", cc.cluster, err)
	}
	if len(order) == 0 {
		return fmt.Errorf("cluster %s: no such cluster in system.clusters", cc.cluster)
	}
	for _, shard := range order {
		var errs []error
		for _, addr := range shards[shard] {
			err := cc.onNode(ctx, addr, f)
			if err == nil {
				errs = nil
				break
			}
			errs = append(errs, err)
			if !isConnectError(err) {
				break // the replica answered: the statement failed
			}
		}
		if len(errs) > 0 {
			return fmt.Errorf("shard %d of cluster %s: %w", shard, cc.cluster, errors.Join(errs...))
		}
	}
	return nil
}

// onNode calls f with a connection of its own to one node.
func (cc *clusterConn) onNode(ctx context.Context, addr string, f func(context.Context, driver.Conn) error) error {
	c := cc.cfg
	c.Addr, c.Cluster = addr, ""
	conn, err := open(c, c.Database, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	return f(ctx, conn)
}

// isConnectError reports an error of reaching a node (try another replica)
// rather than of the statement.
func isConnectError(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "connect")
}

// eachShard marks a rewritten migration statement that runs on one replica of
// every shard (execEachShard) instead of through the connection.
const eachShard = "/* each shard */ "

// ClusterOf returns the cluster conn was opened for, "" for a single server.
func ClusterOf(conn driver.Conn) string {
	if cc, ok := conn.(*clusterConn); ok {
		return cc.cluster
	}
	return ""
}

// clusterSettings are the session settings of every connection in cluster
// mode. insert_distributed_sync: an INSERT into a Distributed table returns
// once the rows are on a replica of every shard they go to. The default (0)
// queues them on the receiving node and sends them later: the insert would
// be acknowledged, and Kafka offsets committed, before the data is on a
// replica (and lost with that node's disk).
//
// A query on a Distributed table with an IN/JOIN subquery on another (the
// rollups' (unit, version) IN (… max …), the lookups) needs
// distributed_product_mode = global on a cluster of several shards (18.16
// refuses it otherwise, code 288; one shard is exempt). clickhouse-go sends
// only integer settings to 18.16, so that one belongs in the server's user
// profile (deploy/clickhouse/cluster.xml.in, docs/deploy.md).
func clusterSettings() clickhouse.Settings {
	return clickhouse.Settings{"insert_distributed_sync": 1}
}

// clusterSchema rewrites single-server DDL for one cluster and database.
type clusterSchema struct {
	cluster, database string
	shardMacro        string // "" is shard
}

// schemaObject is a table or materialized view the migrations create.
type schemaObject struct {
	name  string
	view  bool
	sql   string // the CREATE statement as written (name as created)
	shard string // a table's sharding key
}

var (
	createTableRE = regexp.MustCompile(`(?s)^CREATE TABLE IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*) \((.*)\)\s*ENGINE = ([A-Za-z]*MergeTree)(?:\(([^)]*)\))?(.*)$`)
	createViewRE  = regexp.MustCompile(`(?s)^CREATE MATERIALIZED VIEW IF NOT EXISTS ([A-Za-z_][A-Za-z0-9_]*) TO ([A-Za-z_][A-Za-z0-9_]*) AS\s+(.*)$`)
	dropTableRE   = regexp.MustCompile(`^DROP TABLE IF EXISTS ([A-Za-z_][A-Za-z0-9_]*)$`)
	renameRE      = regexp.MustCompile(`(?s)^RENAME TABLE (.*)$`)
	renamePairRE  = regexp.MustCompile(`^\s*([A-Za-z_][A-Za-z0-9_]*) TO ([A-Za-z_][A-Za-z0-9_]*)\s*$`)
	insertRE2     = regexp.MustCompile(`(?s)^INSERT INTO ([A-Za-z_][A-Za-z0-9_]*) \(.*\bSELECT\b`)
	alterRE       = regexp.MustCompile(`(?s)^ALTER TABLE ([A-Za-z_][A-Za-z0-9_]*) (.*)$`)
	alterColumnRE = regexp.MustCompile(`(?s)^(ADD|DROP|MODIFY) COLUMN\b`)
	alterDataRE   = regexp.MustCompile(`(?s)^(DELETE|UPDATE)\b`)
	fromTableRE   = regexp.MustCompile(`\b(FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)\b`)
)

// schemaMigrationsShard shards schema_migrations (created by Migrate, not
// by a migration file): by version, its sorting key.
const schemaMigrationsShard = "version"

// local is X_local, qualified.
func (k clusterSchema) local(name string) string { return k.database + "." + name + "_local" }

// createTable returns X_local and X for a CREATE TABLE statement.
func (k clusterSchema) createTable(stmt, shard string) ([]string, error) {
	m := createTableRE.FindStringSubmatch(stmt)
	if m == nil {
		return nil, fmt.Errorf("cluster mode: not a CREATE TABLE IF NOT EXISTS … ENGINE = …MergeTree: %.80q", stmt)
	}
	if shard == "" {
		return nil, fmt.Errorf("cluster mode: table %s has no sharding key (a \"-- shard: <expression>\" line before its CREATE TABLE)", m[1])
	}
	name, cols, engine, args, rest := m[1], m[2], m[3], m[4], m[5]
	macro := k.shardMacro
	if macro == "" {
		macro = "shard"
	}
	zk := fmt.Sprintf("'/clickhouse/tables/{%s}/%s/%s_local', '{replica}'", macro, k.database, name)
	if strings.TrimSpace(args) != "" {
		zk += ", " + args
	}
	return []string{
		fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s ON CLUSTER %s (%s) ENGINE = Replicated%s(%s)%s",
			k.local(name), k.cluster, cols, engine, zk, rest),
		k.createDistributed(name, "("+cols+")", shard),
	}, nil
}

// createDistributed returns the CREATE of X over X_local; columns is a
// column list in parentheses or "AS <db>.X_local".
func (k clusterSchema) createDistributed(name, columns, shard string) string {
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS %s.%s ON CLUSTER %s %s ENGINE = Distributed(%s, %s, %s_local, %s)",
		k.database, name, k.cluster, columns, k.cluster, k.database, name, shard)
}

// createView returns a materialized view's CREATE on the local tables: each
// node's view reads the rows inserted into its X_local and writes its
// target's local table (replicated like any insert).
func (k clusterSchema) createView(stmt string, tables map[string]*schemaObject) ([]string, error) {
	m := createViewRE.FindStringSubmatch(stmt)
	if m == nil {
		return nil, fmt.Errorf("cluster mode: not a CREATE MATERIALIZED VIEW IF NOT EXISTS … TO … AS: %.80q", stmt)
	}
	sel := fromTableRE.ReplaceAllStringFunc(m[3], func(s string) string {
		sm := fromTableRE.FindStringSubmatch(s)
		if o := tables[sm[2]]; o != nil && !o.view {
			return sm[1] + " " + k.local(sm[2])
		}
		return s
	})
	return []string{fmt.Sprintf("CREATE MATERIALIZED VIEW IF NOT EXISTS %s.%s ON CLUSTER %s TO %s AS %s",
		k.database, m[1], k.cluster, k.local(m[2]), sel)}, nil
}

// drop returns the DROPs of a table (both tables) or view.
func (k clusterSchema) drop(name string, tables map[string]*schemaObject) []string {
	out := []string{fmt.Sprintf("DROP TABLE IF EXISTS %s.%s ON CLUSTER %s", k.database, name, k.cluster)}
	if o := tables[name]; o == nil || !o.view {
		out = append(out, fmt.Sprintf("DROP TABLE IF EXISTS %s ON CLUSTER %s", k.local(name), k.cluster))
	}
	return out
}

// clusterStep is one statement a migration runs on an existing cluster
// database.
type clusterStep struct {
	stmt      int    // the migration statement it comes from, from 1
	sql       string // ON CLUSTER DDL, or a statement through the connection
	eachShard bool   // sql runs on one replica of every shard (execEachShard)
	// An ALTER … COLUMN of a local table (eachShard): the table (X_local)
	// and its column commands. Each replica resolves their IF [NOT] EXISTS
	// against its own columns (alterColumnsOn): 18.16 knows neither clause.
	table string
	cmds  []columnCmd
}

// String is the step as ClusterRewrite shows it.
func (s clusterStep) String() string {
	if s.eachShard {
		return eachShard + s.sql
	}
	return s.sql
}

// rewrite returns the cluster steps of one migration statement (shard: its
// "-- shard:" annotation; tables: every table and view the migrations
// create, by name) and, for an ALTER … COLUMN, the table whose Distributed
// table is to be re-created over the new columns (plan).
func (k clusterSchema) rewrite(stmt, shard string, tables map[string]*schemaObject) (steps []clusterStep, redistribute string, err error) {
	plain := func(sqls []string, err error) ([]clusterStep, string, error) {
		for _, s := range sqls {
			steps = append(steps, clusterStep{sql: s})
		}
		return steps, "", err
	}
	switch {
	case createTableRE.MatchString(stmt):
		return plain(k.createTable(stmt, shard))
	case createViewRE.MatchString(stmt):
		return plain(k.createView(stmt, tables))
	case dropTableRE.MatchString(stmt):
		return plain(k.drop(dropTableRE.FindStringSubmatch(stmt)[1], tables), nil)
	case insertRE2.MatchString(stmt):
		return plain([]string{stmt}, nil) // through the Distributed tables
	case renameRE.MatchString(stmt):
		return nil, "", errors.New("cluster mode: RENAME TABLE is not supported (a replicated table keeps its ZooKeeper path): " +
			"create the new table, copy, and switch readers in code")
	case alterRE.MatchString(stmt):
		m := alterRE.FindStringSubmatch(stmt)
		name, op := m[1], strings.TrimSpace(m[2])
		o := tables[name]
		if o == nil || o.view {
			return nil, "", fmt.Errorf("cluster mode: ALTER TABLE %s: not a table of the migrations", name)
		}
		// The local table's ALTER runs on one replica of each shard
		// (replicated ALTER; not ON CLUSTER, see execEachShard).
		step := clusterStep{sql: fmt.Sprintf("ALTER TABLE %s %s", k.local(name), op), eachShard: true}
		switch {
		case alterColumnRE.MatchString(op):
			cmds, err := parseColumnCmds(op)
			if err != nil {
				return nil, "", fmt.Errorf("cluster mode: ALTER TABLE %s: %w", name, err)
			}
			step.table, step.cmds = name+"_local", cmds
			return []clusterStep{step}, name, nil
		case alterDataRE.MatchString(op):
			return []clusterStep{step}, "", nil
		}
		return nil, "", fmt.Errorf("cluster mode: ALTER TABLE %s %.40q: only ADD/DROP/MODIFY COLUMN, DELETE and UPDATE", name, op)
	}
	return nil, "", fmt.Errorf("cluster mode: a statement the rewriter does not know: %.80q", stmt)
}

// redistribute returns the steps that re-create X over the columns X_local
// has now: 18.16 refuses ALTER … ON CLUSTER of a Distributed table when the
// cluster's shards are replicated (code 371).
func (k clusterSchema) redistribute(name string, tables map[string]*schemaObject) []clusterStep {
	return []clusterStep{
		{sql: fmt.Sprintf("DROP TABLE IF EXISTS %s.%s ON CLUSTER %s", k.database, name, k.cluster)},
		{sql: k.createDistributed(name, "AS "+k.local(name), tables[name].shard)},
	}
}

// plan returns the steps of migration m on an existing cluster database, in
// order. A run of ALTER … COLUMN statements (a migration adding a dozen
// columns to two tables) re-creates each Distributed table it changed once,
// after the run: before the migration's next other statement, which may read
// or write the new columns through it, or at its end. Until then readers and
// writers of that table see its old columns, or (between the DROP and the
// CREATE) no table, as with any ALTER of a Distributed table here.
func (k clusterSchema) plan(m Migration, tables map[string]*schemaObject) ([]clusterStep, error) {
	var out []clusterStep
	var changed []string // Distributed tables to re-create, in order
	last := 0            // the statement of the last ALTER … COLUMN
	flush := func() {
		for _, name := range changed {
			for _, s := range k.redistribute(name, tables) {
				s.stmt = last
				out = append(out, s)
			}
		}
		changed = nil
	}
	for i, stmt := range m.Statements {
		steps, name, err := k.rewrite(stmt, m.Shards[i], tables)
		if err != nil {
			return nil, fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
		}
		if name == "" {
			flush()
		} else {
			last = i + 1
			if !slices.Contains(changed, name) {
				changed = append(changed, name)
			}
		}
		for _, s := range steps {
			s.stmt = i + 1
			out = append(out, s)
		}
	}
	flush()
	return out, nil
}

// catalog simulates the migrations in order: the tables and views that
// exist at the end (in creation order, each with its final name and
// columns), and every table and view ever created, by name (a renamed one
// under both names). An ALTER … COLUMN is folded into the table's CREATE
// (foldColumns); an ALTER … DELETE/UPDATE changes no definition.
func catalog(ms []Migration) (final []*schemaObject, all map[string]*schemaObject, err error) {
	all = map[string]*schemaObject{}
	live := map[string]*schemaObject{}
	var order []*schemaObject
	for _, m := range ms {
		for i, stmt := range m.Statements {
			where := fmt.Sprintf("migration %04d_%s statement %d", m.Version, m.Name, i+1)
			switch {
			case createTableRE.MatchString(stmt):
				name := createTableRE.FindStringSubmatch(stmt)[1]
				if m.Shards[i] == "" {
					return nil, nil, fmt.Errorf("%s: table %s has no sharding key (a \"-- shard: <expression>\" line before its CREATE TABLE)", where, name)
				}
				if live[name] == nil {
					o := &schemaObject{name: name, sql: stmt, shard: m.Shards[i]}
					live[name], all[name] = o, o
					order = append(order, o)
				}
			case createViewRE.MatchString(stmt):
				name := createViewRE.FindStringSubmatch(stmt)[1]
				if live[name] == nil {
					o := &schemaObject{name: name, view: true, sql: stmt}
					live[name], all[name] = o, o
					order = append(order, o)
				}
			case dropTableRE.MatchString(stmt):
				delete(live, dropTableRE.FindStringSubmatch(stmt)[1])
			case renameRE.MatchString(stmt):
				for _, pair := range strings.Split(renameRE.FindStringSubmatch(stmt)[1], ",") {
					pm := renamePairRE.FindStringSubmatch(pair)
					if pm == nil {
						return nil, nil, fmt.Errorf("%s: RENAME pair %q", where, pair)
					}
					o := live[pm[1]]
					if o == nil || live[pm[2]] != nil {
						return nil, nil, fmt.Errorf("%s: RENAME %s TO %s: no such table, or the target exists", where, pm[1], pm[2])
					}
					delete(live, pm[1])
					renamed := *o
					renamed.name = pm[2]
					live[pm[2]] = &renamed
					all[pm[2]] = &renamed
					for j := range order {
						if order[j] == o {
							order[j] = &renamed
						}
					}
				}
			case alterRE.MatchString(stmt):
				am := alterRE.FindStringSubmatch(stmt)
				name, op := am[1], strings.TrimSpace(am[2])
				switch {
				case alterDataRE.MatchString(op):
					// Rows only: a fresh database has none.
				case alterColumnRE.MatchString(op):
					o := live[name]
					if o == nil || o.view {
						return nil, nil, fmt.Errorf("%s: ALTER TABLE %s: not a table the migrations have created by then", where, name)
					}
					sql, err := foldColumns(o.sql, op)
					if err != nil {
						return nil, nil, fmt.Errorf("%s: ALTER TABLE %s: %w", where, name, err)
					}
					o.sql = sql
				default:
					return nil, nil, fmt.Errorf("%s: ALTER TABLE %s %.40q: only ADD/DROP/MODIFY COLUMN, DELETE and UPDATE", where, name, op)
				}
			case insertRE2.MatchString(stmt):
			default:
				return nil, nil, fmt.Errorf("%s: a statement the cluster rewriter does not know: %.80q", where, stmt)
			}
		}
	}
	for _, o := range order {
		if live[o.name] == o {
			final = append(final, o)
		}
	}
	return final, all, nil
}

// columnCmd is one command of an ALTER TABLE … COLUMN statement.
type columnCmd struct {
	verb string // ADD, DROP or MODIFY
	cond bool   // IF NOT EXISTS (ADD), IF EXISTS (DROP, MODIFY)
	name string
	rest string // what follows the name: [type] [DEFAULT …] [AFTER col | FIRST]
}

var (
	columnCmdRE  = regexp.MustCompile(`(?is)^(ADD|DROP|MODIFY)\s+COLUMN\s+(IF\s+NOT\s+EXISTS\s+|IF\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)(.*)$`)
	positionRE   = regexp.MustCompile(`(?is)\s(?:AFTER\s+([A-Za-z_][A-Za-z0-9_]*)|(FIRST))\s*$`)
	columnTailRE = regexp.MustCompile(`(?i)\b(DEFAULT|MATERIALIZED|ALIAS|COMMENT|CODEC|TTL)\b`)
	defaultRE    = regexp.MustCompile(`(?i)^(DEFAULT|MATERIALIZED|ALIAS)\b`)
)

// parseColumnCmds parses the commands of an ALTER TABLE (what follows the
// table's name), each ADD, DROP or MODIFY COLUMN.
func parseColumnCmds(op string) ([]columnCmd, error) {
	var out []columnCmd
	for _, c := range splitTop(op, ',') {
		c = strings.TrimSpace(c)
		m := columnCmdRE.FindStringSubmatch(c)
		if m == nil {
			return nil, fmt.Errorf("%.60q: not ADD, DROP or MODIFY COLUMN", c)
		}
		cmd := columnCmd{verb: strings.ToUpper(m[1]), cond: m[2] != "", name: m[3], rest: strings.TrimSpace(m[4])}
		if m[4] != "" && !unicode.IsSpace(rune(m[4][0])) {
			return nil, fmt.Errorf("%.60q: a column name, then its definition", c)
		}
		notExists := strings.Contains(strings.ToUpper(m[2]), "NOT")
		switch {
		case cmd.cond && notExists != (cmd.verb == "ADD"):
			return nil, fmt.Errorf("%.60q: ADD COLUMN takes IF NOT EXISTS, DROP and MODIFY COLUMN IF EXISTS", c)
		case cmd.verb == "DROP" && cmd.rest != "":
			return nil, fmt.Errorf("%.60q: DROP COLUMN takes a name only", c)
		case cmd.verb != "DROP" && cmd.rest == "":
			return nil, fmt.Errorf("%.60q: no type or default", c)
		}
		out = append(out, cmd)
	}
	return out, nil
}

// sql is the command without its IF [NOT] EXISTS.
func (c columnCmd) sql() string {
	s := c.verb + " COLUMN " + c.name
	if c.rest != "" {
		s += " " + c.rest
	}
	return s
}

// done reports whether a table with the columns have needs a conditional
// command no more: the column ADD would add is there, the one DROP or
// MODIFY would change is not.
func (c columnCmd) done(have map[string]bool) bool {
	return c.cond && have[c.name] == (c.verb == "ADD")
}

// definition splits rest into the column's definition and its position:
// "" (last, or where it is), "FIRST", or the column it goes after.
func (c columnCmd) definition() (def, after string) {
	mask := topLevel(c.rest)
	if loc := positionRE.FindStringSubmatchIndex(c.rest); loc != nil && mask[loc[0]] {
		if loc[2] >= 0 {
			after = c.rest[loc[2]:loc[3]]
		} else {
			after = "FIRST"
		}
		return strings.TrimSpace(c.rest[:loc[0]]), after
	}
	return c.rest, ""
}

// splitType splits a column definition (after the name) into its type and
// the rest (DEFAULT …, COMMENT …, CODEC …, TTL …).
func splitType(def string) (typ, tail string) {
	mask := topLevel(def)
	for _, loc := range columnTailRE.FindAllStringIndex(def, -1) {
		if mask[loc[0]] {
			return strings.TrimSpace(def[:loc[0]]), strings.TrimSpace(def[loc[0]:])
		}
	}
	return strings.TrimSpace(def), ""
}

// foldColumns applies the column commands of an ALTER TABLE (op: what
// follows the table's name) to a CREATE TABLE statement, as the server
// applies them to the table: ADD COLUMN [IF NOT EXISTS] name [type]
// [DEFAULT …] [AFTER col | FIRST], DROP COLUMN [IF EXISTS] name, MODIFY
// COLUMN [IF EXISTS] name [type] [DEFAULT|MATERIALIZED|ALIAS …] [AFTER col
// | FIRST]. A MODIFY that gives a type but not the default of a column
// that has one is refused: 18.16 drops the default, 26.x keeps it.
func foldColumns(create, op string) (string, error) {
	loc := createTableRE.FindStringSubmatchIndex(create)
	if loc == nil {
		return "", fmt.Errorf("not a CREATE TABLE IF NOT EXISTS … ENGINE = …MergeTree: %.80q", create)
	}
	var defs []string
	for _, d := range splitTop(stripComments(create[loc[4]:loc[5]]), ',') {
		if d = strings.TrimSpace(d); d != "" {
			defs = append(defs, d)
		}
	}
	find := func(name string) int {
		for i, d := range defs {
			if f := strings.Fields(d); len(f) > 0 && strings.Trim(f[0], "`") == name {
				return i
			}
		}
		return -1
	}
	// place puts def at its position: after (a column, or FIRST), or i (-1: last).
	place := func(def, after string, i int) error {
		if i >= 0 {
			defs = slices.Delete(defs, i, i+1)
		} else {
			i = len(defs)
		}
		switch after {
		case "":
		case "FIRST":
			i = 0
		default:
			j := find(after)
			if j < 0 {
				return fmt.Errorf("AFTER %s: no such column", after)
			}
			i = j + 1
		}
		defs = slices.Insert(defs, i, def)
		return nil
	}
	cmds, err := parseColumnCmds(op)
	if err != nil {
		return "", err
	}
	for _, c := range cmds {
		i := find(c.name)
		if (i >= 0) == (c.verb == "ADD") {
			if c.cond {
				continue
			}
			if i >= 0 {
				return "", fmt.Errorf("ADD COLUMN %s: the table has it", c.name)
			}
			return "", fmt.Errorf("%s COLUMN %s: no such column", c.verb, c.name)
		}
		def, after := c.definition()
		switch c.verb {
		case "ADD":
			err = place(c.name+" "+def, after, -1)
		case "DROP":
			defs = slices.Delete(defs, i, i+1)
		case "MODIFY":
			typ, tail := splitType(def)
			oldTyp, oldTail := splitType(strings.TrimSpace(strings.TrimPrefix(defs[i], strings.Fields(defs[i])[0])))
			switch {
			case tail != "" && !defaultRE.MatchString(tail):
				return "", fmt.Errorf("MODIFY COLUMN %s %.40q: only a type and/or DEFAULT, MATERIALIZED or ALIAS", c.name, def)
			case typ != "" && tail == "" && oldTail != "":
				return "", fmt.Errorf("MODIFY COLUMN %s %s: give its %q too (18.16 drops it, 26.x keeps it)", c.name, typ, oldTail)
			case typ == "":
				typ = oldTyp
			}
			err = place(strings.TrimSpace(c.name+" "+typ+" "+tail), after, i)
		}
		if err != nil {
			return "", fmt.Errorf("%s COLUMN %s: %w", c.verb, c.name, err)
		}
	}
	return create[:loc[4]] + "\n    " + strings.Join(defs, ",\n    ") + "\n" + create[loc[5]:], nil
}

// Byte classes of SQL text (classifySQL; statement.go's scanSQL tells
// code from the rest only).
const (
	sqlTop     = iota // outside quotes, comments, parentheses and brackets
	sqlNested         // inside parentheses or brackets
	sqlQuoted         // a string literal or quoted name, quotes included
	sqlComment        // a -- comment (to the end of its line) or /* comment */
)

// classifySQL classifies every byte of SQL text s.
func classifySQL(s string) []byte {
	class := make([]byte, len(s))
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'' || c == '"' || c == '`':
			j := i + 1
			for ; j < len(s) && s[j] != c; j++ {
				if s[j] == '\\' {
					j++
				}
			}
			for ; i <= j && i < len(s); i++ {
				class[i] = sqlQuoted
			}
			i--
		case strings.HasPrefix(s[i:], "--"):
			for ; i < len(s) && s[i] != '\n'; i++ {
				class[i] = sqlComment
			}
			i--
		case strings.HasPrefix(s[i:], "/*"):
			end := len(s) // unterminated: to the end
			if j := strings.Index(s[i+2:], "*/"); j >= 0 {
				end = i + 2 + j + 2
			}
			for ; i < end; i++ {
				class[i] = sqlComment
			}
			i--
		default:
			if c == '(' || c == '[' {
				depth++
			}
			if depth > 0 {
				class[i] = sqlNested
			}
			if c == ')' || c == ']' {
				depth--
			}
		}
	}
	return class
}

// topLevel marks the bytes of s that classifySQL finds at the top level.
func topLevel(s string) []bool {
	mask := make([]bool, len(s))
	for i, c := range classifySQL(s) {
		mask[i] = c == sqlTop
	}
	return mask
}

// splitTop splits s at the top-level (topLevel) occurrences of sep.
func splitTop(s string, sep byte) []string {
	var out []string
	mask, from := topLevel(s), 0
	for i := range s {
		if s[i] == sep && mask[i] {
			out = append(out, s[from:i])
			from = i + 1
		}
	}
	return append(out, s[from:])
}

// stripComments removes the -- comments of SQL text.
func stripComments(s string) string {
	var b strings.Builder
	for i, c := range classifySQL(s) {
		if c != sqlComment {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// renameCreate gives a CREATE statement of a renamed object its final name.
func renameCreate(o *schemaObject) string {
	re := createTableRE
	if o.view {
		re = createViewRE
	}
	loc := re.FindStringSubmatchIndex(o.sql)
	return o.sql[:loc[2]] + o.name + o.sql[loc[3]:]
}

// baseline returns the statements that create the migrations' end state on
// a fresh database: tables first (local, then Distributed), then views.
func (k clusterSchema) baseline(ms []Migration) ([]string, error) {
	final, all, err := catalog(ms)
	if err != nil {
		return nil, err
	}
	var tables, views []string
	for _, o := range final {
		if o.view {
			s, err := k.createView(renameCreate(o), all)
			if err != nil {
				return nil, err
			}
			views = append(views, s...)
			continue
		}
		s, err := k.createTable(renameCreate(o), o.shard)
		if err != nil {
			return nil, err
		}
		tables = append(tables, s...)
	}
	return append(tables, views...), nil
}

// createDatabaseOnCluster creates the database on every node.
func (k clusterSchema) createDatabase() string {
	return fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s ON CLUSTER %s", k.database, k.cluster)
}

// ClusterDDL returns the statements Migrate runs in cluster mode on a fresh
// database (for docs and tests): the database, schema_migrations, then the
// migrations' end state.
func ClusterDDL(cluster, database string) ([]string, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	k := clusterSchema{cluster: cluster, database: database}
	sm, err := k.createTable(createSchemaMigrations.SQL(), schemaMigrationsShard)
	if err != nil {
		return nil, err
	}
	b, err := k.baseline(ms)
	if err != nil {
		return nil, err
	}
	return append(append([]string{k.createDatabase()}, sm...), b...), nil
}

// ClusterRewrite returns the cluster statements of migration statement i of
// m, as a migration added after the cluster was created runs them; an
// ALTER … EACH SHARD step is shown with the prefix "/* each shard */ ".
func ClusterRewrite(cluster, database string, m Migration, i int) ([]string, error) {
	one := Migration{Version: m.Version, Name: m.Name, Statements: m.Statements[i : i+1], Shards: m.Shards[i : i+1]}
	return clusterPlan(cluster, database, m, one)
}

// ClusterPlan returns the cluster statements of migration m as a whole, as
// it runs on a cluster created before it (ClusterRewrite's notation).
func ClusterPlan(cluster, database string, m Migration) ([]string, error) {
	return clusterPlan(cluster, database, m, m)
}

func clusterPlan(cluster, database string, m, part Migration) ([]string, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	_, all, err := catalog(append(ms, m))
	if err != nil {
		return nil, err
	}
	steps, err := clusterSchema{cluster: cluster, database: database}.plan(part, all)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.String()
	}
	return out, nil
}

var tableColumns = Query("chstorage/table_columns")

// columnsOf returns the columns a table of conn's database has.
func columnsOf(ctx context.Context, conn driver.Conn, table string) (map[string]bool, error) {
	rows, err := tableColumns.Query(ctx, conn, Args{"table": table})
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", table, err)
		}
		have[name] = true
	}
	return have, rows.Err()
}

// alterColumnsOn runs an ALTER … COLUMN step on one node (a replica of its
// shard; replication carries it to the others): the commands its table
// still needs, without IF [NOT] EXISTS, which 18.16 does not know. So a
// migration that stopped half-way runs again, and two instances can run it
// at once: when the ALTER fails because the other made the change first,
// the columns say so.
func alterColumnsOn(ctx context.Context, conn driver.Conn, table string, cmds []columnCmd) error {
	have, err := columnsOf(ctx, conn, table)
	if err != nil {
		return err
	}
	var run []string
	for _, c := range cmds {
		if !c.done(have) {
			run = append(run, c.sql())
		}
	}
	if len(run) == 0 {
		return nil
	}
	err = conn.Exec(ctx, "ALTER TABLE "+table+" "+strings.Join(run, ", "))
	if err == nil {
		return nil
	}
	if have, herr := columnsOf(ctx, conn, table); herr == nil && !slices.ContainsFunc(cmds, func(c columnCmd) bool { return !c.done(have) }) {
		return nil
	}
	return err
}

// run runs one step.
func (cc *clusterConn) run(ctx context.Context, s clusterStep) error {
	switch {
	case s.cmds != nil:
		return cc.onEachShard(ctx, func(ctx context.Context, conn driver.Conn) error {
			return alterColumnsOn(ctx, conn, s.table, s.cmds)
		})
	case s.eachShard:
		return cc.execEachShard(ctx, s.sql)
	}
	return cc.Exec(ctx, s.sql)
}

// apply runs migration m on an existing cluster database (tables: catalog's
// all), statement by statement; it does not record m.
func (cc *clusterConn) apply(ctx context.Context, k clusterSchema, m Migration, tables map[string]*schemaObject) error {
	steps, err := k.plan(m, tables)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if err := cc.run(ctx, s); err != nil {
			return fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, s.stmt, err)
		}
	}
	return nil
}

// schema is the clusterSchema of cc's cluster and database.
func (cc *clusterConn) schema() clusterSchema {
	return clusterSchema{cluster: cc.cluster, database: cc.database, shardMacro: cc.cfg.shardMacro}
}

// migrateCluster is Migrate in cluster mode.
func migrateCluster(ctx context.Context, cc *clusterConn, ms []Migration, last uint32, record func(...Migration) error) error {
	k := cc.schema()
	setup, err := k.createTable(createSchemaMigrations.SQL(), schemaMigrationsShard)
	if err != nil {
		return err
	}
	for _, stmt := range append([]string{k.createDatabase()}, setup...) {
		if err := cc.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("create schema_migrations on cluster %s: %w", k.cluster, err)
		}
	}
	applied, err := appliedVersions(ctx, cc)
	if err != nil {
		return err
	}
	var pending []Migration
	for _, m := range ms {
		if !applied[m.Version] && m.Version <= last {
			pending = append(pending, m)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	_, all, err := catalog(ms)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		stmts, err := k.baseline(pending)
		if err != nil {
			return err
		}
		for i, stmt := range stmts {
			if err := cc.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("cluster baseline statement %d: %w", i+1, err)
			}
		}
		// One block: a crash records all of the baseline or none of it.
		return record(pending...)
	}
	for _, m := range pending {
		if err := cc.apply(ctx, k, m, all); err != nil {
			return err
		}
		if err := record(m); err != nil {
			return err
		}
	}
	return nil
}

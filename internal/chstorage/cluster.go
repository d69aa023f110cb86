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
//     of replicated tables is not idempotent, so the baseline skips them. All
//     of it is CREATE … IF NOT EXISTS: instances starting at once converge,
//     and a start that failed half-way is completed by the next.
//   - A migration added after a cluster exists runs statement by statement
//     (clusterSchema.rewrite): CREATE TABLE as above; CREATE MATERIALIZED
//     VIEW on the local tables; DROP TABLE of both; ALTER … ADD/DROP/MODIFY
//     COLUMN on X_local on one replica of each shard (execEachShard), and X
//     re-created over it (18.16 refuses ALTER … ON CLUSTER of a Distributed
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
	"strconv"
	"strings"
	"syscall"

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
			err := cc.execOn(ctx, addr, sql, args...)
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

// execOn runs sql on one node.
func (cc *clusterConn) execOn(ctx context.Context, addr, sql string, args ...any) error {
	c := cc.cfg
	c.Addr, c.Cluster = addr, ""
	conn, err := open(c, c.Database, false)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.Exec(ctx, sql, args...); err != nil {
		if optimizeNothing(sql, err) {
			return nil
		}
		return err
	}
	return nil
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

// rewrite returns the cluster statements of one migration statement (shard:
// its "-- shard:" annotation); tables are every table and view the
// migrations create, by name.
func (k clusterSchema) rewrite(stmt, shard string, tables map[string]*schemaObject) ([]string, error) {
	switch {
	case createTableRE.MatchString(stmt):
		return k.createTable(stmt, shard)
	case createViewRE.MatchString(stmt):
		return k.createView(stmt, tables)
	case dropTableRE.MatchString(stmt):
		return k.drop(dropTableRE.FindStringSubmatch(stmt)[1], tables), nil
	case insertRE2.MatchString(stmt):
		return []string{stmt}, nil // through the Distributed tables
	case renameRE.MatchString(stmt):
		return nil, errors.New("cluster mode: RENAME TABLE is not supported (a replicated table keeps its ZooKeeper path): " +
			"create the new table, copy, and switch readers in code")
	case alterRE.MatchString(stmt):
		m := alterRE.FindStringSubmatch(stmt)
		name, op := m[1], strings.TrimSpace(m[2])
		o := tables[name]
		if o == nil || o.view {
			return nil, fmt.Errorf("cluster mode: ALTER TABLE %s: not a table of the migrations", name)
		}
		alterLocal := fmt.Sprintf("%sALTER TABLE %s %s", eachShard, k.local(name), op)
		switch {
		case alterColumnRE.MatchString(op):
			// The local table's ALTER runs on one replica of each shard
			// (execEachShard: replicated ALTER). 18.16 refuses ALTER … ON
			// CLUSTER of a Distributed table when the cluster's shards are
			// replicated (code 371): re-create it over the new columns.
			return []string{alterLocal,
				fmt.Sprintf("DROP TABLE IF EXISTS %s.%s ON CLUSTER %s", k.database, name, k.cluster),
				k.createDistributed(name, "AS "+k.local(name), o.shard)}, nil
		case alterDataRE.MatchString(op):
			return []string{alterLocal}, nil
		}
		return nil, fmt.Errorf("cluster mode: ALTER TABLE %s %.40q: only ADD/DROP/MODIFY COLUMN, DELETE and UPDATE", name, op)
	}
	return nil, fmt.Errorf("cluster mode: a statement the rewriter does not know: %.80q", stmt)
}

// catalog simulates the migrations in order: the tables and views that
// exist at the end (in creation order, each with its final name), and every
// table and view ever created, by name (a renamed one under both names).
// unfolded lists the ALTER … COLUMN statements, which the baseline cannot
// fold into the CREATEs yet.
func catalog(ms []Migration) (final []*schemaObject, all map[string]*schemaObject, unfolded []string, err error) {
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
					return nil, nil, nil, fmt.Errorf("%s: table %s has no sharding key (a \"-- shard: <expression>\" line before its CREATE TABLE)", where, name)
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
						return nil, nil, nil, fmt.Errorf("%s: RENAME pair %q", where, pair)
					}
					o := live[pm[1]]
					if o == nil || live[pm[2]] != nil {
						return nil, nil, nil, fmt.Errorf("%s: RENAME %s TO %s: no such table, or the target exists", where, pm[1], pm[2])
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
				op := strings.TrimSpace(alterRE.FindStringSubmatch(stmt)[2])
				if !alterDataRE.MatchString(op) {
					// A fresh database takes the end state: a column change
					// would have to be folded into the CREATE.
					unfolded = append(unfolded, where)
				}
			case insertRE2.MatchString(stmt):
			default:
				return nil, nil, nil, fmt.Errorf("%s: a statement the cluster rewriter does not know: %.80q", where, stmt)
			}
		}
	}
	for _, o := range order {
		if live[o.name] == o {
			final = append(final, o)
		}
	}
	return final, all, unfolded, nil
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
	final, all, unfolded, err := catalog(ms)
	if err != nil {
		return nil, err
	}
	if len(unfolded) > 0 {
		return nil, fmt.Errorf("%s: the cluster baseline folds no ALTER … COLUMN into the CREATEs yet", strings.Join(unfolded, ", "))
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
// m, as a migration added after the cluster was created runs them.
func ClusterRewrite(cluster, database string, m Migration, i int) ([]string, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	_, all, _, err := catalog(append(ms, m))
	if err != nil {
		return nil, err
	}
	return clusterSchema{cluster: cluster, database: database}.rewrite(m.Statements[i], m.Shards[i], all)
}

// migrateCluster is Migrate in cluster mode.
func migrateCluster(ctx context.Context, cc *clusterConn, ms []Migration, last uint32, record func(...Migration) error) error {
	k := clusterSchema{cluster: cc.cluster, database: cc.database, shardMacro: cc.cfg.shardMacro}
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
	_, all, _, err := catalog(ms)
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
		for i, stmt := range m.Statements {
			out, err := k.rewrite(stmt, m.Shards[i], all)
			if err != nil {
				return fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
			for _, s := range out {
				var err error
				if sql, ok := strings.CutPrefix(s, eachShard); ok {
					err = cc.execEachShard(ctx, sql)
				} else {
					err = cc.Exec(ctx, s)
				}
				if err != nil {
					return fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
				}
			}
		}
		if err := record(m); err != nil {
			return err
		}
	}
	return nil
}

package chstorage

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migration is one versioned schema step, a file migrations/NNNN_name.sql.
type Migration struct {
	Version    uint32
	Name       string
	Statements []string
	// Shards are the statements' sharding keys in cluster mode: a
	// "-- shard: <expression>" line before a CREATE TABLE ("" for others).
	Shards []string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var out []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		name := e.Name()
		num, rest, ok := strings.Cut(strings.TrimSuffix(name, ".sql"), "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", name)
		}
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, name, v)
		}
		seen[uint32(v)] = name
		body, err := migrationFiles.ReadFile("migrations/" + name)
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", name, err)
		}
		stmts, shards := splitStatements(string(body))
		out = append(out, Migration{Version: uint32(v), Name: rest, Statements: stmts, Shards: shards})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// splitStatements splits a migration file on semicolons that end a line and
// drops comment-only lines. A "-- shard: <expression>" comment line before a
// statement is its sharding key in cluster mode (cluster.go).
func splitStatements(body string) (stmts, shards []string) {
	var cur strings.Builder
	shard := ""
	for _, line := range strings.Split(body, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			if key, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(trimmed, "--")), "shard:"); ok && cur.Len() == 0 {
				shard = strings.TrimSpace(key)
			}
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			stmts = append(stmts, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			shards = append(shards, shard)
			cur.Reset()
			shard = ""
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		stmts = append(stmts, s)
		shards = append(shards, shard)
	}
	return stmts, shards
}

var (
	createSchemaMigrations = Query("chstorage/create_schema_migrations")
	insertSchemaMigration  = Query("chstorage/insert_schema_migration")
	appliedMigrations      = Query("chstorage/applied_migrations")
)

// ExecMigration runs one migration statement. ClickHouse 18.16 knows no
// IF [NOT] EXISTS in ALTER … COLUMN, so a column ALTER runs the way cluster
// mode runs it on each shard (alterColumnsOn): only the commands the table
// still needs, without the clause; when a concurrent migration made the
// change first, the refusal is not an error. Any other statement runs as
// written.
func ExecMigration(ctx context.Context, conn driver.Conn, stmt string) error {
	m := alterRE.FindStringSubmatch(strings.TrimSpace(stmt))
	if m == nil || !alterColumnRE.MatchString(strings.TrimSpace(m[2])) {
		return conn.Exec(ctx, stmt)
	}
	cmds, err := parseColumnCmds(strings.TrimSpace(m[2]))
	if err != nil {
		return fmt.Errorf("ALTER TABLE %s: %w", m[1], err)
	}
	return alterColumnsOn(ctx, conn, m[1], cmds)
}

// Migrate applies the migrations the database has not seen yet, in order, and
// records each in schema_migrations. Statements are written to be idempotent
// (IF NOT EXISTS), so two instances starting at once converge.
func Migrate(ctx context.Context, conn driver.Conn, logger *slog.Logger) error {
	return migrateTo(ctx, conn, logger, ^uint32(0))
}

// migrateTo applies the pending migrations up to version last.
func migrateTo(ctx context.Context, conn driver.Conn, logger *slog.Logger, last uint32) error {
	migrations, err := Migrations()
	if err != nil {
		return err
	}
	if cc, ok := conn.(*clusterConn); ok {
		return migrateCluster(ctx, cc, migrations, last, func(ms ...Migration) error {
			return recordMigrations(ctx, conn, logger, ms...)
		})
	}
	if err := createSchemaMigrations.Exec(ctx, conn, nil); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.Version] || m.Version > last {
			continue
		}
		for i, stmt := range m.Statements {
			if err := ExecMigration(ctx, conn, stmt); err != nil {
				return fmt.Errorf("migration %04d_%s statement %d: %w", m.Version, m.Name, i+1, err)
			}
		}
		if err := recordMigrations(ctx, conn, logger, m); err != nil {
			return err
		}
	}
	return nil
}

// recordMigrations records migrations as applied, with one insert.
func recordMigrations(ctx context.Context, conn driver.Conn, logger *slog.Logger, ms ...Migration) error {
	rows := make([][]any, len(ms))
	for i, m := range ms {
		rows[i] = []any{m.Version, m.Name, time.Now()}
	}
	if err := insertSchemaMigration.Insert(ctx, conn, rows...); err != nil {
		return fmt.Errorf("record migration %04d: %w", ms[0].Version, err)
	}
	for _, m := range ms {
		logger.Info("applied migration", "version", m.Version, "name", m.Name)
	}
	return nil
}

func appliedVersions(ctx context.Context, conn driver.Conn) (map[uint32]bool, error) {
	rows, err := appliedMigrations.Query(ctx, conn, nil)
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("scan schema_migrations: %w", err)
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// Pending reports how many migrations the database has not applied yet.
func Pending(ctx context.Context, conn driver.Conn) (int, error) {
	migrations, err := Migrations()
	if err != nil {
		return 0, err
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range migrations {
		if !applied[m.Version] {
			n++
		}
	}
	return n, nil
}

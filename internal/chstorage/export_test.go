package chstorage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MigrateTo exposes migrateTo to the external tests.
var MigrateTo = migrateTo

// MigrateWith runs Migrate as if extra were more migration files.
func MigrateWith(ctx context.Context, conn driver.Conn, extra ...Migration) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	cc, ok := conn.(*clusterConn)
	if !ok {
		return errors.New("MigrateWith: a cluster connection only")
	}
	return migrateCluster(ctx, cc, append(ms, extra...), ^uint32(0), func(ms ...Migration) error {
		return recordMigrations(ctx, conn, slog.New(slog.DiscardHandler), ms...)
	})
}

// ReapplyOnCluster runs migration m on a cluster database statement by
// statement, whether schema_migrations has it or not, and does not record
// it: a migration run again after it stopped before its record.
func ReapplyOnCluster(ctx context.Context, conn driver.Conn, m Migration) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	cc, ok := conn.(*clusterConn)
	if !ok {
		return errors.New("ReapplyOnCluster: a cluster connection only")
	}
	_, all, err := catalog(append(ms, m))
	if err != nil {
		return err
	}
	return cc.apply(ctx, cc.schema(), m, all)
}

// ClusterDDLWith is ClusterDDL as if extra were more migration files.
func ClusterDDLWith(cluster, database string, extra ...Migration) ([]string, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	k := clusterSchema{cluster: cluster, database: database}
	return k.baseline(append(ms, extra...))
}

// FoldColumns exposes foldColumns (the cluster baseline's ALTER … COLUMN).
var FoldColumns = foldColumns

// LoadMigration reads a migration file kept outside migrations/ (a test
// fixture), NNNN_name.sql.
func LoadMigration(path string) (Migration, error) {
	body, err := os.ReadFile(path)
	if err != nil {
		return Migration{}, err
	}
	num, name, _ := strings.Cut(strings.TrimSuffix(filepath.Base(path), ".sql"), "_")
	v, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return Migration{}, fmt.Errorf("migration %s: want NNNN_name.sql", path)
	}
	stmts, shards := splitStatements(string(body))
	return Migration{Version: uint32(v), Name: name, Statements: stmts, Shards: shards}, nil
}

// WithShardMacro returns c with the ZooKeeper paths' shard macro set (the
// local two-shard cluster names its shards {sharded_shard}).
func WithShardMacro(c Config, macro string) Config {
	c.shardMacro = macro
	return c
}

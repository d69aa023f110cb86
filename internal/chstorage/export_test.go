package chstorage

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// MigrateTo exposes migrateTo to the external tests.
var MigrateTo = migrateTo

// MigrateWith runs Migrate as if extra were one more migration file.
func MigrateWith(ctx context.Context, conn driver.Conn, extra Migration) error {
	ms, err := Migrations()
	if err != nil {
		return err
	}
	cc, ok := conn.(*clusterConn)
	if !ok {
		return errors.New("MigrateWith: a cluster connection only")
	}
	return migrateCluster(ctx, cc, append(ms, extra), ^uint32(0), func(ms ...Migration) error {
		return recordMigrations(ctx, conn, slog.New(slog.DiscardHandler), ms...)
	})
}

// WithShardMacro returns c with the ZooKeeper paths' shard macro set (the
// local two-shard cluster names its shards {sharded_shard}).
func WithShardMacro(c Config, macro string) Config {
	c.shardMacro = macro
	return c
}

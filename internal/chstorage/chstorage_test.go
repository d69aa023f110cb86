package chstorage_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func TestMigrationsAreOrderedAndIdempotent(t *testing.T) {
	ms, err := chstorage.Migrations()
	require.NoError(t, err)
	require.NotEmpty(t, ms)
	for i := 1; i < len(ms); i++ {
		assert.Less(t, ms[i-1].Version, ms[i].Version)
	}
	for _, m := range ms {
		assert.NotEmpty(t, m.Statements, "migration %d has no statements", m.Version)
	}

	conn, _ := testenv.ClickHouse(t) // migrated once already
	ctx := context.Background()
	require.NoError(t, chstorage.Migrate(ctx, conn, slog.New(slog.DiscardHandler)))
	n, err := chstorage.Pending(ctx, conn)
	require.NoError(t, err)
	assert.Zero(t, n)
	var recorded uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM schema_migrations").Scan(&recorded))
	assert.Equal(t, uint64(len(ms)), recorded, "each migration recorded exactly once")
}

// TestExecMigrationColumnClauses: a migration's ADD COLUMN IF NOT EXISTS and
// DROP COLUMN IF EXISTS run on 18.16 (which knows neither clause) and run
// again without error, changing nothing the second time.
func TestExecMigrationColumnClauses(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	require.NoError(t, conn.Exec(ctx, "CREATE TABLE exec_columns (id String) ENGINE = MergeTree ORDER BY id"))
	columns := func() []string {
		var names []string
		rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = 'exec_columns' ORDER BY name")
		require.NoError(t, err)
		defer rows.Close()
		for rows.Next() {
			var n string
			require.NoError(t, rows.Scan(&n))
			names = append(names, n)
		}
		return names
	}
	for range 2 {
		require.NoError(t, chstorage.ExecMigration(ctx, conn, "ALTER TABLE exec_columns ADD COLUMN IF NOT EXISTS lock_model String DEFAULT ''"))
		assert.Equal(t, []string{"id", "lock_model"}, columns())
	}
	for range 2 {
		require.NoError(t, chstorage.ExecMigration(ctx, conn, "ALTER TABLE exec_columns DROP COLUMN IF EXISTS lock_model"))
		assert.Equal(t, []string{"id"}, columns())
	}
	require.Error(t, chstorage.ExecMigration(ctx, conn, "ALTER TABLE exec_columns DROP COLUMN lock_model"),
		"without IF EXISTS a missing column is an error, as on any server")
}

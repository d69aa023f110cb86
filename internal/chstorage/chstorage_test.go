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

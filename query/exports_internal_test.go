package query

import (
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestAppendUUIDMatchesString(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids := []uuid.UUID{uuid.Nil, uuid.Max}
	for i := 0; i < 100; i++ {
		var id uuid.UUID
		for j := range id {
			id[j] = byte(rng.Uint32())
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		require.Equal(t, id.String(), string(appendUUID([]byte("x"), id)[1:]))
	}
}

package registry

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// credTable answers as a map would through many merges.
func TestCredTable(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tb credTable
	want := map[credKey]uint32{}
	key := func() credKey {
		k := credKey{vendor: uint32(rng.IntN(3)), lock: uint32(rng.IntN(50))}
		k.hash[rng.IntN(16)] = byte(rng.IntN(8))
		if rng.IntN(10) == 0 {
			k.text = uint32(rng.IntN(5))
		}
		return k
	}
	for i := range 60_000 {
		k := key()
		if rng.IntN(3) == 0 {
			tb.del(k)
			delete(want, k)
		} else {
			tb.set(k, uint32(i))
			want[k] = uint32(i)
		}
		if i%997 == 0 {
			require.Equal(t, len(want), tb.n, "after %d changes", i)
			for range 200 {
				k := key()
				h, ok := tb.get(k)
				wh, wok := want[k]
				require.Equal(t, wok, ok, k)
				require.Equal(t, wh, h, k)
			}
		}
	}
	assert.Greater(t, len(tb.base), 0, "merged at least once")
	for k, h := range want {
		got, ok := tb.get(k)
		require.True(t, ok)
		require.Equal(t, h, got)
	}
}

package drill

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestDistribution(t *testing.T) {
	f := func(ms []int64, want Distribution) {
		t.Helper()
		assert.Equal(t, want, distribution(ms))
	}
	f(nil, Distribution{})
	f([]int64{7}, Distribution{Count: 1, P50: 7, P95: 7, P99: 7, Max: 7})
	f([]int64{40, 10, 30, 20}, Distribution{Count: 4, P50: 30, P95: 40, P99: 40, Max: 40})
	ms := make([]int64, 100)
	for i := range ms {
		ms[i] = int64(100 - i)
	}
	f(ms, Distribution{Count: 100, P50: 51, P95: 96, P99: 100, Max: 100})
}

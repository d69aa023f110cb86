package event

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTimeWindow(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMilli()
	f := func(w TimeWindow, ts int64, wantErr string) {
		t.Helper()
		err := w.Check(ts, now)
		if wantErr == "" {
			assert.NoError(t, err, "ts %d", ts)
			return
		}
		require.ErrorIs(t, err, ErrTimeOutOfRange, "ts %d", ts)
		assert.Contains(t, err.Error(), wantErr)
	}
	def := DefaultTimeWindow
	f(def, now, "")
	f(def, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), "")
	f(def, time.Date(1999, 12, 31, 23, 59, 59, 0, time.UTC).UnixMilli(), "1999-12-31T23:59:59Z is before 2000-01-01")
	f(def, now+7*24*3600*1000, "")
	f(def, now+7*24*3600*1000+1, "more than 168h0m0s after its receipt")
	f(def, time.Date(2106, 2, 8, 0, 0, 0, 0, time.UTC).UnixMilli(), "2106-02-08T00:00:00Z")
	f(def, math.MaxInt64, "9223372036854775807 ms")
	f(def, math.MinInt64, "ms is before")
	f(def, 0, "1970-01-01T00:00:00Z is before")
	f(TimeWindow{}, 1, "before 2000-01-01") // the zero window is the default
	// Even a generous window never passes what DateTime cannot hold.
	wide := TimeWindow{Min: time.Unix(0, 0), Ahead: 366 * 24 * time.Hour}
	f(wide, 1, "")
	nearEnd := time.Date(2106, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	assert.ErrorIs(t, wide.Check(time.Date(2106, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), nearEnd), ErrTimeOutOfRange)

	assert.NoError(t, def.Validate())
	assert.Error(t, TimeWindow{Min: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}.Validate())
	assert.Error(t, TimeWindow{Min: def.Min, Ahead: 400 * 24 * time.Hour}.Validate())
}

func TestMonth(t *testing.T) {
	assert.Equal(t, 202603, Month(time.Date(2026, 3, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()))
	assert.Equal(t, 202604, Month(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).UnixMilli()))
}

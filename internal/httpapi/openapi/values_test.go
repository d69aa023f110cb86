package openapi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

var testParams = []Param{
	{Name: "from", Type: TypeTime, Default: "now-24h"},
	{Name: "to", Type: TypeTime, Default: "now"},
	{Name: "limit", Type: TypeInteger, Min: 1, Max: 1000, Default: "100"},
	{Name: "site", List: true, MaxLen: 16},
	{Name: "order", Enum: []string{"asc", "desc"}, Default: "desc"},
	{Name: "full", Type: TypeBoolean},
	{Name: "id", In: "path", Required: true},
}

var now = time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)

func TestParseDefaultsAndValues(t *testing.T) {
	v, err := Parse(testParams, []Arg{{Name: "site", Value: "a, b,a"}, {Name: "full", Value: "true"},
		{Name: "id", Value: "x", In: "path"}, {Name: "from", Value: "2026-03-01T00:00:00+01:00"}}, now)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, v.List("site"))
	assert.Equal(t, int64(100), v.Int("limit"))
	assert.Equal(t, "desc", v.String("order"))
	assert.True(t, v.Bool("full"))
	from, _ := v.Time("from")
	assert.Equal(t, time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC), from)
	to, _ := v.Time("to")
	assert.Equal(t, now, to)
}

func TestParseTime(t *testing.T) {
	f := func(in string, want time.Time, wantErr bool) {
		t.Helper()
		got, err := ParseTime(in, now)
		if wantErr {
			require.Error(t, err, in)
			return
		}
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	f("now", now, false)
	f("now-7d", now.Add(-7*24*time.Hour), false)
	f("now-90m", now.Add(-90*time.Minute), false)
	f("1773921600000", time.UnixMilli(1773921600000).UTC(), false)
	f("2026-03-20T12:00:00Z", now, false)
	f("2026-12-01", time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), false)
	f("2026-02-30", time.Time{}, true)
	f("2026-12-1", time.Time{}, true)
	f("0001-01-01", time.Time{}, true)
	f("now+1h", time.Time{}, true)
	f("now-", time.Time{}, true)
	f("now--1h", time.Time{}, true)
	f("-5", time.Time{}, true)
	f("yesterday", time.Time{}, true)
	f("0001-01-01T00:00:00Z", time.Time{}, true)
}

// FuzzParse: whatever the arguments, Parse returns values or a 400 problem
// naming a field — never a panic or another error.
func FuzzParse(f *testing.F) {
	f.Add("site", "a,b", "from", "now-1d")
	f.Add("limit", "1001", "to", "2026-01-01T00:00:00Z")
	f.Add("sight", "x", "order", "up")
	f.Add("from", "now-99999999d", "site", strings.Repeat("s", 300))
	f.Add("full", "maybe", "limit", "-1")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		_, err := Parse(testParams, []Arg{{Name: k1, Value: v1}, {Name: k2, Value: v2}, {Name: "id", Value: "x", In: "path"}}, now)
		if err == nil {
			return
		}
		var p *httpapi.Problem
		require.True(t, errors.As(err, &p), "%v", err)
		require.Equal(t, 400, p.Status)
		if k1 != "" && k2 != "" {
			require.NotEmpty(t, p.Field)
		}
	})
}

package timestamp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseRFC3339(t *testing.T) {
	f := func(in string, ok bool) {
		t.Helper()
		got, gotOK := ParseRFC3339([]byte(in))
		assert.Equal(t, ok, gotOK, in)
		if ok {
			want, err := time.Parse(time.RFC3339Nano, in)
			assert.NoError(t, err)
			assert.Equal(t, want.UnixMilli(), got, in)
		}
	}
	f("2026-11-20T08:15:02Z", true)
	f("2026-11-20T08:15:02.123Z", true)
	f("2026-11-20T08:15:02.1Z", true)
	f("2026-11-20T08:15:02.123456789Z", true)
	f("2026-11-20T08:15:02+01:30", true)
	f("2026-11-20T08:15:02.5-05:00", true)
	f("2024-02-29T00:00:00Z", true)
	f("2023-02-29T00:00:00Z", false)
	f("2026-13-20T08:15:02Z", false)
	f("2026-11-20 08:15:02Z", false)
	f("2026-11-20T08:15:02", false)
	f("2026-11-20T24:00:00Z", false)
	f("2026-11-20T08:15:02.Z", false)
	f("2026-11-20T08:15:02.1234567890Z", false)
	f("2026-11-20T08:15:02Zx", false)
	f("2026-11-20T08:15:02+0100", false)
	f("", false)
}

func FuzzParseRFC3339(f *testing.F) {
	for _, s := range []string{"2026-11-20T08:15:02Z", "2026-11-20T08:15:02.123+01:00", "2024-02-29T23:59:59.999999999-23:59"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseRFC3339([]byte(s))
		if !ok {
			return
		}
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatalf("%q accepted, time.Parse says %v", s, err)
		}
		if want.UnixMilli() != got {
			t.Fatalf("%q: got %d, want %d", s, got, want.UnixMilli())
		}
	})
}

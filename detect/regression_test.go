package detect

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hours builds a series: n hours ending before end, each with the given
// attempts and denials.
func hours(end int64, n int, attempts, denied uint64) []RegressionHour {
	var out []RegressionHour
	for i := n; i >= 1; i-- {
		out = append(out, RegressionHour{HourMs: end - int64(i)*hourMs, Attempts: attempts, Denied: denied})
	}
	return out
}

func TestCheckRegressions(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixMilli()
	start := now - 14*24*hourMs
	r := DefaultRegressionRules()
	f := func(name string, series []RegressionSeries, want []RegressionFinding) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			alerts, got := CheckRegressions(&r, "os_version", series, now, start)
			require.Len(t, alerts, len(want))
			require.Len(t, got, len(want))
			for i := range want {
				assert.Equal(t, want[i].Value, got[i].Value)
				assert.Equal(t, want[i].New, got[i].New)
				assert.Equal(t, want[i].ChangeMs, got[i].ChangeMs)
				assert.Equal(t, [4]uint64{want[i].BeforeAttempts, want[i].BeforeDenied, want[i].AfterAttempts, want[i].AfterDenied},
					[4]uint64{got[i].BeforeAttempts, got[i].BeforeDenied, got[i].AfterAttempts, got[i].AfterDenied})
				a := alerts[i]
				assert.Equal(t, Regression, a.Detector)
				assert.Equal(t, SeverityHigh, a.Severity)
				assert.Contains(t, a.Explanation, "os_version "+want[i].Value)
				assert.NotEmpty(t, a.SuggestedAction)
				// The same condition found by a later run of the period is the same alert.
				again, _ := CheckRegressions(&r, "os_version", series, now+10*60*1000, start)
				assert.Equal(t, a.AlertID, again[i].AlertID)
			}
		})
	}
	established := RegressionSeries{Value: "ios 18.2", Hours: hours(now, 14*24, 10, 0)}
	established.Hours[len(established.Hours)-1].Denied = 1 // 1 of 3,360

	// A new OS version, first seen 6 hours ago, denied 15 of 20 times.
	f("new value regressed", []RegressionSeries{established, {Value: "ios 19.0", Hours: hours(now, 6, 4, 3)}},
		[]RegressionFinding{{Value: "ios 19.0", New: true, ChangeMs: now - 6*hourMs,
			BeforeAttempts: 240, BeforeDenied: 0, AfterAttempts: 24, AfterDenied: 18}})
	// The same, healthy: nothing.
	f("new value healthy", []RegressionSeries{established, {Value: "ios 19.0", Hours: hours(now, 6, 4, 0)}}, nil)
	// Too few attempts after the change: nothing yet.
	f("new value too few", []RegressionSeries{established, {Value: "ios 19.0", Hours: hours(now, 3, 4, 4)}}, nil)
	// A value present since the store's start is judged by a sliding split.
	worse := RegressionSeries{Value: "android 16", Hours: hours(now-24*hourMs, 13*24, 10, 1)}
	worse.Hours = append(worse.Hours, hours(now, 24, 10, 4)...)
	f("sliding split", []RegressionSeries{established, worse},
		[]RegressionFinding{{Value: "android 16", ChangeMs: now - 24*hourMs, BeforeAttempts: 240, BeforeDenied: 24,
			AfterAttempts: 240, AfterDenied: 96}})
	// A rise below the absolute minimum increase: nothing (5% → 12%, +7 points).
	small := RegressionSeries{Value: "android 15", Hours: hours(now-24*hourMs, 13*24, 20, 1)}
	small.Hours = append(small.Hours, hours(now, 24, 100, 12)...)
	f("ratio without the absolute increase", []RegressionSeries{established, small}, nil)
	// Unknown values are never judged.
	f("unknown", []RegressionSeries{established, {Value: "", Hours: hours(now, 6, 4, 4)}}, nil)

	r.Enabled = false
	alerts, _ := CheckRegressions(&r, "os_version", []RegressionSeries{established, {Value: "ios 19.0", Hours: hours(now, 6, 4, 3)}}, now, start)
	assert.Empty(t, alerts, "disabled")
}

func TestRegressionRulesValidate(t *testing.T) {
	r := DefaultRules()
	r.Detectors.Regression.Dimensions = []string{"os_version", "door_id"}
	r.Detectors.Regression.Ratio = 0.5
	err := r.Validate()
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "door_id") && strings.Contains(err.Error(), "ratio"), err.Error())
	require.NoError(t, DefaultRules().Validate())
	assert.True(t, DefaultRules().Enabled(Regression))
}

func TestCheckLatencyRegressions(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC).UnixMilli()
	start := now - 14*24*hourMs
	r := DefaultRegressionRules()
	lat := func(end int64, n int, locks uint64, meanS float64) []RegressionLatencyHour {
		var out []RegressionLatencyHour
		for i := n; i >= 1; i-- {
			out = append(out, RegressionLatencyHour{HourMs: end - int64(i)*hourMs, Locks: locks, SumMs: int64(float64(locks) * meanS * 1000)})
		}
		return out
	}
	old := RegressionLatencySeries{Value: "1.3.0", Hours: lat(now, 14*24, 2, 4)}
	// A firmware rolled out 10 hours ago: its locks take 90 s on average against 4 s.
	slow := RegressionLatencySeries{Value: "4.3.0", Hours: lat(now, 10, 2, 90)}
	alerts := CheckLatencyRegressions(&r, "lock_firmware", []RegressionLatencySeries{old, slow}, now, start)
	require.Len(t, alerts, 1)
	assert.Contains(t, alerts[0].Explanation, "lock_firmware 4.3.0 rose to 90.0 s on average (20 locks) since it first appeared")
	assert.InDelta(t, 90, alerts[0].Observed, 1e-9)
	assert.InDelta(t, 4, alerts[0].Baseline, 1e-9)
	assert.InDelta(t, 34, alerts[0].Threshold, 1e-9, "before + 30 s beats ×2")
	again := CheckLatencyRegressions(&r, "lock_firmware", []RegressionLatencySeries{old, slow}, now+5*60*1000, start)
	assert.Equal(t, alerts[0].AlertID, again[0].AlertID)
	// 4 s → 20 s: ×5 but less than +30 s: nothing.
	meh := RegressionLatencySeries{Value: "4.3.0", Hours: lat(now, 10, 2, 20)}
	assert.Empty(t, CheckLatencyRegressions(&r, "lock_firmware", []RegressionLatencySeries{old, meh}, now, start))
	// Too few locks acknowledged: nothing yet.
	few := RegressionLatencySeries{Value: "4.3.0", Hours: lat(now, 4, 2, 90)}
	assert.Empty(t, CheckLatencyRegressions(&r, "lock_firmware", []RegressionLatencySeries{old, few}, now, start))
	// Not a latency dimension: nothing.
	assert.Empty(t, CheckLatencyRegressions(&r, "os_version", []RegressionLatencySeries{old, slow}, now, start))
}

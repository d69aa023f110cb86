package backtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/sim"
)

// end is the fixed end of the simulated windows, so runs repeat.
var end = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

// data is a simulated estate's replay file and its labels.
type data struct {
	replay []byte
	labels []backtest.Label
}

// simulate backfills a fleet of the simulator (the same data
// `keyfleet simulate --no-kafka --replay-out --labels` writes).
func simulate(t testing.TB, subjects, days int) data {
	t.Helper()
	replay, labels, err := sim.Backfill(context.Background(), sim.BackfillOptions{Seed: 7, Sites: 4, DoorsPerSite: 60,
		Subjects: subjects, Days: days, End: end})
	require.NoError(t, err)
	return data{replay: replay, labels: labels}
}

// small is the backtest's simulated estate (~5 s to generate).
func small(t testing.TB) data { return simulate(t, 2000, 14) }

func replay(t testing.TB, d data, rules *detect.Rules, obs backtest.Observer) ([]detect.Alert, []byte) {
	engine, err := detect.NewEngine(rules, detect.Options{BatchChecks: true})
	require.NoError(t, err)
	var alerts []detect.Alert
	var out bytes.Buffer
	_, err = backtest.Replay(context.Background(), bytes.NewReader(d.replay), backtest.Options{Engine: engine, Observer: obs,
		Emit: func(a *detect.Alert) error {
			b, err := json.Marshal(a)
			require.NoError(t, err)
			out.Write(append(b, '\n'))
			if a.Revision == 0 {
				alerts = append(alerts, *a)
			}
			return nil
		}})
	require.NoError(t, err)
	return alerts, out.Bytes()
}

// TestSimulatedScores holds the detectors to their goal on a simulated
// estate, far above the fixed-threshold rule.
func TestSimulatedScores(t *testing.T) {
	d := small(t)
	fixed := backtest.NewFixedRule(8, time.Hour)
	alerts, _ := replay(t, d, detect.DefaultRules(), fixed)
	results := backtest.Score(alerts, d.labels, 10*time.Minute)
	base := backtest.Score(fixed.Alerts(), d.labels, 10*time.Minute)
	var tbl bytes.Buffer
	var baseline backtest.Result
	for _, r := range base {
		if r.Detector == detect.UnlockBurst {
			baseline = r
		}
	}
	backtest.WriteTable(&tbl, results, fixed.Name(), &baseline)
	t.Log("\n" + tbl.String())
	byDet := map[string]backtest.Result{}
	for _, r := range results {
		byDet[r.Detector] = r
	}
	// The floors are what the detectors reach on this estate (seed 7, 2,000
	// subjects, 14 days): a change that loses precision or recall fails.
	floors := map[string]float64{detect.UnlockBurst: 0.75, detect.UnattestedDeviceChange: 0.95,
		detect.UseAfterRevocation: 0.95, detect.DeniedStorm: 0.95, detect.DoorForced: 0.95}
	for det, floor := range floors {
		require.True(t, byDet[det].Scored, det)
		require.GreaterOrEqual(t, byDet[det].F1, floor, "%s: %+v", det, byDet[det])
	}
	require.Less(t, baseline.F1, byDet[detect.UnlockBurst].F1-0.3, "the fixed rule should be far worse: %+v", baseline)
}

// TestReplayDeterministic: the same input gives byte-identical output.
func TestReplayDeterministic(t *testing.T) {
	d := small(t)
	_, a := replay(t, d, detect.DefaultRules(), nil)
	_, b := replay(t, d, detect.DefaultRules(), nil)
	require.NotEmpty(t, a)
	require.Equal(t, string(a), string(b))
}

func TestMatches(t *testing.T) {
	l := backtest.Label{Type: detect.UnlockBurst, SubjectID: "s1", CredentialID: "c1", StartMs: 1000, EndMs: 2000}
	f := func(a detect.Alert, want bool) {
		t.Helper()
		require.Equal(t, want, backtest.Matches(&a, &l, time.Second), "%+v", a)
	}
	f(detect.Alert{Detector: detect.UnlockBurst, SubjectID: "s1", TsMs: 1500}, true)
	f(detect.Alert{Detector: detect.UnlockBurst, CredentialID: "c1", TsMs: 2900}, true) // within grace
	f(detect.Alert{Detector: detect.UnlockBurst, SubjectID: "s1", TsMs: 3001}, false)   // after grace
	f(detect.Alert{Detector: detect.UnlockBurst, SubjectID: "s1", TsMs: 999}, false)    // before start
	f(detect.Alert{Detector: detect.UnlockBurst, SubjectID: "s2", TsMs: 1500}, false)
	f(detect.Alert{Detector: detect.DeniedStorm, SubjectID: "s1", TsMs: 1500}, false) // other type
	l = backtest.Label{Type: detect.DeniedStorm, DoorID: "d1", StartMs: 1000, EndMs: 2000}
	f(detect.Alert{Detector: detect.DeniedStorm, DoorID: "d1", TsMs: 1500}, true)
	l = backtest.Label{Type: detect.UnlockBurst, DoorID: "d1", StartMs: 1000, EndMs: 2000}
	f(detect.Alert{Detector: detect.UnlockBurst, DoorID: "d1", TsMs: 1500}, false) // bursts are about subjects
}

// BenchmarkReplay measures replay throughput end to end (JSON decoding
// included) on a simulated two-week estate.
func BenchmarkReplay(b *testing.B) {
	d := simulate(b, 1000, 14)
	b.SetBytes(int64(len(d.replay)))
	b.ResetTimer()
	var records int
	for range b.N {
		engine, err := detect.NewEngine(detect.DefaultRules(), detect.Options{BatchChecks: true})
		require.NoError(b, err)
		st, err := backtest.Replay(context.Background(), bytes.NewReader(d.replay), backtest.Options{Engine: engine})
		require.NoError(b, err)
		records += st.Access + st.Credentials
	}
	b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
}

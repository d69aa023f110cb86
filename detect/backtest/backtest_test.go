package backtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/detect/internal/synth"
)

var (
	synthOut      = flag.String("synth-out", "", "write the synthetic replay and labels files to this directory")
	synthSubjects = flag.Int("synth-subjects", 0, "subjects per site of the synthetic estate (default: synth.Default)")
)

// TestWriteSynth writes the synthetic data set for manual backtests:
//
//	go test ./detect/backtest -run TestWriteSynth -synth-out /tmp/synth
func TestWriteSynth(t *testing.T) {
	if *synthOut == "" {
		t.Skip("-synth-out not set")
	}
	cfg := synth.Default()
	if *synthSubjects > 0 {
		cfg.Subjects = *synthSubjects
	}
	d := synth.Generate(cfg)
	require.NoError(t, os.MkdirAll(*synthOut, 0o755))
	f, err := os.Create(filepath.Join(*synthOut, "replay.jsonl"))
	require.NoError(t, err)
	require.NoError(t, d.WriteJSONL(f))
	require.NoError(t, f.Close())
	l, err := os.Create(filepath.Join(*synthOut, "labels.jsonl"))
	require.NoError(t, err)
	require.NoError(t, d.WriteLabels(l))
	require.NoError(t, l.Close())
}

// small is a quick synthetic estate for tests.
func small() synth.Config {
	c := synth.Default()
	c.Sites, c.Subjects = 2, 150
	c.Bursts, c.DeviceChanges, c.Revocations, c.DeniedStorms, c.Forced = 25, 15, 12, 8, 5
	return c
}

func replay(t testing.TB, d *synth.Data, rules *detect.Rules, obs backtest.Observer) ([]detect.Alert, []byte) {
	var buf bytes.Buffer
	require.NoError(t, d.WriteJSONL(&buf))
	engine, err := detect.NewEngine(rules, detect.Options{BatchChecks: true})
	require.NoError(t, err)
	var alerts []detect.Alert
	var out bytes.Buffer
	_, err = backtest.Replay(context.Background(), &buf, backtest.Options{Engine: engine, Observer: obs,
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

func labels(d *synth.Data) []backtest.Label {
	out := make([]backtest.Label, len(d.Labels))
	for i, l := range d.Labels {
		out[i] = backtest.Label(l)
	}
	return out
}

// TestSyntheticScores holds the detectors to the goal on the
// synthetic estate: F1 ≥ 0.95 for unlock_burst, unattested_device_change and
// use_after_revocation, far above the fixed-threshold rule.
func TestSyntheticScores(t *testing.T) {
	d := synth.Generate(small())
	fixed := backtest.NewFixedRule(8, time.Hour)
	alerts, _ := replay(t, d, detect.DefaultRules(), fixed)
	results := backtest.Score(alerts, labels(d), 10*time.Minute)
	base := backtest.Score(fixed.Alerts(), labels(d), 10*time.Minute)
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
	for _, det := range []string{detect.UnlockBurst, detect.UnattestedDeviceChange, detect.UseAfterRevocation, detect.DeniedStorm, detect.DoorForced} {
		require.True(t, byDet[det].Scored, det)
		require.GreaterOrEqual(t, byDet[det].F1, 0.95, "%s: %+v", det, byDet[det])
	}
	require.Less(t, baseline.F1, byDet[detect.UnlockBurst].F1-0.3, "the fixed rule should be far worse: %+v", baseline)
}

// TestReplayDeterministic: the same input gives byte-identical output.
func TestReplayDeterministic(t *testing.T) {
	d := synth.Generate(small())
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
// included) on the default synthetic estate (~100,000 records).
func BenchmarkReplay(b *testing.B) {
	d := synth.Generate(synth.Default())
	var buf bytes.Buffer
	require.NoError(b, d.WriteJSONL(&buf))
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		engine, err := detect.NewEngine(detect.DefaultRules(), detect.Options{BatchChecks: true})
		require.NoError(b, err)
		_, err = backtest.Replay(context.Background(), bytes.NewReader(data), backtest.Options{Engine: engine})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(len(d.Records))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func TestWriteSmall(t *testing.T) {
	if *synthOut == "" {
		t.Skip()
	}
	d := synth.Generate(small())
	f, _ := os.Create(filepath.Join(*synthOut, "replay.jsonl"))
	d.WriteJSONL(f)
	f.Close()
	l, _ := os.Create(filepath.Join(*synthOut, "labels.jsonl"))
	d.WriteLabels(l)
	l.Close()
}

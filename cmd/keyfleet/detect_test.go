package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A small replay: a credential revoked, then granted at a legacy panel; a
// forced door; labels for both and one the detectors cannot find.
const replayFile = `{"record":"credential","credential_id":"c1","subject_id":"s1","state":"active","device_id":"p1","attested":true,"role":"resident","ts_ms":1740000000000}
{"event_id":"e1","ts_ms":1740000100000,"received_ms":1740000100100,"vendor":"matter","site_id":"site-1","door_id":"front","lock_id":"l1","subject_id":"s1","credential_id":"c1","device_id":"p1","attested":"unknown","action":"unlock","outcome":"granted","method":"phone_nfc"}
{"record":"credential","credential_id":"c1","subject_id":"s1","state":"revoked","ts_ms":1740000200000}
{"record":"access","event_id":"e2","ts_ms":1740003800000,"received_ms":1740003800100,"vendor":"legacy","site_id":"site-1","door_id":"panel","lock_id":"l2","subject_id":"s1","credential_id":"c1","attested":"unknown","action":"unlock","outcome":"granted","method":"card"}
{"event_id":"e3","ts_ms":1740003900000,"vendor":"nuki","site_id":"site-1","door_id":"back","lock_id":"l3","attested":"unknown","action":"door_forced","outcome":"info","method":"unknown"}
`

const labelsFile = `{"type":"use_after_revocation","subject_id":"s1","credential_id":"c1","start_ms":1740003800000,"end_ms":1740003800000}
{"type":"door_forced","door_id":"back","start_ms":1740003900000,"end_ms":1740003900000}
{"type":"unlock_burst","subject_id":"s9","start_ms":1740003900000,"end_ms":1740003900000}
`

func TestDetectReplay(t *testing.T) {
	dir := t.TempDir()
	replay := filepath.Join(dir, "replay.jsonl")
	labels := filepath.Join(dir, "labels.jsonl")
	require.NoError(t, os.WriteFile(replay, []byte(replayFile), 0o644))
	require.NoError(t, os.WriteFile(labels, []byte(labelsFile), 0o644))

	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"detect", "--replay", replay, "--labels", labels}, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2, out.String())
	var a map[string]any
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &a))
	assert.Equal(t, "use_after_revocation", a["detector"])
	assert.Equal(t, []any{"e2"}, a["evidence"])
	assert.Contains(t, errOut.String(), "use_after_revocation")
	assert.Regexp(t, `door_forced\s+1\s+1\s+1\s+1\s+1\.000\s+1\.000\s+1\.000`, errOut.String())
	assert.Regexp(t, `unlock_burst\s+1\s+0`, errOut.String())
	assert.Contains(t, errOut.String(), "fixed: distinct doors per 1h0m0s >= 8")

	// Same input, same output; scores as JSON.
	var out2 bytes.Buffer
	scores := filepath.Join(dir, "scores.json")
	code = run(context.Background(), []string{"detect", "--replay", replay, "--labels", labels, "--score-out", scores}, &out2, &errOut)
	require.Equal(t, 0, code)
	assert.Equal(t, out.String(), out2.String())
	b, err := os.ReadFile(scores)
	require.NoError(t, err)
	var doc struct {
		Detectors []struct {
			Detector  string  `json:"detector"`
			Precision float64 `json:"precision"`
			Recall    float64 `json:"recall"`
		} `json:"detectors"`
	}
	require.NoError(t, json.Unmarshal(b, &doc))
	require.NotEmpty(t, doc.Detectors)

	// Rules: a file disables a detector.
	rules := filepath.Join(dir, "rules.json")
	require.NoError(t, os.WriteFile(rules, []byte(`{"version": 4, "detectors": {"door_forced": {"enabled": false}}}`), 0o644))
	out.Reset()
	code = run(context.Background(), []string{"detect", "--replay", replay, "--rules", rules}, &out, &errOut)
	require.Equal(t, 0, code)
	assert.Equal(t, 1, strings.Count(out.String(), "\n"))
	assert.Contains(t, out.String(), `"rules_version":4`)
}

func TestDetectUsage(t *testing.T) {
	f := func(args []string, code int, want string) {
		t.Helper()
		var out, errOut bytes.Buffer
		assert.Equal(t, code, run(context.Background(), append([]string{"detect"}, args...), &out, &errOut), errOut.String())
		assert.Contains(t, out.String()+errOut.String(), want)
	}
	f(nil, 2, "--replay FILE is required")
	f([]string{"--replay", "/nonexistent"}, 2, "no such file")
	f([]string{"--rules", "/nonexistent", "--replay", "x"}, 2, "read rules")
	f([]string{"--print-rules"}, 0, `"unlock_burst"`)
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	require.NoError(t, os.WriteFile(bad, []byte("{\"ts_ms\":1}\nnot json\n"), 0o644))
	f([]string{"--replay", bad}, 1, "line 2")
}

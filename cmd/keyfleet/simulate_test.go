package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func simulate(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), append([]string{"simulate"}, args...), &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSimulateOffline(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	code, _, stderr := simulate(t, "--no-kafka", "--days", "2", "--end", "2026-11-20T00:00:00Z", "--seed", "3",
		"--sites", "2", "--doors-per-site", "40", "--subjects", "300", "--anomaly-scale", "4",
		"--registry-out", p("registry.json"), "--replay-out", p("replay.jsonl"), "--labels", p("labels.jsonl"),
		"--raw-out", p("raw.jsonl"), "--stats", p("stats.json"), "--log-level", "warn")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "attempts/subject/day")

	// The registry file loads the way `keyfleet serve --registry` loads it.
	reg, err := registry.Load(p("registry.json"), []byte(simDevPseudonymKey))
	require.NoError(t, err)
	locks, creds := reg.Len()
	require.Equal(t, 80, locks)
	require.Greater(t, creds, 300)

	var stats struct {
		Records int64          `json:"records"`
		Labels  map[string]int `json:"labels"`
	}
	data, err := os.ReadFile(p("stats.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &stats))
	raw, err := os.ReadFile(p("raw.jsonl"))
	require.NoError(t, err)
	require.Equal(t, stats.Records, int64(bytes.Count(raw, []byte("\n"))))

	labels, err := os.ReadFile(p("labels.jsonl"))
	require.NoError(t, err)
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(labels)), "\n") {
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		for _, k := range []string{"type", "subject_id", "credential_id", "door_id", "start_ms", "end_ms"} {
			require.Contains(t, l, k)
		}
		n++
	}
	total := 0
	for _, c := range stats.Labels {
		total += c
	}
	require.Equal(t, total, n)

	replay, err := os.ReadFile(p("replay.jsonl"))
	require.NoError(t, err)
	require.Contains(t, string(replay), `{"record":"access","event_id":`)
	require.Contains(t, string(replay), `{"record":"credential","credential_id":`)

	// Same knobs, same seed, same end: the same records.
	code, _, stderr = simulate(t, "--no-kafka", "--days", "2", "--end", "2026-11-20T00:00:00Z", "--seed", "3",
		"--sites", "2", "--doors-per-site", "40", "--subjects", "300", "--anomaly-scale", "4",
		"--raw-out", p("raw2.jsonl"), "--log-level", "warn")
	require.Equal(t, 0, code, stderr)
	raw2, err := os.ReadFile(p("raw2.jsonl"))
	require.NoError(t, err)
	require.Equal(t, raw, raw2)

	// A detector that alerts exactly on the labels scores 1.
	var alerts bytes.Buffer
	for _, line := range strings.Split(strings.TrimSpace(string(labels)), "\n") {
		var l map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &l))
		a, err := json.Marshal(map[string]any{"alert_id": "a", "detector": l["type"], "subject_id": l["subject_id"],
			"credential_id": l["credential_id"], "door_id": l["door_id"], "ts_ms": l["end_ms"],
			"window_start_ms": l["start_ms"], "window_end_ms": l["end_ms"]})
		require.NoError(t, err)
		alerts.Write(append(a, '\n'))
	}
	require.NoError(t, os.WriteFile(p("alerts.jsonl"), alerts.Bytes(), 0o644))
	code, out, stderr := simulate(t, "score", "--labels", p("labels.jsonl"), "--alerts", p("alerts.jsonl"), "--json")
	require.Equal(t, 0, code, stderr)
	var results []struct {
		Detector string  `json:"detector"`
		Labels   int     `json:"labels"`
		F1       float64 `json:"f1"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &results))
	scored := 0
	for _, r := range results {
		require.Positive(t, r.Labels, r.Detector)
		require.Equal(t, 1.0, r.F1, r.Detector)
		scored += r.Labels
	}
	require.Equal(t, n, scored, "every label is scored")
	code, _, stderr = simulate(t, "score", "--labels", p("labels.jsonl"), "--alerts", p("missing.jsonl"))
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "missing.jsonl")
}

func TestSimulateUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"gateways with backfill":  {"--days", "1", "--gateways"},
		"bad vendor mix":          {"--no-kafka", "--days", "1", "--vendor-mix", "acme=1"},
		"bad end":                 {"--no-kafka", "--days", "1", "--end", "yesterday"},
		"too few subjects":        {"--no-kafka", "--days", "1", "--subjects", "3"},
		"negative rate":           {"--no-kafka", "--rate", "-5", "--count", "10"},
		"registry-only needs out": {"--registry-only"},
		"stray argument":          {"--no-kafka", "--days", "1", "extra"},
		"bad gateway profile":     {"--no-kafka", "--days", "1", "--gateway-profile", "legacy.speed=3"},
		"score without labels":    {"score"},
	} {
		code, _, stderr := simulate(t, args...)
		require.Equal(t, 2, code, "%s: %s", name, stderr)
	}
	code, _, stderr := simulate(t, "--help")
	require.Equal(t, 0, code)
	require.Contains(t, stderr, "simulate gateways")
	require.Contains(t, stderr, "KEYFLEET_KAFKA_BROKERS")
}

// TestSimulateToKafka runs the command against a broker: raw records on
// lock.events.raw, credential records on credential.events.
func TestSimulateToKafka(t *testing.T) {
	cfg := testenv.Kafka(t, 2)
	code, _, stderr := simulate(t, "--days", "1", "--end", "2026-11-20T00:00:00Z", "--sites", "1", "--doors-per-site", "30",
		"--subjects", "100", "--kafka-brokers", strings.Join(cfg.Brokers, ","), "--topic-prefix", cfg.TopicPrefix, "--log-level", "warn")
	require.Equal(t, 0, code, stderr)
	r := bus.NewGroupReader(cfg, bus.TopicRaw, "test")
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30_000_000_000)
	defer cancel()
	m, err := r.FetchMessage(ctx)
	require.NoError(t, err)
	require.Contains(t, string(m.Value), `"payload":`)
}

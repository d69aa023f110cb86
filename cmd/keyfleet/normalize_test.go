package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files")

func runBinary(t *testing.T, bin, stdinFile string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KEYFLEET_PSEUDONYM_KEY=", "KEYFLEET_REGISTRY=", "KEYFLEET_NORMALIZE_VENDOR=")
	if stdinFile != "" {
		f, err := os.Open(stdinFile)
		require.NoError(t, err)
		defer f.Close()
		cmd.Stdin = f
	}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return o.String(), e.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "go test ./cmd/keyfleet -update creates it")
	assert.Equal(t, string(want), got)
}

func TestNormalizeBinary(t *testing.T) {
	bin := testenv.KeyfleetBinary(t)

	t.Run("envelopes with rejects", func(t *testing.T) {
		stdout, stderr, code := runBinary(t, bin, "testdata/normalize-mixed.jsonl",
			"normalize", "--registry", "testdata/registry.json", "--pseudonym-key", "test-pseudonym-key-0123456789")
		assert.Equal(t, 0, code, stderr)
		golden(t, "normalize-mixed.golden", stdout)
		// One message per rejected line, naming it, then the summary.
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		require.Len(t, lines, 4, stderr)
		assert.True(t, strings.HasPrefix(lines[0], "line 3: malformed_envelope"), lines[0])
		assert.True(t, strings.HasPrefix(lines[1], "line 7: bad_time"), lines[1])
		assert.True(t, strings.HasPrefix(lines[2], "line 9: unknown_vendor"), lines[2])
		assert.Equal(t, "keyfleet normalize: 9 lines, 6 events, 3 rejected", lines[3])
		// Good lines around bad ones all made it, in input order.
		out := strings.Split(strings.TrimSpace(stdout), "\n")
		require.Len(t, out, 6)
		for i, v := range []string{"matter", "nuki", "schlage", "seam", "legacy", "legacy"} {
			assert.Contains(t, out[i], `"vendor":"`+v+`"`)
		}
		assert.Contains(t, out[0], `"subject_id":"subj-42"`)
		assert.Contains(t, out[0], `"door_id":"door-main"`)
		assert.Contains(t, out[4], `"subject_id":"subj-43"`)
		// No raw personal data anywhere.
		for _, secret := range []string{"Alice", "00123456"} {
			assert.NotContains(t, stdout, secret)
			assert.NotContains(t, stderr, secret)
		}
	})

	t.Run("bare legacy lines", func(t *testing.T) {
		in := filepath.Join(t.TempDir(), "in.csv")
		require.NoError(t, os.WriteFile(in, []byte("time,panel,reader,kind,number,result\n"+
			"2026-11-20T08:15:02Z,PANEL-7,READER-3,PIN,4321,GRANTED\n"+
			"2026-11-20T08:15:03Z,PANEL-7\n"+
			"2026-11-20T08:15:04Z,PANEL-7,READER-3,CARD,99,DENIED_EXPIRED\n"), 0o644))
		stdout, stderr, code := runBinary(t, bin, in, "normalize", "--vendor", "legacy", "--received-ms", "1764230499000")
		assert.Equal(t, 0, code, stderr)
		out := strings.Split(strings.TrimSpace(stdout), "\n")
		require.Len(t, out, 2, stdout)
		assert.Contains(t, out[0], `"action":"unlock"`)
		assert.Contains(t, out[0], `"received_ms":1764230499000`)
		assert.Contains(t, out[1], `"reason":"expired"`)
		assert.Contains(t, stderr, "line 3: malformed_payload")
		assert.Contains(t, stderr, "keyfleet normalize: 4 lines, 2 events, 1 rejected")
	})

	t.Run("usage errors exit 2", func(t *testing.T) {
		for _, args := range [][]string{
			{"normalize", "--vendor", "acme"},
			{"normalize", "--no-such-flag"},
			{"normalize", "extra-arg"},
			{"normalize", "--registry", "testdata/registry.json"},
		} {
			_, stderr, code := runBinary(t, bin, "", args...)
			assert.Equal(t, 2, code, "%v: %s", args, stderr)
		}
		_, stderr, code := runBinary(t, bin, "", "normalize", "--help")
		assert.Equal(t, 0, code)
		assert.Contains(t, stderr, "Exit status: 0 when every line was processed")
	})
}

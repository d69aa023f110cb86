package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// keyfleet token (keyed), audit verify, audit checkpoint, and an exported
// checkpoint that catches a cut tail on its own.
func TestAuditCheckpointCommand(t *testing.T) {
	conn, ch := testenv.ClickHouse(t)
	ctx := context.Background()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "audit.keys")
	require.NoError(t, os.WriteFile(keyFile, []byte("k1 "+strings.Repeat("0123456789abcdef", 3)+"\n"), 0o600))
	cli := func(want int, args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append([]string{args[0], args[1], "--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database}, args[2:]...)
		code := run(ctx, args, &out, &errOut)
		require.Equal(t, want, code, "%v: stdout %s stderr %s", args, out.String(), errOut.String())
		return out.String(), errOut.String()
	}
	out, _ := cli(0, "token", "create", "--name", "ops", "--role", "manager", "--expires-in", "30d", "--output", "json", "--audit-key-file", keyFile)
	var created struct {
		Token  auth.Token `json:"token"`
		Secret string     `json:"secret"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &created))
	assert.InDelta(t, time.Now().Add(30*24*time.Hour).UnixMilli(), created.Token.ExpiresMs, float64(time.Minute.Milliseconds()))
	out, _ = cli(0, "token", "rotate", "--output", "json", "--audit-key-file", keyFile, created.Token.ID)
	var rotated struct {
		Token       auth.Token `json:"token"`
		RotatedFrom string     `json:"rotated_from"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rotated))
	assert.Equal(t, created.Token.ID, rotated.RotatedFrom)
	assert.Equal(t, created.Token.ExpiresMs, rotated.Token.ExpiresMs)
	cli(1, "token", "rotate", "--audit-key-file", keyFile, created.Token.ID)

	out, _ = cli(0, "audit", "verify", "--audit-key-file", keyFile)
	assert.Contains(t, out, "verified")
	assert.NotContains(t, out, "unkeyed")
	_, errOut := cli(2, "audit", "checkpoint")
	assert.Contains(t, errOut, "audit key")
	out, _ = cli(0, "audit", "checkpoint", "--audit-key-file", keyFile)
	cpFile := filepath.Join(dir, "exported.jsonl")
	require.NoError(t, os.WriteFile(cpFile, []byte(out), 0o600))
	cps, err := audit.ReadCheckpoints(strings.NewReader(out), "stdout")
	require.NoError(t, err)
	require.Len(t, cps, 2, "one chain per CLI run")

	// Cut the last entry of the newest chain (no other chain anchors it):
	// the exported checkpoint names it.
	cut := cps[len(cps)-1]
	require.NoError(t, conn.Exec(ctx, "ALTER TABLE audit_log DELETE WHERE chain = '"+cut.Chain+"' AND seq = "+jsonNumber(cut.Seq)))
	require.Eventually(t, func() bool {
		var n uint64
		err := conn.QueryRow(ctx, `SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0`, ch.Database).Scan(&n)
		return err == nil && n == 0
	}, 30*time.Second, 50*time.Millisecond)
	out, errOut = cli(1, "audit", "verify", "--audit-key-file", keyFile, "--checkpoint", cpFile)
	t.Logf("keyfleet audit verify --checkpoint:\n%s%s", out, errOut)
	assert.Contains(t, out, "truncated")
	assert.Contains(t, errOut, "first truncated entry is "+cut.Chain)
	// Without the exported checkpoint the cut is invisible here (no anchor
	// was configured for these CLI chains).
	cli(0, "audit", "verify", "--audit-key-file", keyFile)
	// And a checkpoint is not signed over a log that fails verification.
	_, errOut = cli(1, "audit", "checkpoint", "--audit-key-file", keyFile, "--checkpoint", cpFile)
	assert.Contains(t, errOut, "not signing a checkpoint")
}

func jsonNumber(n uint64) string {
	b, _ := json.Marshal(n)
	return string(b)
}

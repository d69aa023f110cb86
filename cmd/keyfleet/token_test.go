package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func TestTokenCommand(t *testing.T) {
	conn, ch := testenv.ClickHouse(t)
	ctx := context.Background()
	tokenCmd := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		args = append([]string{"token", args[0], "--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database}, args[1:]...)
		code := run(ctx, args, &out, &errOut)
		require.Equal(t, want, code, "stdout %s stderr %s", out.String(), errOut.String())
		return out.String()
	}
	var created struct {
		Token  auth.Token `json:"token"`
		Secret string     `json:"secret"`
	}
	require.NoError(t, json.Unmarshal([]byte(tokenCmd(0, "create", "--name", "ops", "--role", "manager", "--output", "json")), &created))
	require.True(t, strings.HasPrefix(created.Secret, "kf_"))
	assert.Equal(t, auth.IDOf(created.Secret), created.Token.ID)

	text := tokenCmd(0, "create", "--name", "reader", "--role", "analyst")
	assert.Contains(t, text, "shown once")

	list := tokenCmd(0, "list")
	assert.Contains(t, list, created.Token.ID)
	assert.Contains(t, list, "reader")
	assert.NotContains(t, list, created.Secret)

	tokenCmd(0, "revoke", created.Token.ID)
	var listed struct {
		Tokens []auth.Token `json:"tokens"`
	}
	require.NoError(t, json.Unmarshal([]byte(tokenCmd(0, "list", "--output", "json")), &listed))
	for _, tk := range listed.Tokens {
		if tk.ID == created.Token.ID {
			assert.NotZero(t, tk.RevokedMs)
		}
	}
	// Every change is on the audit log, before it was made, and the chains verify.
	rows, err := conn.Query(ctx, "SELECT action, target, actor FROM audit_log WHERE action LIKE 'token.%' ORDER BY ts_ms, action")
	require.NoError(t, err)
	var changes []string
	for rows.Next() {
		var action, target, actor string
		require.NoError(t, rows.Scan(&action, &target, &actor))
		assert.True(t, strings.HasPrefix(actor, "cli"), actor)
		changes = append(changes, action+" "+target)
	}
	require.NoError(t, rows.Err())
	assert.Contains(t, changes, "token.create "+created.Token.ID)
	assert.Contains(t, changes, "token.revoke "+created.Token.ID)
	assert.Len(t, changes, 3)
	store, err := audit.NewStore(conn, audit.Options{Chain: "token-test"})
	require.NoError(t, err)
	rep, err := store.Verify(ctx)
	require.NoError(t, err)
	assert.True(t, rep.OK, "%+v", rep)
	// Revoking again changes nothing and records nothing.
	tokenCmd(0, "revoke", created.Token.ID)

	tokenCmd(1, "revoke", "tok_unknown")
	tokenCmd(2, "create", "--name", "x", "--role", "root")
	tokenCmd(2, "create", "--role", "analyst")
	tokenCmd(2, "frobnicate")
}

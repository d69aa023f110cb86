package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

type memAudit struct {
	mu      sync.Mutex
	entries []audit.Entry
	fail    bool
}

func (a *memAudit) Append(_ context.Context, e audit.Entry) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return errors.New("down")
	}
	a.entries = append(a.entries, e)
	return nil
}

func TestTokenAPI(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	store := auth.NewStore(conn, testenv.Logger(t))
	require.NoError(t, store.Load(ctx))
	admin, err := store.Bootstrap(ctx, "")
	require.NoError(t, err)
	require.NotEmpty(t, admin)
	log := &memAudit{}
	api, err := auth.NewAPI(store, log)
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: store}, api.Routes())
	require.NoError(t, err)
	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.App().Test(req, -1)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}

	code, out := call("POST", "/v1/tokens", admin, `{"name":"grafana","role":"analyst"}`)
	require.Equal(t, 201, code, out)
	secret := out["secret"].(string)
	id := out["token"].(map[string]any)["id"].(string)
	require.True(t, strings.HasPrefix(secret, "kf_"))
	p, err := store.Authenticate(ctx, secret)
	require.NoError(t, err)
	assert.Equal(t, httpapi.RoleAnalyst, p.Role)
	assert.Equal(t, id, p.TokenID)
	// The new token works, and only for its role.
	code, _ = call("GET", "/v1/tokens", secret, "")
	assert.Equal(t, 403, code)

	// Validation names the field.
	for body, field := range map[string]string{
		`{"name":"x","role":"root"}`:          "role",
		`{"name":"","role":"analyst"}`:        "name",
		`{"name":"x","role":"analyst","a":1}`: "",
		`not json`:                            "",
	} {
		code, out := call("POST", "/v1/tokens", admin, body)
		require.Equal(t, 400, code, body)
		if field != "" {
			assert.Equal(t, field, out["field"], body)
		} else {
			assert.Equal(t, "invalid_body", out["code"], body)
		}
	}

	// Last use is noted on the request path and survives a flush and reload.
	require.NoError(t, store.FlushUsage(ctx))
	fresh := auth.NewStore(conn, testenv.Logger(t))
	require.NoError(t, fresh.Load(ctx))
	tok, ok := fresh.Get(id)
	require.True(t, ok)
	var listed auth.Token
	for _, tk := range fresh.List() {
		if tk.ID == id {
			listed = tk
		}
	}
	assert.NotZero(t, listed.LastUsedMs)
	assert.Zero(t, tok.RevokedMs)

	code, out = call("GET", "/v1/tokens", admin, "")
	require.Equal(t, 200, code)
	require.Len(t, out["tokens"], 2)
	assert.NotContains(t, out, "secret")

	code, _ = call("DELETE", "/v1/tokens/"+id, admin, "")
	require.Equal(t, 200, code)
	_, err = store.Authenticate(ctx, secret)
	require.ErrorIs(t, err, httpapi.ErrUnauthenticated)
	code, out = call("DELETE", "/v1/tokens/tok_nope", admin, "")
	assert.Equal(t, 404, code)
	assert.Equal(t, "token_not_found", out["code"])

	// The last admin token stays.
	adminID := auth.IDOf(admin)
	code, out = call("DELETE", "/v1/tokens/"+adminID, admin, "")
	assert.Equal(t, 409, code)
	assert.Equal(t, "last_admin", out["code"])

	require.Len(t, log.entries, 2)
	assert.Equal(t, "token.create", log.entries[0].Action)
	assert.Equal(t, id, log.entries[0].Target)
	assert.Equal(t, "token.revoke", log.entries[1].Action)
	assert.Equal(t, auth.IDOf(admin), log.entries[0].Actor)

	// Without the audit log, no change.
	log.fail = true
	code, out = call("POST", "/v1/tokens", admin, `{"name":"x","role":"analyst"}`)
	assert.Equal(t, 503, code)
	assert.Equal(t, "audit_unavailable", out["code"])
	require.Len(t, store.List(), 2)
}

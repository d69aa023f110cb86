package auth_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var bootstrapSecret = strings.Repeat("bootstrap-secret-", 2) // 34 characters

// The bootstrap token: at least 32 characters, audited when created, and a
// revocation survives restarts (today's bug: revoked_ms was reset).
func TestBootstrapTokenRevocationPersists(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	log := &memAudit{}
	store := auth.NewStore(conn, testenv.Logger(t)).WithAudit(log)
	require.NoError(t, store.Load(ctx))
	_, err := store.Bootstrap(ctx, "short-secret")
	require.ErrorIs(t, err, auth.ErrShortSecret)
	printed, err := store.Bootstrap(ctx, bootstrapSecret)
	require.NoError(t, err)
	assert.Empty(t, printed)
	require.Len(t, log.entries, 1)
	assert.Equal(t, "token.create", log.entries[0].Action)
	assert.Equal(t, auth.IDOf(bootstrapSecret), log.entries[0].Target)
	assert.Equal(t, "system:bootstrap", log.entries[0].Actor)
	_, err = store.Authenticate(ctx, bootstrapSecret)
	require.NoError(t, err)
	// A second admin, then the bootstrap token is revoked.
	second, _, err := store.Create(ctx, "second-admin", httpapi.RoleAdmin)
	require.NoError(t, err)
	_, err = store.Revoke(ctx, auth.IDOf(bootstrapSecret))
	require.NoError(t, err)

	// Restart: the same KEYFLEET_BOOTSTRAP_TOKEN does not bring it back.
	restarted := auth.NewStore(conn, testenv.Logger(t)).WithAudit(log)
	require.NoError(t, restarted.Load(ctx))
	printed, err = restarted.Bootstrap(ctx, bootstrapSecret)
	require.NoError(t, err)
	assert.Empty(t, printed)
	_, err = restarted.Authenticate(ctx, bootstrapSecret)
	assert.ErrorIs(t, err, httpapi.ErrUnauthenticated)
	tok, ok := restarted.Get(auth.IDOf(bootstrapSecret))
	require.True(t, ok)
	assert.NotZero(t, tok.RevokedMs)
	assert.Len(t, log.entries, 1, "nothing re-created")

	// With no admin left, start-up makes (and audits) a fresh one.
	_, err = restarted.Revoke(ctx, auth.IDOf(second))
	require.NoError(t, err)
	again := auth.NewStore(conn, testenv.Logger(t)).WithAudit(log)
	require.NoError(t, again.Load(ctx))
	printed, err = again.Bootstrap(ctx, bootstrapSecret)
	require.NoError(t, err)
	require.NotEmpty(t, printed)
	_, err = again.Authenticate(ctx, printed)
	require.NoError(t, err)
	require.Len(t, log.entries, 2)
	assert.Equal(t, auth.IDOf(printed), log.entries[1].Target)
}

func TestTokenExpiryAndRotation(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	clk := &testClock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	store := auth.NewStore(conn, testenv.Logger(t)).WithClock(clk.now)
	require.NoError(t, store.Load(ctx))
	_, err := store.Bootstrap(ctx, bootstrapSecret)
	require.NoError(t, err)
	log := &memAudit{}
	api, err := auth.NewAPI(store, log)
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: store}, api.Routes())
	require.NoError(t, err)
	call := func(method, path, token, body string) (int, map[string]any) {
		t.Helper()
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.App().Test(req, -1)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}

	// Expiry.
	code, out := call("POST", "/v1/tokens", bootstrapSecret, `{"name":"contractor","role":"analyst","expires_at":"2026-05-01T10:00:00Z"}`)
	require.Equal(t, 201, code, out)
	temp := out["secret"].(string)
	assert.Equal(t, float64(time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC).UnixMilli()), out["token"].(map[string]any)["expires_ms"])
	_, err = store.Authenticate(ctx, temp)
	require.NoError(t, err)
	for _, body := range []string{`{"name":"x","role":"analyst","expires_at":"2026-05-01T08:00:00Z"}`,
		`{"name":"x","role":"analyst","expires_at":"2040-01-01T00:00:00Z"}`} {
		code, out = call("POST", "/v1/tokens", bootstrapSecret, body)
		assert.Equal(t, 400, code, body)
		assert.Equal(t, "expires_at", out["field"])
	}
	clk.add(time.Hour)
	_, err = store.Authenticate(ctx, temp)
	assert.ErrorIs(t, err, httpapi.ErrUnauthenticated, "expired")
	reloaded := auth.NewStore(conn, testenv.Logger(t)).WithClock(clk.now)
	require.NoError(t, reloaded.Load(ctx))
	_, err = reloaded.Authenticate(ctx, temp)
	assert.ErrorIs(t, err, httpapi.ErrUnauthenticated, "expiry is stored")

	// Rotation: a new secret, the old token revoked, both ids audited.
	code, out = call("POST", "/v1/tokens", bootstrapSecret, `{"name":"grafana","role":"analyst"}`)
	require.Equal(t, 201, code, out)
	oldSecret := out["secret"].(string)
	oldID := out["token"].(map[string]any)["id"].(string)
	code, out = call("POST", "/v1/tokens/"+oldID+"/rotate", bootstrapSecret, "")
	require.Equal(t, 201, code, out)
	newSecret := out["secret"].(string)
	newID := out["token"].(map[string]any)["id"].(string)
	assert.Equal(t, oldID, out["rotated_from"])
	assert.Equal(t, "grafana", out["token"].(map[string]any)["name"])
	_, err = store.Authenticate(ctx, oldSecret)
	assert.ErrorIs(t, err, httpapi.ErrUnauthenticated)
	p, err := store.Authenticate(ctx, newSecret)
	require.NoError(t, err)
	assert.Equal(t, httpapi.RoleAnalyst, p.Role)
	code, out = call("POST", "/v1/tokens/"+oldID+"/rotate", bootstrapSecret, "")
	assert.Equal(t, 409, code)
	assert.Equal(t, "token_inactive", out["code"])
	code, _ = call("POST", "/v1/tokens/tok_nope/rotate", bootstrapSecret, "")
	assert.Equal(t, 404, code)

	var actions []string
	for _, e := range log.entries {
		actions = append(actions, e.Action)
		assert.Equal(t, auth.IDOf(bootstrapSecret), e.Actor, "the actor is the token id")
		assert.Equal(t, "bootstrap", e.ActorName, "beside its name")
	}
	assert.Equal(t, []string{"token.create", "token.create", "token.rotate"}, actions)
	last := log.entries[2]
	assert.Equal(t, newID, last.Target)
	assert.Equal(t, oldID, last.Details["rotated_from"])
}

package auth_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func TestCheckSites(t *testing.T) {
	f := func(role httpapi.Role, sites []string, want string) {
		t.Helper()
		err := auth.CheckSites(role, sites)
		if want == "" {
			assert.NoError(t, err)
			return
		}
		assert.ErrorContains(t, err, want)
	}
	f(httpapi.RoleAdmin, nil, "")
	f(httpapi.RoleManager, []string{"s1", "s2"}, "")
	f(httpapi.RoleAnalyst, []string{"s1"}, "")
	f(httpapi.RoleAdmin, []string{"s1"}, "a admin token cannot be limited to sites")
	f(httpapi.RoleIngest, []string{"s1"}, "cannot be limited")
	f(httpapi.RoleManager, []string{"s1", "s1"}, `site "s1" twice`)
	f(httpapi.RoleManager, []string{""}, "1..128 characters")
	f(httpapi.RoleManager, []string{"a,b"}, "no commas")
}

// A scoped token's sites are stored with it, survive a reload (another
// instance's view) and a rotation, and come with every request it
// authenticates.
func TestScopedToken(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	ctx := context.Background()
	store := auth.NewStore(conn, testenv.Logger(t))
	require.NoError(t, store.Load(ctx))
	secret, err := auth.NewSecret()
	require.NoError(t, err)
	tok, err := store.Put(ctx, auth.Spec{Name: "site-a manager", Role: httpapi.RoleManager, Sites: []string{"site-a"}}, secret)
	require.NoError(t, err)
	assert.Equal(t, []string{"site-a"}, tok.Sites)
	_, err = store.Put(ctx, auth.Spec{Name: "x", Role: httpapi.RoleAdmin, Sites: []string{"site-a"}}, secret+"x")
	require.Error(t, err)

	other := auth.NewStore(conn, testenv.Logger(t))
	require.NoError(t, other.Load(ctx))
	p, err := other.Authenticate(ctx, secret)
	require.NoError(t, err)
	assert.Equal(t, []string{"site-a"}, p.Sites)
	assert.True(t, p.InScope("site-a"))
	assert.False(t, p.InScope("site-b"))
	assert.False(t, p.InScope(""), "a scoped token sees no fleet-wide record")

	secret2, err := auth.NewSecret()
	require.NoError(t, err)
	rotated, err := other.Rotate(ctx, tok.ID, secret2)
	require.NoError(t, err)
	assert.Equal(t, []string{"site-a"}, rotated.Sites)
	p, err = other.Authenticate(ctx, secret2)
	require.NoError(t, err)
	assert.Equal(t, []string{"site-a"}, p.Sites)

	unscoped := httpapi.Principal{Role: httpapi.RoleManager}
	assert.True(t, unscoped.InScope(""))
	sites, err := unscoped.SiteFilter("")
	require.NoError(t, err)
	assert.Empty(t, sites)
	_, err = p.SiteFilter("site-b")
	require.ErrorContains(t, err, "out_of_scope")
	sites, err = p.SiteFilter("")
	require.NoError(t, err)
	assert.Equal(t, []string{"site-a"}, sites)
}

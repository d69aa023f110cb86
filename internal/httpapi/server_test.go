package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type tokens map[string]Role

func (t tokens) Authenticate(_ context.Context, token string) (Principal, error) {
	r, ok := t[token]
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	return Principal{Name: string(r), Role: r}, nil
}

func TestRolesAreEnforcedPerRoute(t *testing.T) {
	ok := func(c *fiber.Ctx) error { return c.SendString("ok") }
	s, err := New(Options{Auth: tokens{"a": RoleAdmin, "n": RoleAnalyst, "r": RoleResponder, "m": RoleManager, "i": RoleIngest}}, []Route{
		{Method: "GET", Path: "/public", Public: true, Handler: ok},
		{Method: "GET", Path: "/read", Roles: ReadRoles, Handler: ok},
		{Method: "POST", Path: "/admin", Roles: AdminOnly, Handler: ok},
		{Method: "POST", Path: "/ingest", Roles: IngestRoles, Handler: ok},
	})
	require.NoError(t, err)
	f := func(method, path, token string, want int, wantCode string) {
		t.Helper()
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := s.App().Test(req)
		require.NoError(t, err)
		assert.Equal(t, want, resp.StatusCode, "%s %s as %q", method, path, token)
		if wantCode != "" {
			body, _ := io.ReadAll(resp.Body)
			var p Problem
			require.NoError(t, json.Unmarshal(body, &p), string(body))
			assert.Equal(t, wantCode, p.Code)
			assert.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
		}
	}
	f("GET", "/public", "", 200, "")
	f("GET", "/read", "", 401, "unauthenticated")
	f("GET", "/read", "bogus", 401, "invalid_token")
	f("GET", "/read", "n", 200, "")
	f("GET", "/read", "r", 200, "")
	f("GET", "/read", "m", 200, "")
	f("GET", "/read", "a", 200, "")
	f("GET", "/read", "i", 403, "forbidden")
	f("POST", "/admin", "m", 403, "forbidden")
	f("POST", "/admin", "a", 200, "")
	f("POST", "/ingest", "i", 200, "")
	f("POST", "/ingest", "n", 403, "forbidden")
	f("GET", "/nowhere", "a", 404, "not_found")
}

func TestSignedRoutesSkipTheToken(t *testing.T) {
	s, err := New(Options{Auth: tokens{}}, []Route{{
		Method: "POST", Path: "/hook", Roles: IngestRoles,
		Signed: func(c *fiber.Ctx) (bool, error) {
			switch c.Get("X-Sig") {
			case "":
				return false, nil
			case "good":
				return true, nil
			default:
				return false, assert.AnError
			}
		},
		Handler: func(c *fiber.Ctx) error { return c.SendString(string(Caller(c).Role)) },
	}})
	require.NoError(t, err)
	f := func(sig string, want int) {
		t.Helper()
		req := httptest.NewRequest("POST", "/hook", nil)
		if sig != "" {
			req.Header.Set("X-Sig", sig)
		}
		resp, err := s.App().Test(req)
		require.NoError(t, err)
		assert.Equal(t, want, resp.StatusCode, "signature %q", sig)
	}
	f("good", 200)
	f("bad", 401)
	f("", 401)
}

func TestDuplicateRoutesAreRejected(t *testing.T) {
	h := func(c *fiber.Ctx) error { return nil }
	_, err := New(Options{Auth: tokens{}}, []Route{{Method: "GET", Path: "/x", Public: true, Handler: h}, {Method: "GET", Path: "/x", Public: true, Handler: h}})
	assert.Error(t, err)
}

func TestBodyLimit(t *testing.T) {
	s, err := New(Options{Auth: tokens{}, BodyLimit: 100}, []Route{{Method: "POST", Path: "/p", Public: true,
		Handler: func(c *fiber.Ctx) error { return c.SendString(strconv.Itoa(len(c.Body()))) }}})
	require.NoError(t, err)
	f := func(body string, chunked bool, want int, wantBody string) {
		t.Helper()
		var r io.Reader = strings.NewReader(body)
		if chunked {
			r = struct{ io.Reader }{r} // hides the length: sent chunked
		}
		req := httptest.NewRequest("POST", "/p", r)
		if chunked {
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
		}
		resp, err := s.App().Test(req)
		require.NoError(t, err)
		assert.Equal(t, want, resp.StatusCode)
		got, _ := io.ReadAll(resp.Body)
		assert.Contains(t, string(got), wantBody)
	}
	f(strings.Repeat("x", 100), false, 200, "100")
	f(strings.Repeat("x", 101), false, 413, "body_too_large")
	f(strings.Repeat("x", 100000), false, 413, "body_too_large")
	f(strings.Repeat("x", 100), true, 200, "100")
	f(strings.Repeat("x", 5000), true, 413, "body_too_large")
}

type scopedTokens map[string]Principal

func (t scopedTokens) Authenticate(_ context.Context, token string) (Principal, error) {
	p, ok := t[token]
	if !ok {
		return Principal{}, ErrUnauthenticated
	}
	return p, nil
}

// A site-scoped token reaches only the routes that honour the scope; every
// other route is fleet-wide and answers 403 scope_unsupported.
func TestScopedTokensReachOnlySiteScopedRoutes(t *testing.T) {
	sites := func(c *fiber.Ctx) error { return c.SendString(strings.Join(Caller(c).Sites, ",")) }
	s, err := New(Options{Auth: scopedTokens{"m": {Role: RoleManager}, "ms": {Role: RoleManager, Sites: []string{"s1"}}}}, []Route{
		{Method: "GET", Path: "/scoped", Roles: ReadRoles, Handler: sites, SiteScoped: true},
		{Method: "GET", Path: "/fleet", Roles: ReadRoles, Handler: sites},
	})
	require.NoError(t, err)
	f := func(path, token string, want int, wantBody string) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := s.App().Test(req)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		assert.Equal(t, want, resp.StatusCode, "%s as %s", path, token)
		assert.Contains(t, string(body), wantBody)
	}
	f("/scoped", "ms", 200, "s1")
	f("/fleet", "ms", 403, `"code":"scope_unsupported"`)
	f("/fleet", "m", 200, "")
	f("/scoped", "m", 200, "")
}

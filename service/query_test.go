package service

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// serveForTest runs keyfleet serve in-process (embedded Kafka, a test
// ClickHouse database) and returns its base URL and admin token.
func serveForTest(t *testing.T) (string, string) {
	t.Helper()
	_, ch := testenv.ClickHouse(t)
	var cfg Config
	fs := flagenv.New("serve", "")
	fs.SetLookup(func(string) (string, bool) { return "", false })
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{"--embedded-kafka-addr", "127.0.0.1:0", "--data-dir", t.TempDir(),
		"--clickhouse-addr", ch.Addr, "--clickhouse-database", ch.Database, "--access-log=false",
		"--bootstrap-token", "test-admin-token-0123456789abcdefghij",
		// The route matrix fails authentication on purpose, over a hundred times.
		"--rate-limit-auth-failures", "off"}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- Run(ctx, cfg, Options{Logger: testenv.Logger(t), Stdout: io.Discard, Listener: ln,
			Ready: func(string, string) { close(ready) }})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(60 * time.Second):
			t.Error("serve did not stop")
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	return "http://" + ln.Addr().String(), "test-admin-token-0123456789abcdefghij"
}

func call(t *testing.T, method, url, token, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var matrixRow = regexp.MustCompile("^\\| `([A-Z]+) (\\S+)` \\| ([a-z, ]+) \\|$")

// Every route keyfleet serve registers — as its OpenAPI document, built from
// the server's route table, lists them — against every role, no token and a
// bad token; and docs/api.md's matrix says the same.
func TestServeRouteRoleMatrix(t *testing.T) {
	base, admin := serveForTest(t)
	tokens := map[httpapi.Role]string{httpapi.RoleAdmin: admin}
	for _, role := range httpapi.AllRoles {
		if role == httpapi.RoleAdmin {
			continue
		}
		code, body := call(t, "POST", base+"/v1/tokens", admin, `{"name":"matrix","role":"`+string(role)+`"}`)
		require.Equal(t, 201, code, string(body))
		var out struct{ Secret string }
		require.NoError(t, json.Unmarshal(body, &out))
		tokens[role] = out.Secret
	}
	code, body := call(t, "GET", base+"/v1/openapi.json", tokens[httpapi.RoleIngest], "")
	require.Equal(t, 200, code, string(body))
	var doc struct {
		Paths map[string]map[string]struct {
			Roles []string `json:"x-roles"`
		} `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))

	readme, err := os.ReadFile("../docs/api.md")
	require.NoError(t, err)
	docs := map[string][]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if m := matrixRow.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			roles := strings.Split(m[3], ",")
			for i := range roles {
				roles[i] = strings.TrimSpace(roles[i])
			}
			sort.Strings(roles)
			docs[m[1]+" "+openAPIPath(m[2])] = roles
		}
	}
	fill := strings.NewReplacer("{id}", "does-not-exist", "{vendor}", "matter", "{path}", "cmdline")
	n := 0
	for path, ops := range doc.Paths {
		for method, op := range ops {
			method = strings.ToUpper(method)
			n++
			roles := append([]string(nil), op.Roles...)
			sort.Strings(roles)
			assert.Equal(t, roles, docs[method+" "+path], "docs/api.md row of %s %s", method, path)
			url := base + fill.Replace(path)
			body := ""
			if method == "POST" || method == "PATCH" || method == "PUT" {
				body = "{}"
			}
			if len(roles) == 1 && roles[0] == "public" {
				code, _ := call(t, method, url, "", body)
				assert.NotEqual(t, 401, code, "%s %s is public", method, path)
				continue
			}
			code, _ := call(t, method, url, "", body)
			assert.Equal(t, 401, code, "%s %s without a token", method, path)
			code, _ = call(t, method, url, "kf_bad", body)
			assert.Equal(t, 401, code, "%s %s with a bad token", method, path)
			for role, token := range tokens {
				code, b := call(t, method, url, token, body)
				allowed := false
				for _, r := range op.Roles {
					allowed = allowed || r == string(role)
				}
				if allowed {
					assert.NotContains(t, []int{401, 403}, code, "%s %s as %s: %s", method, path, role, b)
				} else {
					assert.Equal(t, 403, code, "%s %s as %s", method, path, role)
				}
			}
		}
	}
	for key := range docs {
		method, path, _ := strings.Cut(key, " ")
		_, ok := doc.Paths[path][strings.ToLower(method)]
		assert.True(t, ok, "docs/api.md lists %s, which serve does not register", key)
	}
	t.Logf("%d routes × %d roles + no token + bad token", n, len(tokens))
}

// openAPIPath turns a fiber path into the document's template (rows may be
// written either way).
func openAPIPath(p string) string {
	if strings.Contains(p, "{") || !strings.Contains(p, "/:") && !strings.Contains(p, "*") {
		return p
	}
	tmpl, _ := openapi.Path(p)
	return tmpl
}

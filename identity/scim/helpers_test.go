package scim

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// fixture is a service on an in-memory store behind the real httpapi
// server (stub tokens), with a settable clock, sequential ids and the
// changes it emitted.
type fixture struct {
	t       *testing.T
	svc     *Service
	srv     *httpapi.Server
	store   *MemoryStore
	mu      sync.Mutex
	now     time.Time
	seq     int
	changes []identity.Change
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func newFixture(t *testing.T, mods ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{t: t, store: NewMemoryStore(), now: t0}
	opts := Options{
		Store:   f.store,
		Subject: func(s string) string { return "subj:" + s },
		BaseURL: "https://keyfleet.test/scim/v2",
		Now: func() time.Time {
			f.mu.Lock()
			defer f.mu.Unlock()
			return f.now
		},
		NewID: func() string {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.seq++
			return fmt.Sprintf("id-%03d", f.seq)
		},
		Notify: func(_ context.Context, c identity.Change) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changes = append(f.changes, c)
			return nil
		},
	}
	for _, m := range mods {
		m(&opts)
	}
	svc, err := New(opts)
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: tokens{"idp": RoleSCIM, "analyst": httpapi.RoleAnalyst}}, svc.Routes())
	require.NoError(t, err)
	f.svc, f.srv = svc, srv
	return f
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// takeChanges returns and forgets the changes emitted so far.
func (f *fixture) takeChanges() []identity.Change {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.changes
	f.changes = nil
	return c
}

type response struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r response) str(path ...string) string {
	var v any = r.body
	for _, p := range path {
		m, _ := v.(map[string]any)
		v = m[p]
	}
	s, _ := v.(string)
	return s
}

// do sends a request as the identity provider; headers are name, value pairs.
func (f *fixture) do(method, path string, body any, headers ...string) response {
	f.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(f.t, err)
		rd = strings.NewReader(string(data))
	}
	req := httptest.NewRequest(method, Prefix+path, rd)
	req.Header.Set("Authorization", "Bearer idp")
	if body != nil {
		req.Header.Set("Content-Type", ContentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := f.srv.App().Test(req, -1)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	out := response{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		require.NoError(f.t, json.Unmarshal(raw, &out.body), string(raw))
	}
	return out
}

// mustDo is do that requires the status.
func (f *fixture) mustDo(status int, method, path string, body any, headers ...string) response {
	f.t.Helper()
	r := f.do(method, path, body, headers...)
	require.Equal(f.t, status, r.status, "%s %s: %s", method, path, r.raw)
	return r
}

// user creates a user from a JSON object literal and returns its id.
func (f *fixture) user(doc string) string {
	f.t.Helper()
	return f.mustDo(http.StatusCreated, http.MethodPost, "/Users", doc).str("id")
}

func (f *fixture) group(doc string) string {
	f.t.Helper()
	return f.mustDo(http.StatusCreated, http.MethodPost, "/Groups", doc).str("id")
}

func patchBody(ops ...string) string {
	return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + strings.Join(ops, ",") + `]}`
}

// ids returns the ids of a ListResponse's resources.
func ids(r response) []string {
	out := []string{}
	list, _ := r.body["Resources"].([]any)
	for _, it := range list {
		m, _ := it.(map[string]any)
		id, _ := m["id"].(string)
		out = append(out, id)
	}
	return out
}

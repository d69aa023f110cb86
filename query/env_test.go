package query_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/query"
	"github.com/keyfleet/keyfleet/query/querytest"
	"github.com/keyfleet/keyfleet/query/retention"
	"github.com/keyfleet/keyfleet/query/rollup"
)

// chAudit is an in-test audit log: entries go to a ClickHouse table.
type chAudit struct {
	conn driver.Conn
	mu   sync.Mutex
	fail bool
}

func newAudit(t *testing.T, conn driver.Conn) *chAudit {
	require.NoError(t, conn.Exec(context.Background(), `CREATE TABLE test_audit (
		ts_ms Int64, actor String, action String, target String, details String) ENGINE = MergeTree ORDER BY ts_ms`))
	return &chAudit{conn: conn}
}

func (a *chAudit) Append(ctx context.Context, e audit.Entry) error {
	a.mu.Lock()
	fail := a.fail
	a.mu.Unlock()
	if fail {
		return fmt.Errorf("audit store down")
	}
	d, _ := json.Marshal(e.Details)
	return chstorage.InsertRows(ctx, a.conn, "test_audit", []string{"ts_ms", "actor", "action", "target", "details"},
		[]any{e.TsMs, e.Actor, e.Action, e.Target, string(d)})
}

func (a *chAudit) entries(t *testing.T, action string) []audit.Entry {
	rows, err := a.conn.Query(context.Background(), "SELECT actor, action, target, details FROM test_audit WHERE action = ? ORDER BY ts_ms", action)
	require.NoError(t, err)
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		var e audit.Entry
		var d string
		require.NoError(t, rows.Scan(&e.Actor, &e.Action, &e.Target, &d))
		require.NoError(t, json.Unmarshal([]byte(d), &e.Details))
		out = append(out, e)
	}
	return out
}

// env is the query API on a fresh ClickHouse database, with one token per role.
type env struct {
	t       *testing.T
	conn    driver.Conn
	svc     *query.Service
	ret     *retention.Job
	roll    *rollup.Job
	store   *auth.Store
	server  *httpapi.Server
	audit   *chAudit
	tokens  map[httpapi.Role]string
	now     time.Time
	ops     map[string]openapi.Operation
	timeout time.Duration
}

var testNow = time.Date(2026, 3, 20, 12, 0, 0, 0, time.UTC)

func newEnv(t *testing.T) *env {
	t.Helper()
	conn, cfg := testenv.ClickHouse(t)
	e := &env{t: t, conn: conn, now: testNow, tokens: map[httpapi.Role]string{}, timeout: 10 * time.Second}
	e.audit = newAudit(t, conn)
	logger := testenv.Logger(t)
	ctx := context.Background()
	e.store = auth.NewStore(conn, logger)
	require.NoError(t, e.store.Load(ctx))
	for _, r := range httpapi.AllRoles {
		secret, _, err := e.store.Create(ctx, "test-"+string(r), r)
		require.NoError(t, err)
		e.tokens[r] = secret
	}
	var err error
	e.svc, err = query.New(query.Options{Conn: conn, ClickHouse: &cfg, Audit: e.audit, ExportKey: []byte("test-export-key-0123456789"),
		Timeout: e.timeout, MaxLimit: 1000, Logger: logger, Now: func() time.Time { return e.now }})
	require.NoError(t, err)
	policies, err := retention.ParsePolicies([]string{"access_events=62d", "dead_letters=90d"})
	require.NoError(t, err)
	e.ret, err = retention.New(retention.Options{Conn: conn, Audit: e.audit, Policies: policies, Logger: logger,
		Now: func() time.Time { return e.now }})
	require.NoError(t, err)
	e.roll, err = rollup.New(rollup.Options{Conn: conn, Logger: logger})
	require.NoError(t, err)
	tokenAPI, err := auth.NewAPI(e.store, e.audit)
	require.NoError(t, err)
	doc := &openapi.Document{}
	var routes []httpapi.Route
	routes = append(routes, e.svc.Routes()...)
	routes = append(routes, e.ret.Routes()...)
	routes = append(routes, tokenAPI.Routes()...)
	routes = append(routes, doc.Route())
	e.server, err = httpapi.New(httpapi.Options{Auth: e.store, Logger: logger}, routes)
	require.NoError(t, err)
	e.ops = map[string]openapi.Operation{}
	for _, m := range []map[string]openapi.Operation{e.svc.Operations(), e.ret.Operations(), tokenAPI.Operations(), doc.Operations()} {
		for k, v := range m {
			e.ops[k] = v
		}
	}
	require.NoError(t, doc.Build(openapi.Info{Title: "keyfleet", Version: "test"}, e.server.Routes(), e.ops))
	return e
}

// load loads a week of events ending at now.
func (e *env) load(n uint64, offset uint64) {
	e.t.Helper()
	require.NoError(e.t, querytest.Load(context.Background(), e.conn, querytest.Fleet{
		Events: n, Offset: offset, Start: e.now.Add(-7 * 24 * time.Hour), Span: 7 * 24 * time.Hour,
		Subjects: 300, Sites: 6, Doors: 8,
	}))
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	require.NoError(t, json.Unmarshal(r.body, v), string(r.body))
}

func (r response) problem(t *testing.T) httpapi.Problem {
	t.Helper()
	var p httpapi.Problem
	r.json(t, &p)
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), string(r.body))
	return p
}

func (e *env) do(method, path string, role httpapi.Role, body string) response {
	e.t.Helper()
	return e.doToken(method, path, e.tokens[role], body)
}

func (e *env) doToken(method, path, token, body string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.server.App().Test(req, -1)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) get(path string, params url.Values) response {
	e.t.Helper()
	if len(params) > 0 {
		path += "?" + params.Encode()
	}
	return e.do("GET", path, httpapi.RoleAnalyst, "")
}

// truth reads every distinct event the table holds (the reference the API
// is checked against).
func (e *env) truth() []event.Access {
	e.t.Helper()
	rows, err := e.conn.Query(context.Background(), `SELECT event_id, ts_ms, received_ms, vendor, site_id, zone_id, door_id, lock_id,
		subject_id, credential_id, device_id, attested, action, outcome, method, reason, vendor_code, break_glass, raw_ref
		FROM access_events`)
	require.NoError(e.t, err)
	defer rows.Close()
	seen := map[string]bool{}
	var out []event.Access
	for rows.Next() {
		var a event.Access
		var id uuid.UUID
		var bg uint8
		require.NoError(e.t, rows.Scan(&id, &a.TsMs, &a.ReceivedMs, &a.Vendor, &a.SiteID, &a.ZoneID, &a.DoorID, &a.LockID,
			&a.SubjectID, &a.CredentialID, &a.DeviceID, &a.Attested, &a.Action, &a.Outcome, &a.Method, &a.Reason,
			&a.VendorCode, &bg, &a.RawRef))
		a.EventID, a.BreakGlass = id.String(), bg != 0
		if !seen[a.EventID] {
			seen[a.EventID] = true
			out = append(out, a)
		}
	}
	require.NoError(e.t, rows.Err())
	sort.Slice(out, func(i, j int) bool { return out[i].TsMs < out[j].TsMs })
	return out
}

func ms(t time.Time) string { return fmt.Sprint(t.UnixMilli()) }

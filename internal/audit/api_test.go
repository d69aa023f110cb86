package audit_test

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

type roles map[string]httpapi.Role

func (r roles) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	role, ok := r[token]
	if !ok {
		return httpapi.Principal{}, httpapi.ErrUnauthenticated
	}
	return httpapi.Principal{TokenID: "tok-" + token, Name: token, Role: role}, nil
}

// The audit search filters by actor, action prefix, target and time, pages
// with a cursor through every entry exactly once, reports the chain's
// verification (and its failure once an entry is altered), and is audited;
// the export streams the same entries as NDJSON or CSV; only admins and
// auditors may call either.
func TestAuditSearchAndExport(t *testing.T) {
	conn, chCfg := testenv.ClickHouse(t)
	ctx := context.Background()
	s, err := audit.NewStore(conn, audit.Options{Chain: "a"})
	require.NoError(t, err)
	t0 := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 30 {
		action, actor := "credential.revoke", "ops"
		if i%3 == 0 {
			action, actor = "exception.create", "facilities"
		}
		require.NoError(t, s.Append(ctx, audit.Entry{Actor: actor, Action: action, Target: fmt.Sprintf("obj-%d", i%5),
			Details: map[string]string{"n": fmt.Sprint(i)}, TsMs: t0.Add(time.Duration(i) * time.Minute).UnixMilli()}))
	}
	now := t0.Add(time.Hour)
	clock := func() time.Time { now = now.Add(time.Second); return now } // each call a second later
	api, err := audit.NewAPI(s, audit.APIOptions{Now: clock, VerifyEvery: time.Second})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: roles{"admin": httpapi.RoleAdmin, "aud": httpapi.RoleAuditor,
		"mgr": httpapi.RoleManager}}, api.Routes())
	require.NoError(t, err)
	get := func(token, path string) (int, []byte) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.App().Test(req, -1)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	type page struct {
		Entries []struct {
			Seq    uint64 `json:"seq"`
			Actor  string `json:"actor"`
			Action string `json:"action"`
			Target string `json:"target"`
			TsMs   int64  `json:"ts_ms"`
		} `json:"entries"`
		NextCursor   string `json:"next_cursor"`
		Verification struct {
			OK    bool `json:"ok"`
			First *struct {
				Seq  uint64 `json:"seq"`
				Kind string `json:"kind"`
			} `json:"first"`
		} `json:"verification"`
	}
	search := func(token, q string) page {
		t.Helper()
		code, b := get(token, "/v1/audit?"+q)
		require.Equal(t, 200, code, string(b))
		var p page
		require.NoError(t, json.Unmarshal(b, &p), string(b))
		return p
	}
	code, _ := get("mgr", "/v1/audit")
	assert.Equal(t, 403, code)
	code, _ = get("mgr", "/v1/export/audit")
	assert.Equal(t, 403, code)

	p := search("aud", "action=exception.&actor=facilities")
	require.Len(t, p.Entries, 10)
	assert.True(t, p.Verification.OK)
	for _, e := range p.Entries {
		assert.Equal(t, "exception.create", e.Action)
	}
	assert.Greater(t, p.Entries[0].TsMs, p.Entries[9].TsMs, "newest first")
	p = search("aud", "target=obj-2&from="+t0.Add(10*time.Minute).Format(time.RFC3339)+"&to="+t0.Add(20*time.Minute).Format(time.RFC3339))
	require.Len(t, p.Entries, 2) // i = 12, 17

	// Pages: every credential.revoke entry once.
	seen := map[uint64]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 10)
		q := "action=credential.revoke&limit=7"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		p = search("admin", q)
		for _, e := range p.Entries {
			assert.False(t, seen[e.Seq], "seq %d twice", e.Seq)
			seen[e.Seq] = true
		}
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	assert.Len(t, seen, 20)
	code, _ = get("aud", "/v1/audit?cursor=bogus")
	assert.Equal(t, 400, code)

	// Searches are audited.
	p = search("aud", "action=audit.search")
	require.NotEmpty(t, p.Entries)
	assert.Equal(t, "tok-aud", p.Entries[0].Actor)

	// Export: NDJSON and CSV carry the same entries.
	code, b := get("aud", "/v1/export/audit?action=exception.")
	require.Equal(t, 200, code, string(b))
	var lines int
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var r audit.Row
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		assert.Equal(t, "exception.create", r.Action)
		lines++
	}
	assert.Equal(t, 10, lines)
	code, b = get("aud", "/v1/export/audit?action=credential.&format=csv")
	require.Equal(t, 200, code, string(b))
	recs, err := csv.NewReader(strings.NewReader(string(b))).ReadAll()
	require.NoError(t, err)
	require.Len(t, recs, 21)
	assert.Equal(t, []string{"chain", "seq", "ts", "actor", "actor_name", "action", "target", "details", "prev_hash", "hash", "key_id"}, recs[0])
	p = search("aud", "action=audit.export")
	assert.Len(t, p.Entries, 2)

	// An altered entry: the search says the chain no longer verifies and where.
	mutate(t, conn, chCfg, "ALTER TABLE audit_log UPDATE target = 'obj-9' WHERE chain = 'a' AND seq = 5")
	p = search("aud", "limit=1")
	assert.False(t, p.Verification.OK)
	require.NotNil(t, p.Verification.First)
	assert.Equal(t, uint64(5), p.Verification.First.Seq)
}

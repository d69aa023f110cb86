package report

import (
	"context"
	"encoding/json"
	"io"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// tokens is a fixed token → role table for route tests.
type tokens map[string]httpapi.Role

func (t tokens) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if r, ok := t[token]; ok {
		return httpapi.Principal{TokenID: token, Name: token, Role: r}, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

func TestDueWeek(t *testing.T) {
	f := func(now string, day time.Weekday, at time.Duration, want string) {
		t.Helper()
		n, err := time.Parse(time.RFC3339, now)
		require.NoError(t, err)
		assert.Equal(t, want, DueWeek(n, day, at).String(), now)
	}
	f("2026-11-23T06:00:00Z", time.Monday, 6*time.Hour, "2026-W47")
	f("2026-11-23T05:59:00Z", time.Monday, 6*time.Hour, "2026-W46")
	f("2026-11-26T12:00:00Z", time.Monday, 6*time.Hour, "2026-W47")
	f("2026-11-22T23:30:00Z", time.Sunday, 23*time.Hour, "2026-W46")
	f("2026-11-29T23:30:00Z", time.Sunday, 23*time.Hour, "2026-W47")
	d, err := ParseDay("Tue")
	require.NoError(t, err)
	assert.Equal(t, time.Tuesday, d)
	_, err = ParseDay("someday")
	assert.Error(t, err)
	c, err := ParseClock("06:30")
	require.NoError(t, err)
	assert.Equal(t, 6*time.Hour+30*time.Minute, c)
	_, err = ParseClock("25:00")
	assert.Error(t, err)
}

// The scheduler stores the due week's reports once; the API lists them,
// serves them in every format (equal to the goldens: the stored JSON keeps
// everything) and computes reports on demand.
func TestScheduleAndAPI(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	loadFixture(t, conn)
	ctx := context.Background()
	store := NewStore(conn)
	now := func() time.Time { return fixtureNow }
	metrics := NewMetrics(nil)
	s, err := NewScheduler(SchedulerOptions{Conn: conn, Store: store, Day: time.Monday, At: 6 * time.Hour,
		Sites: []string{"site-b"}, Now: now, Logger: testenv.Logger(t), Metrics: metrics})
	require.NoError(t, err)
	require.NoError(t, s.Tick(ctx))
	require.NoError(t, s.Tick(ctx)) // nothing left to do
	list, err := store.List(ctx, "", 10)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, Stored{ID: "2026-W47", Week: "2026-W47", FromMs: fixtureWeek.Start().UnixMilli(),
		ToMs: fixtureWeek.End().UnixMilli(), GeneratedMs: fixtureNow.UnixMilli(), Trigger: TriggerSchedule}, list[0])
	assert.Equal(t, "2026-W47~site-b", list[1].ID)

	api, err := NewAPI(APIOptions{Conn: conn, Store: store, Now: now, Logger: testenv.Logger(t), Metrics: metrics})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: tokens{"m": httpapi.RoleManager, "a": httpapi.RoleAnalyst},
		Logger: testenv.Logger(t)}, api.Routes())
	require.NoError(t, err)
	get := func(path, token string) (int, string, string) {
		t.Helper()
		req := httptest.NewRequest("GET", path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := srv.App().Test(req, 60_000)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	code, _, body := get("/v1/reports", "m")
	require.Equal(t, 200, code, body)
	var out struct {
		Reports []Stored `json:"reports"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	assert.Len(t, out.Reports, 2)

	for _, tc := range []struct{ path, golden, ctype string }{
		{"/v1/reports/2026-W47?format=md", "fleet.md", "text/markdown; charset=utf-8"},
		{"/v1/reports/2026-W47~site-b?format=csv", "site-b.csv", "text/csv; charset=utf-8"},
		{"/v1/reports/2026-W47?format=html", "fleet.html", "text/html; charset=utf-8"},
		{"/v1/reports/weekly?week=2026-W47&format=md", "fleet.md", "text/markdown; charset=utf-8"},
		{"/v1/reports/weekly?week=2026-W47&site=site-b&format=json", "site-b.json", "application/json"},
		{"/v1/reports/weekly?format=csv", "fleet.csv", "text/csv; charset=utf-8"}, // default: the last complete week
	} {
		code, ctype, body := get(tc.path, "m")
		require.Equal(t, 200, code, "%s: %s", tc.path, body)
		assert.Equal(t, tc.ctype, ctype, tc.path)
		want, err := os.ReadFile("testdata/" + tc.golden)
		require.NoError(t, err)
		assert.Equal(t, string(want), body, tc.path)
	}

	for _, tc := range []struct {
		path, token string
		code        int
	}{
		{"/v1/reports", "", 401},
		{"/v1/reports", "a", 403},
		{"/v1/reports/weekly", "a", 403},
		{"/v1/reports/2026-W46", "m", 404},
		{"/v1/reports/latest", "m", 400},
		{"/v1/reports/weekly?week=2026-W54", "m", 400},
		{"/v1/reports/weekly?week=2027-W10", "m", 400},
		{"/v1/reports/weekly?format=pdf", "m", 400},
		{"/v1/reports/weekly?color=red", "m", 400},
		{"/v1/reports?limit=0", "m", 400},
		{"/v1/reports/monthly?month=2026-11", "m", 200},
		{"/v1/reports/quarterly?quarter=2026-Q4&format=md", "m", 200},
		{"/v1/reports/monthly", "m", 200}, // the last complete month
		{"/v1/reports/monthly?month=2026-13", "m", 400},
		{"/v1/reports/quarterly?quarter=2027-Q2", "m", 400},
		{"/v1/reports/monthly?week=2026-W47", "m", 400},
		{"/v1/reports/quarterly", "a", 403},
	} {
		code, _, body := get(tc.path, tc.token)
		assert.Equal(t, tc.code, code, "%s: %s", tc.path, body)
	}
	_, _, body = get("/v1/reports/quarterly?quarter=2026-Q4&format=md", "m")
	assert.Contains(t, body, "# Fleet health — quarter 2026-Q4")
	assert.Contains(t, body, "The quarter was not over when this report was generated")
}

package query_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/query/querytest"
)

type timelinePage struct {
	SubjectID string `json:"subject_id"`
	Items     []struct {
		Kind       string         `json:"kind"`
		TsMs       int64          `json:"ts_ms"`
		ID         string         `json:"id"`
		Credential map[string]any `json:"credential"`
		Alert      map[string]any `json:"alert"`
	} `json:"items"`
	Sources    []string `json:"sources"`
	NextCursor string   `json:"next_cursor"`
}

func (e *env) timeline(subject string, params url.Values) (items []string, sources []string) {
	e.t.Helper()
	var last int64 = 1 << 62
	for page := 0; page < 1000; page++ {
		r := e.get("/v1/subjects/"+subject+"/timeline", params)
		require.Equal(e.t, 200, r.status, string(r.body))
		var p timelinePage
		r.json(e.t, &p)
		sources = p.Sources
		for _, it := range p.Items {
			require.LessOrEqual(e.t, it.TsMs, last, "newest first")
			last = it.TsMs
			items = append(items, it.Kind+":"+it.ID)
		}
		if p.NextCursor == "" {
			return items, sources
		}
		params = cloneValues(params)
		params.Set("cursor", p.NextCursor)
	}
	e.t.Fatal("runaway timeline")
	return nil, nil
}

func TestTimelineMergesAccessAndCredentialRecords(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(20000, 0)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 4))
	truth := e.truth()
	from := e.now.Add(-6 * 24 * time.Hour)
	var want []string
	for _, a := range truth {
		if a.SubjectID == "subj-7" && a.TsMs >= from.UnixMilli() && a.TsMs < e.now.UnixMilli() {
			want = append(want, "access:"+a.EventID)
		}
	}
	require.NotEmpty(t, want)

	// Credential records as the control plane stores them (migration 0020).
	cols := []string{"credential_id", "seq", "ts", "ts_ms", "op", "state", "prev_state", "subject_id", "role", "site_id",
		"device_id", "attested", "break_glass", "exception", "door_groups", "reason", "actor", "request_id", "revocation_id", "record", "inserted_ms"}
	var rows [][]any
	states := []string{"requested", "approved", "issued", "active", "suspended", "active", "revoked"}
	for i, st := range states {
		ts := from.Add(time.Duration(i) * 17 * time.Hour)
		if i == 3 {
			ts = time.UnixMilli(truth[len(truth)/2].TsMs) // a tie with some access event's time is possible
		}
		rows = append(rows, []any{"cred-7-0", uint64(i + 1), ts, ts.UnixMilli(), "change", st, "", "subj-7", "resident", "site-1",
			"dev-7", uint8(1), uint8(0), uint8(0), []string{"entrance"}, "", "admin", "", "", "{}", int64(0)})
	}
	rows = append(rows, rows[2]) // a re-delivered record
	rows = append(rows, []any{"cred-8-0", uint64(1), from.Add(time.Hour), from.Add(time.Hour).UnixMilli(), "change", "issued", "",
		"subj-8", "resident", "site-1", "dev-8", uint8(1), uint8(0), uint8(0), []string{}, "", "admin", "", "", "{}", int64(0)})
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "credential_events", cols, rows...))
	for i := range states {
		want = append(want, fmt.Sprintf("credential:cred-7-0/%020d", i+1))
	}
	for _, limit := range []string{"1", "6", "100"} {
		params := url.Values{"from": {ms(from)}, "limit": {limit}}
		got, sources := e.timeline("subj-7", params)
		assert.ElementsMatch(t, want, got, "limit %s", limit)
		assert.Equal(t, []string{"access_events_by_subject", "alerts", "credential_events"}, sources)
	}
	got, _ := e.timeline("subj-7", url.Values{"from": {ms(from)}, "kind": {"credential"}})
	assert.Len(t, got, len(states))

	// Credential items carry typed values: seq and ts_ms are numbers, flags booleans.
	r := e.get("/v1/subjects/subj-7/timeline", url.Values{"from": {ms(from)}, "kind": {"credential"}, "limit": {"1"}})
	require.Equal(t, 200, r.status, string(r.body))
	var p timelinePage
	r.json(t, &p)
	require.Len(t, p.Items, 1)
	assert.Equal(t, float64(len(states)), p.Items[0].Credential["seq"])
	assert.Equal(t, float64(p.Items[0].TsMs), p.Items[0].Credential["ts_ms"])
	assert.Equal(t, true, p.Items[0].Credential["attested"])
	assert.Equal(t, false, p.Items[0].Credential["break_glass"])
	assert.Equal(t, "revoked", p.Items[0].Credential["state"])
}

// Without from, the timeline is the subject's whole history: a credential
// issued long before any recent window still shows, and so do alerts.
func TestTimelineWholeHistoryAndAlerts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(2000, 0)
	old := e.now.Add(-200 * 24 * time.Hour)
	cols := []string{"credential_id", "seq", "ts", "ts_ms", "op", "state", "prev_state", "subject_id", "role", "site_id",
		"device_id", "attested", "break_glass", "exception", "door_groups", "reason", "actor", "request_id", "revocation_id", "record", "inserted_ms"}
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "credential_events", cols,
		[]any{"cred-old", uint64(1), old, old.UnixMilli(), "request", "requested", "", "subj-3", "resident", "site-1",
			"dev-3", uint8(0), uint8(0), uint8(0), []string{}, "", "admin", "", "", "{}", int64(0)},
		[]any{"cred-old", uint64(2), old.Add(time.Hour), old.Add(time.Hour).UnixMilli(), "issue", "issued", "requested", "subj-3",
			"resident", "site-1", "dev-3", uint8(0), uint8(0), uint8(0), []string{}, "", "admin", "", "", "{}", int64(0)}))
	alertCols := []string{"alert_id", "version", "detector", "severity", "subject_id", "credential_id", "door_id", "site_id",
		"ts", "ts_ms", "window_start_ms", "window_end_ms", "observed", "threshold", "baseline", "evidence", "explanation",
		"suggested_action", "suppressed_count", "revision", "rules_version", "status", "status_note", "status_by",
		"status_ms", "source_received_ms", "detected_ms", "updated_ms"}
	at := e.now.Add(-3 * time.Hour)
	alert := func(id string, version uint64, status string, ts time.Time) []any {
		return []any{id, version, "unlock_burst", "high", "subj-3", "cred-old", "door-1", "site-1", ts, ts.UnixMilli(),
			ts.Add(-time.Hour).UnixMilli(), ts.UnixMilli(), 12.0, 6.0, 2.0, []string{"e1", "e2"}, "12 doors in 1h",
			"review", uint32(0), uint32(0), int32(1), status, "", "", int64(0), int64(0), int64(0), int64(0)}
	}
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "alerts", alertCols,
		alert("a-1", 1, "open", at), alert("a-1", 2, "acknowledged", at), // two versions of one alert
		alert("a-2", 1, "open", old.Add(2*time.Hour))))

	got, sources := e.timeline("subj-3", url.Values{"kind": {"credential,alert"}, "limit": {"2"}})
	assert.Equal(t, []string{"alert:a-1", "alert:a-2", fmt.Sprintf("credential:cred-old/%020d", 2),
		fmt.Sprintf("credential:cred-old/%020d", 1)}, got)
	assert.Equal(t, []string{"alerts", "credential_events"}, sources)

	r := e.get("/v1/subjects/subj-3/timeline", url.Values{"kind": {"alert"}, "limit": {"1"}})
	require.Equal(t, 200, r.status, string(r.body))
	var p timelinePage
	r.json(t, &p)
	require.Len(t, p.Items, 1)
	assert.Equal(t, "acknowledged", p.Items[0].Alert["status"], "the latest version")
	assert.Equal(t, []any{"e1", "e2"}, p.Items[0].Alert["evidence"])

	// The default includes access events too, across the whole history.
	all, _ := e.timeline("subj-3", nil)
	var access int
	for _, a := range e.truth() {
		if a.SubjectID == "subj-3" && a.TsMs < e.now.UnixMilli() {
			access++
		}
	}
	assert.Len(t, all, access+4)

	// An explicit range still bounds every kind.
	got, _ = e.timeline("subj-3", url.Values{"from": {"now-30d"}, "kind": {"credential,alert"}})
	assert.Equal(t, []string{"alert:a-1"}, got)
	got, _ = e.timeline("subj-3", url.Values{"from": {old.Format("2006-01-02")}, "kind": {"credential"}})
	assert.Len(t, got, 2, "from as a date")
}

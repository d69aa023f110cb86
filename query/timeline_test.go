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
		Kind       string            `json:"kind"`
		TsMs       int64             `json:"ts_ms"`
		ID         string            `json:"id"`
		Credential map[string]string `json:"credential"`
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
		assert.Equal(t, []string{"access_events_by_subject", "credential_events"}, sources)
	}
	got, _ := e.timeline("subj-7", url.Values{"from": {ms(from)}, "kind": {"credential"}})
	assert.Len(t, got, len(states))
}

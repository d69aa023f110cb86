package query_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/query/querytest"
)

// exported is one row read back from an export, by column name.
type exported map[string]string

func readCSV(t *testing.T, body []byte) []exported {
	t.Helper()
	recs, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, recs)
	var out []exported
	for _, r := range recs[1:] {
		row := exported{}
		for i, name := range recs[0] {
			row[name] = r[i]
		}
		out = append(out, row)
	}
	return out
}

func recordRows(t *testing.T, rec arrow.Record) []exported {
	t.Helper()
	var out []exported
	for i := 0; i < int(rec.NumRows()); i++ {
		row := exported{}
		for c, f := range rec.Schema().Fields() {
			col := rec.Column(c)
			switch a := col.(type) {
			case *array.String:
				row[f.Name] = a.Value(i)
			case *array.Int64:
				row[f.Name] = strconv.FormatInt(a.Value(i), 10)
			case *array.Timestamp:
				row[f.Name] = time.UnixMilli(int64(a.Value(i))).UTC().Format("2006-01-02T15:04:05.000Z")
			case *array.Boolean:
				row[f.Name] = strconv.FormatBool(a.Value(i))
			default:
				t.Fatalf("column %s: unexpected type %T", f.Name, col)
			}
		}
		out = append(out, row)
	}
	return out
}

func readArrow(t *testing.T, body []byte) []exported {
	t.Helper()
	r, err := ipc.NewReader(bytes.NewReader(body), ipc.WithAllocator(memory.NewGoAllocator()))
	require.NoError(t, err)
	defer r.Release()
	var out []exported
	for r.Next() {
		out = append(out, recordRows(t, r.Record())...)
	}
	require.NoError(t, r.Err())
	return out
}

func readParquet(t *testing.T, body []byte) []exported {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(body))
	require.NoError(t, err)
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 10000}, memory.NewGoAllocator())
	require.NoError(t, err)
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	require.NoError(t, err)
	defer rr.Release()
	var out []exported
	for rr.Next() {
		out = append(out, recordRows(t, rr.Record())...)
	}
	return out
}

func TestExportsReadBackAndMatchTheRows(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(20000, 0)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 6))
	truth := e.truth()
	from, to := e.now.Add(-5*24*time.Hour), e.now.Add(-1*time.Hour)
	filters := map[string]string{"outcome": "granted,denied"}
	var want []event.Access
	for _, a := range truth {
		if matches(a, filters, from.UnixMilli(), to.UnixMilli()) {
			want = append(want, a)
		}
	}
	require.Greater(t, len(want), 5000)
	readers := map[string]func(*testing.T, []byte) []exported{"csv": readCSV, "arrow": readArrow, "parquet": readParquet}
	var pseudonyms map[string]string
	for _, format := range []string{"csv", "arrow", "parquet"} {
		t.Run(format, func(t *testing.T) {
			e.t = t
			r := e.get("/v1/export/events", url.Values{"from": {ms(from)}, "to": {ms(to)}, "format": {format},
				"outcome": {"granted,denied"}})
			require.Equal(t, 200, r.status, string(r.body))
			assert.Contains(t, r.header.Get("Content-Disposition"), "attachment")
			rows := readers[format](t, r.body)
			require.Len(t, rows, len(want), "every matching event once")
			subjects := map[string]string{} // pseudonym → real subject
			seen := map[string]string{}     // real → pseudonym
			byID := map[string]event.Access{}
			for _, w := range want {
				byID[w.EventID] = w
			}
			var prevTs int64
			for i, row := range rows {
				w, ok := byID[row["event_id"]]
				require.True(t, ok, "row %d: %s is not a matching event, or came twice", i, row["event_id"])
				delete(byID, row["event_id"])
				require.GreaterOrEqual(t, w.TsMs, prevTs, "row %d out of time order", i)
				prevTs = w.TsMs
				require.Equal(t, strconv.FormatInt(w.TsMs, 10), row["ts_ms"])
				require.Equal(t, time.UnixMilli(w.TsMs).UTC().Format("2006-01-02T15:04:05.000Z"), row["ts"])
				require.Equal(t, w.SiteID, row["site_id"])
				require.Equal(t, w.DoorID, row["door_id"])
				require.Equal(t, w.Action, row["action"])
				require.Equal(t, w.Outcome, row["outcome"])
				require.Equal(t, w.Method, row["method"])
				require.Equal(t, w.RawRef, row["raw_ref"])
				require.Equal(t, strconv.FormatBool(w.BreakGlass), row["break_glass"])
				// Pseudonymized: keyed, stable within and across exports, never the real id.
				ps := row["subject_id"]
				require.True(t, strings.HasPrefix(ps, "ps_"), ps)
				require.NotContains(t, row["credential_id"], "cred-")
				require.NotContains(t, row["device_id"], "dev-")
				if prev, ok := subjects[ps]; ok {
					require.Equal(t, prev, w.SubjectID, "one pseudonym, one subject")
				}
				if prev, ok := seen[w.SubjectID]; ok {
					require.Equal(t, prev, ps, "one subject, one pseudonym")
				}
				subjects[ps], seen[w.SubjectID] = w.SubjectID, ps
				_, hasRef := row["subject_ref"]
				require.False(t, hasRef)
			}
			if pseudonyms != nil {
				require.Equal(t, pseudonyms, seen, "pseudonyms are the same in every export")
			}
			pseudonyms = seen
		})
	}
	e.t = t
	got := e.audit.entries(t, "export.events")
	require.Len(t, got, 3)
	var formats []string
	for _, g := range got {
		formats = append(formats, g.Details["format"])
		assert.Contains(t, g.Details["filters"], "outcome=granted,denied")
	}
	assert.ElementsMatch(t, []string{"csv", "arrow", "parquet"}, formats, "one audit entry per export")
}

func TestReidentifiedExportIsAdminOnlyAndAudited(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(2000, 0)
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "subject_identities",
		[]string{"subject_id", "subject_ref", "display_name", "updated_ms"},
		[]any{"subj-7", "hr:old", "Old", int64(1)}, []any{"subj-7", "hr:0007", "Person Seven", int64(2)}))
	path := "/v1/export/events/reidentified?format=arrow&subject=subj-7&from=now-7d"
	for _, role := range []httpapi.Role{httpapi.RoleAnalyst, httpapi.RoleManager, httpapi.RoleResponder} {
		r := e.do("GET", path, role, "")
		require.Equal(t, 403, r.status)
	}
	r := e.do("GET", path, httpapi.RoleAdmin, "")
	require.Equal(t, 200, r.status, string(r.body))
	rows := readArrow(t, r.body)
	require.NotEmpty(t, rows)
	for _, row := range rows {
		require.Equal(t, "subj-7", row["subject_id"])
		require.Equal(t, "hr:0007", row["subject_ref"], "the newest identity")
		require.True(t, strings.HasPrefix(row["credential_id"], "cred-7-"))
	}
	entries := e.audit.entries(t, "export.events.reidentified")
	require.Len(t, entries, 1)
	assert.Contains(t, entries[0].Details["filters"], "subject=subj-7")

	// Identity look-up: admin only, audited found or not.
	r = e.do("GET", "/v1/subjects/subj-7/identity", httpapi.RoleAdmin, "")
	require.Equal(t, 200, r.status, string(r.body))
	assert.Contains(t, string(r.body), `"subject_ref":"hr:0007"`)
	r = e.do("GET", "/v1/subjects/subj-8/identity", httpapi.RoleAdmin, "")
	require.Equal(t, 404, r.status)
	assert.Equal(t, "identity_not_found", r.problem(t).Code)
	require.Len(t, e.audit.entries(t, "subject.reidentify"), 2)
	require.Equal(t, 403, e.do("GET", "/v1/subjects/subj-7/identity", httpapi.RoleAnalyst, "").status)
}

func TestExportRefusals(t *testing.T) {
	e := newEnv(t)
	e.load(3000, 0)
	r := e.get("/v1/export/events", url.Values{"from": {"now-7d"}, "max_rows": {"10"}})
	require.Equal(t, 422, r.status)
	assert.Equal(t, "export_too_large", r.problem(t).Code)

	// No audit, no export.
	e.audit.mu.Lock()
	e.audit.fail = true
	e.audit.mu.Unlock()
	r = e.get("/v1/export/events", url.Values{"from": {"now-1d"}})
	require.Equal(t, 503, r.status)
	assert.Equal(t, "audit_unavailable", r.problem(t).Code)
	r = e.do("GET", "/v1/subjects/subj-1/identity", httpapi.RoleAdmin, "")
	require.Equal(t, 503, r.status)
}

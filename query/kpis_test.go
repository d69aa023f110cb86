package query_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/query/querytest"
)

func TestKPIsFromEventsAndDeadLetters(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.load(8000, 0)
	require.NoError(t, querytest.Redeliver(ctx, e.conn, 3))
	require.NoError(t, chstorage.InsertRows(ctx, e.conn, "dead_letters",
		[]string{"ts", "ts_ms", "vendor", "reason", "error", "source", "payload_size", "payload_sha256"},
		[]any{e.now.Add(-time.Hour), e.now.Add(-time.Hour).UnixMilli(), "nuki", "bad_time", "x", "raw/0/1", uint32(10), "h"},
		[]any{e.now.Add(-2 * time.Hour), e.now.Add(-2 * time.Hour).UnixMilli(), "nuki", "bad_time", "x", "raw/0/2", uint32(10), "h"},
		[]any{e.now.Add(-3 * time.Hour), e.now.Add(-3 * time.Hour).UnixMilli(), "matter", "missing_field", "x", "raw/0/3", uint32(10), "h"}))
	truth := e.truth()
	from := e.now.Add(-3 * 24 * time.Hour)
	var events, granted, denied uint64
	subjects := map[string]bool{}
	for _, a := range truth {
		if a.TsMs < from.UnixMilli() || a.TsMs >= e.now.UnixMilli() {
			continue
		}
		events++
		switch a.Outcome {
		case "granted":
			granted++
		case "denied":
			denied++
		}
		if a.SubjectID != "" {
			subjects[a.SubjectID] = true
		}
	}
	r := e.do("GET", "/v1/kpis?from="+ms(from)+"&to="+ms(e.now), httpapi.RoleManager, "")
	require.Equal(t, 200, r.status, string(r.body))
	var got struct {
		Access struct {
			Events         uint64            `json:"events"`
			ByOutcome      map[string]uint64 `json:"by_outcome"`
			DenialRate     float64           `json:"denial_rate"`
			ActiveSubjects uint64            `json:"active_subjects"`
		} `json:"access"`
		Pipeline struct {
			DeadLetters uint64            `json:"dead_letters"`
			ByReason    map[string]uint64 `json:"dead_letters_by_reason"`
		} `json:"pipeline"`
		Credentials      any    `json:"credentials"`
		CredentialsError string `json:"credentials_error"`
	}
	r.json(t, &got)
	assert.Equal(t, events, got.Access.Events, "distinct events despite re-deliveries")
	assert.Equal(t, denied, got.Access.ByOutcome["denied"])
	assert.InDelta(t, float64(denied)/float64(granted+denied), got.Access.DenialRate, 1e-9)
	assert.EqualValues(t, len(subjects), got.Access.ActiveSubjects)
	assert.EqualValues(t, 3, got.Pipeline.DeadLetters)
	assert.EqualValues(t, 2, got.Pipeline.ByReason["bad_time"])
	assert.Nil(t, got.Credentials)
	assert.NotEmpty(t, got.CredentialsError)
	require.Equal(t, 403, e.do("GET", "/v1/kpis", httpapi.RoleAnalyst, "").status)
}

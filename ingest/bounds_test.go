package ingest_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/ingest"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
)

type oneToken struct{}

func (oneToken) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if token == "ingest-token" {
		return httpapi.Principal{TokenID: "tok_i", Role: httpapi.RoleIngest}, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

// Records with event times outside the window, or in a month beyond the
// request's partition budget, are rejected one by one with their reason; a
// body that is not UTF-8 is refused whole.
func TestIngestBounds(t *testing.T) {
	kc := testenv.Kafka(t, 1)
	raw := bus.NewWriter(kc, bus.TopicRaw)
	t.Cleanup(func() { raw.Close() })
	now := time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)
	h, err := ingest.New(ingest.Options{
		Normalizer: normalize.New(vendors.Adapters(), nil, []byte("k")), Raw: raw, Timeout: 30 * time.Second,
		MaxPartitions: 2, Now: func() time.Time { return now },
	})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: oneToken{}, Logger: testenv.Logger(t)}, h.Routes())
	require.NoError(t, err)
	post := func(body string) (int, string) {
		req := httptest.NewRequest(http.MethodPost, "/v1/ingest/matter", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer ingest-token")
		resp, err := srv.App().Test(req, 60_000)
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	rec := func(n int, ts time.Time) string {
		return fmt.Sprintf(`{"nodeId":"0x1","endpointId":1,"clusterId":257,"eventName":"DoorStateChange","eventNumber":%d,"timestampMs":%d,"data":{"doorState":0}}`,
			n, ts.UnixMilli())
	}
	lines := []string{
		rec(1, now.Add(-time.Hour)),                                // March
		rec(2, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)),        // would wrap in ts
		rec(3, time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)),      // before 2000
		rec(4, now.AddDate(0, -1, 0)),                              // February: second partition
		rec(5, now.AddDate(0, -2, 0)),                              // January: a third one
		rec(6, now.Add(-2*time.Hour)),                              // March again
		strings.Replace(rec(7, now), "DoorStateChange", "Door", 1), // unknown type: kept as other
	}
	code, out := post(strings.Join(lines, "\n"))
	require.Equal(t, http.StatusAccepted, code, out)
	t.Logf("ingest answered %d: %s", code, out)
	var res ingest.Result
	require.NoError(t, json.Unmarshal([]byte(out), &res))
	assert.Equal(t, 4, res.Accepted)
	assert.Equal(t, 3, res.Rejected)
	got := map[int]string{}
	for _, e := range res.Errors {
		got[*e.Index] = e.Reason
	}
	assert.Contains(t, got[1], event.ReasonTimeOutOfRange+": 2200-01-01T00:00:00Z is more than 168h0m0s after its receipt")
	assert.Contains(t, got[2], event.ReasonTimeOutOfRange+": 1999-12-31T00:00:00Z is before 2000-01-01")
	assert.Contains(t, got[4], ingest.ReasonTooManyPartitions)

	code, out = post(rec(8, now) + "\n" + "{\"nodeId\":\"\xff\"}")
	assert.Equal(t, http.StatusBadRequest, code, out)
	assert.Contains(t, out, "invalid_utf8")
}

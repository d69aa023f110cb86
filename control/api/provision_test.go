package api_test

import (
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func TestIdempotencyKey(t *testing.T) {
	bc := testenv.Kafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)

	req := e.resident("subj-idem")
	var first, again control.ProvisionResponse
	resp := e.do("POST", "/v1/credentials", "mgr1", req, &first, "Idempotency-Key", "move-in-42")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.Equal(t, "/v1/requests/"+first.RequestID, resp.Header.Get("Location"))

	resp = e.do("POST", "/v1/credentials", "mgr1", req, &again, "Idempotency-Key", "move-in-42")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.Equal(t, "true", resp.Header.Get("Idempotent-Replayed"))
	assert.Equal(t, first, again, "same key + same body → same result")

	other := req
	other.Reason = "a different body"
	var pr httpapi.Problem
	resp = e.do("POST", "/v1/credentials", "mgr1", other, &pr, "Idempotency-Key", "move-in-42")
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode)
	assert.Equal(t, "idempotency_key_reused", pr.Code)

	e.waitRequest(first.RequestID, func(st control.RequestStatus) bool { return st.Status == "completed" })
	e.waitState(first.CredentialIDs[0], event.StateActive)

	// Keys are scoped per caller: manager-2's same key is a new request —
	// a second live key for the subject, role and device, refused (409
	// naming the first) unless it allows an additional one.
	resp = e.do("POST", "/v1/credentials", "mgr2", req, &pr, "Idempotency-Key", "move-in-42")
	require.Equal(t, http.StatusConflict, resp.StatusCode, body(resp))
	assert.Equal(t, "duplicate_credential", pr.Code)
	assert.Equal(t, first.CredentialIDs[0], pr.Extra["existing_credential_id"])
	additional := req
	additional.AllowAdditional = true
	var theirs control.ProvisionResponse
	resp = e.do("POST", "/v1/credentials", "mgr2", additional, &theirs, "Idempotency-Key", "move-in-42")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.NotEqual(t, first.RequestID, theirs.RequestID)
	e.waitRequest(theirs.RequestID, func(st control.RequestStatus) bool { return st.Status == "completed" })

	// Another instance (cold cache, ClickHouse only) answers the same.
	e2 := newEnv(t, bc, conn, func(o *stream.Options) { o.APIOnly = true })
	var cold control.ProvisionResponse
	resp = e2.do("POST", "/v1/credentials", "mgr1", req, &cold, "Idempotency-Key", "move-in-42")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.Equal(t, first, cold)
	// ... and rebuilt the state from credential.events, registry included.
	require.Eventually(t, func() bool {
		var v control.CredentialView
		return e2.do("GET", "/v1/credentials/"+first.CredentialIDs[0], "analyst", nil, &v).StatusCode == http.StatusOK &&
			v.Credential.State == event.StateActive
	}, 10*time.Second, 20*time.Millisecond)
	_, creds := e2.locks.Len()
	assert.Positive(t, creds)

	// One credential per subject despite three identical requests.
	var list struct {
		Credentials []*control.Record `json:"credentials"`
	}
	e.do("GET", "/v1/credentials?subject_id=subj-idem", "analyst", nil, &list)
	assert.Len(t, list.Credentials, 2, "manager-1's request once, manager-2's additional one once")

	// Without an Idempotency-Key, the same request again is a duplicate.
	resp = e.do("POST", "/v1/credentials", "mgr1", e.resident("subj-idem-2"), nil)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	require.Eventually(t, func() bool {
		var l struct {
			Credentials []*control.Record `json:"credentials"`
		}
		e.do("GET", "/v1/credentials?subject_id=subj-idem-2&state=active", "analyst", nil, &l)
		return len(l.Credentials) == 1
	}, 30*time.Second, 20*time.Millisecond)
	pr = httpapi.Problem{}
	resp = e.do("POST", "/v1/credentials", "mgr1", e.resident("subj-idem-2"), &pr)
	require.Equal(t, http.StatusConflict, resp.StatusCode, body(resp))
	assert.Equal(t, "duplicate_credential", pr.Code)
}

func TestQueueFull429(t *testing.T) {
	bc := testenv.Kafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	// No owner runs: nothing drains the queue.
	e := newEnv(t, bc, conn, func(o *stream.Options) { o.APIOnly = true; o.MaxQueue = 3 })
	var firstResp control.ProvisionResponse
	var sent []control.CredentialRequest
	for i := range 3 {
		sent = append(sent, e.resident(fmt.Sprintf("q-%d", i)))
		resp := e.do("POST", "/v1/credentials", "mgr1", sent[i], &firstResp, "Idempotency-Key", fmt.Sprintf("k-%d", i))
		require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	}
	f := func(name string, token string, payload any, headers ...string) {
		t.Run(name, func(t *testing.T) {
			var pr httpapi.Problem
			resp := e.do("POST", "/v1/credentials", token, payload, &pr, headers...)
			assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body(resp))
			assert.Equal(t, "queue_full", pr.Code)
			ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			require.NoError(t, err)
			assert.GreaterOrEqual(t, ra, 1)
		})
	}
	f("fourth request", "mgr1", e.resident("q-3"))
	// The sampled lag (no owner commits) keeps it full.
	time.Sleep(700 * time.Millisecond)
	f("after a lag sample", "mgr2", e.resident("q-4"))
	t.Run("replay is not throttled", func(t *testing.T) {
		var again control.ProvisionResponse
		resp := e.do("POST", "/v1/credentials", "mgr1", sent[2], &again, "Idempotency-Key", "k-2")
		assert.Equal(t, http.StatusAccepted, resp.StatusCode)
		assert.Equal(t, firstResp.RequestID, again.RequestID)
	})
}

// TestBulkImportReportsBadRows imports 1,000 credentials (CSV) of which 10
// are bad: exactly those 10 are reported, the rest are issued.
func TestBulkImportReportsBadRows(t *testing.T) {
	bc := testenv.Kafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)

	bad := map[int]string{ // item index → a fault
		3:   "subject_id=",
		57:  "role=wizard",
		101: "subject_id=jane.doe@example.com",
		222: "valid_until=yesterday",
		318: "door_groups=unit:Z-999",
		400: "attestation_format=apple_app_attest",
		512: "vendor=acme",
		640: "valid_until=2001-01-01T00:00:00Z",
		777: "attestation_evidence=!!notbase64!!",
		800: "site_id=site-99",      // no lock there: refused, not issued with 0 locks
		850: "subject_id=bulk-0848", // the same subject, role and device as row 848
		900: "forged",               // evidence from an untrusted CA
		999: "subject_id=has space",
	}
	cols := []string{"subject_id", "role", "site_id", "door_groups", "valid_until", "device_id",
		"attestation_format", "attestation_evidence", "attestation_challenge", "vendor", "user_ref"}
	var b strings.Builder
	b.WriteString(strings.Join(cols, ",") + "\n")
	for i := range 1000 {
		row := map[string]string{"subject_id": fmt.Sprintf("bulk-%04d", i), "role": "resident", "site_id": "site-a",
			"door_groups": fmt.Sprintf("unit:B-204"), "valid_until": "", "device_id": "", "attestation_format": "",
			"attestation_evidence": "", "vendor": "matter", "user_ref": strconv.Itoa(i)}
		if i%2 == 0 {
			forgery := attesttest.Genuine
			if bad[i] == "forged" {
				forgery = attesttest.UntrustedChain
			}
			dev := fmt.Sprintf("dev-%d", i)
			if i == 850 {
				dev = "dev-848"
			}
			att := attestation(t, "", dev, forgery)
			row["device_id"], row["attestation_format"], row["attestation_evidence"], row["attestation_challenge"] =
				dev, att.Format, att.Evidence, att.Challenge
		}
		if f, ok := bad[i]; ok && f != "forged" {
			k, v, _ := strings.Cut(f, "=")
			row[k] = v
			if k == "attestation_format" {
				row["device_id"] = ""
			}
		}
		for j, col := range cols {
			if j > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row[col])
		}
		b.WriteByte('\n')
	}
	var pr control.ProvisionResponse
	resp := e.do("POST", "/v1/credentials:bulk", "mgr1", b.String(), &pr, "Idempotency-Key", "move-in-day")
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.Equal(t, 1000, pr.Total)
	assert.Equal(t, 1000-len(bad), pr.Accepted)
	assert.Equal(t, len(bad), pr.Rejected)
	var rejected []int
	reasons := map[int]string{}
	for _, f := range pr.Failures {
		rejected = append(rejected, *f.Index)
		assert.Contains(t, f.Reason, "line ")
		reasons[*f.Index] = f.Field + ": " + f.Reason
	}
	assert.Contains(t, reasons[800], `unknown site "site-99"`)
	assert.Contains(t, reasons[850], "item 848 already requests a credential for this subject, role and device")
	assert.Contains(t, reasons[900], "untrusted_chain")
	var want []int
	for i := range bad {
		want = append(want, i)
	}
	sort.Ints(want)
	assert.Equal(t, want, rejected)
	for i, id := range pr.CredentialIDs {
		_, isBad := bad[i]
		assert.Equal(t, isBad, id == "", "item %d", i)
	}

	st := e.waitRequest(pr.RequestID, func(st control.RequestStatus) bool { return st.Status != control.StatusPending })
	assert.Equal(t, "completed_with_failures", st.Status)
	assert.Equal(t, map[string]int{control.StatusIssued: 1000 - len(bad), control.StatusFailed: len(bad)}, st.Counts)
	var failed []int
	for _, f := range st.Failures {
		failed = append(failed, f.Item)
		assert.NotEmpty(t, f.Error)
	}
	assert.Equal(t, want, failed)
	assert.Equal(t, event.StateActive, e.credential(pr.CredentialIDs[0]).Credential.State)
	assert.Equal(t, event.StatePendingActivation, e.credential(pr.CredentialIDs[1]).Credential.State)

	// A JSON array works the same way.
	var jr control.ProvisionResponse
	resp = e.do("POST", "/v1/credentials:bulk", "mgr1", []byte(`[{"subject_id":"j-1","role":"guest"},{"subject_id":"j-2","role":"nope"},{"subject_id":"j-3","role":"guest","bogus":1}]`), &jr)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.Equal(t, 1, jr.Accepted)
	require.Len(t, jr.Failures, 2)
	assert.Equal(t, 1, *jr.Failures[0].Index)
	assert.Equal(t, "role", jr.Failures[0].Field)
	assert.Equal(t, 2, *jr.Failures[1].Index)
}

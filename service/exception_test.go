package service

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/exception"
	"github.com/keyfleet/keyfleet/internal/registry"
)

type exceptionView struct {
	exception.Record
	State     exception.State    `json:"state"`
	ReviewDue bool               `json:"review_due"`
	History   []exception.Record `json:"history"`
}

// TestExceptionRegister: an exception needs a compensating control; a
// recorded lock exception lifts the estate's grant-time refusal on that
// lock while it is open, and the refusal is back once it is closed; the
// register lists, shows (with its ClickHouse history), renews and closes
// exceptions, every write audited, reads for analysts and writes for
// managers and admins; the KPIs count exceptions per 1,000 credentials by
// reason and site; an exception about to expire raises expired_exception.
func TestExceptionRegister(t *testing.T) {
	s := startEstateServe(t, registry.File{Locks: []registry.Lock{
		lockOf("matter", "m-lobby", "s1", "lobby", "door-lock-aliro", 1, "entrance"),
		lockOf("seam", "k-boiler", "s1", "boiler", "generic-keypad-lock", 2, "service"),
	}}, "--detect=true", "--respond=false")
	acker(t, s.bus)
	now := time.Now()
	lockEx := map[string]any{"kind": "lock", "scope": map[string]string{"site_id": "s1", "vendor": "seam", "lock_id": "k-boiler"},
		"reason": "legacy_hardware", "description": "keypad lock until the boiler room door is replaced",
		"approvers": []string{"ciso", "facilities-lead"}, "start_ms": now.UnixMilli(), "expiry_ms": now.Add(60 * 24 * time.Hour).UnixMilli()}

	var p problem
	require.Equal(t, http.StatusBadRequest, s.json("POST", "/v1/exceptions", lockEx, &p))
	assert.Contains(t, p.Detail, "compensating_control: required")

	contractor := control.CredentialRequest{SubjectID: "contractor-1", Role: "contractor", SiteID: "s1"}
	require.Equal(t, http.StatusUnprocessableEntity, s.json("POST", "/v1/credentials", contractor, &p))
	assert.Contains(t, p.Detail, "no recorded exception covers it")

	// A manager records the exception; the grant goes through.
	mgr, analyst := s.token("manager"), s.token("analyst")
	lockEx["compensating_control"] = "door contact monitored by the front desk; weekly key audit"
	var created exceptionView
	require.Equal(t, http.StatusCreated, s.jsonAs(mgr, "POST", "/v1/exceptions", lockEx, &created))
	assert.Equal(t, exception.StateActive, created.State)
	assert.NotEmpty(t, created.ID)
	var pr control.ProvisionResponse
	require.Equal(t, http.StatusAccepted, s.json("POST", "/v1/credentials", contractor, &pr))
	require.Equal(t, http.StatusForbidden, s.jsonAs(analyst, "POST", "/v1/exceptions", lockEx, nil))

	// A door exception about to expire.
	var door exceptionView
	require.Equal(t, http.StatusCreated, s.json("POST", "/v1/exceptions", map[string]any{"kind": "door",
		"scope": map[string]string{"site_id": "s1", "door_id": "lobby"}, "reason": "manual_override", "approvers": []string{"facilities-lead"},
		"compensating_control": "guard at the lobby", "start_ms": now.UnixMilli(), "expiry_ms": now.Add(2 * 24 * time.Hour).UnixMilli()}, &door))
	assert.Equal(t, exception.StateExpiring, door.State)

	// List (analysts read), get with history, renew.
	var list struct {
		Exceptions []exceptionView `json:"exceptions"`
		Count      int             `json:"count"`
	}
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/exceptions?state=open&site=s1", "", "", &list, analyst))
	require.Equal(t, 2, list.Count)
	assert.Equal(t, door.ID, list.Exceptions[0].ID, "soonest expiry first")
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/exceptions?kind=lock", "", "", &list, analyst))
	require.Equal(t, 1, list.Count)
	lockEx["expiry_ms"] = now.Add(90 * 24 * time.Hour).UnixMilli()
	lockEx["review_ms"] = now.Add(30 * 24 * time.Hour).UnixMilli()
	var renewed exceptionView
	require.Equal(t, http.StatusOK, s.jsonAs(mgr, "PUT", "/v1/exceptions/"+created.ID, lockEx, &renewed))
	assert.Greater(t, renewed.Version, created.Version)
	lockEx["kind"] = "policy"
	require.Equal(t, http.StatusBadRequest, s.json("PUT", "/v1/exceptions/"+created.ID, lockEx, &p))
	var one exceptionView
	require.Eventually(t, func() bool {
		return s.call("GET", "/v1/exceptions/"+created.ID, "", "", &one) == http.StatusOK && len(one.History) == 2
	}, 30*time.Second, 100*time.Millisecond, "the history is in ClickHouse")
	assert.Equal(t, []string{exception.OpUpdate, exception.OpCreate}, []string{one.History[0].Op, one.History[1].Op})
	require.Equal(t, http.StatusNotFound, s.call("GET", "/v1/exceptions/ex-none", "", "", nil))

	// KPIs: 2 open exceptions against the live credentials of s1.
	var k exception.KPIs
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/exceptions:kpis", "", "", &k, analyst))
	assert.Equal(t, 2, k.Open)
	assert.Equal(t, 1, k.Credentials)
	assert.Equal(t, []exception.Group{{Key: "legacy_hardware", Count: 1, Per1000: 1000}, {Key: "manual_override", Count: 1, Per1000: 1000}}, k.ByReason)
	assert.Equal(t, []exception.Group{{Key: "s1", Count: 2, Credentials: 1, Per1000: 2000}}, k.BySite)

	// The expiring door exception raises expired_exception (low).
	var alerts struct {
		Alerts []struct {
			Detector string   `json:"detector"`
			Severity string   `json:"severity"`
			Evidence []string `json:"evidence"`
		} `json:"alerts"`
	}
	require.Eventually(t, func() bool {
		return s.call("GET", "/v1/alerts?detector=expired_exception", "", "", &alerts) == http.StatusOK && len(alerts.Alerts) == 1
	}, 60*time.Second, 200*time.Millisecond)
	assert.Equal(t, "low", alerts.Alerts[0].Severity)
	assert.Equal(t, []string{"exception:" + door.ID}, alerts.Alerts[0].Evidence)

	// Closed: the refusal is back; a closed exception stays closed.
	var closed exceptionView
	require.Equal(t, http.StatusOK, s.jsonAs(mgr, "POST", "/v1/exceptions/"+created.ID+":close", map[string]string{"reason": "door replaced"}, &closed))
	assert.Equal(t, exception.StateClosed, closed.State)
	require.Equal(t, http.StatusConflict, s.json("POST", "/v1/exceptions/"+created.ID+":close", map[string]string{"reason": "again"}, &p))
	assert.Equal(t, "exception_closed", p.Code)
	require.Equal(t, http.StatusUnprocessableEntity, s.json("POST", "/v1/credentials",
		control.CredentialRequest{SubjectID: "contractor-2", Role: "contractor", SiteID: "s1"}, &p))

	actions := s.auditActions()
	for _, want := range []string{"exception.create exception/" + created.ID, "exception.update exception/" + created.ID,
		"exception.close exception/" + created.ID, "exception.create exception/" + door.ID} {
		assert.Contains(t, actions, want)
	}
}

func (s *estateServe) jsonAs(token, method, path string, in, out any) int {
	s.t.Helper()
	body, err := jsonBody(in)
	require.NoError(s.t, err)
	return s.call(method, path, "application/json", body, out, token)
}

func jsonBody(in any) (string, error) {
	b, err := json.Marshal(in)
	return string(b), err
}

package api_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// TestCredentialOperations drives the lifecycle through the API: illegal
// transitions are 409 problems naming the current state, roles are
// enforced, the responder's Suspend and the human Reinstate work, a device
// change needs fresh attestation.
func TestCredentialOperations(t *testing.T) {
	bc := testenv.Kafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)
	gw := startGateway(t, bc, time.Millisecond)
	ctx := context.Background()

	// Issued without attestation: waits for device-possession proof.
	noDevice := e.resident("subj-ops")
	noDevice.DeviceID, noDevice.Attestation = "", nil
	id := e.issue("mgr1", noDevice)
	e.waitState(id, event.StatePendingActivation)

	conflict := func(method, path, token string, payload any, wantState string) {
		t.Helper()
		var pr httpapi.Problem
		resp := e.do(method, path, token, payload, &pr)
		require.Equal(t, http.StatusConflict, resp.StatusCode, body(resp))
		assert.Equal(t, "illegal_transition", pr.Code)
		assert.Equal(t, wantState, pr.Extra["current_state"], "%+v", pr)
	}
	conflict("POST", "/v1/credentials/"+id+":suspend", "responder", nil, event.StatePendingActivation)
	conflict("POST", "/v1/credentials/"+id+":reinstate", "mgr1", nil, event.StatePendingActivation)
	conflict("POST", "/v1/credentials/"+id+":archive", "mgr1", nil, event.StatePendingActivation)
	conflict("POST", "/v1/credentials/"+id+":approve", "mgr2", nil, event.StatePendingActivation)
	var te *lifecycle.TransitionError
	require.ErrorAs(t, e.api.Suspend(ctx, id, "burst", "responder:unlock_burst"), &te)
	assert.Equal(t, event.StatePendingActivation, te.From)
	assert.ErrorIs(t, e.api.Suspend(ctx, "no-such-credential", "x", "responder"), control.ErrNotFound)

	// Activation needs evidence for a challenge of this credential and
	// device; forged, misdirected or unverifiable evidence is a 4xx naming
	// the reason; genuine evidence activates.
	var pr httpapi.Problem
	resp := e.do("POST", "/v1/credentials/"+id+":activate", "mgr1", map[string]any{"device_id": "phone-1"}, &pr)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "invalid_attestation", pr.Code)
	resp = e.do("POST", "/v1/credentials/"+id+":activate", "mgr1", map[string]any{"device_id": "phone-1",
		"attestation": map[string]string{"format": "android_key_attestation", "evidence": "%%%"}}, &pr)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	refused := func(att *control.AttestationInput, device, code string) {
		t.Helper()
		pr = httpapi.Problem{}
		resp := e.do("POST", "/v1/credentials/"+id+":activate", "mgr1", map[string]any{"device_id": device, "attestation": att}, &pr)
		require.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, body(resp))
		assert.Equal(t, code, pr.Code)
		assert.Equal(t, strings.TrimPrefix(code, "attestation_"), pr.Extra["reason"])
	}
	refused(attestation(t, id, "phone-1", attesttest.UntrustedChain), "phone-1", "attestation_untrusted_chain")
	refused(attestation(t, id, "phone-1", attesttest.WrongApp), "phone-1", "attestation_wrong_app")
	refused(attestation(t, id, "phone-1", attesttest.TamperedSignature), "phone-1", "attestation_bad_signature")
	refused(attestation(t, "", "phone-1", attesttest.Genuine), "phone-1", "attestation_wrong_challenge") // another credential's challenge
	refused(attestation(t, id, "phone-9", attesttest.Genuine), "phone-1", "attestation_wrong_challenge") // another device's
	aliro := attestation(t, id, "phone-1", attesttest.Genuine)
	aliro.Format = "aliro"
	refused(aliro, "phone-1", "attestation_unsupported_format")
	assert.Equal(t, event.StatePendingActivation, e.credential(id).Credential.State)
	assert.Empty(t, gw.commands(gateway.CommandGrant, id), "a pending_activation key is on no lock")
	var op control.OpResponse
	resp = e.do("POST", "/v1/credentials/"+id+":activate", "mgr1", map[string]any{"device_id": "phone-1",
		"attestation": attestation(t, id, "phone-1", attesttest.Genuine)}, &op)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	assert.Equal(t, event.StateActive, op.Credential.State)
	assert.True(t, op.Credential.Attested)
	assert.Equal(t, "phone-1", op.Credential.DeviceID)
	require.NotNil(t, op.Credential.Attestation)
	assert.Len(t, op.Credential.Attestation.KeySHA256, 64)
	assert.Equal(t, "secure_enclave", op.Credential.Attestation.SecurityLevel)
	assert.Equal(t, attesttest.AppID, op.Credential.Attestation.AppID)
	require.Eventually(t, func() bool { return len(gw.commands(gateway.CommandGrant, id)) == 5 }, 10*time.Second, 10*time.Millisecond,
		"activation grants it on its locks")

	// Roles: an analyst reads but cannot suspend; a responder suspends but
	// cannot revoke.
	assert.Equal(t, http.StatusForbidden, e.do("POST", "/v1/credentials/"+id+":suspend", "analyst", nil, nil).StatusCode)
	assert.Equal(t, http.StatusForbidden, e.do("POST", "/v1/credentials/"+id+":revoke", "responder", nil, nil).StatusCode)
	assert.Equal(t, http.StatusUnauthorized, e.do("GET", "/v1/credentials/"+id, "", nil, nil).StatusCode)

	// The responder's Go API (what detectors' responders call).
	require.NoError(t, e.api.Suspend(ctx, id, "unlock burst alert a-1", "responder:unlock_burst"))
	v := e.waitState(id, event.StateSuspended)
	assert.Equal(t, "responder:unlock_burst", v.Credential.Actor)
	assert.Equal(t, "unlock burst alert a-1", v.Credential.Reason)
	require.Eventually(t, func() bool { return len(gw.commands(gateway.CommandRevoke, id)) == 5 }, 10*time.Second, 10*time.Millisecond,
		"a suspension tells every lock to drop the credential")
	conflict("POST", "/v1/credentials/"+id+":suspend", "responder", nil, event.StateSuspended)
	require.NoError(t, e.api.Reinstate(ctx, id, "false positive", "manager-1"))
	e.waitState(id, event.StateActive)
	require.Eventually(t, func() bool { return len(gw.commands(gateway.CommandGrant, id)) == 10 }, 10*time.Second, 10*time.Millisecond)

	// Device change: the old session is revoked, the new device needs proof.
	op = control.OpResponse{}
	resp = e.do("POST", "/v1/credentials/"+id+":device", "mgr1", map[string]any{"device_id": "phone-2"}, &op)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	assert.Equal(t, event.StatePendingActivation, op.Credential.State)
	assert.Equal(t, "phone-1", op.Credential.SessionRevokedDevice)
	assert.False(t, op.Credential.Attested)
	require.Eventually(t, func() bool { return len(gw.commands(gateway.CommandRevoke, id)) == 10 }, 10*time.Second, 10*time.Millisecond,
		"the locks drop it until the new device proves possession")
	resp = e.do("POST", "/v1/credentials/"+id+":activate", "mgr1", map[string]any{"device_id": "phone-1",
		"attestation": attestation(t, id, "phone-1", attesttest.Genuine)}, &pr)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "attestation for the old device")
	op = control.OpResponse{}
	resp = e.do("POST", "/v1/credentials/"+id+":activate", "mgr1", map[string]any{
		"attestation": attestation(t, id, "phone-2", attesttest.Genuine)}, &op)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	assert.Equal(t, "phone-2", op.Credential.DeviceID)

	// Revoke, then revoke again (409), then archive.
	op = control.OpResponse{}
	resp = e.do("POST", "/v1/credentials/"+id+":revoke", "mgr1", map[string]string{"reason": "lost phone"}, &op)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.Equal(t, event.StateRevoked, op.Credential.State)
	assert.NotEmpty(t, op.RevocationID)
	conflict("POST", "/v1/credentials/"+id+":revoke", "mgr1", nil, event.StateRevoked)
	conflict("POST", "/v1/credentials/"+id+":activate", "mgr1", map[string]any{"device_id": "phone-2",
		"attestation": attestation(t, id, "phone-2", attesttest.Genuine)}, event.StateRevoked)
	op = control.OpResponse{}
	resp = e.do("POST", "/v1/credentials/"+id+":archive", "mgr1", nil, &op)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	assert.Equal(t, event.StateArchived, op.Credential.State)

	// Escaped ':' routes: an unknown operation is no operation, and ids
	// containing ':' (escaped or not) reach the handler decoded.
	assert.GreaterOrEqual(t, e.do("POST", "/v1/credentials/"+id+":bogus", "mgr1", nil, nil).StatusCode, 400)
	resp = e.do("POST", "/v1/subjects/site-a:nobody:revoke", "mgr1", nil, &pr)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.Contains(t, pr.Detail, "site-a:nobody")
	resp = e.do("POST", "/v1/subjects/site-a%3Anobody:revoke", "mgr1", nil, &pr)
	assert.Contains(t, pr.Detail, "site-a:nobody")

	// KPIs over a range (manager), input validated.
	var k control.FleetKPIs
	resp = e.do("GET", fmt.Sprintf("/v1/kpis/credentials?from=%d&sla=1m", time.Now().Add(-time.Hour).UnixMilli()), "mgr1", nil, &k)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	assert.Equal(t, 1, k.RevocationLatency.Count)
	assert.Equal(t, 1, k.Activation.Issued)
	resp = e.do("GET", "/v1/kpis/credentials?from=yesterday", "mgr1", nil, &pr)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "from", pr.Field)
	assert.Equal(t, http.StatusForbidden, e.do("GET", "/v1/kpis/credentials", "analyst", nil, nil).StatusCode)

	// Every action above is in the audit log, and the log verifies.
	rows, err := e.audit.Entries(ctx, "credential.", id, 100)
	require.NoError(t, err)
	var actions []string
	for _, r := range rows {
		actions = append(actions, r.Action)
	}
	assert.Subset(t, actions, []string{"credential.request", "credential.activate", "credential.suspend",
		"credential.reinstate", "credential.device_change", "credential.revoke", "credential.archive"})
	var rep audit.Report
	resp = e.do("GET", "/v1/audit/verify", "admin", nil, &rep)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, rep.OK)
	assert.Equal(t, http.StatusForbidden, e.do("GET", "/v1/audit/verify", "mgr1", nil, nil).StatusCode)

	// Tampering with one entry is named by the endpoint.
	require.NoError(t, conn.Exec(ctx, "ALTER TABLE audit_log UPDATE actor = 'nobody' WHERE action = 'credential.suspend'"))
	require.Eventually(t, func() bool {
		rep = audit.Report{}
		e.do("GET", "/v1/audit/verify", "admin", nil, &rep)
		return !rep.OK
	}, 30*time.Second, 50*time.Millisecond)
	require.NotNil(t, rep.First)
	assert.Equal(t, audit.KindAltered, rep.First.Kind)
	entries, err := e.audit.Entries(ctx, "credential.suspend", "", 1)
	require.NoError(t, err)
	assert.Equal(t, entries[0].Seq, rep.First.Seq)
}

// TestAuditFailureStopsTheAction: an admin action whose audit append fails
// is not carried out.
func TestAuditFailureStopsTheAction(t *testing.T) {
	bc := testenv.Kafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)
	id := e.issue("mgr1", e.resident("subj-audit"))
	e.waitState(id, event.StateActive)
	ctx := context.Background()

	require.NoError(t, conn.Exec(ctx, "RENAME TABLE audit_log TO audit_log_offline"))
	var pr httpapi.Problem
	resp := e.do("POST", "/v1/credentials/"+id+":revoke", "mgr1", nil, &pr)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "audit_unavailable", pr.Code)
	resp = e.do("POST", "/v1/credentials", "mgr1", e.resident("subj-audit-2"), &pr)
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.ErrorIs(t, e.api.Suspend(ctx, id, "x", "responder"), control.ErrAudit)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, event.StateActive, e.credential(id).Credential.State, "nothing happened")
	var list struct {
		Total int `json:"total"`
	}
	e.do("GET", "/v1/credentials?subject_id=subj-audit-2", "analyst", nil, &list)
	assert.Zero(t, list.Total)

	require.NoError(t, conn.Exec(ctx, "RENAME TABLE audit_log_offline TO audit_log"))
	var op control.OpResponse
	resp = e.do("POST", "/v1/credentials/"+id+":revoke", "mgr1", nil, &op)
	assert.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
}

// TestBreakGlass: role-bound, two different approvers (neither the
// requester), flagged, time-bound (expires on its own), then queued for
// review with the access events made under it.
func TestBreakGlass(t *testing.T) {
	bc := testenv.Kafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)
	startGateway(t, bc, time.Millisecond)

	dev, att := e.attested("ff-phone")
	req := control.BreakGlassRequest{SubjectID: "firefighter-7", SiteID: "site-a", DurationSeconds: 2,
		DeviceID: dev, Attestation: att, Reason: "fire alarm floor 3",
		Refs: []control.RefInput{{Vendor: "matter", UserRef: "ff-7"}}}

	var pr httpapi.Problem
	wrongRole := req
	wrongRole.Role = "guest"
	resp := e.do("POST", "/v1/breakglass", "mgr1", wrongRole, &pr)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "invalid_role", pr.Code)
	tooLong := req
	tooLong.DurationSeconds = 24 * 3600
	assert.Equal(t, http.StatusBadRequest, e.do("POST", "/v1/breakglass", "mgr1", tooLong, nil).StatusCode)
	resp = e.do("POST", "/v1/credentials", "mgr1", control.CredentialRequest{SubjectID: "x", Role: "emergency_responder"}, &pr)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "break-glass roles only through /v1/breakglass")

	var created control.ProvisionResponse
	resp = e.do("POST", "/v1/breakglass", "mgr1", req, &created)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	id := created.CredentialIDs[0]
	e.waitState(id, event.StateRequested)

	resp = e.do("POST", "/v1/credentials/"+id+":approve", "mgr1", nil, &pr)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, "self_approval", pr.Code)
	var op control.OpResponse
	resp = e.do("POST", "/v1/credentials/"+id+":approve", "mgr2", nil, &op)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	assert.Equal(t, event.StateRequested, op.Credential.State, "one approval of two")
	resp = e.do("POST", "/v1/credentials/"+id+":approve", "mgr2", nil, &pr)
	assert.Equal(t, http.StatusConflict, resp.StatusCode)
	assert.Equal(t, "duplicate_approval", pr.Code)
	resp = e.do("POST", "/v1/credentials/"+id+":approve", "mgr3", nil, &op)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	c := op.Credential
	assert.Equal(t, event.StateActive, c.State)
	assert.True(t, c.BreakGlass)
	assert.True(t, c.Exception)
	assert.Equal(t, []string{"manager-2", "manager-3"}, c.Approvers)
	assert.Len(t, c.Locks, 6, `"*": every lock of the site`)
	assert.InDelta(t, 2000, c.ValidUntilMs-c.IssuedMs, 1)
	// Flagged in the registry, so every access event under it is too.
	info, ok := e.locks.Credential("matter", "m-gym", event.RefHash(pseudonymKey, "matter", "ff-7"))
	require.True(t, ok)
	assert.True(t, info.BreakGlass)

	// An access event made with it, as the pipeline would store it.
	ev := []any{"6f1e3c1a-0000-4000-8000-000000000001", time.Now().UTC(), time.Now().UnixMilli(), time.Now().UnixMilli(),
		"matter", "site-a", "", "gym", "m-gym", "firefighter-7", id, "ff-phone", "attested", "unlock", "granted",
		"aliro", "", "", uint8(1), "", time.Now().UnixMilli()}
	require.NoError(t, insertAccess(conn, ev))

	var reviews struct {
		Reviews []control.Review `json:"reviews"`
	}
	e.do("GET", "/v1/breakglass/reviews", "mgr1", nil, &reviews)
	require.Len(t, reviews.Reviews, 1)
	assert.Equal(t, control.ReviewInUse, reviews.Reviews[0].Status)
	resp = e.do("POST", "/v1/breakglass/"+id+":review", "mgr2", map[string]string{"outcome": "justified"}, &pr)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "not before it ended")

	// It expires on its own (the control plane's sweeper).
	v := e.waitState(id, event.StateRevoked)
	assert.Equal(t, "break-glass expired", v.Credential.Reason)
	assert.Equal(t, "system", v.Credential.Actor)
	reviews.Reviews = nil
	e.do("GET", "/v1/breakglass/reviews", "mgr1", nil, &reviews)
	require.Len(t, reviews.Reviews, 1)
	assert.Equal(t, control.ReviewAwaiting, reviews.Reviews[0].Status)
	var detail struct {
		Review control.Review        `json:"review"`
		Events []control.AccessEvent `json:"events"`
	}
	resp = e.do("GET", "/v1/breakglass/"+id+"/review", "mgr2", nil, &detail)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	require.Len(t, detail.Events, 1)
	assert.True(t, detail.Events[0].BreakGlass)
	assert.Equal(t, "fire alarm floor 3", detail.Review.Reason)

	resp = e.do("POST", "/v1/breakglass/"+id+":review", "mgr1", map[string]string{"outcome": "justified"}, &pr)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "the requester does not review themselves")
	resp = e.do("POST", "/v1/breakglass/"+id+":review", "mgr2", map[string]string{"outcome": "justified", "note": "alarm confirmed"}, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	reviews.Reviews = nil
	e.do("GET", "/v1/breakglass/reviews", "mgr1", nil, &reviews)
	assert.Empty(t, reviews.Reviews, "the queue is empty once reviewed")

	entries, err := e.audit.Entries(context.Background(), "breakglass.", "", 10)
	require.NoError(t, err)
	var actions []string
	for _, r := range entries {
		actions = append(actions, r.Action)
	}
	assert.ElementsMatch(t, []string{"breakglass.request", "breakglass.expire", "breakglass.review"}, actions)
}

// TestTemplateChangePropagates: a template change reaches the role's
// credentials (door groups and windows, locks told) and is audited.
func TestTemplateChangePropagates(t *testing.T) {
	bc := testenv.Kafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)
	gw := startGateway(t, bc, time.Millisecond)
	id := e.issue("mgr1", e.resident("subj-tpl"))
	before := e.waitState(id, event.StateActive)
	assert.Contains(t, before.Credential.DoorGroups, "garage")

	var tpls struct {
		Templates []control.Template `json:"templates"`
	}
	e.do("GET", "/v1/templates", "analyst", nil, &tpls)
	require.Len(t, tpls.Templates, len(control.Roles))
	t2 := control.DefaultTemplates()["resident"]
	t2.DoorGroups = []string{"entrance", "amenity"}
	t2.Windows = []control.Window{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat"}, Start: "06:00", End: "23:00"}}
	var out struct {
		Template    control.Template `json:"template"`
		Propagating int              `json:"propagating_to"`
	}
	resp := e.do("PUT", "/v1/templates/resident", "mgr1", t2, &out)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))
	assert.Equal(t, 1, out.Propagating)
	assert.Positive(t, out.Template.Version)

	var v control.CredentialView
	require.Eventually(t, func() bool {
		v = e.credential(id)
		return v.Credential.TemplateVersion == out.Template.Version
	}, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"amenity", "entrance", "unit:B-204"}, v.Credential.DoorGroups)
	assert.NotContains(t, locksOf(v.Credential), "s-garage")
	assert.Equal(t, event.StateActive, v.Credential.State)
	require.Eventually(t, func() bool {
		return assert.ObjectsAreEqual([]string{"s-garage"}, lockIDs(gw.commands(gateway.CommandRevoke, id)))
	}, 10*time.Second, 10*time.Millisecond)
	// The locks that keep the credential are told its new windows.
	assert.Equal(t, t2.Windows, v.Credential.Windows)
	require.Eventually(t, func() bool {
		var told []string
		for _, c := range gw.commands(gateway.CommandGrant, id) {
			if assert.ObjectsAreEqual(t2.Windows, c.Windows) {
				told = append(told, c.LockID)
			}
		}
		want := locksOf(v.Credential)
		slices.Sort(want)
		slices.Sort(told)
		return slices.Equal(want, told)
	}, 10*time.Second, 10*time.Millisecond, "grants with the template's windows to every lock that keeps the credential")

	bad := t2
	bad.Approval = "maybe"
	assert.Equal(t, http.StatusBadRequest, e.do("PUT", "/v1/templates/resident", "mgr1", bad, nil).StatusCode)
	entries, err := e.audit.Entries(context.Background(), "template.change", "resident", 10)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

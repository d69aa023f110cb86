package api_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// TestSubjectRevocationReachesEveryLock is the integration test on a real
// Kafka broker and real ClickHouse: a subject with three credentials is
// revoked; every lock holding one gets a revoke command, the latency
// histogram fills as locks confirm, and a lock that is offline shows as
// pending (with its age) until it reconnects.
func TestSubjectRevocationReachesEveryLock(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)
	gw := startGateway(t, bc, 20*time.Millisecond, "s-garage")

	// credential.events is the state: compacted, never expired by age.
	client := &kafka.Client{Addr: kafka.TCP(bc.Brokers...), Timeout: 10 * time.Second}
	dc, derr := client.DescribeConfigs(context.Background(), &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: bc.Topic(bus.TopicCredentialEvents), ConfigNames: []string{"cleanup.policy"}}}})
	require.NoError(t, derr)
	require.Len(t, dc.Resources, 1)
	require.Len(t, dc.Resources[0].ConfigEntries, 1)
	assert.Equal(t, "compact", dc.Resources[0].ConfigEntries[0].ConfigValue)

	const subject = "subj-4711"
	res := e.issue("mgr1", e.resident(subject))
	dev, att := e.attested("dev-guest")
	guest := e.issue("mgr1", control.CredentialRequest{SubjectID: subject, Role: "guest", SiteID: "site-a",
		DeviceID: dev, Attestation: att})
	dev, att = e.attested("dev-contractor")
	contractor, reqID := e.request("mgr1", control.CredentialRequest{SubjectID: subject, Role: "contractor", SiteID: "site-a",
		DeviceID: dev, Attestation: att})
	e.waitState(contractor, event.StateRequested) // contractors need one approval
	st := e.waitRequest(reqID, func(st control.RequestStatus) bool { return st.Status == control.StatusPending })
	assert.Equal(t, 1, st.Counts[control.StatusPending])
	var op control.OpResponse
	resp := e.do("POST", "/v1/credentials/"+contractor+":approve", "mgr2", map[string]string{"reason": "ok"}, &op)
	require.Equal(t, http.StatusOK, resp.StatusCode, body(resp))

	creds := map[string]control.CredentialView{}
	for _, id := range []string{res, guest, contractor} {
		creds[id] = e.waitState(id, event.StateActive)
	}
	assert.ElementsMatch(t, []string{"m-lobby", "n-side", "s-garage", "m-gym", "m-b204"}, locksOf(creds[res].Credential))
	assert.ElementsMatch(t, []string{"m-lobby", "n-side", "m-gym"}, locksOf(creds[guest].Credential))
	assert.ElementsMatch(t, []string{"m-lobby", "n-side", "se-service"}, locksOf(creds[contractor].Credential))
	// Grants went to every lock, keyed pseudonymous refs only.
	require.Eventually(t, func() bool { return len(gw.commands(gateway.CommandGrant, res)) == 5 }, 30*time.Second, 20*time.Millisecond)
	for _, c := range gw.commands(gateway.CommandGrant, res) {
		if c.Vendor == "matter" {
			assert.Equal(t, event.RefHash(pseudonymKey, "matter", "user-"+subject), c.UserRefHash)
		}
	}
	// The normalizer's registry resolves the resident's Matter user.
	info, ok := e.locks.Credential("matter", "m-lobby", event.RefHash(pseudonymKey, "matter", "user-"+subject))
	require.True(t, ok)
	assert.Equal(t, res, info.CredentialID)

	before := e.histogramCount("keyfleet_control_revocation_latency_seconds")
	var rr control.SubjectRevokeResponse
	resp = e.do("POST", "/v1/subjects/"+subject+":revoke", "mgr1", map[string]string{"reason": "move-out"}, &rr)
	require.Equal(t, http.StatusAccepted, resp.StatusCode, body(resp))
	assert.ElementsMatch(t, []string{res, guest, contractor}, rr.CredentialIDs)

	// Everything but the offline garage lock confirms; the garage stays pending.
	var rv control.Revocation
	require.Eventually(t, func() bool {
		rv = control.Revocation{}
		e.do("GET", rr.RevocationURL, "analyst", nil, &rv)
		// The session layer's rows land beside the others, not with them.
		return rv.Layers.Entitlement.Done == 3 && rv.Layers.Locks.Done == 10 &&
			rv.Layers.DeviceSession.State != control.LayerPending
	}, 30*time.Second, 50*time.Millisecond, "revocation: %+v", rv)
	assert.Equal(t, control.StatusPending, rv.Status)
	assert.Equal(t, control.LayerDone, rv.Layers.Entitlement.State)
	assert.Equal(t, control.LayerNotConfigured, rv.Layers.DeviceSession.State, "no session endpoint: nothing was called")
	assert.Equal(t, 0, rv.Layers.DeviceSession.Done)
	assert.Equal(t, control.LayerPending, rv.Layers.Locks.State)
	assert.Equal(t, 11, rv.Layers.Locks.Total)
	require.Len(t, rv.PendingLocks, 1)
	assert.Equal(t, "s-garage", rv.PendingLocks[0].LockID)
	assert.Equal(t, res, rv.PendingLocks[0].CredentialID)
	assert.Positive(t, rv.PendingLocks[0].AgeMs)
	assert.Positive(t, rv.TimeToDisableMs)
	for _, id := range []string{res, guest, contractor} {
		assert.Equal(t, event.StateRevoked, e.credential(id).Credential.State)
		assert.ElementsMatch(t, locksOf(creds[id].Credential), lockIDs(gw.commands(gateway.CommandRevoke, id)),
			"every lock holding %s got a revoke command", id)
	}
	require.Eventually(t, func() bool {
		return e.histogramCount("keyfleet_control_revocation_latency_seconds") == before+2
	}, 10*time.Second, 20*time.Millisecond, "guest and contractor revocations observed")

	// KPIs in ClickHouse see the straggler past a (tiny) SLA.
	ctx := context.Background()
	k, err := store.ComputeKPIs(ctx, conn, control.KPIQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute), SLA: time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 3, k.RevocationLatency.Count)
	assert.Equal(t, 2, k.RevocationLatency.Confirmed)
	assert.Equal(t, 1, k.PendingLocks.Count)
	require.Len(t, k.PendingLocks.Locks, 1)
	assert.Equal(t, "s-garage", k.PendingLocks.Locks[0].LockID)

	gw.reconnect("s-garage")
	require.Eventually(t, func() bool {
		rv = control.Revocation{}
		e.do("GET", rr.RevocationURL, "analyst", nil, &rv)
		return rv.Status == "confirmed"
	}, 30*time.Second, 50*time.Millisecond, "revocation: %+v", rv)
	assert.Empty(t, rv.PendingLocks)
	assert.Len(t, rv.ConfirmedLocks, 11)
	assert.GreaterOrEqual(t, rv.TimeToConfirmMs, rv.TimeToDisableMs)
	require.Eventually(t, func() bool {
		return e.histogramCount("keyfleet_control_revocation_latency_seconds") == before+3
	}, 10*time.Second, 20*time.Millisecond)

	// Issuance and activation KPIs read credential_events, which its own
	// consumer copies from Kafka: wait for the three credentials' records.
	require.Eventually(t, func() bool {
		k, err = store.KPIs(ctx, conn, time.Now().Add(-time.Hour), time.Now().Add(time.Minute))
		return err == nil && k.TimeToIssue.Count == 3 && k.Activation.Activated == 3
	}, 30*time.Second, 50*time.Millisecond, "credential_events copied for the three credentials")
	assert.Equal(t, 3, k.RevocationLatency.Confirmed)
	assert.Positive(t, k.RevocationLatency.P99)
	assert.Equal(t, 0, k.PendingLocks.Count)
	assert.Equal(t, 3, k.TimeToIssue.Count)
	assert.Equal(t, 3, k.Activation.Issued)
	assert.Equal(t, 3, k.Activation.Activated)
	assert.InDelta(t, 1.0, k.Activation.SuccessRate, 1e-9)

	// The revoked credential still resolves (use-after-revocation detection).
	info, ok = e.locks.Credential("matter", "m-lobby", event.RefHash(pseudonymKey, "matter", "user-"+subject))
	require.True(t, ok)
	assert.Equal(t, res, info.CredentialID)

	// The history answers who issued it, when, to which device, how approved.
	v := e.credential(contractor)
	assert.Equal(t, "manager-1", v.Summary.IssuedBy)
	assert.Equal(t, "one", v.Summary.ApprovalRule)
	assert.Equal(t, []string{"manager-2"}, v.Summary.Approvers)
	assert.Equal(t, "dev-contractor", v.Summary.DeviceID)
	assert.NotEmpty(t, v.Summary.IssuedAt)
	var states []string
	for _, r := range v.History {
		states = append(states, r.State)
	}
	assert.Equal(t, []string{"requested", "approved", "issued", "pending_activation", "active", "revoked"}, states)
}

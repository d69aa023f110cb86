package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/internal/controltest"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
)

// call calls the estate's API over HTTP and decodes a JSON answer.
func call(t testing.TB, e *controltest.Estate, method, path, token string, in, out any) int {
	t.Helper()
	var rd io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, out), "%s %s: %s", method, path, data)
	}
	return resp.StatusCode
}

// lossy are gateways that lose 2 % of the commands they get.
func lossy() map[string]locks.Profile {
	p := controltest.FastProfiles()
	for v, prof := range p {
		prof.MissRate = 0.02
		p[v] = prof
	}
	return p
}

// issueActive issues one resident credential per subject of the estate's
// first residents (attested in the request, so active at once) and
// returns their ids.
func issueActive(t *testing.T, e *controltest.Estate, n int) []string {
	t.Helper()
	var reqs []control.CredentialRequest
	for _, c := range e.Fleet.Credentials {
		if c.Role != "resident" || len(reqs) == n {
			continue
		}
		subject := e.Fleet.Subjects[c.Subject].ID
		dev := "phone-" + subject
		reqs = append(reqs, control.CredentialRequest{SubjectID: subject, Role: "resident", SiteID: e.Fleet.Sites[c.Site].ID,
			DoorGroups: []string{"unit:" + e.Fleet.Subjects[c.Subject].Unit}, DeviceID: dev,
			Attestation: e.Attestation("", dev, attesttest.Genuine), Reason: "move-in"})
	}
	require.Len(t, reqs, n)
	var pr control.ProvisionResponse
	require.Equal(t, http.StatusAccepted, call(t, e, "POST", "/v1/credentials:bulk", controltest.TokenManager, reqs, &pr))
	require.Zero(t, pr.Rejected, "%+v", pr.Failures)
	require.Eventually(t, func() bool {
		var st control.RequestStatus
		call(t, e, "GET", "/v1/requests/"+pr.RequestID, controltest.TokenManager, nil, &st)
		return st.Status == "completed"
	}, 60*time.Second, 50*time.Millisecond)
	return pr.CredentialIDs
}

// held waits until every lock of the credentials holds them.
func held(t *testing.T, e *controltest.Estate, ids []string) map[string][]control.LockRef {
	t.Helper()
	out := map[string][]control.LockRef{}
	for _, id := range ids {
		r, ok := e.Proc.Record(id)
		require.True(t, ok)
		require.Equal(t, event.StateActive, r.State)
		require.NotEmpty(t, r.Locks)
		out[id] = r.Locks
	}
	require.Eventually(t, func() bool {
		now := time.Now().UnixMilli()
		for id, ls := range out {
			for _, l := range ls {
				if acl, _ := e.Set.ACL(l.LockID, now); !slices.Contains(acl, id) {
					return false
				}
			}
		}
		return true
	}, 60*time.Second, 50*time.Millisecond, "every lock holds its credentials (lost grants re-sent)")
	return out
}

// TestRevocationReconciledUntilEveryLockConfirms: gateways that lose 2 %
// of the commands and a lock that is offline for a while (losing what is
// sent to it meanwhile): every lock still confirms every revocation, the
// lost commands are re-sent with the same command id, the offline lock gets
// its whole list when it reconnects, and the device sessions are revoked.
func TestRevocationReconciledUntilEveryLockConfirms(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 4)
	conn, _ := testenv.ClickHouse(t)
	e := controltest.Start(t, controltest.Options{Bus: bc, Conn: conn, Profiles: lossy(), DropOffline: true})
	ids := issueActive(t, e, 12)
	byCred := held(t, e, ids)

	// The entrance lock is offline until every revocation has been sent to
	// it, lost, and sent again (not for a fixed time: issuing the
	// revocations takes longer on a loaded machine).
	entrance := e.Locks(fleet.KindEntrance)[0]
	require.NoError(t, e.Set.ForceOffline(entrance.LockID, time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli()))

	var revs []string
	for _, id := range ids {
		r, _ := e.Proc.Record(id)
		var rr control.RevokeResponse
		require.Equal(t, http.StatusAccepted, call(t, e, "POST", "/v1/subjects/"+r.SubjectID+":revoke", controltest.TokenManager,
			map[string]string{"reason": "move-out"}, &rr))
		revs = append(revs, rr.RevocationID)
	}
	ctx := context.Background()
	resentWhileOffline := func() uint64 {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, `SELECT count() FROM (SELECT command_id FROM lock_command_sends
			WHERE lock_id = ? AND type = 'revoke' GROUP BY command_id HAVING max(attempt) > 1)`, entrance.LockID).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return resentWhileOffline() == uint64(len(ids)) }, 60*time.Second, 100*time.Millisecond,
		"every revocation re-sent to the offline lock")
	require.NoError(t, e.Set.BringOnline(entrance.LockID, time.Now().UnixMilli()))
	for i, rid := range revs {
		var rv control.Revocation
		require.Eventually(t, func() bool {
			rv = control.Revocation{}
			call(t, e, "GET", "/v1/revocations/"+rid, controltest.TokenAnalyst, nil, &rv)
			return rv.Status == control.RevocationConfirmed
		}, 90*time.Second, 100*time.Millisecond, "revocation %s: %+v", rid, rv)
		assert.Empty(t, rv.PendingLocks)
		assert.Empty(t, rv.FailedLocks)
		assert.Len(t, rv.ConfirmedLocks, len(byCred[ids[i]]))
		assert.Equal(t, control.LayerDone, rv.Layers.Entitlement.State)
		assert.Equal(t, control.LayerDone, rv.Layers.DeviceSession.State)
		assert.Equal(t, control.LayerDone, rv.Layers.Locks.State)
		assert.Positive(t, rv.TimeToSessionMs)
		assert.GreaterOrEqual(t, rv.TimeToConfirmMs, rv.TimeToDisableMs)
	}
	// The offline lock missed its revocations: each was re-sent until it
	// was back (confirmed above), and it got its whole list on reconnect.
	assert.Equal(t, uint64(len(ids)), resentWhileOffline(), "one revoke command per revocation on the lock that was offline")
	var reconnects uint64
	require.Eventually(t, func() bool {
		return conn.QueryRow(ctx, `SELECT count() FROM acl_resyncs WHERE lock_id = ? AND reason = 'reconnect'`,
			entrance.LockID).Scan(&reconnects) == nil && reconnects >= 1
	}, 30*time.Second, 100*time.Millisecond, "acl_push on reconnect")
	now := time.Now().UnixMilli()
	for id, ls := range byCred {
		for _, l := range ls {
			acl, _ := e.Set.ACL(l.LockID, now)
			assert.NotContains(t, acl, id, "revoked credential still on %s", l)
		}
		assert.Equal(t, "refused", decide(e, ls[0], id), "a real attempt at the lock")
	}
	// Each device session was revoked once at the wallet provider.
	for i, id := range ids {
		w, ok := e.Wallet.Revocation(revs[i] + "/" + id)
		require.True(t, ok, id)
		assert.True(t, w.Revoked)
	}
	// No revocation passed the (default) SLA: nothing escalated.
	k, err := store.ComputeKPIs(ctx, conn, control.KPIQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 0, k.Escalations.Count)
	assert.GreaterOrEqual(t, k.ACLDrift.Reconnects, 1)
	assert.Equal(t, len(ids), k.RevocationLatency.Confirmed)
}

// decide is a real access attempt at a simulated lock, now.
func decide(e *controltest.Estate, l control.LockRef, credentialID string) string {
	if d := e.Set.Decide(l.LockID, credentialID, time.Now().UnixMilli()); d.Granted {
		return "granted"
	}
	return "refused"
}

// TestPendingActivationOpensNothing tries the key at the simulated locks:
// refused while pending_activation (and with forged evidence), granted once
// activated with genuine evidence, refused again when suspended.
func TestPendingActivationOpensNothing(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	e := controltest.Start(t, controltest.Options{Bus: bc, Conn: conn})
	var res *fleet.Credential
	for i := range e.Fleet.Credentials {
		if e.Fleet.Credentials[i].Role == "resident" {
			res = &e.Fleet.Credentials[i]
			break
		}
	}
	require.NotNil(t, res)
	subject := e.Fleet.Subjects[res.Subject]
	var pr control.ProvisionResponse
	require.Equal(t, http.StatusAccepted, call(t, e, "POST", "/v1/credentials", controltest.TokenManager, control.CredentialRequest{
		SubjectID: subject.ID, Role: "resident", SiteID: e.Fleet.Sites[res.Site].ID, DoorGroups: []string{"unit:" + subject.Unit},
		DeviceID: "phone-p"}, &pr))
	id := pr.CredentialIDs[0]
	require.Eventually(t, func() bool {
		r, ok := e.Proc.Record(id)
		return ok && r.State == event.StatePendingActivation
	}, 30*time.Second, 20*time.Millisecond)
	r, _ := e.Proc.Record(id)
	require.NotEmpty(t, r.Locks)
	time.Sleep(300 * time.Millisecond) // long enough for any grant to reach a 5 ms gateway
	for _, l := range r.Locks {
		assert.Equal(t, "refused", decide(e, l, id), "pending_activation at %s", l)
		assert.Equal(t, "invalid_credential", e.Set.Decide(l.LockID, id, time.Now().UnixMilli()).Reason)
	}

	var prob httpapi.Problem
	require.Equal(t, http.StatusUnprocessableEntity, call(t, e, "POST", "/v1/credentials/"+id+":activate", controltest.TokenManager,
		map[string]any{"device_id": "phone-p", "attestation": e.Attestation(id, "phone-p", attesttest.UntrustedChain)}, &prob))
	assert.Equal(t, "attestation_untrusted_chain", prob.Code)
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, "refused", decide(e, r.Locks[0], id), "forged evidence opens nothing")

	var op control.OpResponse
	require.Equal(t, http.StatusOK, call(t, e, "POST", "/v1/credentials/"+id+":activate", controltest.TokenManager,
		map[string]any{"device_id": "phone-p", "attestation": e.Attestation(id, "phone-p", attesttest.Genuine)}, &op))
	assert.True(t, op.Credential.Attested)
	require.Eventually(t, func() bool {
		for _, l := range r.Locks {
			if decide(e, l, id) != "granted" {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "active: every lock opens")

	require.NoError(t, e.API.Suspend(context.Background(), id, "test", "responder"))
	require.Eventually(t, func() bool { return decide(e, r.Locks[0], id) == "refused" }, 30*time.Second, 20*time.Millisecond)
}

// TestSessionLayerStates: done with a working wallet provider; pending
// (with why) while it keeps failing, retried round after round, and done
// once it answers again; not_configured without an endpoint — never done
// without the call having succeeded. (Rounds ending in failed at the
// give-up: TestSessionFailure.)
func TestSessionLayerStates(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	start := func(e *controltest.Estate, id string) string {
		t.Helper()
		r, _ := e.Proc.Record(id)
		var rr control.RevokeResponse
		require.Equal(t, http.StatusAccepted, call(t, e, "POST", "/v1/subjects/"+r.SubjectID+":revoke", controltest.TokenManager,
			map[string]string{"reason": "test"}, &rr))
		return rr.RevocationURL
	}
	await := func(e *controltest.Estate, url string, cond func(control.Revocation) bool) control.Revocation {
		t.Helper()
		var rv control.Revocation
		require.Eventually(t, func() bool {
			rv = control.Revocation{}
			call(t, e, "GET", url, controltest.TokenAnalyst, nil, &rv)
			return rv.Layers.Locks.State == control.LayerDone && cond(rv)
		}, 60*time.Second, 50*time.Millisecond, "%+v", rv)
		return rv
	}
	settled := func(rv control.Revocation) bool { return rv.Layers.DeviceSession.State != control.LayerPending }
	revoke := func(e *controltest.Estate, id string) control.Revocation { return await(e, start(e, id), settled) }

	e := controltest.Start(t, controltest.Options{Bus: bc, Conn: conn, SessionAttempts: 3})
	ids := issueActive(t, e, 2)
	rv := revoke(e, ids[0])
	assert.Equal(t, control.LayerDone, rv.Layers.DeviceSession.State)
	assert.Equal(t, control.RevocationConfirmed, rv.Status)

	e.Wallet.SetFailRate(1) // the provider is down
	url := start(e, ids[1])
	rv = await(e, url, func(rv control.Revocation) bool {
		return len(rv.Credentials) == 1 && rv.Credentials[0].SessionAttempts >= 6 // two rounds at least
	})
	assert.Equal(t, control.LayerPending, rv.Layers.DeviceSession.State, "a provider failing transiently is retried")
	assert.Contains(t, rv.Layers.DeviceSession.Why, "HTTP 503")
	assert.Contains(t, rv.Layers.DeviceSession.Why, "retrying in")
	assert.Equal(t, control.RevocationPending, rv.Status)
	e.Wallet.SetFailRate(0) // it is back
	rv = await(e, url, settled)
	assert.Equal(t, control.LayerDone, rv.Layers.DeviceSession.State)
	assert.Equal(t, control.RevocationConfirmed, rv.Status)
	require.Len(t, rv.Credentials, 1)
	assert.Greater(t, rv.Credentials[0].SessionAttempts, 6, "every call is counted, over all rounds")
	e.StopControl()

	bc2 := testenv.Kafka(t, 2)
	conn2, _ := testenv.ClickHouse(t)
	none := controltest.Start(t, controltest.Options{Bus: bc2, Conn: conn2, NoSessions: true})
	ids = issueActive(t, none, 1)
	rv = revoke(none, ids[0])
	assert.Equal(t, control.LayerNotConfigured, rv.Layers.DeviceSession.State)
	assert.Zero(t, rv.Layers.DeviceSession.Done)
	assert.Contains(t, rv.Layers.DeviceSession.Why, "--session-revoke-url")
	assert.Equal(t, control.RevocationConfirmed, rv.Status, "a layer honestly absent does not hold the others up")
}

// TestReconciliationSurvivesRestartAndEscalates: a revocation whose lock is
// offline passes its (tiny) SLA and is escalated (alert revocation_overdue,
// status escalated); the owner restarts meanwhile; the restarted owner
// re-sends the revoke command (same id) until the lock confirms.
func TestReconciliationSurvivesRestartAndEscalates(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	e := controltest.Start(t, controltest.Options{Bus: bc, Conn: conn, DropOffline: true,
		Stream: func(o *stream.Options) { o.PendingSLA = time.Second; o.AdoptInterval = 500 * time.Millisecond }})
	ids := issueActive(t, e, 1)
	byCred := held(t, e, ids)
	l := byCred[ids[0]][0]
	require.NoError(t, e.Set.ForceOffline(l.LockID, time.Now().UnixMilli(), time.Now().Add(time.Hour).UnixMilli()))

	r, _ := e.Proc.Record(ids[0])
	var rr control.RevokeResponse
	require.Equal(t, http.StatusAccepted, call(t, e, "POST", "/v1/subjects/"+r.SubjectID+":revoke", controltest.TokenManager,
		map[string]string{"reason": "termination"}, &rr))
	var rv control.Revocation
	require.Eventually(t, func() bool {
		rv = control.Revocation{}
		call(t, e, "GET", rr.RevocationURL, controltest.TokenAnalyst, nil, &rv)
		// A lock is overdue by its own command's age, which starts a moment
		// after the request the escalation counts from: wait for both.
		return rv.Status == control.RevocationEscalated && len(rv.PendingLocks) == 1 && rv.PendingLocks[0].Overdue
	}, 60*time.Second, 100*time.Millisecond, "%+v", rv)
	require.Len(t, rv.PendingLocks, 1)
	assert.Equal(t, l.LockID, rv.PendingLocks[0].LockID)
	assert.True(t, rv.PendingLocks[0].Overdue)
	assert.Greater(t, rv.PendingLocks[0].Attempts, 1, "re-sent while offline")
	assert.Equal(t, stream.EscalationAlertID(rr.RevocationID), rv.EscalationAlertID)

	// The alert is on the alerts topic, naming the lock.
	found := findAlert(t, bc, rv.EscalationAlertID)
	require.NotNil(t, found, "revocation_overdue alert on the alerts topic")
	assert.Equal(t, detect.RevocationOverdue, found.Detector)
	assert.Contains(t, found.Explanation, l.String())
	assert.Equal(t, r.SubjectID, found.SubjectID)

	// The owner stops; the lock comes back while it is down; a new owner
	// adopts the unacknowledged command and the lock confirms.
	e.StopControl()
	var before uint32
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT max(attempt) FROM lock_command_sends WHERE lock_id = ? AND revocation_id = ?`,
		l.LockID, rr.RevocationID).Scan(&before))
	require.NoError(t, e.Set.BringOnline(l.LockID, time.Now().UnixMilli()))
	e.StartControl()
	require.Eventually(t, func() bool {
		rv = control.Revocation{}
		call(t, e, "GET", rr.RevocationURL, controltest.TokenAnalyst, nil, &rv)
		return rv.Status == control.RevocationConfirmed
	}, 60*time.Second, 100*time.Millisecond, "%+v", rv)
	assert.NotZero(t, rv.EscalatedMs, "the escalation stays on the record")
	var after uint32
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT max(attempt) FROM lock_command_sends WHERE lock_id = ? AND revocation_id = ?`,
		l.LockID, rr.RevocationID).Scan(&after))
	assert.Greater(t, after, before, "the restarted owner re-sent the same command")
	k, err := store.ComputeKPIs(context.Background(), conn, control.KPIQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)})
	require.NoError(t, err)
	assert.Equal(t, 1, k.Escalations.Count)
	assert.Equal(t, 0, k.Escalations.Unconfirmed)
	assert.Equal(t, []string{rr.RevocationID}, k.Escalations.Revocations)
}

// TestDriftedLockIsResynced: a lock whose list changed behind keyfleet's
// back reports another ACL version in its next ack; keyfleet pushes the
// whole list and counts the drift.
func TestDriftedLockIsResynced(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	e := controltest.Start(t, controltest.Options{Bus: bc, Conn: conn})
	ids := issueActive(t, e, 2)
	byCred := held(t, e, ids)
	l := byCred[ids[0]][0]
	// Someone adds a card at the panel.
	e.Set.Submit(gateway.Command{CommandID: "manual", Type: gateway.CommandGrant, Vendor: l.Vendor, LockID: l.LockID,
		CredentialID: "cred-at-the-panel"}, time.Now().UnixMilli(), locks.SubmitOptions{NoAck: true})
	require.Eventually(t, func() bool {
		acl, _ := e.Set.ACL(l.LockID, time.Now().UnixMilli())
		return slices.Contains(acl, "cred-at-the-panel")
	}, 10*time.Second, 10*time.Millisecond)
	// The next command to the lock: the suspension of the first credential.
	require.NoError(t, e.API.Suspend(context.Background(), ids[0], "test", "responder"))
	require.Eventually(t, func() bool {
		acl, _ := e.Set.ACL(l.LockID, time.Now().UnixMilli())
		return !slices.Contains(acl, "cred-at-the-panel") && !slices.Contains(acl, ids[0])
	}, 30*time.Second, 20*time.Millisecond, "the push removed what keyfleet did not grant")
	var k *control.FleetKPIs
	require.Eventually(t, func() bool {
		var err error
		k, err = store.ComputeKPIs(context.Background(), conn, control.KPIQuery{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Minute)})
		return err == nil && k.ACLDrift.Drifts > 0
	}, 30*time.Second, 50*time.Millisecond, "the resync is stored")
	assert.Equal(t, 1, k.ACLDrift.Drifts)
	assert.Equal(t, 1, k.ACLDrift.DriftedLocks)
	var reason, reported, expected string
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT reason, reported_version, expected_version FROM acl_resyncs
		WHERE lock_id = ?`, l.LockID).Scan(&reason, &reported, &expected))
	assert.Equal(t, gateway.ResyncDrift, reason)
	assert.NotEqual(t, reported, expected)
}

// findAlert reads the alerts topic (every partition) for an alert.
func findAlert(t *testing.T, bc bus.Config, id string) *detect.Alert {
	t.Helper()
	parts, err := bus.Partitions(context.Background(), bc, bus.TopicAlerts, "")
	require.NoError(t, err)
	for _, p := range parts {
		rd := kafka.NewReader(kafka.ReaderConfig{Brokers: bc.Brokers, Topic: bc.Topic(bus.TopicAlerts), Partition: p.ID,
			MaxWait: 100 * time.Millisecond})
		for off := p.First; off < p.End; off++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			m, err := rd.ReadMessage(ctx)
			cancel()
			if err != nil {
				break
			}
			var a detect.Alert
			if json.Unmarshal(m.Value, &a) == nil && a.AlertID == id {
				rd.Close()
				return &a
			}
		}
		rd.Close()
	}
	return nil
}

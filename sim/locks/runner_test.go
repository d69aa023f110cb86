package locks_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	gw "github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/sim/locks"
)

// startRunner runs simulated gateways on cfg's topics until the test ends.
func startRunner(t *testing.T, cfg bus.Config, set *locks.Set) {
	t.Helper()
	r, err := locks.NewRunner(locks.RunnerOptions{Set: set, Bus: cfg, Logger: testenv.Logger(t), AckEvery: 10 * time.Millisecond})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
}

func send(t *testing.T, cfg bus.Config, cmds ...gw.Command) {
	t.Helper()
	w := bus.NewWriter(cfg, bus.TopicLockCommands)
	defer w.Close()
	msgs := make([]kafka.Message, 0, len(cmds))
	for _, c := range cmds {
		c.IssuedMs = time.Now().UnixMilli()
		v, err := json.Marshal(c)
		require.NoError(t, err)
		msgs = append(msgs, kafka.Message{Key: []byte(c.LockID), Value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx, msgs...))
}

// readAcks reads n acks from lock.acks, and the status reports among them.
func readAcks(t *testing.T, cfg bus.Config, n int, timeout time.Duration) (map[string]gw.Ack, []gw.Ack) {
	t.Helper()
	r := bus.NewGroupReader(cfg, bus.TopicLockAcks, "test-acks")
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := map[string]gw.Ack{}
	var status []gw.Ack
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err, "waiting for %d acks, have %d", n, len(out))
		var a gw.Ack
		require.NoError(t, json.Unmarshal(m.Value, &a))
		require.Equal(t, a.LockID, string(m.Key), "acks are keyed by lock_id")
		if a.Type == gw.TypeStatus {
			status = append(status, a)
			continue
		}
		out[a.CommandID] = a
	}
	return out, status
}

// TestGatewaysHonourRevocationsWithConfiguredLatency runs the gateways
// against the real broker: revocations sent on lock.commands are applied
// after each vendor's configured latency, acknowledged on lock.acks, and
// from then on the locks refuse the credential.
func TestGatewaysHonourRevocationsWithConfiguredLatency(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 2)
	f := testFleet(t)
	profiles := fixed()
	profiles["legacy"] = locks.Profile{LatencyMedian: 8 * time.Second} // slow, but keep the test short
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: profiles, Seed: 1, OriginMs: time.Now().UnixMilli(),
		KeepAcks: true, Provision: true})
	startRunner(t, cfg, set)

	want := map[string]int64{"nuki": 200, "schlage": 300, "seam": 400, "matter": 1000, "legacy": 8000}
	var cmds []gw.Command
	creds := map[string]string{}
	for vendor := range want {
		l, c := lockWith(t, f, vendor)
		cmds = append(cmds, revoke(l, c, "cmd-"+vendor))
		creds["cmd-"+vendor] = c.ID
	}
	sent := time.Now().UnixMilli()
	send(t, cfg, cmds...)
	acks, _ := readAcks(t, cfg, len(cmds), 60*time.Second)
	for id, a := range acks {
		require.Equal(t, gw.AckApplied, a.Status, id)
		require.Equal(t, creds[id], a.CredentialID)
		require.Equal(t, "rev-"+id, a.RevocationID)
		require.GreaterOrEqual(t, a.ReceivedMs, sent)
		require.Equal(t, want[a.Vendor], a.AppliedMs-a.ReceivedMs, "%s: injected delay", a.Vendor)
		require.False(t, set.Decide(a.LockID, a.CredentialID, a.AppliedMs).Granted)
		require.True(t, set.Decide(a.LockID, a.CredentialID, a.AppliedMs-1).Granted)
		// acks are published once applied, not before
		t.Logf("%s: received %d ms after send, applied %d ms later", a.Vendor, a.ReceivedMs-sent, a.AppliedMs-a.ReceivedMs)
	}
}

// TestOfflineLockAppliesRevocationOnReconnect: a lock that is offline when a
// revocation arrives keeps its old list until it reconnects, then applies
// it and acknowledges.
func TestOfflineLockAppliesRevocationOnReconnect(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 2)
	f := testFleet(t)
	now := time.Now().UnixMilli()
	set := locks.NewSet(locks.SetOptions{Fleet: f, Profiles: fixed(), Seed: 1, OriginMs: now, KeepAcks: true, Provision: true})
	offline, c := lockWith(t, f, "schlage")
	online, c2 := lockWith(t, f, "nuki")
	back := now + 6000
	require.NoError(t, set.ForceOffline(offline.LockID, now, back))
	startRunner(t, cfg, set)

	send(t, cfg, revoke(offline, c, "offline"), revoke(online, c2, "online"))
	acks, status := readAcks(t, cfg, 2, 60*time.Second)
	on, off := acks["online"], acks["offline"]
	require.Len(t, status, 1, "the lock reports it is back")
	require.Equal(t, gw.Ack{Type: gw.TypeStatus, Status: gw.StatusOnline, Vendor: "schlage", LockID: offline.LockID,
		ReceivedMs: back, AppliedMs: back, ACLVersion: status[0].ACLVersion}, status[0])
	require.Less(t, on.AppliedMs, back, "the online lock does not wait")
	require.Equal(t, back+300, off.AppliedMs, "applied once reconnected, after its vendor's latency")
	require.Less(t, off.ReceivedMs, back)
	require.True(t, set.Decide(offline.LockID, c.ID, back-1).Granted, "until then the offline lock still opens")
	require.False(t, set.Decide(offline.LockID, c.ID, off.AppliedMs).Granted)
	require.GreaterOrEqual(t, time.Now().UnixMilli(), off.AppliedMs, "the ack is not published before the lock applied it")
}

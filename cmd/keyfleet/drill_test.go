package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/api"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/drill"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/sim/wallet"
)

type drillAuth struct{}

func (drillAuth) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if token == "drill-admin" {
		return httpapi.Principal{TokenID: "t", Name: "drill-admin", Role: httpapi.RoleAdmin}, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

// TestDrillRevoke runs `keyfleet drill revoke` (the termination scenario)
// against a control plane served over HTTP, with a simulated wallet whose
// phones attest the drill credentials, and gateways that acknowledge every
// lock but one: that lock is reported as the straggler, named with its
// revocation.
func TestDrillRevoke(t *testing.T) {
	bc := testenv.Kafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	locks := registry.New()
	locks.Apply(registry.File{Locks: []registry.Lock{
		{Vendor: "matter", LockID: "lobby", Groups: []string{"entrance"}},
		{Vendor: "nuki", LockID: "garage", Groups: []string{"garage"}},
		{Vendor: "matter", LockID: "b204", Groups: []string{"unit:B-204"}},
		{Vendor: "seam", LockID: "offline-gym", Groups: []string{"amenity"}},
	}})
	store, err := audit.NewStore(conn, audit.Options{Chain: "drill-test"})
	require.NoError(t, err)
	ca, err := attesttest.New(time.Now())
	require.NoError(t, err)
	verifier, err := attest.New(ca.Config())
	require.NoError(t, err)
	challenges, err := attest.NewChallenger([]byte("drill-test-challenge-key-0123456789"), time.Minute)
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	proc, err := stream.New(stream.Options{Bus: bc, Conn: conn, Registry: locks, Audit: store, Logger: testenv.Logger(t),
		Registerer: reg, ResendAfter: time.Hour})
	require.NoError(t, err)
	ctl, err := api.New(api.Options{State: proc, Conn: conn, Audit: store, Verifier: store,
		PseudonymKey: []byte("drill-key"), Logger: testenv.Logger(t), Registerer: reg, Attester: verifier, Challenges: challenges})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: drillAuth{}, Logger: testenv.Logger(t)}, ctl.Routes())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = proc.Run(ctx) }()
	go func() { _ = srv.Serve(ctx, ln) }()
	// The phones: a simulated wallet provider attesting with the CA.
	phones, err := wallet.New(wallet.Options{Secret: []byte("drill-test-wallet-secret"), CA: ca})
	require.NoError(t, err)
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = phones.Serve(ctx, wl) }()
	<-proc.Ready()

	// Gateways: ack every command except on the offline gym lock (until it
	// comes back).
	var gymOnline atomic.Bool
	reader := bus.NewGroupReader(bc, bus.TopicLockCommands, "drill-gateway")
	defer reader.Close()
	acks := bus.NewWriter(bc, bus.TopicLockAcks)
	defer acks.Close()
	go func() {
		_ = bus.ConsumeBatches(ctx, reader, bus.BatchOptions{MaxWait: 5 * time.Millisecond}, func(ctx context.Context, batch []kafka.Message) error {
			var out []kafka.Message
			for _, m := range batch {
				var c gateway.Command
				if json.Unmarshal(m.Value, &c) != nil || c.LockID == "offline-gym" && !gymOnline.Load() && c.Type == gateway.CommandRevoke {
					continue
				}
				v, _ := json.Marshal(gateway.Ack{CommandID: c.CommandID, RevocationID: c.RevocationID, Type: c.Type,
					Vendor: c.Vendor, LockID: c.LockID, CredentialID: c.CredentialID, Status: gateway.AckApplied,
					ReceivedMs: time.Now().UnixMilli(), AppliedMs: time.Now().UnixMilli()})
				out = append(out, kafka.Message{Key: []byte(c.LockID), Value: v})
			}
			if len(out) == 0 {
				return nil
			}
			return acks.WriteMessages(ctx, out...)
		})
	}()

	url := "http://" + ln.Addr().String()
	device := "http://" + wl.Addr().String()
	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"drill", "revoke", "--subjects", "5", "--url", url, "--device-url", device,
		"--token", "drill-admin", "--timeout", "3s", "--json"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	var rep drill.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	assert.Equal(t, "termination", rep.Scenario)
	assert.Equal(t, 5, rep.Subjects)
	assert.Equal(t, 5, rep.Credentials)
	assert.ElementsMatch(t, []string{"amenity", "entrance", "garage", "unit:B-204"}, rep.DoorGroups)
	assert.Equal(t, 20, rep.Locks)
	assert.Equal(t, 15, rep.Confirmed)
	assert.Equal(t, 5, rep.TimeToDisable.Count)
	assert.Positive(t, rep.TimeToDisable.P50)
	assert.Equal(t, 15, rep.LockConfirm.Count, "time to confirm per lock counts the locks that confirmed")
	assert.Zero(t, rep.TimeToConfirm.Count, "no revocation completed")
	require.Len(t, rep.Stragglers, 5)
	revs := map[string]bool{}
	for _, s := range rep.Stragglers {
		assert.Equal(t, "offline-gym", s.LockID)
		revs[s.RevocationID] = true
	}
	assert.Len(t, revs, 5, "each straggler names its own revocation")
	assert.Len(t, rep.Unconfirmed, 5)
	assert.Equal(t, control.LayerNotConfigured, rep.Sessions.State)
	assert.True(t, rep.Stored)

	// The same drill with the text report and the gym back online, and
	// `keyfleet audit verify`.
	gymOnline.Store(true)
	stdout.Reset()
	code = run(ctx, []string{"drill", "termination", "--subjects", "2", "--url", url, "--device-url", device,
		"--token", "drill-admin", "--timeout", "10s", "--door-groups", "entrance,garage"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "stragglers: none")
	assert.Equal(t, 1, strings.Count(out, "entrance,garage"), "door groups printed once:\n%s", out)
	assert.Contains(t, out, "time to confirm, per lock")
	assert.Contains(t, out, "locks confirmed: 6 of 6 (100.0 %)", "entrance, garage and the template's amenity")
	assert.Contains(t, out, "incident ticket: no ticket system configured")
	assert.Contains(t, stderr.String(), "issuing 2 credentials to 2 subjects")
	assert.NotContains(t, stderr.String(), "entrance,garage", "progress does not repeat the door groups")
	stdout.Reset()
	code = run(ctx, []string{"audit", "verify", "--url", url, "--token", "drill-admin"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.True(t, strings.Contains(stdout.String(), "verified"), stdout.String())
	assert.Equal(t, 2, run(ctx, []string{"drill", "revoke", "--subjects", "0", "--token", "x"}, &stdout, &stderr))
	assert.Equal(t, 2, run(ctx, []string{"drill", "breach", "--subjects", "1", "--token", "x", "--url", url}, &stdout, &stderr),
		"breach needs --site")
	assert.Equal(t, 2, run(ctx, []string{"drill", "fire"}, &stdout, &stderr))
}

func TestPrintDrillSaysNA(t *testing.T) {
	var b bytes.Buffer
	printDrill(&b, &drill.Report{RunID: "drill-x", Scenario: "termination", DoorGroups: []string{"entrance"},
		TimeToDisable: drill.Distribution{Count: 2, P50: 5, P95: 7, P99: 7, Max: 7}, Stragglers: []drill.Straggler{}})
	lines := map[string]string{}
	for _, l := range strings.Split(b.String(), "\n") {
		if name, rest, ok := strings.Cut(strings.TrimSpace(l), "  "); ok {
			lines[name] = strings.Join(strings.Fields(rest), " ")
		}
	}
	assert.Equal(t, "5ms 7ms 7ms 7ms 2", lines["time to disable (entitlement)"])
	assert.Equal(t, "n/a n/a n/a n/a 0", lines["time to confirm, per lock"], "nothing measured is n/a, not 0 ms")
}

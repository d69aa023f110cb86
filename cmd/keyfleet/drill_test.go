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

	"github.com/keyfleet/keyfleet/control/api"
	"github.com/keyfleet/keyfleet/control/drill"
	"github.com/keyfleet/keyfleet/control/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

type drillAuth struct{}

func (drillAuth) Authenticate(_ context.Context, token string) (httpapi.Principal, error) {
	if token == "drill-admin" {
		return httpapi.Principal{TokenID: "t", Name: "drill-admin", Role: httpapi.RoleAdmin}, nil
	}
	return httpapi.Principal{}, httpapi.ErrUnauthenticated
}

// TestDrillRevoke runs `keyfleet drill revoke` against a control plane
// served over HTTP, with gateways that acknowledge every lock but one:
// that lock is reported as the straggler.
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
	reg := prometheus.NewRegistry()
	proc, err := stream.New(stream.Options{Bus: bc, Conn: conn, Registry: locks, Audit: store, Logger: testenv.Logger(t),
		Registerer: reg})
	require.NoError(t, err)
	ctl, err := api.New(api.Options{State: proc, Conn: conn, Audit: store, Verifier: store,
		PseudonymKey: []byte("drill-key"), Logger: testenv.Logger(t), Registerer: reg})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Options{Auth: drillAuth{}, Logger: testenv.Logger(t)}, ctl.Routes())
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = proc.Run(ctx) }()
	go func() { _ = srv.Serve(ctx, ln) }()
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
				if json.Unmarshal(m.Value, &c) != nil || c.LockID == "offline-gym" && !gymOnline.Load() {
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

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"drill", "revoke", "--subjects", "5", "--url", "http://" + ln.Addr().String(),
		"--token", "drill-admin", "--timeout", "3s", "--json"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	var rep drill.Report
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &rep), stdout.String())
	assert.Equal(t, 5, rep.Subjects)
	assert.Equal(t, 5, rep.Credentials)
	assert.ElementsMatch(t, []string{"amenity", "entrance", "garage", "unit:B-204"}, rep.DoorGroups)
	assert.Equal(t, 20, rep.Locks)
	assert.Equal(t, 15, rep.Confirmed)
	assert.Equal(t, 5, rep.TimeToDisable.Count)
	assert.Positive(t, rep.TimeToDisable.P50)
	require.Len(t, rep.Stragglers, 5)
	for _, s := range rep.Stragglers {
		assert.Equal(t, "offline-gym", s.LockID)
	}
	assert.Len(t, rep.Unconfirmed, 5)

	// The same drill with the text report and the gym back online, and
	// `keyfleet audit verify`.
	gymOnline.Store(true)
	stdout.Reset()
	code = run(ctx, []string{"drill", "revoke", "--subjects", "2", "--url", "http://" + ln.Addr().String(),
		"--token", "drill-admin", "--timeout", "10s", "--door-groups", "entrance,garage"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.Contains(t, stdout.String(), "stragglers: none")
	stdout.Reset()
	code = run(ctx, []string{"audit", "verify", "--url", "http://" + ln.Addr().String(), "--token", "drill-admin"}, &stdout, &stderr)
	require.Equal(t, 0, code, stderr.String())
	assert.True(t, strings.Contains(stdout.String(), "verified"), stdout.String())
	assert.Equal(t, 2, run(ctx, []string{"drill", "revoke", "--subjects", "0", "--token", "x"}, &stdout, &stderr))
}

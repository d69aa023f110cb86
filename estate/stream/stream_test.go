package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/estate/store"
	"github.com/keyfleet/keyfleet/estate/stream"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// A record published by one instance reaches another instance's registry,
// a later instance rebuilds the registry from the topic before it is ready,
// and every record lands once in the history table.
func TestPublishFollowHistory(t *testing.T) {
	bc := testenv.Kafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, chstorage.Migrate(ctx, conn, testenv.Logger(t)))

	start := func(reg *registry.Registry) (*stream.Locks, func()) {
		l, err := stream.New(stream.Options{Bus: bc, Conn: conn, Registry: reg, Logger: testenv.Logger(t)})
		require.NoError(t, err)
		rctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- l.Run(rctx) }()
		select {
		case <-l.Ready():
		case err := <-done:
			t.Fatalf("stopped: %v", err)
		case <-time.After(time.Minute):
			t.Fatal("not ready within a minute")
		}
		return l, func() { stop(); require.NoError(t, <-done); l.Close() }
	}
	regA, regB := registry.New(), registry.New()
	a, stopA := start(regA)
	defer stopA()
	_, stopB := start(regB)
	defer stopB()

	lobby := registry.Lock{Vendor: "nuki", LockID: "n1", Groups: []string{"entrance"}, Model: "smart-lock-4-pro", Tier: 1,
		LockInfo: registry.LockInfo{SiteID: "s1", DoorID: "lobby"}}
	v1 := a.NextVersion("nuki", "n1")
	require.NoError(t, a.Publish(ctx, registry.Record{Lock: lobby, Version: v1, Op: registry.OpCreate, Actor: "admin", TsMs: time.Now().UnixMilli()}))
	_, ok := regA.Lock("nuki", "n1")
	assert.True(t, ok, "the publishing instance applies at once")
	require.Eventually(t, func() bool { _, ok := regB.Lock("nuki", "n1"); return ok }, 30*time.Second, 20*time.Millisecond)

	v2 := a.NextVersion("nuki", "n1")
	assert.Greater(t, v2, v1)
	require.NoError(t, a.Publish(ctx, registry.Record{Lock: lobby, Version: v2, Retired: true, Op: registry.OpRetire, Actor: "admin",
		TsMs: time.Now().UnixMilli(), Reason: "replaced"}))
	require.Eventually(t, func() bool { n, _ := regB.Len(); return n == 0 }, 30*time.Second, 20*time.Millisecond)

	// A new instance is ready only with the retirement applied.
	regC := registry.New()
	_, stopC := start(regC)
	defer stopC()
	rec, ok := regC.Get("nuki", "n1")
	require.True(t, ok)
	assert.True(t, rec.Retired)
	assert.Equal(t, v2, rec.Version)

	var hist []registry.Record
	require.Eventually(t, func() bool {
		var err error
		hist, err = store.History(ctx, conn, "nuki", "n1", 10)
		require.NoError(t, err)
		return len(hist) == 2
	}, 30*time.Second, 100*time.Millisecond)
	assert.Equal(t, []string{registry.OpRetire, registry.OpCreate}, []string{hist[0].Op, hist[1].Op})
	assert.Equal(t, "replaced", hist[0].Reason)
}

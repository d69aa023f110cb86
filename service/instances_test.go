package service

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/lease"
)

// With --access-events inline, a second member of the raw group with
// partitions makes readiness fail naming --access-events topic, sets the
// metric and logs an error once; one owner clears it.
func TestSplitWatchIsLoud(t *testing.T) {
	reg := prometheus.NewRegistry()
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	h := newHealth(reg, logger)
	bc := bus.Config{Brokers: []string{"127.0.0.1:1"}, TopicPrefix: "p."}
	w := newSplitWatch(bc, h, reg, logger)
	raw := bc.Topic(bus.TopicRaw)
	one := lease.Member{ClientID: "a", Host: "/10.0.0.1", Assignments: []kafka.GroupMemberTopic{{Topic: raw, Partitions: []int{0, 1, 2, 3}}}}

	w.observe([]lease.Member{one})
	_, ok := h.readiness()
	assert.True(t, ok)
	assert.Equal(t, 0.0, testutil.ToFloat64(w.gauge))

	two := []lease.Member{
		{ClientID: "a", Host: "/10.0.0.1", Assignments: []kafka.GroupMemberTopic{{Topic: raw, Partitions: []int{0, 1}}}},
		{ClientID: "b", Host: "/10.0.0.2", Assignments: []kafka.GroupMemberTopic{{Topic: raw, Partitions: []int{2, 3}}}},
		{ClientID: "idle", Host: "/10.0.0.3"},
	}
	w.observe(two)
	w.observe(two)
	r, ok := h.readiness()
	require.False(t, ok)
	assert.Contains(t, r.Checks[checkDetectors], "--access-events topic")
	assert.Contains(t, r.Checks[checkDetectors], "2 instances share p.lock.events.raw")
	assert.Equal(t, 1.0, testutil.ToFloat64(w.gauge))
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte("level=ERROR")), logs.String())

	w.observe([]lease.Member{one})
	_, ok = h.readiness()
	assert.True(t, ok)
	assert.Equal(t, 0.0, testutil.ToFloat64(w.gauge))
}

func TestInstanceID(t *testing.T) {
	assert.Equal(t, "kf-1", instanceID(InstanceConfig{ID: "kf-1"}, "127.0.0.1:8080"))
	assert.Equal(t, "10.1.2.3:8080", instanceID(InstanceConfig{}, "10.1.2.3:8080"))
	got := instanceID(InstanceConfig{}, "127.0.0.1:8081")
	assert.Regexp(t, `:8081$`, got)
	assert.NotContains(t, got, "127.0.0.1")
	require.Error(t, (&InstanceConfig{ID: "a\nb"}).validate())
}

// The once-per-fleet loops are guarded, the others are not; the exception
// expiry alerts only with --detect-batch lease.
func TestGuardLoops(t *testing.T) {
	m, err := lease.New(lease.Options{Bus: bus.Config{Brokers: []string{"127.0.0.1:1"}}, Instance: "x", Jobs: fleetJobs})
	require.NoError(t, err)
	ran := map[string]bool{}
	mk := func(name string) loop {
		return loop{name, func(context.Context) error { ran[name] = true; return nil }}
	}
	names := []string{"normalize", "rollup", "retention", "reports", "recert-deadlines", "identity-sweep", "exception-expiry",
		"regression"}
	for _, batch := range []string{BatchLease, BatchAlways} {
		clear(ran)
		var loops []loop
		for _, n := range names {
			loops = append(loops, mk(n))
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // a guarded loop waits for its lease: with ctx done it returns at once
		for _, l := range guardLoops(m, loops, batch) {
			require.NoError(t, l.run(ctx))
		}
		want := map[string]bool{"normalize": true}
		if batch == BatchAlways {
			want["exception-expiry"], want["regression"] = true, true
		}
		assert.Equal(t, want, ran, batch)
	}
}

package service

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Readiness follows the dependencies and the loops: a dependency down is
// 503 at once, naming it and since when; a loop's failing operation is
// listed at once and makes it 503 once it has failed for the grace period;
// both clear when they recover.
func TestHealthReadiness(t *testing.T) {
	now := time.Date(2025, 6, 2, 10, 0, 0, 0, time.UTC)
	reg := prometheus.NewRegistry()
	h := newHealth(reg, slog.New(slog.DiscardHandler), probe{name: depKafka}, probe{name: depClickHouse})
	h.now = func() time.Time { return now }
	writer := h.Loop("events-writer")
	h.Loop("normalize")

	r, ok := h.readiness()
	require.True(t, ok)
	assert.Equal(t, "ready", r.Status)
	assert.Equal(t, map[string]string{"kafka": "ok", "clickhouse": "ok"}, r.Checks)
	assert.Empty(t, r.Degraded)

	// ClickHouse stops answering; the writer's inserts fail.
	now = now.Add(time.Minute)
	down := now
	h.observe(depClickHouse, errors.New("dial tcp 127.0.0.1:19000: connection refused"))
	writer.Retrying("insert access_events", errors.New("connection refused"))
	r, ok = h.readiness()
	require.False(t, ok)
	assert.Equal(t, "unavailable", r.Status)
	assert.Equal(t, "ok", r.Checks["kafka"])
	assert.True(t, strings.HasPrefix(r.Checks["clickhouse"], "unavailable since 2025-06-02T10:01:00Z: dial tcp"), r.Checks["clickhouse"])
	assert.False(t, r.Dependencies["clickhouse"].Up)
	assert.Equal(t, down, r.Dependencies["clickhouse"].Since)
	require.Len(t, r.Degraded, 1)
	assert.Equal(t, "events-writer", r.Degraded[0].Loop)
	assert.Equal(t, "insert access_events", r.Degraded[0].Ops[0].Op)

	now = now.Add(30 * time.Second)
	writer.Retrying("insert access_events", errors.New("connection refused"))
	r, _ = h.readiness()
	assert.Equal(t, 30.0, r.Dependencies["clickhouse"].ForS)
	assert.Equal(t, 2, r.Degraded[0].Ops[0].Retries)
	assert.Equal(t, down, r.Degraded[0].Since)
	assert.Equal(t, 2.0, testutil.ToFloat64(h.retries.WithLabelValues("events-writer")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.degraded.WithLabelValues("events-writer")))
	assert.Equal(t, 0.0, testutil.ToFloat64(h.up.WithLabelValues("clickhouse")))

	// ClickHouse answers again; the writer has not caught up yet.
	h.observe(depClickHouse, nil)
	r, ok = h.readiness()
	assert.False(t, ok, "a loop failing for longer than the grace period keeps it unavailable")
	assert.Equal(t, "ok", r.Checks["clickhouse"])
	writer.Resolved("insert access_events")
	r, ok = h.readiness()
	assert.True(t, ok)
	assert.Empty(t, r.Degraded)
	assert.Equal(t, 0.0, testutil.ToFloat64(h.degraded.WithLabelValues("events-writer")))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.up.WithLabelValues("clickhouse")))

	// A blip shorter than the grace period is listed but not unready.
	writer.Retrying("commit events-writer", errors.New("rebalance in progress"))
	r, ok = h.readiness()
	assert.True(t, ok)
	require.Len(t, r.Degraded, 1)
	now = now.Add(h.grace)
	_, ok = h.readiness()
	assert.False(t, ok)
	writer.Resolved("commit events-writer")

	// A part rebuilding its state keeps it unavailable until it is done.
	rebuilt := make(chan struct{})
	h.Starting("control", rebuilt)
	r, ok = h.readiness()
	assert.False(t, ok)
	assert.Equal(t, []string{"control"}, r.Starting)
	close(rebuilt)
	r, ok = h.readiness()
	assert.True(t, ok)
	assert.Empty(t, r.Starting)
}

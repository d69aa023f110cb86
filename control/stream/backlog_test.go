package stream

import (
	"log/slog"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
)

// A lag sample taken between a reservation and its publication does not
// contain the reserved commands: they must still count afterwards (the
// flaky 429 test came from forgetting them).
func TestBacklogKeepsReservationsAcrossSamples(t *testing.T) {
	b := newBacklog(bus.Config{}, 3, prometheus.NewGauge(prometheus.GaugeOpts{Name: "g"}), slog.Default())
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

	ok, _ := b.admit(3)
	assert.True(t, ok)
	b.sampled(0, 0, t0) // the broker has seen nothing yet
	ok, wait := b.admit(1)
	assert.False(t, ok, "3 reserved commands still fill the queue of 3")
	assert.GreaterOrEqual(t, wait, time.Second)

	b.published(3)
	b.sampled(3, 3, t0.Add(time.Second)) // the sample now holds them: nothing drained
	ok, _ = b.admit(1)
	assert.False(t, ok, "the sampled lag keeps the queue full")

	b.sampled(0, 1, t0.Add(2*time.Second)) // the owner drained 2
	ok, _ = b.admit(2)
	assert.True(t, ok)
	b.release(2)
	ok, _ = b.admit(2)
	assert.True(t, ok, "a released reservation frees its room")
}

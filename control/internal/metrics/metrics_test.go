package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
)

func TestNewSharesOneRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := New(reg), New(reg)
	assert.Same(t, a.Commands, b.Commands)
	assert.Same(t, a.RevocationLatency, b.RevocationLatency)
	a.Activations.WithLabelValues("success").Inc()
	b.Activations.WithLabelValues("failed").Inc()
	assert.Equal(t, 2, testutil.CollectAndCount(reg, "keyfleet_control_activations_total"))
	assert.NotSame(t, New(nil).Commands, New(nil).Commands, "unregistered: each its own")
}

package dashboards

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// Two instances on one ClickHouse each publish their own figures; either
// one answers with both and their sum, and an instance that stopped
// writing drops out of the fleet after liveWithin.
func TestFleetFigures(t *testing.T) {
	conn, _ := testenv.ClickHouse(t)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	clock := &now
	type inst struct {
		d  *Dashboards
		pm *pipelineMetrics
		c  client
	}
	mk := func(name string) inst {
		reg := prometheus.NewRegistry()
		pm := newPipelineMetrics(reg)
		unacked := prometheus.NewGauge(prometheus.GaugeOpts{Name: metricUnacked})
		reg.MustRegister(unacked)
		unacked.Set(2)
		d, err := New(Options{Conn: conn, Gatherer: reg, Instance: name, Now: func() time.Time { return *clock }})
		require.NoError(t, err)
		srv, err := httpapi.New(httpapi.Options{Auth: tokens{"an": httpapi.RoleAnalyst}, Logger: testenv.Logger(t)}, d.Routes())
		require.NoError(t, err)
		return inst{d: d, pm: pm, c: client{t: t, srv: srv}}
	}
	a, b := mk("a:8080"), mk("b:8080")
	ctx := context.Background()
	for _, i := range []inst{a, b} {
		i.d.ingest.Sample()
	}
	*clock = clock.Add(10 * time.Second)
	a.pm.consumed.WithLabelValues("matter").Add(1000)
	a.pm.inserted.WithLabelValues("matter").Add(1000)
	b.pm.consumed.WithLabelValues("nuki").Add(500)
	b.pm.inserted.WithLabelValues("nuki").Add(400)
	for _, i := range []inst{a, b} {
		i.d.ingest.Sample()
		require.NoError(t, i.d.ingest.Publish(ctx))
	}

	var h Health
	a.c.json(PathIngestHealth, "an", &h)
	assert.Equal(t, "a:8080", h.Instance)
	assert.InDelta(t, 100, h.ConsumedPerS, 1e-9, "this instance's rate")
	require.NotNil(t, h.Fleet)
	require.Len(t, h.Instances, 2)
	assert.Equal(t, "b:8080", h.Instances[1].Instance)
	assert.Equal(t, 2, h.Fleet.Instances)
	assert.InDelta(t, 150, h.Fleet.ConsumedPerS, 1e-9)
	assert.InDelta(t, 140, h.Fleet.InsertedPerS, 1e-9)
	assert.InDelta(t, 1500, h.Fleet.ConsumedTotal, 1e-9)
	assert.InDelta(t, 1400, h.Fleet.InsertedTotal, 1e-9)
	assert.InDelta(t, 4, h.Fleet.Unacknowledged, 1e-9)

	// b stops; a goes on writing: the fleet is a alone once b's row ages out.
	*clock = clock.Add(liveWithin + 5*time.Second)
	a.d.ingest.Sample()
	require.NoError(t, a.d.ingest.Publish(ctx))
	a.c.json(PathIngestHealth, "an", &h)
	require.NotNil(t, h.Fleet)
	assert.Equal(t, 1, h.Fleet.Instances)
	assert.InDelta(t, 1000, h.Fleet.ConsumedTotal, 1e-9)
}

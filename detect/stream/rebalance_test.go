package stream_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// Two processors in the group started together (neither warm-up saw
// anything); the owner of the partition judges six denials at a door and
// leaves; the other takes the partition over at the committed offset and
// refills the door's window from the records judged before, so the seventh
// and eighth denials raise the storm (threshold 8) with all eight.
func TestMovedPartitionRefilled(t *testing.T) {
	cfg := testenv.Kafka(t, 2)
	base := time.Now().Add(-10 * time.Minute).UnixMilli()
	n := 0
	deny := func() {
		n++
		produce(t, cfg, bus.TopicAccess, "panel/lobby", &event.Access{EventID: event.ID("moved", string(rune('a'+n))),
			TsMs: base + int64(n)*10_000, ReceivedMs: time.Now().UnixMilli(), Vendor: "legacy", SiteID: "site-1",
			DoorID: "lobby", LockID: "panel/lobby", Attested: "unknown", Action: "access_denied", Outcome: "denied",
			Method: "card", Reason: "invalid"})
	}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	procs := []*running{start(t, cfg, regs[0], nil), start(t, cfg, regs[1], nil)}
	time.Sleep(5 * time.Second) // both joined: the group settles
	for range 6 {
		deny()
	}
	require.Eventually(t, func() bool { return committed(t, cfg) == 6 }, 60*time.Second, 100*time.Millisecond,
		"the six denials judged and committed")
	judged := func(i int) float64 { return detectRecords(t, regs[i]) }
	owner := 0
	if judged(1) > judged(0) {
		owner = 1
	}
	require.Equal(t, 6.0, judged(owner), "one processor judged all six")
	procs[owner].stop(t)
	other := procs[1-owner]
	defer other.stop(t)

	out := alertsReader(t, cfg)
	deny()
	deny()
	got := readAlerts(t, out, 1, 90*time.Second)
	require.Equal(t, detect.DeniedStorm, got[0].Detector)
	assert.Equal(t, "lobby", got[0].DoorID)
	assert.Equal(t, 8.0, got[0].Observed, "the window holds the denials judged by the previous owner")
	assert.Equal(t, base+80_000, got[0].TsMs, "raised by the eighth denial")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := out.ReadMessage(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded, "nothing else is raised")
}

// detectRecords is keyfleet_detect_records_total{source="access",outcome="ok"}.
func detectRecords(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != "keyfleet_detect_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["source"] == "access" && labels["outcome"] == "ok" {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

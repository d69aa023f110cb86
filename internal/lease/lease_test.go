package lease_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/lease"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

var jobs = []string{"detect-batch", "rollup", "retention", "reports", "recert-deadlines", "identity-sweep"}

type member struct {
	m      *lease.Manager
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func start(t *testing.T, ctx context.Context, bc bus.Config, name string) *member {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := lease.New(lease.Options{Bus: bc, Instance: name, Jobs: jobs, Logger: testenv.Logger(t), Registerer: reg,
		HeartbeatInterval: time.Second, SessionTimeout: 6 * time.Second, DescribeEvery: time.Second})
	require.NoError(t, err)
	mctx, cancel := context.WithCancel(ctx)
	mem := &member{m: m, reg: reg, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(mem.done)
		assert.NoError(t, m.Run(mctx))
	}()
	t.Cleanup(func() { cancel(); <-mem.done })
	return mem
}

// holders counts, per job, the members holding its lease.
func holders(ms ...*member) map[string]int {
	out := map[string]int{}
	for _, m := range ms {
		for _, j := range jobs {
			if m.m.Held(j) {
				out[j]++
			}
		}
	}
	return out
}

func exactlyOnce(ms ...*member) bool {
	h := holders(ms...)
	for _, j := range jobs {
		if h[j] != 1 {
			return false
		}
	}
	return true
}

func TestLeasesMoveBetweenMembers(t *testing.T) {
	t.Parallel()
	bc := testenv.Kafka(t, 1)
	ctx := context.Background()
	a := start(t, ctx, bc, "a:1")
	require.Eventually(t, func() bool { return exactlyOnce(a) }, 60*time.Second, 100*time.Millisecond, "a alone holds every lease")
	assert.Equal(t, 1.0, testutil.ToFloat64(metric(t, a, "rollup")))

	// A guarded job runs on a only, and stops when a leaves.
	var runs atomic.Int32
	guarded := a.m.Guard("rollup", func(ctx context.Context) error {
		runs.Add(1)
		<-ctx.Done()
		return ctx.Err()
	})
	gctx, stopGuard := context.WithCancel(ctx)
	defer stopGuard()
	gdone := make(chan error, 1)
	go func() { gdone <- guarded(gctx) }()
	require.Eventually(t, func() bool { return runs.Load() == 1 }, 10*time.Second, 50*time.Millisecond)

	b := start(t, ctx, bc, "b:2")
	require.Eventually(t, func() bool {
		if !exactlyOnce(a, b) {
			return false
		}
		for job, st := range b.m.Holders() {
			want := "b:2"
			if a.m.Held(job) {
				want = "a:1"
			}
			if st.Holder != want {
				return false
			}
		}
		return true
	}, 60*time.Second, 100*time.Millisecond, "a and b share the leases, each held once")

	a.cancel()
	<-a.done
	require.Eventually(t, func() bool { return exactlyOnce(b) }, 60*time.Second, 100*time.Millisecond, "b took over every lease")
	assert.False(t, a.m.Held("rollup"))
	select {
	case err := <-gdone:
		t.Fatalf("the guard ended when the lease was lost: %v", err)
	default:
	}
	stopGuard()
	require.NoError(t, <-gdone)
}

func metric(t *testing.T, m *member, job string) prometheus.Collector {
	t.Helper()
	mfs, err := m.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "keyfleet_lease_held" {
			continue
		}
		for _, me := range mf.GetMetric() {
			for _, l := range me.GetLabel() {
				if l.GetName() == "job" && l.GetValue() == job {
					return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "x"}, func() float64 { return me.GetGauge().GetValue() })
				}
			}
		}
	}
	t.Fatalf("no keyfleet_lease_held{job=%q}", job)
	return nil
}

func TestPartitionOfIsStable(t *testing.T) {
	t.Parallel()
	seen := map[int]bool{}
	for _, j := range jobs {
		p := lease.PartitionOf(j)
		require.True(t, p >= 0 && p < lease.Partitions, fmt.Sprint(p))
		seen[p] = true
		assert.Equal(t, p, lease.PartitionOf(j))
	}
	assert.Greater(t, len(seen), 1, "jobs spread over partitions")
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	_, err := lease.New(lease.Options{})
	require.Error(t, err)
}

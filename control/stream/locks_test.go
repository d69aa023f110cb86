package stream

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/registry"
)

func TestLockIndex(t *testing.T) {
	reg := registry.New()
	reg.Apply(registry.File{Locks: []registry.Lock{
		{Vendor: "matter", LockID: "m1", Groups: []string{"entrance"}},
		{Vendor: "matter", LockID: "m2", Groups: []string{"unit:B-204"}},
		{Vendor: "nuki", LockID: "n1", Groups: []string{"garage", "service"}},
	}})
	li := newLockIndex(reg)
	assert.Equal(t, []control.LockRef{{Vendor: "matter", LockID: "m1"}, {Vendor: "nuki", LockID: "n1"}}, li.ForCredential("", []string{"entrance", "garage", "service"}))
	assert.Len(t, li.ForCredential("", []string{"*"}), 3)
	assert.Len(t, li.ForCredential("other-site", []string{"*"}), 3, "locks without a site are not filtered out")
	assert.Equal(t, map[string]int{"entrance": 1, "unit:B-204": 1, "garage": 1, "service": 1}, li.groups())
}

func TestBacklogAdmit(t *testing.T) {
	b := newBacklog(bus.Config{}, 10, prometheus.NewGauge(prometheus.GaugeOpts{Name: "depth"}), nil)
	ok, _ := b.admit(8)
	assert.True(t, ok)
	ok, retry := b.admit(3)
	assert.False(t, ok)
	assert.Equal(t, 5*time.Second, retry, "no drain rate known yet")
	b.rate = 1
	_, retry = b.admit(5)
	assert.Equal(t, 3*time.Second, retry, "3 over the limit at 1 command/s")
	b.release(8)
	ok, _ = b.admit(10)
	assert.True(t, ok)
}

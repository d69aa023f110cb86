package service

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/lease"
)

// Dependency names (the dependency label of keyfleet_dependency_up).
const (
	depKafka      = "kafka"
	depClickHouse = "clickhouse"
)

// health knows whether keyfleet's dependencies answer (probed every
// second) and which operations of its long-running loops are failing (the
// loops report through bus.LoopObserver); /readyz and the keyfleet_loop_*
// and keyfleet_dependency_up metrics read it.
//
// Readiness is honest: 503 while a dependency does not answer, while an
// operation of some loop has been failing for longer than grace (a loop that
// cannot store or produce is not ready even when the dependency answers
// pings: a slow or refusing ClickHouse), or while a part still rebuilds its
// state after start-up; 200 again once all clear.
type health struct {
	logger   *slog.Logger
	now      func() time.Time
	interval time.Duration // between probes
	timeout  time.Duration // of one probe
	grace    time.Duration // a loop's operation may fail this long before readiness says so
	probes   []probe

	mu       sync.Mutex
	deps     map[string]*depState
	loops    map[string]map[string]*opState // loop → op → state
	starting map[string]<-chan struct{}     // parts still rebuilding state → closed when done
	// conditions are problems parts report that are not a dependency's
	// (the detectors split over instances): name → what is wrong.
	conditions map[string]string
	instance   string
	leases     func() map[string]lease.Status

	up       *prometheus.GaugeVec
	retries  *prometheus.CounterVec
	degraded *prometheus.GaugeVec
}

// probe checks one dependency.
type probe struct {
	name  string
	check func(ctx context.Context) error
}

type depState struct {
	up    bool
	since time.Time // of the current state
	err   string
}

type opState struct {
	since   time.Time // of the first failure in the current run of failures
	retries int
	err     string
}

func newHealth(reg prometheus.Registerer, logger *slog.Logger, probes ...probe) *health {
	h := &health{logger: logger, now: time.Now, interval: time.Second, timeout: 3 * time.Second, grace: 5 * time.Second,
		probes: probes, deps: map[string]*depState{}, loops: map[string]map[string]*opState{},
		starting: map[string]<-chan struct{}{}, conditions: map[string]string{},
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_dependency_up",
			Help: "1 while the dependency answers keyfleet's probe (Kafka metadata, ClickHouse ping), else 0.",
		}, []string{"dependency"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_loop_retries_total",
			Help: "Failed attempts a long-running loop retries (a dependency away, a transient error), by loop.",
		}, []string{"loop"}),
		degraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_loop_degraded",
			Help: "1 while some operation of the loop is failing and being retried, else 0.",
		}, []string{"loop"}),
	}
	if reg != nil {
		reg.MustRegister(h.up, h.retries, h.degraded)
	}
	start := h.now()
	for _, p := range probes {
		// Start-up waited for every dependency: they answered a moment ago.
		h.deps[p.name] = &depState{up: true, since: start}
		h.up.WithLabelValues(p.name).Set(1)
	}
	return h
}

// Starting makes readiness wait for a part that rebuilds its state after
// start-up (the control plane reading credential.events): 503 naming it
// until ready is closed.
func (h *health) Starting(part string, ready <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.starting[part] = ready
}

// Condition records a problem that makes keyfleet not ready (why not
// empty) or clears it (why empty); /readyz names it under checks.
func (h *health) Condition(name, why string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if why == "" {
		delete(h.conditions, name)
	} else {
		h.conditions[name] = why
	}
}

// Instance makes /readyz name this instance and its leases.
func (h *health) Instance(id string, leases func() map[string]lease.Status) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.instance, h.leases = id, leases
}

// Loop returns the observer of one named loop (a bounded name: it is a
// metric label) and registers the loop.
func (h *health) Loop(name string) bus.LoopObserver {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.loops[name] == nil {
		h.loops[name] = map[string]*opState{}
	}
	h.retries.WithLabelValues(name)
	h.degraded.WithLabelValues(name).Set(0)
	return loopObserver{h: h, name: name}
}

type loopObserver struct {
	h    *health
	name string
}

func (o loopObserver) Retrying(op string, err error) {
	h := o.h
	h.retries.WithLabelValues(o.name).Inc()
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := h.loops[o.name]
	st := ops[op]
	if st == nil {
		st = &opState{since: h.now()}
		ops[op] = st
	}
	st.retries++
	st.err = err.Error()
	h.degraded.WithLabelValues(o.name).Set(1)
}

func (o loopObserver) Resolved(op string) {
	h := o.h
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := h.loops[o.name]
	if _, ok := ops[op]; !ok {
		return
	}
	delete(ops, op)
	if len(ops) == 0 {
		h.degraded.WithLabelValues(o.name).Set(0)
	}
}

// Run probes every dependency every interval until ctx ends.
func (h *health) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range h.probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bus.Wait(ctx, h.interval) {
				pctx, cancel := context.WithTimeout(ctx, h.timeout)
				err := p.check(pctx)
				cancel()
				if ctx.Err() != nil {
					return
				}
				h.observe(p.name, err)
			}
		}()
	}
	wg.Wait()
	return nil
}

// observe records one probe's result, logging changes of state.
func (h *health) observe(dep string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.deps[dep]
	now := h.now()
	switch {
	case err != nil && st.up:
		h.logger.Warn("dependency down", "dependency", dep, "err", err)
		st.up, st.since = false, now
	case err == nil && !st.up:
		h.logger.Info("dependency back", "dependency", dep, "was_down", now.Sub(st.since).Round(time.Millisecond))
		st.up, st.since, st.err = true, now, ""
	}
	if err != nil {
		st.err = err.Error()
		h.up.WithLabelValues(dep).Set(0)
	} else {
		h.up.WithLabelValues(dep).Set(1)
	}
}

// Readiness is /readyz's document.
type Readiness struct {
	Status string `json:"status"` // ready or unavailable
	// Checks says per dependency "ok" or what is wrong.
	Checks       map[string]string         `json:"checks"`
	Dependencies map[string]DependencyInfo `json:"dependencies"`
	// Degraded lists the loops with failing operations (empty when none).
	Degraded []LoopInfo `json:"degraded_loops"`
	// Starting lists the parts still rebuilding their state.
	Starting []string `json:"starting,omitempty"`
	// Instance is this instance's --instance-id.
	Instance string `json:"instance,omitempty"`
	// Leases says, per once-per-fleet job, which instance holds its lease
	// and whether this one does.
	Leases map[string]lease.Status `json:"leases,omitempty"`
}

// DependencyInfo is one dependency's state and since when it holds.
type DependencyInfo struct {
	Up      bool      `json:"up"`
	Since   time.Time `json:"since"`
	ForS    float64   `json:"for_seconds"`
	LastErr string    `json:"error,omitempty"`
}

// LoopInfo is one loop's failing operations.
type LoopInfo struct {
	Loop  string    `json:"loop"`
	Since time.Time `json:"since"` // the oldest failure
	ForS  float64   `json:"for_seconds"`
	Ops   []OpInfo  `json:"operations"`
}

// OpInfo is one failing operation of a loop.
type OpInfo struct {
	Op      string    `json:"op"`
	Since   time.Time `json:"since"`
	Retries int       `json:"retries"`
	LastErr string    `json:"error"`
}

// readiness returns the document and whether keyfleet is ready.
func (h *health) readiness() (Readiness, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	r := Readiness{Status: "ready", Checks: map[string]string{}, Dependencies: map[string]DependencyInfo{}, Degraded: []LoopInfo{}}
	ready := true
	for name, st := range h.deps {
		r.Dependencies[name] = DependencyInfo{Up: st.up, Since: st.since.UTC(), ForS: seconds(now.Sub(st.since)), LastErr: st.err}
		if st.up {
			r.Checks[name] = "ok"
		} else {
			r.Checks[name] = "unavailable since " + st.since.UTC().Format(time.RFC3339) + ": " + st.err
			ready = false
		}
	}
	for loop, ops := range h.loops {
		if len(ops) == 0 {
			continue
		}
		li := LoopInfo{Loop: loop, Since: now}
		for op, st := range ops {
			li.Ops = append(li.Ops, OpInfo{Op: op, Since: st.since.UTC(), Retries: st.retries, LastErr: st.err})
			if st.since.Before(li.Since) {
				li.Since = st.since
			}
		}
		sort.Slice(li.Ops, func(i, j int) bool { return li.Ops[i].Op < li.Ops[j].Op })
		li.ForS, li.Since = seconds(now.Sub(li.Since)), li.Since.UTC()
		if now.Sub(li.Since) >= h.grace {
			ready = false
		}
		r.Degraded = append(r.Degraded, li)
	}
	sort.Slice(r.Degraded, func(i, j int) bool { return r.Degraded[i].Loop < r.Degraded[j].Loop })
	for part, done := range h.starting {
		select {
		case <-done:
			delete(h.starting, part)
		default:
			r.Starting = append(r.Starting, part)
			ready = false
		}
	}
	sort.Strings(r.Starting)
	for name, why := range h.conditions {
		r.Checks[name] = why
		ready = false
	}
	r.Instance = h.instance
	if h.leases != nil {
		r.Leases = h.leases()
	}
	if !ready {
		r.Status = "unavailable"
	}
	return r, ready
}

func seconds(d time.Duration) float64 {
	return float64(d.Round(time.Millisecond)) / float64(time.Second)
}

func (h *health) ready(c *fiber.Ctx) error {
	r, ok := h.readiness()
	if !ok {
		return c.Status(fiber.StatusServiceUnavailable).JSON(r)
	}
	return c.JSON(r)
}

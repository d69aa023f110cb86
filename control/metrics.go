package control

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the control plane's Prometheus metrics (labels are bounded:
// ops, outcomes, states, command types — never ids).
type metrics struct {
	revocationLatency *prometheus.HistogramVec // request → last lock ack of a revoked credential
	lockLatency       prometheus.Histogram     // request → one lock's ack
	disableLatency    prometheus.Histogram     // request → entitlement record published
	timeToIssue       prometheus.Histogram
	commands          *prometheus.CounterVec
	requests          *prometheus.CounterVec
	acks              *prometheus.CounterVec
	lockCommands      *prometheus.CounterVec
	activations       *prometheus.CounterVec
	states            *prometheus.GaugeVec
	queueDepth        prometheus.Gauge
	batchDuration     prometheus.Histogram
}

var latencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		revocationLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyfleet_control_revocation_latency_seconds",
			Help:    "Time from a revocation request to the last lock acknowledgement of a revoked credential, by scope (credential, subject, expiry).",
			Buckets: latencyBuckets,
		}, []string{"scope"}),
		lockLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_revocation_lock_latency_seconds",
			Help:    "Time from a revocation request to one lock's acknowledgement.",
			Buckets: latencyBuckets,
		}),
		disableLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_revocation_disable_seconds",
			Help:    "Time from a revocation request to the revoked entitlement record on credential.events.",
			Buckets: latencyBuckets,
		}),
		timeToIssue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_time_to_issue_seconds",
			Help:    "Time from a credential request to its issue (including waiting for approvals).",
			Buckets: latencyBuckets,
		}),
		commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_commands_total",
			Help: "Control commands applied by their owner, by op and outcome (applied, rejected, duplicate, invalid).",
		}, []string{"op", "outcome"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_requests_total",
			Help: "Credential requests received by the API, by kind and outcome (accepted, replayed, throttled, conflict, invalid).",
		}, []string{"kind", "outcome"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_lock_acks_total",
			Help: "Lock acknowledgements received on lock.acks, by command type and status.",
		}, []string{"type", "status"}),
		lockCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_lock_commands_total",
			Help: "Commands published on lock.commands, by type.",
		}, []string{"type"}),
		activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_activations_total",
			Help: "Credential activation attempts, by outcome (success, failed).",
		}, []string{"outcome"}),
		states: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_control_credentials",
			Help: "Credentials by lifecycle state (this instance's view of all credentials).",
		}, []string{"state"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_control_queue_depth_commands",
			Help: "Control commands queued on control.commands and not yet applied (sampled consumer lag plus commands queued since).",
		}),
		batchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_batch_duration_seconds",
			Help:    "Time to apply one batch of control commands (state, Kafka, ClickHouse).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.revocationLatency, m.lockLatency, m.disableLatency, m.timeToIssue, m.commands, m.requests,
			m.acks, m.lockCommands, m.activations, m.states, m.queueDepth, m.batchDuration)
	}
	return m
}

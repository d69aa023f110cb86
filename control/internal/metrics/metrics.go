// Package metrics defines the control plane's Prometheus metrics once, for
// control/api and control/stream: each calls New with the process's
// registerer, and the second call gets the collectors the first registered.
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the control plane's Prometheus metrics (labels are bounded:
// ops, outcomes, states, command types — never ids).
type Metrics struct {
	RevocationLatency *prometheus.HistogramVec // request → last lock ack of a revoked credential
	LockLatency       prometheus.Histogram     // request → one lock's ack
	DisableLatency    prometheus.Histogram     // request → entitlement record published
	TimeToIssue       prometheus.Histogram
	Commands          *prometheus.CounterVec
	Requests          *prometheus.CounterVec
	Acks              *prometheus.CounterVec
	LockCommands      *prometheus.CounterVec
	Activations       *prometheus.CounterVec
	States            *prometheus.GaugeVec
	QueueDepth        prometheus.Gauge
	BatchDuration     prometheus.Histogram
	Sessions          *prometheus.CounterVec // device-session revocations by outcome
	Resends           *prometheus.CounterVec // lock commands sent again, by type
	GiveUps           *prometheus.CounterVec // lock commands given up, by type
	Resyncs           *prometheus.CounterVec // acl_push sent, by reason
	DriftedAcks       prometheus.Counter
	Escalations       prometheus.Counter
}

var latencyBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}

// New returns the metrics registered on reg (nil: unregistered), or the ones
// an earlier New registered there.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		RevocationLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyfleet_control_revocation_latency_seconds",
			Help:    "Time from a revocation request to the last lock acknowledgement of a revoked credential, by scope (credential, subject, expiry).",
			Buckets: latencyBuckets,
		}, []string{"scope"}),
		LockLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_revocation_lock_latency_seconds",
			Help:    "Time from a revocation request to one lock's acknowledgement.",
			Buckets: latencyBuckets,
		}),
		DisableLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_revocation_disable_seconds",
			Help:    "Time from a revocation request to the revoked entitlement record on credential.events.",
			Buckets: latencyBuckets,
		}),
		TimeToIssue: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_time_to_issue_seconds",
			Help:    "Time from a credential request to its issue (including waiting for approvals).",
			Buckets: latencyBuckets,
		}),
		Commands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_commands_total",
			Help: "Control commands applied by their owner, by op and outcome (applied, rejected, duplicate, invalid).",
		}, []string{"op", "outcome"}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_requests_total",
			Help: "Credential requests received by the API, by kind and outcome (accepted, replayed, throttled, conflict, invalid).",
		}, []string{"kind", "outcome"}),
		Acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_lock_acks_total",
			Help: "Lock acknowledgements received on lock.acks, by command type and status.",
		}, []string{"type", "status"}),
		LockCommands: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_lock_commands_total",
			Help: "Commands published on lock.commands, by type.",
		}, []string{"type"}),
		Activations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_activations_total",
			Help: "Credential activation attempts, by outcome (success, failed).",
		}, []string{"outcome"}),
		States: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_control_credentials",
			Help: "Credentials by lifecycle state (this instance's view of all credentials).",
		}, []string{"state"}),
		QueueDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_control_queue_depth_commands",
			Help: "Control commands queued on control.commands and not yet applied (sampled consumer lag plus commands queued since).",
		}),
		BatchDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "keyfleet_control_batch_duration_seconds",
			Help:    "Time to apply one batch of control commands (state, Kafka, ClickHouse).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		Sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_session_revocations_total",
			Help: "Device-session revocations through the session webhook, by outcome of each round of calls (done, retrying, failed).",
		}, []string{"outcome"}),
		Resends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_lock_command_resends_total",
			Help: "Lock commands sent again for want of an applied ack, by type.",
		}, []string{"type"}),
		GiveUps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_lock_command_give_ups_total",
			Help: "Lock commands no longer re-sent (the give-up passed without an applied ack), by type.",
		}, []string{"type"}),
		Resyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_control_acl_resyncs_total",
			Help: "Full ACL resyncs (acl_push) sent to locks, by reason (reconnect, drift).",
		}, []string{"reason"}),
		DriftedAcks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_control_acl_drifted_acks_total",
			Help: "Lock acks reporting an ACL version other than the one expected after the command.",
		}),
		Escalations: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_control_revocation_escalations_total",
			Help: "Revoked credentials escalated past the revocation SLA with locks unconfirmed (alert revocation_overdue).",
		}),
	}
	if reg != nil {
		m.RevocationLatency = register(reg, m.RevocationLatency)
		m.LockLatency = register(reg, m.LockLatency)
		m.DisableLatency = register(reg, m.DisableLatency)
		m.TimeToIssue = register(reg, m.TimeToIssue)
		m.Commands = register(reg, m.Commands)
		m.Requests = register(reg, m.Requests)
		m.Acks = register(reg, m.Acks)
		m.LockCommands = register(reg, m.LockCommands)
		m.Activations = register(reg, m.Activations)
		m.States = register(reg, m.States)
		m.QueueDepth = register(reg, m.QueueDepth)
		m.BatchDuration = register(reg, m.BatchDuration)
		m.Sessions = register(reg, m.Sessions)
		m.Resends = register(reg, m.Resends)
		m.GiveUps = register(reg, m.GiveUps)
		m.Resyncs = register(reg, m.Resyncs)
		m.DriftedAcks = register(reg, m.DriftedAcks)
		m.Escalations = register(reg, m.Escalations)
	}
	return m
}

// register registers c, or returns the identical collector registered
// before; any other conflict panics (as MustRegister).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	panic(err)
}

package detect

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the detectors' Prometheus metrics. A nil *Metrics is valid and
// records nothing (replays).
type Metrics struct {
	latency    *prometheus.HistogramVec
	alerts     *prometheus.CounterVec
	updates    *prometheus.CounterVec
	suppressed *prometheus.CounterVec
	events     *prometheus.CounterVec
	watermark  prometheus.Gauge
	lag        prometheus.Gauge
	state      *prometheus.GaugeVec
}

// NewMetrics creates the metrics and registers them with reg (if not nil).
//
// keyfleet_detect_latency_seconds is the detection latency of each raised
// alert (revision 0): from received_ms of the event that met the alert's
// condition (the time keyfleet received it; for events without received_ms,
// the Kafka timestamp of its access.events or credential.events record) to
// the moment the broker acknowledged the alert on the alerts topic. It
// includes normalization, both Kafka hops and any consumer lag, so during a
// catch-up after downtime it shows how late alerts are.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyfleet_detect_latency_seconds",
			Help:    "Detection latency: event received by keyfleet (received_ms) to alert acknowledged on the alerts topic, by detector.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600},
		}, []string{"detector"}),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_detect_alerts_total",
			Help: "Alerts raised (revision 0), by detector and severity.",
		}, []string{"detector", "severity"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_detect_alert_updates_total",
			Help: "Alert updates emitted when a suppression window closed with repeats, by detector.",
		}, []string{"detector"}),
		suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_detect_alerts_suppressed_total",
			Help: "Repeats of an open alert suppressed (counted on the alert instead of raising a new one), by detector.",
		}, []string{"detector"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_detect_records_total",
			Help: "Records processed by the detectors, by source (access, credential) and outcome (ok, undecodable).",
		}, []string{"source", "outcome"}),
		watermark: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_detect_watermark_timestamp_seconds",
			Help: "Event-time watermark of the detectors (Unix time).",
		}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyfleet_detect_event_time_lag_seconds",
			Help: "Wall clock minus the detectors' event-time watermark: how far behind live the detectors are.",
		}),
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_detect_state_keys",
			Help: "Keys held in detector state, by kind (subjects, credentials, doors, open_alerts).",
		}, []string{"kind"}),
	}
	if reg != nil {
		reg.MustRegister(m.latency, m.alerts, m.updates, m.suppressed, m.events, m.watermark, m.lag, m.state)
	}
	return m
}

func (m *Metrics) countSuppressed(detector string) {
	if m != nil {
		m.suppressed.WithLabelValues(detector).Inc()
	}
}

// Produced records alerts the broker acknowledged at time at.
func (m *Metrics) Produced(alerts []Alert, at time.Time) {
	if m == nil {
		return
	}
	for i := range alerts {
		a := &alerts[i]
		if a.Revision > 0 {
			m.updates.WithLabelValues(a.Detector).Inc()
			continue
		}
		m.alerts.WithLabelValues(a.Detector, a.Severity).Inc()
		if a.SourceReceivedMs > 0 {
			m.latency.WithLabelValues(a.Detector).Observe(at.Sub(time.UnixMilli(a.SourceReceivedMs)).Seconds())
		}
	}
}

// Record counts processed records.
func (m *Metrics) Record(source, outcome string, n int) {
	if m != nil && n > 0 {
		m.events.WithLabelValues(source, outcome).Add(float64(n))
	}
}

// Progress publishes the watermark and state sizes.
func (m *Metrics) Progress(watermarkMs int64, s Stats, now time.Time) {
	if m == nil || watermarkMs <= 0 {
		return
	}
	m.watermark.Set(float64(watermarkMs) / 1000)
	m.lag.Set(now.Sub(time.UnixMilli(watermarkMs)).Seconds())
	m.state.WithLabelValues("subjects").Set(float64(s.Subjects))
	m.state.WithLabelValues("credentials").Set(float64(s.Credentials))
	m.state.WithLabelValues("doors").Set(float64(s.Doors))
	m.state.WithLabelValues("open_alerts").Set(float64(s.OpenAlerts))
}

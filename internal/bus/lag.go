package bus

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Consumer names one consumer group reading one topic (unprefixed names).
type Consumer struct {
	Group string
	Topic string
}

// LagMonitor publishes keyfleet_kafka_consumer_lag_messages: for each
// consumer group, how many messages of its topic are not yet committed.
type LagMonitor struct {
	cfg       Config
	consumers []Consumer
	interval  time.Duration
	logger    *slog.Logger
	lag       *prometheus.GaugeVec
}

// NewLagMonitor returns a monitor and registers its gauge with reg.
func NewLagMonitor(cfg Config, consumers []Consumer, reg prometheus.Registerer, logger *slog.Logger) *LagMonitor {
	m := &LagMonitor{cfg: cfg, consumers: consumers, interval: 5 * time.Second, logger: logger,
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "keyfleet_kafka_consumer_lag_messages",
			Help: "Messages in a topic not yet committed by a consumer group.",
		}, []string{"group", "topic"})}
	if reg != nil {
		reg.MustRegister(m.lag)
	}
	return m
}

// Run samples the lag until ctx ends.
func (m *LagMonitor) Run(ctx context.Context) error {
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		for _, c := range m.consumers {
			lag, err := Lag(ctx, m.cfg, c)
			if err != nil {
				if ctx.Err() == nil {
					m.logger.Debug("consumer lag unavailable", "group", c.Group, "topic", c.Topic, "err", err)
				}
				continue
			}
			m.lag.WithLabelValues(c.Group, c.Topic).Set(float64(lag))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Lag returns how many messages of c.Topic group c.Group has not committed.
func Lag(ctx context.Context, cfg Config, c Consumer) (int64, error) {
	parts, err := Partitions(ctx, cfg, c.Topic, c.Group)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, p := range parts {
		total += p.Lag()
	}
	return total, nil
}

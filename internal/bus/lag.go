package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
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
	client := &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 5 * time.Second}
	topic := cfg.Topic(c.Topic)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("metadata: %w", err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil {
		return 0, fmt.Errorf("topic %s not found", topic)
	}
	var parts []int
	var first, last []kafka.OffsetRequest
	for _, p := range meta.Topics[0].Partitions {
		parts = append(parts, p.ID)
		first = append(first, kafka.FirstOffsetOf(p.ID))
		last = append(last, kafka.LastOffsetOf(p.ID))
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: cfg.TopicPrefix + c.Group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return 0, fmt.Errorf("offset fetch: %w", err)
	}
	ends, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: append(first, last...)}})
	if err != nil {
		return 0, fmt.Errorf("list offsets: %w", err)
	}
	starts, lasts := map[int]int64{}, map[int]int64{}
	for _, po := range ends.Topics[topic] {
		starts[po.Partition] = po.FirstOffset
		lasts[po.Partition] = po.LastOffset
	}
	var total int64
	for _, po := range committed.Topics[topic] {
		at := po.CommittedOffset
		if at < 0 {
			at = starts[po.Partition]
		}
		if d := lasts[po.Partition] - at; d > 0 {
			total += d
		}
	}
	return total, nil
}

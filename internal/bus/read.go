package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// ReadTopic hands every record of one of keyfleet's topics (unprefixed
// name) to fn, partition by partition from the first offset the broker
// holds to the end as of the call, without a consumer group. It is for
// small topics read whole (the audit checkpoints).
func ReadTopic(ctx context.Context, c Config, topic string, fn func(kafka.Message) error) error {
	parts, err := Partitions(ctx, c, topic, "")
	if err != nil {
		return err
	}
	for _, p := range parts {
		if p.End <= p.First {
			continue
		}
		if err := readPartition(ctx, c, topic, p, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPartition(ctx context.Context, c Config, topic string, p Partition, fn func(kafka.Message) error) error {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: c.Brokers, Topic: c.Topic(topic), Partition: p.ID, MinBytes: 1, MaxBytes: 8 << 20,
		MaxWait: 250 * time.Millisecond, Dialer: c.Dialer(),
	})
	defer r.Close()
	if err := r.SetOffset(p.First); err != nil {
		return fmt.Errorf("read %s/%d: %w", c.Topic(topic), p.ID, err)
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return fmt.Errorf("read %s/%d: %w", c.Topic(topic), p.ID, err)
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Offset+1 >= p.End {
			return nil
		}
	}
}

package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// Partition is where one partition of a topic stands.
type Partition struct {
	ID    int
	First int64 // first offset the broker still holds
	End   int64 // offset the next record will get (First when the partition is empty)
	// Committed is the consumer group's committed offset (the next record
	// it will read), or -1 when the group has committed nothing here or no
	// group was asked about.
	Committed int64
}

// Lag is how many records of the partition the group has not committed.
func (p Partition) Lag() int64 {
	at := p.Committed
	if at < 0 {
		at = p.First
	}
	return max(0, p.End-at)
}

// Partitions returns every partition of one of keyfleet's topics (an
// unprefixed name) with its first and end offsets and, when group (also
// unprefixed) is not empty, the group's committed offsets. It is the one
// place keyfleet asks the broker where partitions stand.
func Partitions(ctx context.Context, c Config, topic, group string) ([]Partition, error) {
	client := c.Client(10 * time.Second)
	full := c.Topic(topic)
	meta, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{full}})
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", full, err)
	}
	if len(meta.Topics) != 1 || meta.Topics[0].Error != nil || len(meta.Topics[0].Partitions) == 0 {
		return nil, fmt.Errorf("topic %s not found", full)
	}
	ids := make([]int, 0, len(meta.Topics[0].Partitions))
	reqs := make([]kafka.OffsetRequest, 0, 2*len(meta.Topics[0].Partitions))
	for _, p := range meta.Topics[0].Partitions {
		ids = append(ids, p.ID)
		reqs = append(reqs, kafka.FirstOffsetOf(p.ID), kafka.LastOffsetOf(p.ID))
	}
	offs, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{full: reqs}})
	if err != nil {
		return nil, fmt.Errorf("list offsets %s: %w", full, err)
	}
	byID := make(map[int]*Partition, len(ids))
	out := make([]Partition, len(ids))
	for i, id := range ids {
		out[i] = Partition{ID: id, Committed: -1}
		byID[id] = &out[i]
	}
	for _, po := range offs.Topics[full] {
		if po.Error != nil {
			return nil, fmt.Errorf("list offsets %s/%d: %w", full, po.Partition, po.Error)
		}
		if p, ok := byID[po.Partition]; ok {
			p.First, p.End = po.FirstOffset, max(po.LastOffset, po.FirstOffset)
		}
	}
	if group == "" {
		return out, nil
	}
	committed, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{
		GroupID: c.TopicPrefix + group, Topics: map[string][]int{full: ids}})
	if err != nil {
		return nil, fmt.Errorf("offset fetch %s: %w", full, err)
	}
	if errors.Is(committed.Error, kafka.GroupIdNotFound) {
		return out, nil // the group has never committed
	}
	if committed.Error != nil {
		return nil, fmt.Errorf("offset fetch %s: %w", full, committed.Error)
	}
	for _, po := range committed.Topics[full] {
		if p, ok := byID[po.Partition]; ok && po.Error == nil && po.CommittedOffset >= 0 {
			p.Committed = po.CommittedOffset
		}
	}
	return out, nil
}

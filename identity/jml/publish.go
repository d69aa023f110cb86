package jml

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/internal/bus"
)

// Publisher puts identity changes on identity.changes, keyed by subject,
// so one subject's changes are handled in order by one automation member.
// Its Notify is the SCIM service's (scim.Options.Notify).
type Publisher struct {
	w bus.Writer
}

// NewPublisher returns a publisher writing through w (a bus.NewWriter for
// bus.TopicIdentityChanges).
func NewPublisher(w bus.Writer) *Publisher { return &Publisher{w: w} }

// Notify publishes one change; it returns once Kafka has it.
func (p *Publisher) Notify(ctx context.Context, c identity.Change) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := p.w.WriteMessages(ctx, kafka.Message{Key: []byte(c.SubjectID), Value: v}); err != nil {
		return fmt.Errorf("publish identity change: %w", err)
	}
	return nil
}

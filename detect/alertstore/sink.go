package alertstore

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/bus"
)

// Sink moves the alerts topic into the alerts table, at least once: offsets
// are committed after the batch is stored; a re-delivered alert changes
// nothing (Put keeps the newest revision and the status). Records that are
// not alerts go to the dead-letter topic (reason undecodable_alert); the
// responders, reading the same topic, skip them.
type Sink struct {
	store  *Store
	reader bus.MessageReader
	dlq    bus.Writer
	logger *slog.Logger
	stored prometheus.Counter
	bad    prometheus.Counter
}

// NewSink returns a sink reading r (the alerts topic, its own consumer
// group), dead-lettering to dlq (nil: records that are not alerts are
// logged and skipped), and registers its metrics with reg (if not nil).
func NewSink(store *Store, r bus.MessageReader, dlq bus.Writer, reg prometheus.Registerer, logger *slog.Logger) (*Sink, error) {
	if store == nil || r == nil {
		return nil, errors.New("alert sink: store and reader are required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Sink{store: store, reader: r, dlq: dlq, logger: logger,
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_detect_alerts_stored_total",
			Help: "Alert versions read from the alerts topic and stored in ClickHouse.",
		}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_detect_alerts_undecodable_total",
			Help: "Records on the alerts topic that are not alerts (dead-lettered).",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.stored, s.bad)
	}
	return s, nil
}

// Run consumes until ctx ends.
func (s *Sink) Run(ctx context.Context) error {
	return bus.ConsumeBatches(ctx, s.reader, bus.BatchOptions{
		MaxBatch: 5000, MaxWait: 200 * time.Millisecond, Logger: s.logger, Name: "alerts", DeadLetter: s.dlq,
	}, s.handle)
}

func (s *Sink) handle(ctx context.Context, batch []kafka.Message) error {
	alerts := make([]detect.Alert, 0, len(batch))
	var bad []kafka.Message
	var why error
	for _, m := range batch {
		var a detect.Alert
		err := json.Unmarshal(m.Value, &a)
		if err == nil && (a.AlertID == "" || a.Detector == "") {
			err = errors.New("no alert_id or detector")
		}
		if err != nil {
			bad, why = append(bad, m), err
			continue
		}
		alerts = append(alerts, a)
	}
	if len(alerts) > 0 {
		err := bus.Retry(ctx, s.logger, "store alerts", func(ctx context.Context) error {
			return s.store.Put(ctx, alerts)
		})
		if err != nil {
			return err
		}
		s.stored.Add(float64(len(alerts)))
	}
	if len(bad) > 0 {
		s.bad.Add(float64(len(bad)))
		return bus.Permanent("undecodable_alert", why, bad...)
	}
	return nil
}

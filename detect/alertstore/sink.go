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
// nothing (Put keeps the newest revision and the status).
type Sink struct {
	store  *Store
	reader bus.MessageReader
	logger *slog.Logger
	stored prometheus.Counter
	bad    prometheus.Counter
}

// NewSink returns a sink reading r (the alerts topic, its own consumer
// group) and registers its metrics with reg (if not nil).
func NewSink(store *Store, r bus.MessageReader, reg prometheus.Registerer, logger *slog.Logger) (*Sink, error) {
	if store == nil || r == nil {
		return nil, errors.New("alert sink: store and reader are required")
	}
	if logger == nil {
		logger = slog.Default()
	}
	s := &Sink{store: store, reader: r, logger: logger,
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_detect_alerts_stored_total",
			Help: "Alert versions read from the alerts topic and stored in ClickHouse.",
		}),
		bad: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_detect_alerts_undecodable_total",
			Help: "Records on the alerts topic that are not alerts (skipped).",
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
		MaxBatch: 5000, MaxWait: 200 * time.Millisecond, Logger: s.logger, Name: "alerts",
	}, s.handle)
}

func (s *Sink) handle(ctx context.Context, batch []kafka.Message) error {
	alerts := make([]detect.Alert, 0, len(batch))
	for _, m := range batch {
		var a detect.Alert
		if err := json.Unmarshal(m.Value, &a); err != nil || a.AlertID == "" || a.Detector == "" {
			s.bad.Inc()
			continue
		}
		alerts = append(alerts, a)
	}
	err := bus.Retry(ctx, s.logger, "store alerts", func(ctx context.Context) error {
		return s.store.Put(ctx, alerts)
	})
	if err != nil {
		return err
	}
	s.stored.Add(float64(len(alerts)))
	return nil
}

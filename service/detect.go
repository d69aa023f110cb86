package service

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/alertstore"
	"github.com/keyfleet/keyfleet/detect/regression"
	"github.com/keyfleet/keyfleet/detect/respond"
	"github.com/keyfleet/keyfleet/detect/stream"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/pipeline"
)

// DetectConfig configures the detectors, the alerts store and the
// responders in `keyfleet serve`.
type DetectConfig struct {
	Enabled       bool
	RulesFile     string
	Lateness      time.Duration
	WarmUp        time.Duration
	Batch         bool
	Respond       bool
	WebhookURL    string
	WebhookSecret string
}

func (c *DetectConfig) registerFlags(s *flagenv.Set) {
	s.Bool(&c.Enabled, "detect", "KEYFLEET_DETECT", true, "run the detectors on access.events (alerts, responders)")
	s.String(&c.RulesFile, "detect-rules", "KEYFLEET_DETECT_RULES", "",
		"detection and response rules file (JSON with a version field); empty uses the compiled-in defaults")
	s.Duration(&c.Lateness, "detect-lateness", "KEYFLEET_DETECT_LATENESS", time.Minute,
		"how far out of event-time order access events may arrive and still count in windows")
	s.Duration(&c.WarmUp, "detect-warm-up", "KEYFLEET_DETECT_WARM_UP", 0,
		"at start, replay this much (by Kafka time) of the access events already judged, to refill the detectors' windows\n"+
			"        without raising their alerts again (older events within use_after_revocation's lookback refill its\n"+
			"        memory of grants); 0: the rules' longest sliding window; negative: none")
	s.Bool(&c.Batch, "detect-batch", "KEYFLEET_DETECT_BATCH", true,
		"run the batch checks (stale_credential, expired_exception) on this instance")
	s.Bool(&c.Respond, "respond", "KEYFLEET_RESPOND", true,
		"run the automated responders (the rules file's responders.dry_run decides whether they act)")
	s.String(&c.WebhookURL, "respond-webhook-url", "KEYFLEET_RESPOND_WEBHOOK_URL", "",
		"URL the webhook responder POSTs alerts to (signed, see detect/README.md)")
	s.Secret(&c.WebhookSecret, "respond-webhook-secret", "KEYFLEET_RESPOND_WEBHOOK_SECRET",
		"HMAC-SHA256 key of the webhook signature (at least 16 characters)")
}

func (c *DetectConfig) validate() error {
	var errs []error
	if c.Lateness < 0 {
		errs = append(errs, fmt.Errorf("--detect-lateness: %s must not be negative", c.Lateness))
	}
	if c.WebhookURL != "" && len(c.WebhookSecret) < 16 {
		errs = append(errs, errors.New("--respond-webhook-secret: at least 16 characters are required with --respond-webhook-url"))
	}
	if c.RulesFile != "" {
		if _, err := detect.LoadRules(c.RulesFile); err != nil {
			errs = append(errs, fmt.Errorf("--detect-rules: %w", err))
		}
	}
	return errors.Join(errs...)
}

// detectPart is the detection part of serve: its routes, long-running parts,
// Kafka clients to close and consumer groups to watch.
type detectPart struct {
	// detector, when set, is fed in-process by the pipeline (--access-events inline or publish).
	detector  pipeline.Detector
	routes    []httpapi.Route
	ops       map[string]openapi.Operation
	loops     []loop
	closers   []io.Closer
	consumers []bus.Consumer
	// expired is the expired_exception rules the detectors run with (the
	// weekly report lists what they flag; zero: detector defaults).
	expired detect.ExpiredRules
}

// setupDetect builds the detectors (access.events → alerts), the alerts
// sink (alerts → ClickHouse), the responders and the /v1/alerts routes.
func setupDetect(cfg DetectConfig, accessEvents string, bc bus.Config, conn driver.Conn, reg prometheus.Registerer, logger *slog.Logger,
	auditor audit.Appender, suspender respond.Suspender, dlq bus.Writer) (*detectPart, error) {
	part := &detectPart{}
	if auditor == nil || suspender == nil {
		return nil, errors.New("detect: an audit log and a suspender are required")
	}
	store := alertstore.New(conn)
	api, err := alertstore.NewAPI(store, auditor)
	if err != nil {
		return nil, err
	}
	part.routes, part.ops = api.Routes(), api.Operations()
	alertsReader := bus.NewGroupReader(bc, bus.TopicAlerts, bus.GroupAlerts)
	part.closers = append(part.closers, alertsReader)
	sink, err := alertstore.NewSink(store, alertsReader, dlq, reg, logger)
	if err != nil {
		return nil, err
	}
	part.loops = append(part.loops, loop{"alerts-writer", sink.Run})
	part.consumers = append(part.consumers, bus.Consumer{Group: bus.GroupAlerts, Topic: bus.TopicAlerts})
	if !cfg.Enabled {
		return part, nil
	}

	rules, err := detect.LoadRules(cfg.RulesFile)
	if err != nil {
		return nil, err
	}
	part.expired = rules.Detectors.ExpiredException
	metrics := detect.NewMetrics(reg)
	engine, err := detect.NewEngine(rules, detect.Options{Lateness: cfg.Lateness, Metrics: metrics})
	if err != nil {
		return nil, err
	}
	alertsWriter := bus.NewWriter(bc, bus.TopicAlerts)
	// Alerts go out a few at a time (each chunk's), and kafka-go allocates
	// room for BatchSize messages per batch: 2,048 made producing alerts a
	// sixth of serve's allocation while draining a backlog.
	alertsWriter.BatchSize = 64
	part.closers = append(part.closers, alertsWriter)
	opts := stream.Options{
		Bus: bc, Engine: engine, Alerts: alertsWriter,
		Baselines: stream.ClickHouseBaselines{Conn: conn},
		Lateness:  cfg.Lateness, WarmUp: cfg.WarmUp, Known: store, Logger: logger, Metrics: metrics,
	}
	if accessEvents == AccessTopic {
		accessReader := bus.NewGroupReader(bc, bus.TopicAccess, bus.GroupDetect)
		part.closers = append(part.closers, accessReader)
		opts.Access, opts.DeadLetter = accessReader, dlq
		part.consumers = append(part.consumers, bus.Consumer{Group: bus.GroupDetect, Topic: bus.TopicAccess})
	} else {
		opts.History = stream.ClickHouseHistory{Conn: conn}
	}
	if cfg.Batch {
		opts.Uses = stream.ClickHouseUses{Conn: conn}
		opts.BatchEvery = min(rules.Detectors.StaleCredential.Every.D(), rules.Detectors.ExpiredException.Every.D())
		// regression judges device and lock slices fleet-wide from ClickHouse.
		regr, err := regression.New(regression.Options{Conn: conn, Rules: rules.Detectors.Regression, Alerts: alertsWriter,
			Known: store, Logger: logger.With("part", "regression")})
		if err != nil {
			return nil, err
		}
		part.loops = append(part.loops, loop{"regression", regr.Run})
	}
	proc, err := stream.New(opts)
	if err != nil {
		return nil, err
	}
	part.loops = append(part.loops, loop{"detect", proc.Run})
	if opts.Access == nil {
		part.detector = proc
	}
	logger.Info("detectors configured", "rules_version", rules.Version, "batch_checks", cfg.Batch,
		"responders", cfg.Respond, "dry_run", rules.Responders.DryRun)

	if cfg.Respond {
		respReader := bus.NewGroupReader(bc, bus.TopicAlerts, bus.GroupRespond)
		part.closers = append(part.closers, respReader)
		if suspender == nil {
			logger.Warn("no control plane connected: responder suspensions are recorded as skipped")
		}
		resp, err := respond.New(respond.Options{
			Rules: rules, Reader: respReader, Conn: conn, Suspender: suspender, Auditor: auditor,
			WebhookURL: cfg.WebhookURL, WebhookSecret: []byte(cfg.WebhookSecret),
			Logger: logger, Registerer: reg,
		})
		if err != nil {
			return nil, err
		}
		part.loops = append(part.loops, loop{"respond", resp.Run})
		part.consumers = append(part.consumers, bus.Consumer{Group: bus.GroupRespond, Topic: bus.TopicAlerts})
	}
	return part, nil
}

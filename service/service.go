package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/keyfleet/keyfleet/detect/respond"
	"github.com/keyfleet/keyfleet/ingest"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/auth"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/lease"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
	"github.com/keyfleet/keyfleet/pipeline"
	recertapi "github.com/keyfleet/keyfleet/recert/api"
)

// devPseudonymKey keys pseudonyms when no --pseudonym-key is given; only
// allowed with the embedded broker (Config.Validate).
const devPseudonymKey = "keyfleet-development-pseudonym-key"

// Options are the process-level dependencies of Run.
type Options struct {
	Logger *slog.Logger
	// Stdout receives the one-time initial admin token, if one is created.
	Stdout io.Writer
	// Listener, when set, is used instead of listening on Config.HTTPAddr
	// (tests pass one on port 0).
	Listener net.Listener
	// Ready, when set, is called once the service is serving.
	Ready func(httpAddr, kafkaAddr string)
	// Auditor and Suspender replace the control plane's audit log and
	// credential suspension for the detection part (tests; nil: the real ones).
	Auditor   audit.Appender
	Suspender respond.Suspender
}

// Run runs `keyfleet serve` until ctx ends, then shuts down in order: stop
// accepting HTTP, drain and flush the pipeline, commit offsets, close
// connections, stop the embedded broker.
func Run(ctx context.Context, cfg Config, opts Options) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := opts.Logger
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var err error
	brokers := cfg.KafkaBrokers
	embeddedDir := ""
	if len(brokers) == 0 {
		embeddedDir = filepath.Join(cfg.DataDir, "kafka")
		emb, err := bus.StartEmbedded(cfg.EmbeddedKafkaAddr, embeddedDir, cfg.TopicPartitions, logger)
		if err != nil {
			return err
		}
		defer emb.Close()
		brokers = []string{emb.Addr()}
	}
	bc := cfg.Bus(brokers)
	if bc.Security, err = cfg.Security.Kafka.Build(); err != nil {
		return err
	}
	if err := waitFor(ctx, logger, "kafka topics", func(ctx context.Context) error { return bus.EnsureTopics(ctx, bc) }); err != nil {
		return err
	}

	var conn driver.Conn
	if err := waitFor(ctx, logger, "clickhouse", func(ctx context.Context) error {
		c, err := chstorage.Open(ctx, cfg.ClickHouse)
		if err != nil {
			return err
		}
		if err := chstorage.Migrate(ctx, c, logger); err != nil {
			c.Close()
			return err
		}
		conn = c
		return nil
	}); err != nil {
		return err
	}
	defer conn.Close()
	// The access_events writer has its own connection, which keeps its
	// block buffers between the large inserts (see chstorage.OpenBulk).
	bulkConn, err := chstorage.OpenBulk(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer bulkConn.Close()
	// The readiness probe has a connection of its own: busy or stuck
	// queries of the loops must not make ClickHouse look down, nor hide it.
	probeConn, err := chstorage.Open(ctx, cfg.ClickHouse)
	if err != nil {
		return err
	}
	defer probeConn.Close()
	health := newHealth(reg, logger, probe{depKafka, kafkaProbe(bc, embeddedDir)},
		probe{depClickHouse, clickHouseProbe(probeConn)})

	tokens := auth.NewStore(conn, logger)
	if err := tokens.Load(ctx); err != nil {
		return err
	}
	// The audit log: keyed entries, and a signed checkpoint of the chain
	// head after every commit on anchors ClickHouse writers cannot rewrite.
	auditKeys, err := cfg.Security.auditKeys(cfg.DataDir, logger)
	if err != nil {
		return err
	}
	kafkaAnchor := audit.NewKafkaAnchor(bc)
	defer kafkaAnchor.Close()
	anchors := []audit.Anchor{kafkaAnchor}
	if cfg.Security.AuditCheckpointFile != "" {
		anchors = append(anchors, audit.NewFileAnchor(cfg.Security.AuditCheckpointFile))
	}
	auditLog, err := audit.NewStore(conn, audit.Options{Chain: cfg.Control.AuditChain, Logger: logger, Registerer: reg,
		Keys: auditKeys, Anchors: anchors, ActorName: tokens.Name})
	if err != nil {
		return err
	}
	tokens.WithAudit(auditLog)
	secret, err := tokens.Bootstrap(ctx, cfg.BootstrapToken)
	if err != nil {
		return fmt.Errorf("bootstrap admin token: %w", err)
	}
	if secret != "" && opts.Stdout != nil {
		fmt.Fprintf(opts.Stdout, "\nkeyfleet: created the initial admin API token (shown once, store it now):\n\n    %s\n\n", secret)
	}

	key := []byte(cfg.PseudonymKey)
	if len(key) == 0 {
		key = []byte(devPseudonymKey)
		logger.Warn("no --pseudonym-key set: using the built-in development key (fine for the embedded demo, not for real data)")
	}
	locks := registry.New()
	if cfg.RegistryFile != "" {
		r, err := registry.Load(cfg.RegistryFile, key)
		if err != nil {
			return err
		}
		locks = r
	}
	normalizer := normalize.New(vendors.Adapters(), locks, key)
	exc, err := newExceptions(bc, conn, reg, logger)
	if err != nil {
		return err
	}
	defer func() { closeAll(logger, exc.closers...) }()
	est, policy, err := newEstate(cfg.Estate, bc, conn, locks, exc.checker(), reg, logger)
	if err != nil {
		return err
	}
	defer closeAll(logger, est.locks)
	idn, err := newIdentity(ctx, cfg.Identity, bc, conn, key, reg, logger)
	if err != nil {
		return err
	}
	defer closeAll(logger, idn)
	plane, err := newControl(cfg.Control, bc, conn, auditLog, locks, key, reg, logger, est.checker, idn.verifySubjects)
	if err != nil {
		return err
	}
	if err := idn.connect(plane.Routes(), bc, reg, auditLog); err != nil {
		return err
	}
	if err := est.withAPI(cfg.Estate, policy, plane.stream, conn, auditLog, cfg.Control.PendingSLA, logger); err != nil {
		return err
	}
	if err := exc.connect(cfg.Exceptions, cfg.Detect, bc, conn, auditLog, plane.stream, logger); err != nil {
		return err
	}

	// Kafka clients.
	rawWriter := bus.NewWriter(bc, bus.TopicRaw)
	dlqWriter := bus.NewWriter(bc, bus.TopicDLQ)
	rawReader := bus.NewGroupReader(bc, bus.TopicRaw, bus.GroupNormalize)
	dlqReader := bus.NewGroupReader(bc, bus.TopicDLQ, bus.GroupDeadLetter)
	defer closeAll(logger, rawWriter, dlqWriter, rawReader, dlqReader)

	window, err := cfg.Security.timeWindow()
	if err != nil {
		return err
	}
	var auditor audit.Appender = auditLog
	if opts.Auditor != nil {
		auditor = opts.Auditor
	}
	var suspender respond.Suspender = refusals{plane}
	if opts.Suspender != nil {
		suspender = opts.Suspender
	}
	// Work that runs once per fleet holds a lease (internal/lease).
	instance := instanceID(cfg.Instance, cfg.HTTPAddr)
	leases, err := lease.New(lease.Options{Bus: bc, Instance: instance, Jobs: fleetJobs,
		Logger: logger.With("part", "leases"), Registerer: reg})
	if err != nil {
		return err
	}
	health.Instance(instance, leases.Holders)
	det, err := setupDetect(cfg.Detect, cfg.AccessEvents, bc, conn, reg, logger, auditor, suspender, dlqWriter, leases)
	if err != nil {
		return err
	}
	defer closeAll(logger, det.closers...)

	// The one pass: raw records → normalized → ClickHouse (+ the detectors
	// in-process, + access.events when asked for).
	writerMetrics := pipeline.NewSinkMetrics(reg)
	inserted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyfleet_pipeline_events_inserted_total",
		Help: "Access events stored in ClickHouse, by vendor.",
	}, []string{"vendor"})
	reg.MustRegister(inserted)
	ingestOpts := pipeline.IngestOptions{
		Normalizer: normalizer, Reader: rawReader, Conn: bulkConn, DLQ: dlqWriter, Detector: det.detector,
		BatchSize: cfg.BatchSize, FlushInterval: cfg.FlushInterval, ChunkSize: cfg.NormalizeBatch,
		TimeWindow: window, Logger: logger, Metrics: pipeline.NewNormalizeMetrics(reg), SinkMetrics: writerMetrics,
		Inserted: inserted,
	}
	if cfg.AccessEvents != AccessInline {
		accessWriter := bus.NewWriter(bc, bus.TopicAccess)
		defer closeAll(logger, accessWriter)
		ingestOpts.Events = accessWriter
	}
	stage, err := pipeline.NewIngest(ingestOpts)
	if err != nil {
		return err
	}
	dlqStore, err := pipeline.NewSink(pipeline.SinkOptions{
		Reader: dlqReader, Conn: conn, Rows: &pipeline.DeadLetterRows{},
		OnBadRecord: func(context.Context, kafka.Message, error) error { return nil }, // DeadLetterRows never rejects
		BatchSize:   10000, FlushInterval: cfg.FlushInterval, Logger: logger, Metrics: writerMetrics,
	})
	if err != nil {
		return err
	}
	dash, err := setupDashboards(cfg.Dashboards, conn, reg, cfg.Control.PendingSLA, det.expired, logger, est.api, instance)
	if err != nil {
		return err
	}
	lag := bus.NewLagMonitor(bc, append([]bus.Consumer{
		{Group: bus.GroupNormalize, Topic: bus.TopicRaw},
		{Group: bus.GroupDeadLetter, Topic: bus.TopicDLQ},
	}, det.consumers...), reg, logger)

	signers, err := ingest.Signers(cfg.WebhookKeys(), ingest.NewSignerMetrics(reg), time.Now)
	if err != nil {
		return err
	}
	ingestHandler, err := ingest.New(ingest.Options{
		Normalizer: normalize.New(vendors.Adapters(), nil, key), Raw: rawWriter, Logger: logger, Registerer: reg,
		Signers: signers, TimeWindow: window, MaxPartitions: cfg.Security.IngestMaxPartitions,
	})
	if err != nil {
		return err
	}
	queryAPI, err := setupQuery(cfg.Query, queryDeps{conn: conn, clickhouse: cfg.ClickHouse, tokens: tokens, audit: auditLog,
		kpis: idn.kpiFunc(),
		key:  key, logger: logger, reg: reg})
	if err != nil {
		return err
	}
	health.Starting("control", plane.stream.Ready())
	routes := append(health.Routes(reg), ingestHandler.Routes()...)
	routes = append(routes, plane.Routes()...)
	routes = append(routes, est.routes...)
	routes = append(routes, det.routes...)
	routes = append(routes, dash.routes...)
	routes = append(routes, queryAPI.routes...)
	routes = append(routes, idn.routes...)
	routes = append(routes, exc.routes...)
	auditAPI, err := audit.NewAPI(auditLog, audit.APIOptions{Logger: logger})
	if err != nil {
		return err
	}
	routes = append(routes, auditAPI.Routes()...)
	recertAPI, err := recertapi.New(recertapi.Options{Credentials: plane.stream, Conn: conn, Audit: auditLog,
		OnDeadline: cfg.Recert.OnDeadline, Logger: logger.With("part", "recert")})
	if err != nil {
		return err
	}
	routes = append(routes, recertAPI.Routes()...)
	ops := append(dash.ops, healthOperations(), ingestHandler.Operations(), plane.Operations(), det.ops)
	if est.api != nil {
		ops = append(ops, est.api.Operations())
	}
	ops = append(ops, idn.ops...)
	ops = append(ops, exc.ops, auditAPI.Operations(), recertAPI.Operations())
	if err := queryAPI.document(routes, ops...); err != nil {
		return err
	}
	httpOpts := httpapi.Options{
		Addr: cfg.HTTPAddr, BodyLimit: cfg.HTTPBodyLimit, Auth: tokens, Logger: logger,
		Registerer: reg, AccessLog: cfg.AccessLog,
	}
	if err := cfg.Security.httpSecurity(routes, &httpOpts); err != nil {
		return err
	}
	server, err := httpapi.New(httpOpts, routes)
	if err != nil {
		return err
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return fmt.Errorf("--http-addr: listen %s: %w", cfg.HTTPAddr, err)
		}
	}

	// The HTTP server stops first (its own context), then the pipeline drains.
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	pipeCtx, stopPipe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopPipe()
	g, gctx := errgroup.WithContext(pipeCtx)
	g.Go(func() error { return server.Serve(httpCtx, ln) })
	// Every loop rides out dependency outages (retrying with backoff,
	// reported to health under its name); one that returns an error while
	// keyfleet runs has met something it cannot handle, and stops serve.
	loops := []loop{
		{"lock-registry", est.locks.Run},
		// The one pass: raw records normalized, stored and judged.
		{"normalize", est.afterRegistry(stage.Run)},
		{"dead-letter-writer", dlqStore.Run},
		{"consumer-lag", lag.Run},
		{"token-refresh", tokens.Run},
		{"audit-checkpoints", auditLog.Run},
		{"control", est.afterRegistry(plane.Run)},
		{"dependency-probe", health.Run},
	}
	loops = append(append(append(append(loops, det.loops...), queryAPI.loops...), dash.loops...), idn.loops...)
	loops = append(append(loops, exc.loops...), loop{"recert-deadlines", recertAPI.Run})
	loops = append(guardLoops(leases, loops, cfg.Detect.Batch), loop{"leases", leases.Run})
	if cfg.Detect.Enabled && cfg.AccessEvents != AccessTopic {
		loops = append(loops, loop{"detect-split-watch", newSplitWatch(bc, health, reg, logger).Run})
	}
	for _, l := range loops {
		g.Go(func() error {
			err := l.run(bus.WithLoop(gctx, health.Loop(l.name)))
			if err != nil && gctx.Err() == nil {
				logger.Error("loop stopped", "loop", l.name, "err", err)
			}
			return err
		})
	}
	g.Go(func() error {
		select {
		case <-ctx.Done():
			logger.Info("shutting down: stop accepting HTTP, then drain the pipeline")
			stopHTTP()
		case <-gctx.Done():
			stopHTTP()
		}
		stopPipe()
		return nil
	})
	logger.Info("keyfleet serving", "instance", instance, "http", ln.Addr().String(), "kafka", bc.Brokers, "clickhouse", cfg.ClickHouse.Addr,
		"database", cfg.ClickHouse.Database)
	if opts.Ready != nil {
		opts.Ready(ln.Addr().String(), bc.Brokers[0])
	}
	err = g.Wait()
	logger.Info("keyfleet stopped")
	return err
}

// waitFor retries fn until it succeeds or ctx ends: dependencies that start
// after keyfleet (ClickHouse, Kafka) are waited for, not failed on.
func waitFor(ctx context.Context, logger *slog.Logger, what string, fn func(context.Context) error) error {
	attemptCtx := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 30*time.Second) }
	return bus.Retry(ctx, logger, "connect "+what, func(context.Context) error {
		c, cancel := attemptCtx()
		defer cancel()
		return fn(c)
	})
}

func closeAll(logger *slog.Logger, closers ...io.Closer) {
	for _, c := range closers {
		if err := c.Close(); err != nil {
			logger.Warn("close", "err", err)
		}
	}
}

// loop is one long-running part of serve, named for health and metrics.
type loop struct {
	name string
	run  func(context.Context) error
}

// Routes serves /healthz (the process is up), /readyz (see health),
// /metrics and the profiles.
func (h *health) Routes(gatherer prometheus.Gatherer) []httpapi.Route {
	return []httpapi.Route{
		{Method: fiber.MethodGet, Path: "/healthz", Summary: "Liveness: the process is up.", Public: true,
			Handler: func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) }},
		{Method: fiber.MethodGet, Path: "/readyz", Summary: "Readiness: 200 while Kafka and ClickHouse answer and no loop has " +
			"been failing for seconds; 503 naming the dependency down and the degraded loops, with since when.", Public: true,
			Handler: h.ready},
		{Method: fiber.MethodGet, Path: "/debug/pprof/*", Summary: "Go runtime profiles (net/http/pprof).",
			Roles: httpapi.AdminOnly, Handler: adaptor.HTTPHandlerFunc(pprofHandler)},
		{Method: fiber.MethodGet, Path: "/metrics", Summary: "Prometheus metrics.",
			Roles:   []httpapi.Role{httpapi.RoleAnalyst, httpapi.RoleResponder, httpapi.RoleManager},
			Handler: metricsHandler(gatherer)},
	}
}

// kafkaProbe asks the brokers for metadata; with the embedded broker it
// also checks that its data directory has room to write.
func kafkaProbe(bc bus.Config, embeddedDir string) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := bus.Ping(ctx, bc); err != nil {
			return err
		}
		if embeddedDir == "" {
			return nil
		}
		free, err := diskFree(embeddedDir)
		if err != nil {
			return nil // not measurable here: the broker's own errors tell
		}
		if free < minEmbeddedFree {
			return fmt.Errorf("the embedded broker's data dir %s is full (%d bytes free)", embeddedDir, free)
		}
		return nil
	}
}

// minEmbeddedFree is the free space below which the embedded broker's data
// dir counts as full (a produce batch is up to bus.MaxBatchBytes).
const minEmbeddedFree = 1 << 20

// clickHouseProbe pings ClickHouse and checks that the migrations are applied.
func clickHouseProbe(conn driver.Conn) func(context.Context) error {
	return func(ctx context.Context) error {
		if err := conn.Ping(ctx); err != nil {
			return err
		}
		n, err := chstorage.Pending(ctx, conn)
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d migrations pending", n)
		}
		return nil
	}
}

func metricsHandler(g prometheus.Gatherer) fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
}

// pprofHandler serves net/http/pprof's pages (admin only).
func pprofHandler(w http.ResponseWriter, r *http.Request) {
	switch name := strings.TrimPrefix(r.URL.Path, "/debug/pprof/"); name {
	case "profile":
		pprof.Profile(w, r)
	case "trace":
		pprof.Trace(w, r)
	case "", "cmdline", "symbol":
		pprof.Index(w, r)
	default:
		pprof.Handler(name).ServeHTTP(w, r)
	}
}

// Package service wires `keyfleet serve`: Kafka (a real cluster or the
// embedded broker), ClickHouse, the ingest → normalize → store pipeline and
// the HTTP API, run together until the context ends.
package service

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/keyfleet/keyfleet/ingest"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

// Values of --access-events.
const (
	// AccessInline feeds the detectors in-process from the normalized
	// batch; access.events is not written. Detector state per subject is
	// correct only if this instance sees every event: one instance.
	AccessInline = "inline"
	// AccessPublish is AccessInline, and every event is also published on
	// access.events for other consumers.
	AccessPublish = "publish"
	// AccessTopic publishes every event on access.events keyed by subject;
	// the detectors read it in their consumer group, so with several
	// instances each judges the subjects of its partitions.
	AccessTopic = "topic"
)

// Config is everything `keyfleet serve` can be told.
type Config struct {
	KafkaBrokers      []string
	EmbeddedKafkaAddr string
	TopicPrefix       string
	TopicPartitions   int
	KafkaCompression  string

	ClickHouse chstorage.Config

	HTTPAddr      string
	HTTPBodyLimit int
	AccessLog     bool

	DataDir      string
	RegistryFile string

	BatchSize      int
	FlushInterval  time.Duration
	NormalizeBatch int
	// AccessEvents says how the detectors get the events and whether
	// access.events is written: AccessInline, AccessPublish or AccessTopic.
	AccessEvents string

	Control ControlConfig
	Query   QueryConfig

	MemoryLimitMiB int
	GCPercent      int

	BootstrapToken    string
	PseudonymKey      string
	NukiWebhookSecret string
	// SeamWebhookSecret is Seam's (Svix) signing secret, "whsec_…".
	SeamWebhookSecret string
	// SchlageWebhookKeyFile is the path of Schlage's webhook public key (PEM).
	SchlageWebhookKeyFile string
	LogLevel              string
	LogFormat             string

	Detect DetectConfig

	Dashboards DashboardsConfig

	Security SecurityConfig

	Estate EstateConfig

	Identity IdentityConfig

	Exceptions ExceptionConfig

	Recert RecertConfig

	Instance InstanceConfig
}

// RegisterFlags defines serve's flags (each with an environment equivalent).
func (c *Config) RegisterFlags(s *flagenv.Set) {
	s.List(&c.KafkaBrokers, "kafka-brokers", "KEYFLEET_KAFKA_BROKERS", nil,
		"comma-separated Kafka bootstrap brokers (host:port); empty starts the embedded broker")
	s.String(&c.EmbeddedKafkaAddr, "embedded-kafka-addr", "KEYFLEET_EMBEDDED_KAFKA_ADDR", "127.0.0.1:9092",
		"loopback address of the embedded Kafka-protocol broker (used when --kafka-brokers is empty)")
	s.String(&c.TopicPrefix, "topic-prefix", "KEYFLEET_TOPIC_PREFIX", "",
		"prefix of every Kafka topic and consumer group name (e.g. staging.)")
	s.Int(&c.TopicPartitions, "topic-partitions", "KEYFLEET_TOPIC_PARTITIONS", 4,
		"partitions of topics keyfleet creates")
	s.String(&c.KafkaCompression, "kafka-compression", "KEYFLEET_KAFKA_COMPRESSION", "none",
		"compression of batches keyfleet produces: none (Kafka's own producer default; cheapest on one box), gzip, snappy, lz4, zstd (worth it across a network)")
	c.ClickHouse.RegisterFlags(s)
	s.String(&c.HTTPAddr, "http-addr", "KEYFLEET_HTTP_ADDR", "127.0.0.1:8080",
		"HTTP listen address (API, dashboards, /metrics, /healthz, /readyz)")
	s.Int(&c.HTTPBodyLimit, "http-body-limit", "KEYFLEET_HTTP_BODY_LIMIT", 8<<20,
		"largest accepted request body in bytes (larger gets 413)")
	s.Bool(&c.AccessLog, "access-log", "KEYFLEET_ACCESS_LOG", true, "log one line per HTTP request")
	s.String(&c.DataDir, "data-dir", "KEYFLEET_DATA_DIR", "var/keyfleet",
		"directory for local state (the embedded broker's log)")
	s.String(&c.RegistryFile, "registry", "KEYFLEET_REGISTRY", "",
		"lock/credential registry file (JSON) used to resolve sites, doors and subjects")
	s.Int(&c.BatchSize, "clickhouse-batch-size", "KEYFLEET_CLICKHOUSE_BATCH_SIZE", 50000,
		"rows per ClickHouse insert (flush when reached)")
	s.Duration(&c.FlushInterval, "clickhouse-flush-interval", "KEYFLEET_CLICKHOUSE_FLUSH_INTERVAL", time.Second,
		"insert at least this often when rows are waiting")
	s.Int(&c.NormalizeBatch, "normalize-batch-size", "KEYFLEET_NORMALIZE_BATCH_SIZE", 2000,
		"raw records normalized and handed to the detectors (and access.events) at once; inserts collect\n"+
			"        several of these up to --clickhouse-batch-size")
	s.String(&c.AccessEvents, "access-events", "KEYFLEET_ACCESS_EVENTS", AccessInline,
		"how events reach the detectors: inline (in-process from the normalized batch, access.events not written;\n"+
			"        one instance must own every lock.events.raw partition), publish (inline, and every event also\n"+
			"        published on access.events for other consumers), topic (published on access.events keyed by subject,\n"+
			"        the detectors read it in their consumer group: several instances, each owning some subjects)")
	c.Control.registerFlags(s)
	s.Secret(&c.BootstrapToken, "bootstrap-token", "KEYFLEET_BOOTSTRAP_TOKEN",
		"make this secret (≥32 characters) an admin API token at start-up (automation, make run); once revoked it stays revoked")
	s.Secret(&c.PseudonymKey, "pseudonym-key", "KEYFLEET_PSEUDONYM_KEY",
		"secret key of the keyed hashes that pseudonymize vendor user references (card numbers, auth ids); required with real Kafka")
	s.Secret(&c.NukiWebhookSecret, "nuki-webhook-secret", "KEYFLEET_NUKI_WEBHOOK_SECRET",
		"secret of Nuki's webhook signatures (X-Nuki-Signature-SHA256): signed POST /v1/ingest/nuki requests need no API token")
	s.Secret(&c.SeamWebhookSecret, "seam-webhook-secret", "KEYFLEET_SEAM_WEBHOOK_SECRET",
		"signing secret of Seam's webhooks (whsec_…; svix-id, svix-timestamp, svix-signature): signed POST /v1/ingest/seam requests need no API token")
	s.String(&c.SchlageWebhookKeyFile, "schlage-webhook-public-key", "KEYFLEET_SCHLAGE_WEBHOOK_PUBLIC_KEY", "",
		"path of Schlage's webhook signing public key (PEM): POST /v1/ingest/schlage requests with a valid WebHook-Signature need no API token")
	c.Query.RegisterFlags(s)
	s.Int(&c.MemoryLimitMiB, "memory-limit", "KEYFLEET_MEMORY_LIMIT", 1024,
		"soft limit of the Go heap in MiB (the GC works harder near it; 0: none); the process's RSS stays a little above it")
	s.Int(&c.GCPercent, "gc-percent", "KEYFLEET_GC_PERCENT", 50,
		"Go GC target percentage (GOGC): the heap grows to (1 + this/100) × the live heap before a collection; higher\n"+
			"        trades memory for less GC CPU (100: ~10% more ingest, ~1.5× the RSS), bounded by --memory-limit")
	s.String(&c.LogLevel, "log-level", "KEYFLEET_LOG_LEVEL", "info", "debug, info, warn or error")
	s.String(&c.LogFormat, "log-format", "KEYFLEET_LOG_FORMAT", "text", "text or json")
	c.Detect.registerFlags(s)
	c.Dashboards.registerFlags(s)
	c.Security.registerFlags(s)
	c.Estate.registerFlags(s)
	c.Identity.registerFlags(s)
	c.Exceptions.registerFlags(s)
	c.Recert.registerFlags(s)
	c.Instance.registerFlags(s)
}

// Validate checks the configuration and says what is wrong in terms of flags.
func (c *Config) Validate() error {
	var errs []error
	if len(c.KafkaBrokers) > 0 {
		if err := (bus.Config{Brokers: c.KafkaBrokers, Partitions: 1}).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("--kafka-brokers: %w", err))
		}
	} else if err := loopback(c.EmbeddedKafkaAddr); err != nil {
		errs = append(errs, fmt.Errorf("--embedded-kafka-addr: %w", err))
	}
	if _, ok := bus.Compressions[c.KafkaCompression]; !ok {
		errs = append(errs, fmt.Errorf("--kafka-compression %q: want none, gzip, snappy, lz4 or zstd", c.KafkaCompression))
	}
	if c.TopicPartitions < 1 || c.TopicPartitions > 1024 {
		errs = append(errs, fmt.Errorf("--topic-partitions: %d is not in 1..1024", c.TopicPartitions))
	}
	if err := c.ClickHouse.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("--clickhouse-addr/--clickhouse-database: %w", err))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		errs = append(errs, fmt.Errorf("--http-addr %q: want host:port", c.HTTPAddr))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir: must not be empty"))
	}
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("--clickhouse-batch-size: %d must be positive", c.BatchSize))
	}
	if c.FlushInterval < 10*time.Millisecond {
		errs = append(errs, fmt.Errorf("--clickhouse-flush-interval: %s is below 10ms", c.FlushInterval))
	}
	if c.NormalizeBatch < 1 {
		errs = append(errs, fmt.Errorf("--normalize-batch-size: %d must be positive", c.NormalizeBatch))
	}
	switch c.AccessEvents {
	case AccessInline, AccessPublish, AccessTopic:
	default:
		errs = append(errs, fmt.Errorf("--access-events %q: want inline, publish or topic", c.AccessEvents))
	}
	if len(c.KafkaBrokers) > 0 && len(c.PseudonymKey) < 16 {
		errs = append(errs, errors.New("--pseudonym-key (KEYFLEET_PSEUDONYM_KEY): at least 16 characters are required when running against real Kafka"))
	}
	if err := c.Detect.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Control.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Query.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Dashboards.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Estate.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Identity.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Exceptions.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Recert.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Instance.validate(); err != nil {
		errs = append(errs, err)
	}
	if c.MemoryLimitMiB < 0 || (c.MemoryLimitMiB > 0 && c.MemoryLimitMiB < 64) {
		errs = append(errs, fmt.Errorf("--memory-limit: %d MiB; want 0 (none) or at least 64", c.MemoryLimitMiB))
	}
	if c.GCPercent < 10 {
		errs = append(errs, fmt.Errorf("--gc-percent: %d; want at least 10", c.GCPercent))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: want debug, info, warn or error", c.LogLevel))
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: want text or json", c.LogFormat))
	}
	if err := c.WebhookKeys().Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := bootstrapLen(c.BootstrapToken); err != nil {
		errs = append(errs, err)
	}
	if err := c.Security.validate(len(c.KafkaBrokers) > 0); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func loopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port", addr)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q: the embedded broker listens on loopback only", addr)
	}
	return nil
}

// WebhookKeys returns the vendors' webhook secrets and keys.
func (c *Config) WebhookKeys() ingest.WebhookKeys {
	return ingest.WebhookKeys{NukiSecret: c.NukiWebhookSecret, SeamSecret: c.SeamWebhookSecret,
		SchlageKeyFile: c.SchlageWebhookKeyFile}
}

// Bus returns the Kafka configuration once the brokers are known.
func (c *Config) Bus(brokers []string) bus.Config {
	return bus.Config{Brokers: brokers, TopicPrefix: c.TopicPrefix, Partitions: c.TopicPartitions, Compression: c.KafkaCompression}
}

// Package bus holds keyfleet's Kafka plumbing: topic names, topic creation,
// the embedded Kafka-protocol broker, and tuned kafka-go readers and writers.
// Every part of keyfleet talks to Kafka through kafka-go, whether the broker
// is a real cluster or the embedded one. It also holds how keyfleet's loops
// ride out dependency outages (Retry, Backoff, Every, permanent errors and
// loop observers; see retry.go), which its batch consumer is built on.
package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// Topic names from the design; Config.TopicPrefix is prepended to each.
const (
	TopicRaw              = "lock.events.raw"
	TopicDLQ              = "lock.events.dlq"
	TopicAccess           = "access.events"
	TopicAlerts           = "alerts"
	TopicCredentialEvents = "credential.events"
	TopicControlCommands  = "control.commands"
	TopicLockCommands     = "lock.commands"
	TopicLockAcks         = "lock.acks"
	// TopicAuditCheckpoints holds signed heads of the audit chains, keyed by
	// chain and compacted (the latest of each chain stays): an anchor that
	// ClickHouse writers cannot rewrite.
	TopicAuditCheckpoints = "audit.checkpoints"
	// TopicLockRegistry holds the lock registry's records (compacted, keyed
	// by vendor/lock id): every instance follows it from the beginning.
	TopicLockRegistry = "lock.registry"
	// TopicExceptions holds the exception register's records (compacted,
	// keyed by exception id): every instance follows it from the beginning.
	TopicExceptions = "exception.register"
	// TopicIdentityWrites carries identity write intents (ids and versions,
	// never personal data) to the identity store's one decider.
	TopicIdentityWrites = "identity.writes"
	// TopicIdentityChanges carries joiner/mover/leaver changes
	// (pseudonymous), keyed by subject id.
	TopicIdentityChanges = "identity.changes"
)

// Consumer groups (unprefixed; Config.TopicPrefix is prepended), each
// beside the topic it reads.
const (
	GroupNormalize        = "keyfleet-normalize"         // lock.events.raw → access.events / lock.events.dlq
	GroupClickHouse       = "keyfleet-clickhouse"        // access.events → access_events
	GroupDeadLetter       = "keyfleet-dlq"               // lock.events.dlq → dead_letters
	GroupDetect           = "keyfleet-detect"            // access.events + credential.events → alerts
	GroupAlerts           = "keyfleet-alerts"            // alerts → ClickHouse alerts
	GroupRespond          = "keyfleet-respond"           // alerts → responders
	GroupControl          = "keyfleet-control"           // control.commands: the credential owners
	GroupAcks             = "keyfleet-control-acks"      // lock.acks → lock_acks + owners
	GroupCredentialEvents = "keyfleet-credential-events" // credential.events → credential_events
	GroupGatewaySim       = "keyfleet-gateway-sim"       // lock.commands → the simulated lock gateways
	GroupLockRegistry     = "keyfleet-lock-registry"     // lock.registry → lock_registry (history)
	GroupExceptions       = "keyfleet-exceptions"        // exception.register → exceptions (history)
	GroupIdentityOwner    = "keyfleet-identity-owner"    // identity.writes: the identity store's decider
	GroupIdentitySync     = "keyfleet-identity-sync"     // identity.changes → credential requests and revocations
)

// Writer is the part of a kafka-go writer keyfleet's stages produce with
// (a *kafka.Writer from NewWriter; tests pass their own).
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

var _ Writer = (*kafka.Writer)(nil)

// AllTopics lists every topic keyfleet uses.
var AllTopics = []string{
	TopicRaw, TopicDLQ, TopicAccess, TopicAlerts, TopicCredentialEvents,
	TopicControlCommands, TopicLockCommands, TopicLockAcks, TopicAuditCheckpoints, TopicLockRegistry,
	TopicIdentityWrites, TopicIdentityChanges, TopicExceptions,
}

// topicConfigs are topic settings beyond the broker defaults.
var topicConfigs = map[string][]kafka.ConfigEntry{
	TopicAuditCheckpoints: {{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	TopicLockRegistry:     {{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	TopicExceptions:       {{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	// The control plane's state: the newest full record per credential id
	// (control/stream also sets it on topics created before).
	TopicCredentialEvents: {{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
}

// Config says where Kafka is and how keyfleet's topics are named.
type Config struct {
	Brokers     []string
	TopicPrefix string
	Partitions  int // partitions of topics keyfleet creates
	// Compression of produced batches: none, gzip, snappy, lz4, zstd
	// (empty means none, as Kafka's own producers default to).
	Compression string
	// Security is TLS and SASL for every connection (nil: plaintext).
	Security *Security
}

// Compressions are the accepted Config.Compression values.
var Compressions = map[string]kafka.Compression{
	"none": 0, "gzip": kafka.Gzip, "snappy": kafka.Snappy, "lz4": kafka.Lz4, "zstd": kafka.Zstd,
}

// Topic returns the full name of one of keyfleet's topics.
func (c Config) Topic(name string) string { return c.TopicPrefix + name }

// Validate checks the configuration.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("no Kafka brokers")
	}
	for _, b := range c.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			return fmt.Errorf("kafka broker %q: want host:port", b)
		}
	}
	if c.Partitions < 1 {
		return errors.New("topic partitions must be at least 1")
	}
	if _, ok := Compressions[c.Compression]; !ok && c.Compression != "" {
		return fmt.Errorf("kafka compression %q: want none, gzip, snappy, lz4 or zstd", c.Compression)
	}
	return nil
}

// EnsureTopics creates keyfleet's topics that do not exist yet.
func EnsureTopics(ctx context.Context, c Config) error {
	client := c.Client(15 * time.Second)
	topics := make([]kafka.TopicConfig, 0, len(AllTopics))
	for _, t := range AllTopics {
		topics = append(topics, kafka.TopicConfig{
			Topic:             c.Topic(t),
			NumPartitions:     c.Partitions,
			ReplicationFactor: -1, // broker default
			ConfigEntries:     topicConfigs[t],
		})
	}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, terr)
		}
	}
	return nil
}

// Ping checks that a broker answers a metadata request now, over a
// connection of its own (a kafka.Client answers metadata from its
// transport's cache, even while every broker is down). One broker
// answering is enough.
func Ping(ctx context.Context, c Config) error {
	var errs []error
	for _, b := range c.Brokers {
		err := pingBroker(ctx, c, b, c.Topic(TopicRaw))
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("kafka metadata: %w", errors.Join(errs...))
}

func pingBroker(ctx context.Context, c Config, broker, topic string) error {
	dialer := c.Dialer() // TLS and SASL when configured
	if dialer == nil {
		dialer = &kafka.Dialer{Timeout: 5 * time.Second}
	}
	conn, err := dialer.DialContext(ctx, "tcp", broker)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := conn.ReadPartitions(topic); err != nil {
		return fmt.Errorf("%s: %w", broker, err)
	}
	return nil
}

// MaxBatchBytes bounds one produce batch per partition below Kafka's default
// max.message.bytes (1 MiB plus a little), which the embedded broker and
// unconfigured topics enforce: a larger, uncompressed batch of a busy
// partition would be refused as MESSAGE_TOO_LARGE and retried forever.
// kafka-go splits a WriteMessages call into as many batches as it needs.
const MaxBatchBytes = 960 << 10

// NewWriter returns a synchronous writer for one topic, tuned for throughput:
// WriteMessages returns once every message it was given is acknowledged by the
// broker (acks=all), so callers can commit their own input offsets afterwards.
// kafka-go allocates room for BatchSize messages in every batch, so BatchSize
// is about as many records of ~470 B as MaxBatchBytes holds, not more
// (BenchmarkWriteMessages: 10,000 allocated 1,486 B per record, 2,048 529 B).
func NewWriter(c Config, topic string) *kafka.Writer {
	return &kafka.Writer{
		Addr:            kafka.TCP(c.Brokers...),
		Topic:           c.Topic(topic),
		Balancer:        &kafka.Hash{},
		RequiredAcks:    kafka.RequireAll,
		BatchSize:       2048,
		BatchBytes:      MaxBatchBytes,
		BatchTimeout:    2 * time.Millisecond,
		Compression:     compression(c.Compression),
		MaxAttempts:     10,
		WriteBackoffMin: 50 * time.Millisecond,
		WriteBackoffMax: 2 * time.Second,
		Transport:       c.Transport(),
	}
}

// FetchMaxWait is how long the broker holds a fetch of keyfleet's readers
// (group readers and followers) open while a partition has nothing new. It
// bounds nothing that callers see: a fetch returns as soon as one record
// arrives (MinBytes 1), so it does not delay delivery. What it sets is the
// rate of empty fetches: every partition of every reader asks again when its
// wait ends, and serve runs about 70 such fetch loops (a dozen consumer
// groups and the followers, 4 partitions each) that are idle most of the
// time. At 250 ms they were ~280 requests/s, about half of everything serve
// sent the broker during a drain, at ~150 µs of broker CPU each (0.04 cores,
// ~0.6 µs per event at 70,000 events/s). What it costs: a reader's Close and
// a consumer group's rebalance wait up to this long for a fetch in flight
// (kafka-go's own default is 10 s).
const FetchMaxWait = time.Second

// NewGroupReader returns a consumer-group reader for one topic. Offsets are
// committed only by explicit CommitMessages calls.
func NewGroupReader(c Config, topic, group string) *kafka.Reader {
	return kafka.NewReader(GroupReaderConfig(c, topic, group))
}

// PartitionReaderConfig is the configuration of a reader of one partition
// without a group (the followers that rebuild state from a topic): an idle
// fetch is held FetchMaxWait, a record ends it at once (MinBytes 1). Callers
// set the start offset and may raise MaxBytes.
func PartitionReaderConfig(c Config, topic string, partition int) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:        c.Brokers,
		Topic:          c.Topic(topic),
		Partition:      partition,
		MinBytes:       1,
		MaxBytes:       8 << 20,
		MaxWait:        FetchMaxWait,
		ReadBackoffMin: 20 * time.Millisecond,
		ReadBackoffMax: time.Second,
		Dialer:         c.Dialer(), // Kafka TLS/SASL like every other reader
	}
}

// GroupReaderConfig is NewGroupReader's configuration (for a caller that
// adds loggers).
func GroupReaderConfig(c Config, topic, group string) kafka.ReaderConfig {
	return kafka.ReaderConfig{
		Brokers:           c.Brokers,
		Topic:             c.Topic(topic),
		GroupID:           c.TopicPrefix + group,
		MinBytes:          1,
		MaxBytes:          8 << 20,
		MaxWait:           FetchMaxWait,
		QueueCapacity:     5000,
		CommitInterval:    0, // synchronous commits
		StartOffset:       kafka.FirstOffset,
		HeartbeatInterval: 3 * time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  30 * time.Second,
		ReadBackoffMin:    50 * time.Millisecond,
		ReadBackoffMax:    1 * time.Second,
		Dialer:            c.Dialer(),
	}
}

// RawRef formats a Kafka record position as topic/partition/offset.
func RawRef(m kafka.Message) string {
	return m.Topic + "/" + strconv.Itoa(m.Partition) + "/" + strconv.FormatInt(m.Offset, 10)
}

func compression(name string) kafka.Compression {
	return Compressions[name] // "" and unknown names: none
}

// Package testenv gives tests real services: a ClickHouse database and a set
// of Kafka topics of their own, on the servers `make test` starts
// (scripts/clickhouse.sh, scripts/kafka.sh).
//
// Environment:
//
//	KEYFLEET_TEST_CLICKHOUSE_ADDR  ClickHouse native address (default 127.0.0.1:19000)
//	KEYFLEET_TEST_KAFKA_BROKERS    real Kafka brokers (default: an embedded broker per test)
//	KEYFLEET_TEST_REQUIRE          "1": a missing service fails the test instead of skipping it
//
// `make test` sets all three, so nothing is skipped in CI.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
)

// Required reports whether missing services must fail tests.
func Required() bool { return os.Getenv("KEYFLEET_TEST_REQUIRE") == "1" }

func unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if Required() {
		t.Fatalf("%s is required (KEYFLEET_TEST_REQUIRE=1) but unavailable: %v", what, err)
	}
	t.Skipf("%s unavailable (start it with make services): %v", what, err)
}

// ID returns a short random id for names (databases, topic prefixes).
func ID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ClickHouseAddr is the address of the test ClickHouse server.
func ClickHouseAddr() string {
	if a := os.Getenv("KEYFLEET_TEST_CLICKHOUSE_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:19000"
}

// ClickHouse creates a fresh database with keyfleet's schema migrated and
// returns a connection to it and its config. The database is dropped when the
// test ends.
func ClickHouse(t testing.TB) (driver.Conn, chstorage.Config) {
	t.Helper()
	cfg := chstorage.Config{Addr: ClickHouseAddr(), Database: "kftest_" + ID(), Username: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := chstorage.Open(ctx, cfg)
	if err != nil {
		unavailable(t, "ClickHouse at "+cfg.Addr, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	require.NoError(t, chstorage.Migrate(ctx, conn, slog.New(slog.DiscardHandler)))
	return conn, cfg
}

// RealKafka reports whether a real Kafka broker is configured.
func RealKafka() bool { return os.Getenv("KEYFLEET_TEST_KAFKA_BROKERS") != "" }

// Kafka returns a bus config with a unique topic prefix and keyfleet's topics
// created. It uses the real broker when KEYFLEET_TEST_KAFKA_BROKERS is set and
// an embedded broker otherwise.
func Kafka(t testing.TB, partitions int) bus.Config {
	t.Helper()
	var brokers []string
	if env := os.Getenv("KEYFLEET_TEST_KAFKA_BROKERS"); env != "" {
		brokers = strings.Split(env, ",")
	} else {
		emb, err := bus.StartEmbedded("127.0.0.1:0", "", partitions, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(emb.Close)
		brokers = []string{emb.Addr()}
	}
	cfg := bus.Config{Brokers: brokers, TopicPrefix: "kftest." + ID() + ".", Partitions: partitions}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureTopics(ctx, cfg); err != nil {
		unavailable(t, "Kafka at "+strings.Join(brokers, ","), err)
	}
	if RealKafka() {
		t.Cleanup(func() { deleteTopics(cfg) })
	}
	return cfg
}

// RequireRealKafka skips (or, under KEYFLEET_TEST_REQUIRE=1, fails) a test
// that must run against a real Kafka broker, then returns its config.
func RequireRealKafka(t testing.TB, partitions int) bus.Config {
	t.Helper()
	if !RealKafka() {
		unavailable(t, "real Kafka (KEYFLEET_TEST_KAFKA_BROKERS)", nil)
	}
	return Kafka(t, partitions)
}

// Logger returns a logger that writes through t.Log.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// deleteTopics removes a test's topics from the shared broker (best effort).
func deleteTopics(cfg bus.Config) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	names := make([]string, 0, len(bus.AllTopics))
	for _, t := range bus.AllTopics {
		names = append(names, cfg.Topic(t))
	}
	client := cfg.Client(15 * time.Second)
	_, _ = client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: names})
}

package bus_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func TestSecurityFlags(t *testing.T) {
	f := func(flags bus.SecurityFlags, wantErr string) {
		t.Helper()
		s, err := flags.Build()
		if wantErr != "" {
			assert.ErrorContains(t, err, wantErr)
			return
		}
		require.NoError(t, err)
		if !flags.Enabled() {
			assert.Nil(t, s)
		}
	}
	f(bus.SecurityFlags{}, "")
	f(bus.SecurityFlags{Mechanism: "plain"}, "needs --kafka-sasl-user")
	f(bus.SecurityFlags{Mechanism: "gssapi", Username: "u", Password: "p"}, "want plain, scram-sha-256 or scram-sha-512")
	f(bus.SecurityFlags{Username: "u"}, "need --kafka-sasl-mechanism")
	f(bus.SecurityFlags{CertFile: "c.pem"}, "go together")
	f(bus.SecurityFlags{CAFile: "/nonexistent/ca.pem"}, "--kafka-tls-ca")
	for _, m := range []string{"plain", "scram-sha-256", "scram-sha-512"} {
		s, err := bus.SecurityFlags{TLS: true, Mechanism: m, Username: "u", Password: "p"}.Build()
		require.NoError(t, err)
		assert.Equal(t, strings.ToUpper(m), s.SASL.Name())
		assert.NotNil(t, s.TLS)
	}
	var plain bus.Config
	assert.Nil(t, plain.Dialer())
	assert.Nil(t, plain.Transport())
}

// tlsBroker is a SASL_SSL broker with a throwaway CA: the one named by
// KEYFLEET_KAFKA_TLS_* (scripts/kafka.sh start-tls prints them), else one
// this test starts with scripts/testca.sh and scripts/kafka.sh start-tls
// (when a real Kafka is configured: its jars are cached then).
func tlsBroker(t *testing.T) map[string]string {
	t.Helper()
	env := map[string]string{}
	if b := os.Getenv("KEYFLEET_KAFKA_TLS_BROKERS"); b != "" {
		for _, k := range []string{"BROKERS", "CA", "PLAIN_USER", "PLAIN_PASSWORD", "SCRAM_USER", "SCRAM_PASSWORD"} {
			env[k] = os.Getenv("KEYFLEET_KAFKA_TLS_" + k)
		}
		return env
	}
	if !testenv.RealKafka() {
		t.Skip("no SASL_SSL broker: set KEYFLEET_KAFKA_TLS_* (scripts/kafka.sh start-tls) or KEYFLEET_TEST_KAFKA_BROKERS")
	}
	scripts, err := filepath.Abs("../../scripts")
	require.NoError(t, err)
	dir := t.TempDir()
	out, err := exec.Command(filepath.Join(scripts, "testca.sh"), dir).CombinedOutput()
	require.NoError(t, err, string(out))
	port := freePortPair(t)
	cmd := exec.Command(filepath.Join(scripts, "kafka.sh"), "start-tls", dir, fmt.Sprint(port))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err = cmd.Output()
	t.Cleanup(func() { _ = exec.Command(filepath.Join(scripts, "kafka.sh"), "stop-tls", dir).Run() })
	require.NoError(t, err, stderr.String())
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[strings.TrimPrefix(k, "KEYFLEET_KAFKA_TLS_")] = v
		}
	}
	require.NotEmpty(t, env["BROKERS"], string(out))
	return env
}

// freePortPair returns a port p with p and p+1 free (broker and controller).
func freePortPair(t *testing.T) int {
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if ln2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1)); err == nil {
			ln2.Close()
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

// Every kind of Kafka client bus makes, over TLS with SASL PLAIN and
// SCRAM-SHA-512, against a real SASL_SSL broker; and the refusals: a wrong
// password, no TLS, a CA that did not sign the broker.
func TestKafkaTLSAndSASL(t *testing.T) {
	env := tlsBroker(t)
	brokers := strings.Split(env["BROKERS"], ",")
	f := func(name string, flags bus.SecurityFlags) {
		t.Run(name, func(t *testing.T) {
			sec, err := flags.Build()
			require.NoError(t, err)
			cfg := bus.Config{Brokers: brokers, TopicPrefix: "kftls." + testenv.ID() + ".", Partitions: 1, Security: sec}
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			require.NoError(t, bus.EnsureTopics(ctx, cfg))
			require.NoError(t, bus.Ping(ctx, cfg))
			w := bus.NewWriter(cfg, bus.TopicRaw)
			defer w.Close()
			require.NoError(t, w.WriteMessages(ctx, kafka.Message{Value: []byte("a")}, kafka.Message{Value: []byte("b")}))
			r := bus.NewGroupReader(cfg, bus.TopicRaw, "tls-test")
			defer r.Close()
			var got []string
			for len(got) < 2 {
				m, err := r.FetchMessage(ctx)
				require.NoError(t, err)
				got = append(got, string(m.Value))
				require.NoError(t, r.CommitMessages(ctx, m))
			}
			assert.Equal(t, []string{"a", "b"}, got)
			lag, err := bus.Lag(ctx, cfg, bus.Consumer{Group: "tls-test", Topic: bus.TopicRaw})
			require.NoError(t, err)
			assert.Zero(t, lag)
			var read []string
			require.NoError(t, bus.ReadTopic(ctx, cfg, bus.TopicRaw, func(m kafka.Message) error {
				read = append(read, string(m.Value))
				return nil
			}))
			assert.Equal(t, []string{"a", "b"}, read)
		})
	}
	f("plain", bus.SecurityFlags{CAFile: env["CA"], Mechanism: "plain", Username: env["PLAIN_USER"], Password: env["PLAIN_PASSWORD"]})
	f("scram-sha-512", bus.SecurityFlags{CAFile: env["CA"], Mechanism: "scram-sha-512", Username: env["SCRAM_USER"], Password: env["SCRAM_PASSWORD"]})

	refused := func(name string, flags bus.SecurityFlags, want string) {
		t.Run(name, func(t *testing.T) {
			sec, err := flags.Build()
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = bus.Ping(ctx, bus.Config{Brokers: brokers, Partitions: 1, Security: sec})
			require.Error(t, err)
			t.Logf("refused: %v", err)
			if want != "" {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
	refused("wrong password", bus.SecurityFlags{CAFile: env["CA"], Mechanism: "scram-sha-512", Username: env["SCRAM_USER"], Password: "wrong"}, "SASL")
	refused("no TLS", bus.SecurityFlags{Mechanism: "plain", Username: env["PLAIN_USER"], Password: env["PLAIN_PASSWORD"]}, "")
	refused("another CA", bus.SecurityFlags{TLS: true, Mechanism: "plain", Username: env["PLAIN_USER"], Password: env["PLAIN_PASSWORD"]}, "certificate")
}

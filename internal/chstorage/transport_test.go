package chstorage_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

func TestConfigValidate(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("pw\n"), 0o600))
	ok := chstorage.Config{Addr: "127.0.0.1:8443", Database: "keyfleet", Protocol: "http", TLS: true, CAFile: file, PasswordFile: file}
	require.NoError(t, ok.Validate())
	f := func(change func(c *chstorage.Config), want string) {
		t.Helper()
		c := ok
		change(&c)
		err := c.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
	}
	f(func(c *chstorage.Config) { c.Protocol = "grpc" }, "want native or http")
	f(func(c *chstorage.Config) { c.TLS = false }, "need --clickhouse-tls")
	f(func(c *chstorage.Config) { c.CAFile, c.TLS, c.TLSSkipVerify = "", false, true }, "need --clickhouse-tls")
	f(func(c *chstorage.Config) { c.TLSSkipVerify = true }, "--clickhouse-ca-file or --clickhouse-tls-skip-verify, not both")
	f(func(c *chstorage.Config) { c.Password = "pw" }, "--clickhouse-password or --clickhouse-password-file, not both")
	f(func(c *chstorage.Config) { c.CAFile = filepath.Join(dir, "missing.pem") }, "missing.pem")
	f(func(c *chstorage.Config) { c.PasswordFile = filepath.Join(dir, "missing") }, "missing")
	f(func(c *chstorage.Config) { c.Addr = "localhost" }, "want host:port")
	f(func(c *chstorage.Config) { c.Addr = "127.0.0.1:19101,localhost" }, `"localhost": want host:port`)
	f(func(c *chstorage.Config) { c.Addr = " , " }, "want host:port")
	f(func(c *chstorage.Config) { c.Cluster = "key-fleet" }, "--clickhouse-cluster")

	several := ok
	several.Addr, several.Cluster = "127.0.0.1:19101, 127.0.0.1:19102", "keyfleet"
	require.NoError(t, several.Validate())
	assert.Equal(t, []string{"127.0.0.1:19101", "127.0.0.1:19102"}, several.Addrs())
}

// Several addresses: a connection goes to the first that answers (the
// first here is a closed port).
func TestOpenFailsOverBetweenAddresses(t *testing.T) {
	conn, ch := testenv.ClickHouse(t)
	conn.Close()
	cfg := ch
	cfg.Addr = testenv.FreeAddr(t) + "," + ch.Addr
	ctx := context.Background()
	c, err := chstorage.Open(ctx, cfg)
	require.NoError(t, err)
	defer c.Close()
	var n uint64
	require.NoError(t, c.QueryRow(ctx, "SELECT count() FROM access_events").Scan(&n))
	assert.Empty(t, chstorage.ClusterOf(c))
}

// The HTTP transport (clickhouse-go's) needs ClickHouse 23.x or newer: its
// handshake sends the client_protocol_version parameter and reads the Native
// format as current servers write it. The 18.16 test server refuses it, and
// keyfleet says why.
func TestHTTPTransportExplainsOldServers(t *testing.T) {
	native, _ := testenv.ClickHouse(t)
	var version string
	require.NoError(t, native.QueryRow(context.Background(), "SELECT version()").Scan(&version))
	if !strings.HasPrefix(version, "18.") {
		t.Skipf("the server is %s, not 18.x", version)
	}
	// The same server's HTTP port (scripts/clickhouse.sh: KEYFLEET_CH_HTTP_PORT, default 18123).
	host, _, err := net.SplitHostPort(testenv.ClickHouseAddr())
	require.NoError(t, err)
	port := os.Getenv("KEYFLEET_CH_HTTP_PORT")
	if port == "" {
		port = "18123"
	}
	cfg := chstorage.Config{Addr: net.JoinHostPort(host, port), Protocol: chstorage.ProtocolHTTP,
		Database: "kftest_" + testenv.ID(), Username: "default"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = chstorage.Open(ctx, cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "too old for the HTTP protocol")
	assert.Contains(t, err.Error(), "Unknown setting client_protocol_version", "the server's own words are kept")
	t.Logf("as expected: %v", err)
}

// TestHTTPTransport runs against a ClickHouse 23.x+ HTTP interface named by
// KEYFLEET_TEST_CLICKHOUSE_HTTP_ADDR (none is reachable here; see
// TestHTTPTransportExplainsOldServers for the 18.16 server): database
// creation, migrations, batch inserts and queries with bound arguments,
// without and with lz4.
func TestHTTPTransport(t *testing.T) {
	addr := os.Getenv("KEYFLEET_TEST_CLICKHOUSE_HTTP_ADDR")
	if addr == "" {
		t.Skip("set KEYFLEET_TEST_CLICKHOUSE_HTTP_ADDR to a ClickHouse 23.x+ HTTP interface (the 18.16 test server's is too old)")
	}
	for _, compression := range []string{"none", "lz4"} {
		t.Run(compression, func(t *testing.T) {
			cfg := chstorage.Config{Addr: addr, Protocol: chstorage.ProtocolHTTP, Database: "kftest_" + testenv.ID(),
				Username: os.Getenv("KEYFLEET_TEST_CLICKHOUSE_HTTP_USER"), Password: os.Getenv("KEYFLEET_TEST_CLICKHOUSE_HTTP_PASSWORD"),
				TLS: os.Getenv("KEYFLEET_TEST_CLICKHOUSE_HTTP_TLS") == "1", Compression: compression}
			require.NoError(t, cfg.Validate())
			checkTransport(t, cfg)
		})
	}
}

// checkTransport opens a fresh database with cfg (Open creates it), migrates
// it, inserts 20,000 events as batches (native blocks, as the pipeline's sink
// sends them) and reads them back with statements.
func checkTransport(t *testing.T, cfg chstorage.Config) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := chstorage.Open(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database)
		conn.Close()
	})
	require.NoError(t, chstorage.Migrate(ctx, conn, slog.New(slog.DiscardHandler)))

	const n, credentials = 20000, 1500
	base := time.Date(2024, 3, 4, 0, 0, 0, 0, time.UTC)
	rows := make([][]any, 0, n)
	for i := range n {
		ts := base.Add(time.Duration(i) * time.Second)
		row := fixtureRow(chstorage.AccessEvents)
		for k, c := range chstorage.AccessEvents.Columns {
			switch c.Name {
			case "event_id":
				row[k] = fmt.Sprintf("6f1c6a0e-2b4c-4b8e-9d51-%012x", i)
			case "ts":
				row[k] = ts
			case "ts_ms", "received_ms", "inserted_ms":
				row[k] = ts.UnixMilli()
			case "credential_id":
				row[k] = fmt.Sprintf("cred-%d", i%credentials)
			}
		}
		rows = append(rows, row)
	}
	for len(rows) > 0 {
		k := min(len(rows), 8192)
		require.NoError(t, chstorage.InsertRows(ctx, conn, chstorage.AccessEvents.Name, chstorage.AccessEvents.ColumnNames(), rows[:k]...))
		rows = rows[k:]
	}
	var total uint64
	require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM access_events").Scan(&total))
	assert.Equal(t, uint64(n), total)

	q, err := chstorage.Lookup("stream/last_uses")
	require.NoError(t, err)
	res, err := q.Query(ctx, conn, chstorage.Args{"since_s": base.Unix()})
	require.NoError(t, err)
	last := map[string]int64{}
	for res.Next() {
		var id string
		var ms int64
		require.NoError(t, res.Scan(&id, &ms))
		last[id] = ms
	}
	require.NoError(t, res.Err())
	res.Close()
	assert.Len(t, last, credentials)
	assert.Equal(t, base.Add((n-1)*time.Second).UnixMilli(), last[fmt.Sprintf("cred-%d", (n-1)%credentials)])

	ins, err := chstorage.Lookup("auth/insert_token_usage")
	require.NoError(t, err)
	require.NoError(t, ins.Insert(ctx, conn, []any{"t1", int64(5)}, []any{"t1", int64(9)}, []any{"t2", int64(7)}))
	usage, err := chstorage.Lookup("auth/token_usage")
	require.NoError(t, err)
	res, err = usage.Query(ctx, conn, nil)
	require.NoError(t, err)
	got := map[string]int64{}
	for res.Next() {
		var id string
		var ms int64
		require.NoError(t, res.Scan(&id, &ms))
		got[id] = ms
	}
	require.NoError(t, res.Err())
	res.Close()
	assert.Equal(t, map[string]int64{"t1": 9, "t2": 7}, got)
}

// freePort returns a loopback port nothing listens on (now).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestTLSTransport starts a throwaway 18.16 server that speaks TLS only
// (scripts/testca.sh, scripts/clickhouse.sh start-tls), with a password user:
// the native protocol over TLS with the test CA and a password file works
// end to end; without the CA the certificate is refused; skipping
// verification is possible only when asked for; HTTPS meets the same
// too-old-server limit as HTTP.
func TestTLSTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a ClickHouse server")
	}
	if _, err := exec.LookPath("clickhouse-server"); err != nil {
		if testenv.Required() {
			t.Fatalf("clickhouse-server is required (KEYFLEET_TEST_REQUIRE=1): %v", err)
		}
		t.Skip("clickhouse-server not installed")
	}
	root := repoRoot(t)
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(args[0], args[1:]...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		require.NoError(t, err, "%s: %s", strings.Join(args, " "), stderr.String())
		return string(out)
	}
	run(filepath.Join(root, "scripts", "testca.sh"), dir)
	nativePort, httpsPort := freePort(t), freePort(t)
	t.Cleanup(func() { _ = exec.Command(filepath.Join(root, "scripts", "clickhouse.sh"), "stop-tls", dir).Run() })
	env := map[string]string{}
	for _, line := range strings.Split(run(filepath.Join(root, "scripts", "clickhouse.sh"), "start-tls", dir,
		strconv.Itoa(nativePort), strconv.Itoa(httpsPort)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	base := chstorage.Config{Addr: env["KEYFLEET_CH_TLS_ADDR"], Username: env["KEYFLEET_CH_TLS_USER"],
		PasswordFile: filepath.Join(dir, "password"), TLS: true, CAFile: env["KEYFLEET_CH_TLS_CA"]}

	t.Run("native with CA and password file", func(t *testing.T) {
		cfg := base
		cfg.Database = "kftest_" + testenv.ID()
		require.NoError(t, cfg.Validate())
		checkTransport(t, cfg)
	})
	open := func(cfg chstorage.Config) error {
		cfg.Database = "default"
		require.NoError(t, cfg.Validate())
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := chstorage.Open(ctx, cfg)
		if err == nil {
			conn.Close()
		}
		return err
	}
	t.Run("system roots refuse the test CA", func(t *testing.T) {
		cfg := base
		cfg.CAFile = ""
		err := open(cfg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
	})
	t.Run("skip verify", func(t *testing.T) {
		cfg := base
		cfg.CAFile, cfg.TLSSkipVerify = "", true
		require.NoError(t, open(cfg))
	})
	t.Run("wrong password", func(t *testing.T) {
		cfg := base
		cfg.PasswordFile, cfg.Password = "", "wrong"
		require.Error(t, open(cfg))
	})
	t.Run("https meets the HTTP limit", func(t *testing.T) {
		cfg := base
		cfg.Addr, cfg.Protocol = env["KEYFLEET_CH_HTTPS_ADDR"], chstorage.ProtocolHTTP
		err := open(cfg)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "too old for the HTTP protocol", "TLS itself worked: the server answered")
	})
}

// Package chstorage holds keyfleet's ClickHouse side: connecting, the
// versioned schema migrations and small insert helpers. The batched
// Kafka-to-ClickHouse sink is in package pipeline.
//
// All SQL here is the portable subset that runs on ClickHouse 18.16 (Debian's
// package) and on current releases: no TTL, no DateTime64, no Map, no
// JSONExtract, no window functions; INSERTs always name their columns.
package chstorage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where ClickHouse is and how to reach it.
type Config struct {
	// Addr is host:port of the native protocol, or of the HTTP(S)
	// interface; several comma-separated addresses (a cluster's nodes) are
	// tried in order, and a new connection goes to the next when one is down.
	Addr     string
	Database string
	Username string
	Password string
	// PasswordFile holds the password (its first line), instead of Password.
	PasswordFile string
	// Protocol is "native" (the default; port 9000, 9440 with TLS) or "http"
	// (port 8123, 8443 with TLS: what managed ClickHouse services offer).
	Protocol string
	// TLS encrypts the connection; the server's certificate is checked
	// against the system's roots, or CAFile's. TLSSkipVerify turns the check
	// off (test setups only).
	TLS           bool
	CAFile        string
	TLSSkipVerify bool
	// Compression of the blocks sent: "lz4" or "none" (on loopback,
	// compressing costs both sides CPU and saves nothing).
	Compression string
	// Cluster names the ClickHouse cluster (remote_servers) keyfleet's tables
	// live on: Migrate creates every table X as X_local (Replicated*, ON
	// CLUSTER) plus X, a Distributed table over it (see cluster.go). Empty:
	// one server, plain tables.
	Cluster string
	// shardMacro is the macro the ZooKeeper paths of replicated tables name
	// the shard by: "shard" (empty) in every deployment; the tests of the
	// local two-shard cluster use another (export_test.go).
	shardMacro string
}

// Addrs returns the addresses of Addr, split on commas.
func (c Config) Addrs() []string {
	var out []string
	for _, a := range strings.Split(c.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Protocols.
const (
	ProtocolNative = "native"
	ProtocolHTTP   = "http"
)

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks the configuration.
func (c Config) Validate() error {
	addrs := c.Addrs()
	if len(addrs) == 0 {
		return fmt.Errorf("clickhouse address %q: want host:port[,host:port…]", c.Addr)
	}
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("clickhouse address %q: want host:port[,host:port…]", a)
		}
	}
	if c.Cluster != "" && !identRE.MatchString(c.Cluster) {
		return fmt.Errorf("--clickhouse-cluster %q: want letters, digits and _", c.Cluster)
	}
	if c.Compression != "" && c.Compression != "lz4" && c.Compression != "none" {
		return fmt.Errorf("clickhouse compression %q: want lz4 or none", c.Compression)
	}
	if !identRE.MatchString(c.Database) {
		return fmt.Errorf("clickhouse database %q: want letters, digits and _", c.Database)
	}
	if c.Protocol != "" && c.Protocol != ProtocolNative && c.Protocol != ProtocolHTTP {
		return fmt.Errorf("--clickhouse-protocol %q: want native or http", c.Protocol)
	}
	if !c.TLS && (c.CAFile != "" || c.TLSSkipVerify) {
		return errors.New("--clickhouse-ca-file and --clickhouse-tls-skip-verify need --clickhouse-tls")
	}
	if c.CAFile != "" && c.TLSSkipVerify {
		return errors.New("--clickhouse-ca-file or --clickhouse-tls-skip-verify, not both")
	}
	if c.Password != "" && c.PasswordFile != "" {
		return errors.New("--clickhouse-password or --clickhouse-password-file, not both")
	}
	for flag, f := range map[string]string{"--clickhouse-ca-file": c.CAFile, "--clickhouse-password-file": c.PasswordFile} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("%s: %w", flag, err)
		}
	}
	return nil
}

// password returns Password, or the first line of PasswordFile.
func (c Config) password() (string, error) {
	if c.PasswordFile == "" {
		return c.Password, nil
	}
	b, err := os.ReadFile(c.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("clickhouse password file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}

// tlsConfig returns the TLS settings, nil without TLS.
func (c Config) tlsConfig() (*tls.Config, error) {
	if !c.TLS {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLSSkipVerify} //nolint:gosec // only when asked for
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("clickhouse CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("clickhouse CA file %s: no PEM certificate", c.CAFile)
		}
		cfg.RootCAs = pool
	}
	return cfg, nil
}

// Open connects to ClickHouse and checks the server answers. The database need
// not exist yet: Migrate creates it. The pool it returns frees a connection's
// block buffers when the connection goes back to it, so idle connections hold
// no memory; a writer of large batches uses OpenBulk instead.
func Open(ctx context.Context, c Config) (driver.Conn, error) {
	return openPing(ctx, c, false)
}

// OpenBulk opens a pool of one connection for one writer of large batches
// (access_events). The connection keeps its buffers between inserts: letting
// them go would make every insert grow its encoding buffer again (~1 KB of
// allocation per row when a 50,000-row batch was one block). Like Open, it
// creates the database if missing; the tables come from Migrate.
func OpenBulk(ctx context.Context, c Config) (driver.Conn, error) {
	return openPing(ctx, c, true)
}

func openPing(ctx context.Context, c Config, bulk bool) (driver.Conn, error) {
	conn, err := open(c, c.Database, bulk)
	if err != nil {
		return nil, err
	}
	if err := conn.Ping(ctx); err != nil {
		if unknownDatabase(err) {
			conn.Close()
			if err := createDatabase(ctx, c); err != nil {
				return nil, err
			}
			return openPing(ctx, c, bulk)
		}
		conn.Close()
		if c.Protocol == ProtocolHTTP && strings.Contains(err.Error(), "client_protocol_version") {
			// clickhouse-go's HTTP handshake sends the client_protocol_version
			// parameter (ClickHouse 23.x) and reads its Native format.
			return nil, fmt.Errorf("clickhouse ping %s: the server is too old for the HTTP protocol "+
				"(it needs ClickHouse 23.x or newer); use --clickhouse-protocol native: %w", c.Addr, err)
		}
		return nil, fmt.Errorf("clickhouse ping %s: %w", c.Addr, err)
	}
	if c.Cluster != "" {
		return &clusterConn{Conn: conn, cluster: c.Cluster, database: c.Database, cfg: c}, nil
	}
	return conn, nil
}

// unknownDatabase reports ClickHouse's UNKNOWN_DATABASE (code 81), as the
// native protocol and the HTTP interface report it.
func unknownDatabase(err error) bool {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code == 81
	}
	return strings.Contains(err.Error(), "Code: 81.")
}

func open(c Config, database string, bulk bool) (driver.Conn, error) {
	maxOpen, maxIdle := 16, 8
	if bulk {
		maxOpen, maxIdle = 1, 1
	}
	password, err := c.password()
	if err != nil {
		return nil, err
	}
	tlsCfg, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	protocol := clickhouse.Native
	if c.Protocol == ProtocolHTTP {
		protocol = clickhouse.HTTP
	}
	var settings clickhouse.Settings
	if c.Cluster != "" {
		settings = clusterSettings()
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Protocol:             protocol,
		TLS:                  tlsCfg,
		Addr:                 c.Addrs(),
		ConnOpenStrategy:     clickhouse.ConnOpenInOrder,
		Settings:             settings,
		Auth:                 clickhouse.Auth{Database: database, Username: c.Username, Password: password},
		DialTimeout:          5 * time.Second,
		ReadTimeout:          60 * time.Second,
		MaxOpenConns:         maxOpen,
		MaxIdleConns:         maxIdle,
		FreeBufOnConnRelease: !bulk,
		Compression:          compression(c.Compression),
		ClientInfo: clickhouse.ClientInfo{
			Products: []struct{ Name, Version string }{{Name: "keyfleet", Version: "1"}},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("clickhouse open %s: %w", c.Addr, err)
	}
	return conn, nil
}

var createDatabaseSQL = Query("chstorage/create_database")

func createDatabase(ctx context.Context, c Config) error {
	conn, err := open(c, "default", false)
	if err != nil {
		return err
	}
	defer conn.Close()
	if c.Cluster != "" {
		// On every node: ON CLUSTER.
		conn = &clusterConn{Conn: conn, cluster: c.Cluster, database: c.Database, cfg: c}
	}
	// The name is validated by Config.Validate (and again by the Identifier param).
	if err := createDatabaseSQL.Exec(ctx, conn, Args{"database": c.Database}); err != nil {
		return fmt.Errorf("create database %s: %w", c.Database, err)
	}
	return nil
}

// InsertRows inserts rows (each a value per column) into table with one
// native batch. Use it instead of Exec("INSERT ... VALUES (?)"), which hangs
// on ClickHouse 18.16 (the server waits for a data block that never comes).
func InsertRows(ctx context.Context, conn driver.Conn, table string, columns []string, rows ...[]any) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO "+table+" ("+strings.Join(columns, ", ")+")")
	if err != nil {
		return fmt.Errorf("insert %s: %w", table, err)
	}
	for _, r := range rows {
		if err := batch.Append(r...); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("insert %s: %w", table, err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("insert %s: %w", table, err)
	}
	return nil
}

func compression(name string) *clickhouse.Compression {
	if name == "lz4" {
		return &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	return &clickhouse.Compression{Method: clickhouse.CompressionNone}
}

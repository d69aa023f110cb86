package chstorage

import "github.com/keyfleet/keyfleet/internal/flagenv"

// DefaultAddr is where scripts/clickhouse.sh serves ClickHouse's native protocol.
const DefaultAddr = "127.0.0.1:19000"

// RegisterFlags defines the ClickHouse connection flags (each with its
// environment variable) on s, for every subcommand that talks to ClickHouse.
func (c *Config) RegisterFlags(s *flagenv.Set) {
	s.String(&c.Addr, "clickhouse-addr", "KEYFLEET_CLICKHOUSE_ADDR", DefaultAddr,
		"ClickHouse address (host:port) of the native protocol, or of the HTTP(S) interface with --clickhouse-protocol http; "+
			"several comma-separated addresses (a cluster's nodes) are tried in order, a new connection skipping one that is down; "+
			"scripts/clickhouse.sh serves native "+DefaultAddr+" and HTTP 127.0.0.1:18123")
	s.String(&c.Cluster, "clickhouse-cluster", "KEYFLEET_CLICKHOUSE_CLUSTER", "",
		"ClickHouse cluster (a remote_servers name) to keep keyfleet's tables on: each table X is X_local (Replicated, ON CLUSTER) "+
			"and X, a Distributed table over it (docs/deploy.md); empty: one server, plain tables")
	s.String(&c.Protocol, "clickhouse-protocol", "KEYFLEET_CLICKHOUSE_PROTOCOL", ProtocolNative,
		"ClickHouse protocol: native (ports 9000/9440) or http (ports 8123/8443, what managed services offer)")
	s.Bool(&c.TLS, "clickhouse-tls", "KEYFLEET_CLICKHOUSE_TLS", false,
		"connect to ClickHouse with TLS (native 9440, HTTPS 8443), checking its certificate")
	s.String(&c.CAFile, "clickhouse-ca-file", "KEYFLEET_CLICKHOUSE_CA_FILE", "",
		"PEM file of the CA that signed ClickHouse's certificate (default: the system's roots); needs --clickhouse-tls")
	s.Bool(&c.TLSSkipVerify, "clickhouse-tls-skip-verify", "KEYFLEET_CLICKHOUSE_TLS_SKIP_VERIFY", false,
		"do not check ClickHouse's TLS certificate (test setups only); needs --clickhouse-tls")
	s.String(&c.Database, "clickhouse-database", "KEYFLEET_CLICKHOUSE_DATABASE", "keyfleet",
		"ClickHouse database (created and migrated if missing)")
	s.String(&c.Compression, "clickhouse-compression", "KEYFLEET_CLICKHOUSE_COMPRESSION", "none",
		"compression of the blocks sent to ClickHouse: none (cheapest when ClickHouse is on the same machine) or lz4")
	s.String(&c.Username, "clickhouse-user", "KEYFLEET_CLICKHOUSE_USER", "default", "ClickHouse user")
	s.Secret(&c.Password, "clickhouse-password", "KEYFLEET_CLICKHOUSE_PASSWORD", "ClickHouse password")
	s.String(&c.PasswordFile, "clickhouse-password-file", "KEYFLEET_CLICKHOUSE_PASSWORD_FILE", "",
		"file holding the ClickHouse password (its first line), instead of --clickhouse-password")
}

package chstorage

import "github.com/keyfleet/keyfleet/internal/flagenv"

// DefaultAddr is where scripts/clickhouse.sh serves ClickHouse's native protocol.
const DefaultAddr = "127.0.0.1:19000"

// RegisterFlags defines the ClickHouse connection flags (each with its
// environment variable) on s, for every subcommand that talks to ClickHouse.
func (c *Config) RegisterFlags(s *flagenv.Set) {
	s.String(&c.Addr, "clickhouse-addr", "KEYFLEET_CLICKHOUSE_ADDR", DefaultAddr,
		"ClickHouse native-protocol address (host:port); scripts/clickhouse.sh serves "+DefaultAddr)
	s.String(&c.Database, "clickhouse-database", "KEYFLEET_CLICKHOUSE_DATABASE", "keyfleet",
		"ClickHouse database (created and migrated if missing)")
	s.String(&c.Compression, "clickhouse-compression", "KEYFLEET_CLICKHOUSE_COMPRESSION", "none",
		"compression of the blocks sent to ClickHouse: none (cheapest when ClickHouse is on the same machine) or lz4")
	s.String(&c.Username, "clickhouse-user", "KEYFLEET_CLICKHOUSE_USER", "default", "ClickHouse user")
	s.Secret(&c.Password, "clickhouse-password", "KEYFLEET_CLICKHOUSE_PASSWORD", "ClickHouse password")
}

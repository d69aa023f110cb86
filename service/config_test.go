package service

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/flagenv"
)

// The README's configuration table documents every serve flag and its env var.
func TestREADMEDocumentsEveryFlag(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	var cfg Config
	fs := flagenv.New("serve", "")
	cfg.RegisterFlags(fs)
	fs.FlagSet().VisitAll(func(f *flag.Flag) {
		env := "KEYFLEET_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		row := "| `--" + f.Name + "` | `" + env + "` |"
		assert.True(t, strings.Contains(string(readme), row), "README configuration table lacks the row %q", row)
	})
}

func TestValidateNamesTheFlag(t *testing.T) {
	parse := func(args ...string) (Config, error) {
		var cfg Config
		fs := flagenv.New("serve", "")
		fs.SetLookup(func(string) (string, bool) { return "", false })
		cfg.RegisterFlags(fs)
		require.NoError(t, fs.Parse(args))
		return cfg, cfg.Validate()
	}
	_, err := parse()
	require.NoError(t, err, "defaults are valid")
	f := func(want string, args ...string) {
		t.Helper()
		_, err := parse(args...)
		require.Error(t, err)
		assert.Contains(t, err.Error(), want)
	}
	f("--embedded-kafka-addr", "--embedded-kafka-addr", "0.0.0.0:9092")
	f("--kafka-brokers", "--kafka-brokers", "nohostport")
	f("--pseudonym-key", "--kafka-brokers", "k:9092")
	f("--clickhouse-addr", "--clickhouse-database", "bad-name")
	f("--topic-partitions", "--topic-partitions", "0")
	f("--log-level", "--log-level", "loud")
}

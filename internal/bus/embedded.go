package bus

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (kfake) with its log
// persisted on disk. It stands in for Kafka in `keyfleet serve`'s default mode
// and in fast unit tests; clients reach it over TCP like a real broker.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
}

// StartEmbedded starts the broker on a loopback address ("127.0.0.1:9092";
// port 0 picks a free port), persisting its data under dataDir when set.
func StartEmbedded(addr, dataDir string, partitions int, logger *slog.Logger) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("embedded kafka address %q: must be a loopback address", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("embedded kafka port %q: %w", portStr, err)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DefaultNumPartitions(partitions),
		kfake.AllowAutoTopicCreation(),
		kfake.ClusterID("keyfleet-embedded"),
		kfake.BrokerConfigs(map[string]string{"group.initial.rebalance.delay.ms": "0"}),
	}
	if dataDir != "" {
		if err := os.MkdirAll(dataDir, 0o750); err != nil {
			return nil, fmt.Errorf("embedded kafka data dir: %w", err)
		}
		opts = append(opts, kfake.DataDir(dataDir))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded kafka: %w", err)
	}
	e := &Embedded{cluster: c, addr: c.ListenAddrs()[0]}
	logger.Info("embedded kafka broker started", "addr", e.addr, "data_dir", dataDir)
	return e, nil
}

// Addr is the broker's listen address.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the broker and flushes its log to disk.
func (e *Embedded) Close() { e.cluster.Close() }

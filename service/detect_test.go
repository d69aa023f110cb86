package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/flagenv"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// TestServeDetects runs `keyfleet serve` (embedded broker, real ClickHouse)
// and follows a raw record to an alert served by GET /v1/alerts, with the
// detectors fed in-process and through access.events.
func TestServeDetects(t *testing.T) {
	for _, mode := range []string{AccessInline, AccessTopic} {
		t.Run(mode, func(t *testing.T) { testServeDetects(t, mode) })
	}
}

func testServeDetects(t *testing.T, accessEvents string) {
	_, chCfg := testenv.ClickHouse(t)
	var cfg Config
	fs := flagenv.New("serve", "")
	fs.SetLookup(func(string) (string, bool) { return "", false })
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"--embedded-kafka-addr", "127.0.0.1:0", "--clickhouse-addr", chCfg.Addr, "--clickhouse-database", chCfg.Database,
		"--data-dir", filepath.Join(t.TempDir(), "data"), "--access-log=false", "--topic-partitions", "2",
		"--access-events", accessEvents,
	}))
	cfg.BootstrapToken = "test-admin-token-0123456789abcdefghij"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ready := make(chan [2]string, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, cfg, Options{Logger: testenv.Logger(t), Stdout: io.Discard, Listener: ln,
			Ready: func(h, k string) { ready <- [2]string{h, k} }})
	}()
	var addrs [2]string
	select {
	case addrs = <-ready:
	case err := <-done:
		t.Fatalf("serve stopped: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not start")
	}
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()

	bc := cfg.Bus([]string{addrs[1]})
	w := bus.NewWriter(bc, bus.TopicRaw)
	defer w.Close()
	now := time.Now()
	raw := fmt.Sprintf(`{"vendor":"matter","received_ms":%d,"payload":{"nodeId":"0xBAC","endpointId":1,"clusterId":257,`+
		`"eventName":"DoorLockAlarm","eventNumber":1,"timestampMs":%d,"data":{"alarmCode":6}}}`, now.UnixMilli(), now.UnixMilli())
	require.NoError(t, w.WriteMessages(ctx, kafka.Message{Key: []byte("0xBAC"), Value: []byte(raw)}))

	require.Eventually(t, func() bool {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addrs[0]+"/v1/alerts?detector=door_forced", nil)
		req.Header.Set("Authorization", "Bearer "+cfg.BootstrapToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Count  int `json:"count"`
			Alerts []struct {
				Evidence []string `json:"evidence"`
			} `json:"alerts"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil || body.Count != 1 {
			return false
		}
		return len(body.Alerts[0].Evidence) == 1
	}, 60*time.Second, 250*time.Millisecond)
}

package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// 100,000 raw matter events become exactly 100,000 rows; producing the same
// events again leaves the count unchanged.
func TestPipelineStoresEveryEventOnce(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	p := startServe(t, serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database})

	base := time.Now().Add(-time.Hour).UnixMilli()
	produceMatter(t, cfg, 0, 100000, base)
	waitCount(t, conn, "", 100000, 3*time.Minute)

	// Replay: the same 100,000 events again.
	produceMatter(t, cfg, 0, 100000, base)
	require.Eventually(t, func() bool {
		return metricValue(t, p, "keyfleet_pipeline_events_inserted_total") >= 200000
	}, 3*time.Minute, 250*time.Millisecond, "replayed events were not processed")
	assert.Equal(t, uint64(100000), countEvents(t, conn, ""))
	var final uint64
	require.NoError(t, conn.QueryRow(context.Background(), "SELECT count() FROM access_events FINAL").Scan(&final))
	assert.Equal(t, uint64(100000), final, "count() FINAL")
}

// Killing keyfleet (SIGKILL, no flush or commit) mid-stream and starting it
// again loses nothing and doubles nothing.
func TestPipelineSurvivesKill(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	opts := serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database}
	base := time.Now().Add(-time.Hour).UnixMilli()

	produceMatter(t, cfg, 0, 60000, base)
	p := startServe(t, opts)
	require.Eventually(t, func() bool { return countEvents(t, conn, "") > 5000 }, 2*time.Minute, 50*time.Millisecond)
	p.kill()
	stored := countEvents(t, conn, "")
	t.Logf("killed keyfleet with %d of 60000 events stored", stored)

	produceMatter(t, cfg, 60000, 40000, base)
	startServe(t, opts)
	waitCount(t, conn, "", 100000, 3*time.Minute)
}

// While ClickHouse is unreachable the writer holds (readyz says so) and
// retries; when it returns, every event arrives exactly once.
func TestPipelineRidesOutClickHouseOutage(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 4)
	conn, ch := testenv.ClickHouse(t)
	proxy := testenv.NewProxy(t, ch.Addr)
	p := startServe(t, serveOpts{bus: cfg, clickhouse: proxy.Addr(), database: ch.Database})
	base := time.Now().Add(-time.Hour).UnixMilli()

	produceMatter(t, cfg, 0, 20000, base)
	waitCount(t, conn, "", 20000, 2*time.Minute)

	proxy.Cut()
	produceMatter(t, cfg, 20000, 30000, base)
	require.Eventually(t, func() bool {
		resp, _ := p.do("GET", "/readyz", "", nil, "")
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 30*time.Second, 200*time.Millisecond, "readyz should report ClickHouse unreachable")
	time.Sleep(3 * time.Second) // the writer retries meanwhile
	assert.Equal(t, uint64(20000), countEvents(t, conn, ""), "nothing can be stored during the outage")

	proxy.Restore()
	waitCount(t, conn, "", 50000, 3*time.Minute)
	assert.Greater(t, metricValue(t, p, "keyfleet_clickhouse_insert_failures_total"), 0.0)
	// Readiness comes back by itself once every loop's next attempt has
	// worked (a loop backing off may retry up to 15 s after the outage).
	require.Eventually(t, func() bool {
		resp, _ := p.do("GET", "/readyz", "", nil, "")
		return resp.StatusCode == http.StatusOK
	}, time.Minute, 250*time.Millisecond, "readyz should say 200 again after the outage")
}

// Malformed records go to the DLQ with a reason; the good records around them
// are all stored.
func TestMalformedRecordsGoToDLQ(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 2)
	conn, ch := testenv.ClickHouse(t)
	startServe(t, serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database})
	base := time.Now().Add(-time.Hour).UnixMilli()

	bad := map[string]string{
		`not json at all`: "malformed_envelope",
		`{"vendor":"matter","received_ms":1,"payload":"{\"nodeId\": broken"}`:                                                                                       "malformed_payload",
		`{"vendor":"matter","received_ms":1,"payload":{"nodeId":"0x1","eventName":"LockOperation","timestampMs":1764230400000,"data":{"lockOperationType":"one"}}}`: "bad_field",
		`{"vendor":"matter","received_ms":1,"payload":{"eventName":"LockOperation","timestampMs":1764230400000,"data":{}}}`:                                         "missing_field",
		`{"vendor":"matter","received_ms":1,"payload":{"nodeId":"0x1","eventName":"LockOperation","data":{"lockOperationType":1}}}`:                                 "bad_time",
		`{"vendor":"acme","received_ms":1,"payload":{"id":1}}`:                                                                                                      "unknown_vendor",
	}
	w := bus.NewWriter(cfg, bus.TopicRaw)
	defer w.Close()
	ctx := context.Background()
	good := 0
	for value := range bad {
		produceMatter(t, cfg, good, 100, base)
		good += 100
		require.NoError(t, w.WriteMessages(ctx, kafka.Message{Key: []byte("x"), Value: []byte(value)}))
	}
	produceMatter(t, cfg, good, 100, base)
	good += 100
	waitCount(t, conn, "", uint64(good), 2*time.Minute)

	// Every bad record is in the DLQ with its reason, original bytes intact.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: cfg.Brokers, Topic: cfg.Topic(bus.TopicDLQ), GroupID: cfg.TopicPrefix + "dlq-check", StartOffset: kafka.FirstOffset, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	got := map[string]string{}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for len(got) < len(bad) {
		m, err := r.ReadMessage(rctx)
		require.NoError(t, err)
		d := bus.ParseDeadLetter(m)
		got[string(d.Value)] = d.Reason
		assert.NotEmpty(t, d.Error)
		assert.True(t, strings.HasPrefix(d.Source, cfg.Topic(bus.TopicRaw)+"/"), d.Source)
	}
	assert.Equal(t, bad, got)

	// They are mirrored in ClickHouse for reports.
	require.Eventually(t, func() bool {
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM dead_letters FINAL").Scan(&n))
		return n == uint64(len(bad))
	}, time.Minute, 250*time.Millisecond)
}

// HTTP ingest answers 202 with counts once the records are in Kafka, 4xx for
// bad requests, and accepted records reach ClickHouse.
func TestHTTPIngest(t *testing.T) {
	cfg := testenv.RequireRealKafka(t, 2)
	conn, ch := testenv.ClickHouse(t)
	p := startServe(t, serveOpts{bus: cfg, clickhouse: ch.Addr, database: ch.Database, extra: []string{"--http-body-limit", "65536"}})
	ts := time.Now().Add(-time.Minute).UnixMilli()
	one := func(n int) string { return string(matterPayload(7, n, ts+int64(n))) }

	f := func(name, vendor, body, token string, wantStatus int, wantBody string) {
		t.Run(name, func(t *testing.T) {
			resp, got := p.do("POST", "/v1/ingest/"+vendor, "application/json", strings.NewReader(body), token)
			assert.Equal(t, wantStatus, resp.StatusCode, string(got))
			assert.Contains(t, string(got), wantBody)
		})
	}
	f("single object", "matter", one(1), p.token, 202, `"accepted":1,"rejected":0`)
	f("array", "matter", "["+one(2)+","+one(3)+"]", p.token, 202, `"accepted":2,"rejected":0`)
	f("ndjson with a bad line", "matter", one(4)+"\n{oops\n"+one(5)+"\n", p.token, 202, `"accepted":2,"rejected":1`)
	f("all bad", "matter", `{"nodeId":"0x1"}`, p.token, 422, `"code":"all_records_rejected"`)
	f("unknown vendor", "acme", one(6), p.token, 404, `"code":"unknown_vendor"`)
	f("no token", "matter", one(6), "", 401, `"code":"unauthenticated"`)
	f("bad token", "matter", one(6), "nope", 401, `"code":"invalid_token"`)
	f("too large", "matter", "["+strings.Repeat(one(6)+",", 400)+one(6)+"]", p.token, 413, `"code":"body_too_large"`)
	f("empty", "matter", "  ", p.token, 400, `"code":"empty_body"`)

	waitCount(t, conn, "lock_id = '0x0007'", 5, time.Minute)
}

// The embedded default (what `make run` starts) becomes ready and stores events.
func TestEmbeddedBrokerServe(t *testing.T) {
	conn, ch := testenv.ClickHouse(t)
	kafkaAddr := freePort(t)
	p := startServe(t, serveOpts{clickhouse: ch.Addr, database: ch.Database, extra: []string{"--embedded-kafka-addr", kafkaAddr}})
	body := string(matterPayload(9, 1, time.Now().UnixMilli()))
	resp, got := p.do("POST", "/v1/ingest/matter", "application/json", strings.NewReader(body), p.token)
	require.Equal(t, 202, resp.StatusCode, string(got))
	waitCount(t, conn, "lock_id = '0x0009'", 1, time.Minute)

	// A separate process can use the embedded broker over TCP.
	ecfg := bus.Config{Brokers: []string{kafkaAddr}, Partitions: 4}
	produceMatter(t, ecfg, 100, 500, time.Now().Add(-time.Hour).UnixMilli())
	waitCount(t, conn, "", 501, time.Minute)
	p.stop()
}

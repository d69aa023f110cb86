package stream_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/stream"
	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// BenchmarkDetectLatency measures detection latency through a real Kafka
// broker at a fixed input rate: access events are produced to access.events
// at KEYFLEET_BENCH_RATE events/s (default 20,000) for KEYFLEET_BENCH_SECONDS
// (default 15), 1% of them emergency unlocks at random doors (each raises an
// alert, so latency is sampled ~200 times a second). Latency is the
// definition of keyfleet_detect_latency_seconds: received_ms of the event
// (stamped when it was produced) to the broker's acknowledgement of the
// alert. Reports p50/p99/max and the achieved input rate.
//
//	KEYFLEET_TEST_KAFKA_BROKERS=127.0.0.1:19092 go test ./detect/stream -run '^$' -bench DetectLatency -benchtime 1x
func BenchmarkDetectLatency(b *testing.B) {
	cfg := testenv.RequireRealKafka(b, 4)
	rate := envInt("KEYFLEET_BENCH_RATE", 20000)
	seconds := envInt("KEYFLEET_BENCH_SECONDS", 15)

	engine, err := detect.NewEngine(detect.DefaultRules(), detect.Options{Lateness: time.Minute})
	require.NoError(b, err)
	access := bus.NewGroupReader(cfg, bus.TopicAccess, bus.GroupDetect)
	alerts := bus.NewWriter(cfg, bus.TopicAlerts)
	defer access.Close()
	defer alerts.Close()
	var mu sync.Mutex
	var lat []time.Duration
	p, err := stream.New(stream.Options{Bus: cfg, Engine: engine, Access: access, Alerts: alerts, Lateness: time.Minute,
		Logger: testenv.Logger(b), Metrics: detect.NewMetrics(nil),
		OnProduced: func(as []detect.Alert, at time.Time) {
			mu.Lock()
			defer mu.Unlock()
			for _, a := range as {
				if a.Revision == 0 && a.Detector == detect.EmergencyUnlock {
					lat = append(lat, at.Sub(time.UnixMilli(a.SourceReceivedMs)))
				}
			}
		}})
	require.NoError(b, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	// Let the group settle before measuring.
	w := bus.NewWriter(cfg, bus.TopicAccess)
	defer w.Close()
	warm := event.Access{EventID: "warm", TsMs: time.Now().UnixMilli(), ReceivedMs: time.Now().UnixMilli(), DoorID: "warm", SubjectID: "warm",
		Action: "door_forced", Outcome: "info"}
	require.NoError(b, w.WriteMessages(ctx, kafka.Message{Key: []byte("warm"), Value: warm.AppendJSON(nil)}))
	time.Sleep(3 * time.Second)

	b.ResetTimer()
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Now()
	sent := 0
	var buf []byte
	var msgs []kafka.Message
	var ends []int
	for time.Since(start) < time.Duration(seconds)*time.Second {
		// Send what the rate asks for by now (a slow write is caught up on
		// by the next, larger one), in writes of at most 2,000.
		n := min(int(float64(rate)*time.Since(start).Seconds())-sent, 2000)
		if n <= 0 {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		now := time.Now()
		buf, msgs, ends = buf[:0], msgs[:0], ends[:0]
		for j := range n {
			k := sent + j
			subject := "s" + strconv.Itoa(rng.IntN(10000))
			ev := event.Access{EventID: fmt.Sprintf("b-%d", k), TsMs: now.UnixMilli(), ReceivedMs: now.UnixMilli(),
				Vendor: "matter", SiteID: "site-1", DoorID: "d" + strconv.Itoa(rng.IntN(500)), LockID: "l",
				SubjectID: subject, CredentialID: "c" + subject, Attested: "unknown", Action: "unlock", Outcome: "granted", Method: "phone_nfc"}
			if rng.IntN(100) == 0 {
				ev.Action, ev.DoorID = "emergency_unlock", "x"+strconv.Itoa(k)
			}
			buf = ev.AppendJSON(buf)
			ends = append(ends, len(buf))
			msgs = append(msgs, kafka.Message{Key: []byte(subject)})
		}
		prev := 0
		for j := range msgs {
			msgs[j].Value = buf[prev:ends[j]]
			prev = ends[j]
		}
		require.NoError(b, w.WriteMessages(ctx, msgs...))
		sent += n
	}
	elapsed := time.Since(start)
	time.Sleep(3 * time.Second) // drain
	b.StopTimer()
	cancel()
	require.NoError(b, <-done)

	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(b, lat)
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(sent)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(q(0.50).Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max_ms")
	b.ReportMetric(float64(len(lat)), "alerts")
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

package sim_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
	"github.com/keyfleet/keyfleet/sim"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

func drain(t *testing.T, cfg bus.Config, topic string, n int) []kafka.Message {
	t.Helper()
	r := bus.NewGroupReader(cfg, topic, "test-"+topic)
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := make([]kafka.Message, 0, n)
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		require.NoError(t, err, "%s: have %d of %d", topic, len(out), n)
		out = append(out, m)
	}
	return out
}

// TestBackfillToKafka writes a backfill to lock.events.raw and
// credential.events and reads it back: every raw record is an envelope keyed
// by its lock id, every credential record is keyed by its credential id.
func TestBackfillToKafka(t *testing.T) {
	cfg := testenv.Kafka(t, 4)
	f, err := fleet.Generate(fleet.Options{Seed: 2, Sites: 2, DoorsPerSite: 40, Subjects: 200})
	require.NoError(t, err)
	records := bus.NewWriter(cfg, bus.TopicCredentialEvents)
	defer records.Close()
	s, err := sim.New(sim.Options{Fleet: f, Seed: 2, PseudonymKey: key, Mode: sim.ModeBackfill,
		StartMs: end - 2*dayMs, EndMs: end, Registrar: &sim.StandIn{Records: records},
		Sinks: []sim.Sink{sim.NewKafkaRaw(cfg, testenv.Logger(t))}, Logger: testenv.Logger(t)})
	require.NoError(t, err)
	st, _, err := s.Run(context.Background())
	require.NoError(t, err)
	require.Greater(t, st.Records, int64(1000))

	raw := drain(t, cfg, bus.TopicRaw, int(st.Records))
	byVendor := map[string]int64{}
	for _, m := range raw {
		env, err := event.DecodeRaw(m.Value)
		require.NoError(t, err)
		byVendor[env.Vendor]++
		l, ok := f.LockByID(string(m.Key))
		require.True(t, ok, "key %q is a lock id", m.Key)
		require.Equal(t, l.Vendor, env.Vendor)
		require.Equal(t, env.ReceivedMs, m.Time.UnixMilli())
	}
	require.Equal(t, st.RecordsByVendor, byVendor)

	n := 0
	for _, c := range st.Changes {
		n += c
	}
	creds := drain(t, cfg, bus.TopicCredentialEvents, n)
	states := map[string]int{}
	for _, m := range creds {
		var c event.Credential
		require.NoError(t, json.Unmarshal(m.Value, &c))
		require.Equal(t, c.CredentialID, string(m.Key))
		require.Empty(t, c.Record, "the replay marker stays out of the topic")
		require.Contains(t, event.States, c.State)
		if c.State == event.StateIssued || c.State == event.StateActive {
			require.NotEmpty(t, c.DeviceID)
			require.NotEmpty(t, c.Refs)
		}
		states[c.State]++
	}
	require.Equal(t, st.Changes, states)
}

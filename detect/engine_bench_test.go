package detect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/sim"
)

// BenchmarkEngine measures detector throughput on decoded records (no JSON):
// every stream detector enabled, over a simulated two-week estate.
//
//	go test ./detect -run '^$' -bench Engine -benchtime 5x
func BenchmarkEngine(b *testing.B) {
	replay, _, err := sim.Backfill(context.Background(), sim.BackfillOptions{Seed: 7, Sites: 4, DoorsPerSite: 60,
		Subjects: 1000, Days: 14, End: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)})
	require.NoError(b, err)
	var records []record
	for _, line := range bytes.Split(replay, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var r record
		if bytes.Contains(line, []byte(`"record":"credential"`)) {
			r.Credential = &event.Credential{}
			require.NoError(b, json.Unmarshal(line, r.Credential))
		} else {
			r.Access = &event.Access{}
			require.NoError(b, event.Decode(line, r.Access))
		}
		records = append(records, r)
	}
	b.ResetTimer()
	var alerts []detect.Alert
	for range b.N {
		e, err := detect.NewEngine(detect.DefaultRules(), detect.Options{BatchChecks: true})
		require.NoError(b, err)
		for _, r := range records {
			if r.Access != nil {
				alerts = e.Access(alerts[:0], r.Access)
			} else {
				alerts = e.Credential(alerts[:0], r.Credential)
			}
		}
	}
	b.ReportMetric(float64(len(records))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// record is one line of a replay file, decoded.
type record struct {
	Access     *event.Access
	Credential *event.Credential
}

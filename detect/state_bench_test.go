package detect_test

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/sim"
)

// BenchmarkEngineState replays a simulated two-week estate (credential
// records with their entitlements, as detect/stream feeds them) and reports
// the engine's live heap per subject once the baseline has filled.
//
//	go test ./detect -run '^$' -bench EngineState -benchtime 1x -benchmem
func BenchmarkEngineState(b *testing.B) {
	const subjects = 1000
	replay, _, err := sim.Backfill(context.Background(), sim.BackfillOptions{Seed: 7, Sites: 4, DoorsPerSite: 60,
		Subjects: subjects, Days: 14, End: time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)})
	require.NoError(b, err)
	type rec struct {
		access *event.Access
		cred   *event.Credential
		ent    *detect.Entitlement
	}
	decode := func() []rec {
		var recs []rec
		for _, line := range bytes.Split(replay, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var r rec
			if bytes.Contains(line, []byte(`"record":"credential"`)) {
				r.cred, r.ent = &event.Credential{}, &detect.Entitlement{}
				require.NoError(b, json.Unmarshal(line, r.cred))
				require.NoError(b, json.Unmarshal(line, r.ent))
			} else {
				r.access = &event.Access{}
				require.NoError(b, event.Decode(line, r.access))
			}
			recs = append(recs, r)
		}
		return recs
	}
	live := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	b.ReportAllocs()
	var perSubject float64
	for range b.N {
		b.StopTimer()
		before := live()
		recs := decode() // decoded as detect/stream does: the engine keeps what it keeps of them
		b.StartTimer()
		e, err := detect.NewEngine(detect.DefaultRules(), detect.Options{BatchChecks: true})
		require.NoError(b, err)
		var alerts []detect.Alert
		for _, r := range recs {
			if r.access != nil {
				alerts = e.Access(alerts[:0], r.access)
			} else {
				e.Entitle(r.ent)
				alerts = e.Credential(alerts[:0], r.cred)
			}
		}
		b.StopTimer()
		recs, alerts = nil, nil
		after := live()
		perSubject = (float64(after) - float64(before)) / subjects
		runtime.KeepAlive(e)
		b.StartTimer()
	}
	b.ReportMetric(perSubject, "live-B/subject")
}

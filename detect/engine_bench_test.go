package detect_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/internal/synth"
)

// BenchmarkEngine measures detector throughput on decoded records (no JSON):
// every stream detector enabled, over the synthetic two-week estate.
//
//	go test ./detect -run '^$' -bench Engine -benchtime 5x
func BenchmarkEngine(b *testing.B) {
	d := synth.Generate(synth.Default())
	b.ResetTimer()
	var alerts []detect.Alert
	for range b.N {
		e, err := detect.NewEngine(detect.DefaultRules(), detect.Options{BatchChecks: true})
		require.NoError(b, err)
		for _, r := range d.Records {
			if r.Access != nil {
				alerts = e.Access(alerts[:0], r.Access)
			} else {
				alerts = e.Credential(alerts[:0], r.Credential)
			}
		}
	}
	b.ReportMetric(float64(len(d.Records))*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

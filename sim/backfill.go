package sim

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/vendors"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

// BackfillOptions size an in-memory backfill: a generated fleet simulated
// over Days ending at End, for detector tests, benchmarks and backtests.
type BackfillOptions struct {
	Seed         uint64
	Sites        int
	DoorsPerSite int
	Subjects     int
	Days         int
	End          time.Time // end of the simulated window (fixed, so runs repeat)
	AnomalyScale float64   // 0: the default rates
	PseudonymKey []byte    // default: a fixed test key
	// PlantRegression plants the regression (sim.Regression, at the middle
	// of the window). Off by default: backtests score the stream detectors
	// against labelled anomalies, and the regression's refusals are not
	// labelled (denied_storm rightly fires on them).
	PlantRegression bool
}

// Backfill simulates a fleet without Kafka and returns what
// `keyfleet simulate --no-kafka --replay-out … --labels …` writes: the
// replay file (normalized access events and credential records as JSON
// lines, in event-time order) and the ground-truth labels. The same options
// give byte-identical output.
func Backfill(ctx context.Context, o BackfillOptions) (replay []byte, labels []backtest.Label, err error) {
	key := o.PseudonymKey
	if len(key) == 0 {
		key = []byte("keyfleet-backfill-pseudonym-key")
	}
	f, err := fleet.Generate(fleet.Options{Seed: o.Seed, Sites: o.Sites, DoorsPerSite: o.DoorsPerSite,
		Subjects: o.Subjects, SpareDevices: 2})
	if err != nil {
		return nil, nil, fmt.Errorf("fleet: %w", err)
	}
	var out bytes.Buffer
	rep := NewReplay(&out, normalize.New(vendors.Adapters(), Resolver(f, key), key))
	end := o.End.UnixMilli()
	s, err := New(Options{Fleet: f, Seed: o.Seed, PseudonymKey: key, Mode: ModeBackfill,
		StartMs: end - int64(o.Days)*24*time.Hour.Milliseconds(), EndMs: end, AnomalyScale: o.AnomalyScale,
		Regression: Regression{Off: !o.PlantRegression},
		Sinks:      []Sink{rep}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, err
	}
	if _, labels, err = s.Run(ctx); err != nil {
		return nil, nil, err
	}
	if len(rep.Errors) > 0 {
		return nil, nil, fmt.Errorf("normalizer rejected %d simulated records, first: %v", len(rep.Errors), rep.FirstError)
	}
	return out.Bytes(), labels, nil
}

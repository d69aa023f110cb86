package detect

import (
	"fmt"
	"slices"
	"time"
)

// RegressionLatencyDimensions are the lock dimensions regression judges
// revocation latency by.
var RegressionLatencyDimensions = []string{"lock_firmware", "lock_model"}

// RegressionLatencyHour is one hour (of the revocation requests) of one
// lock dimension value: how many locks applied a revocation and their
// summed latency from the request.
type RegressionLatencyHour struct {
	HourMs int64
	Locks  uint64
	SumMs  int64
}

// RegressionLatencySeries is one value, hour by hour (sorted).
type RegressionLatencySeries struct {
	Value string
	Hours []RegressionLatencyHour
}

func (s *RegressionLatencySeries) sum(from, to int64) (locks uint64, sumMs int64) {
	for _, h := range s.Hours {
		if h.HourMs >= from && h.HourMs < to {
			locks += h.Locks
			sumMs += h.SumMs
		}
	}
	return locks, sumMs
}

// CheckLatencyRegressions is regression's revocation-latency judgement for
// one lock dimension: the same change points as CheckRegressions (a value
// first seen within NewFor against the other values in the Window before
// it, else a sliding split), on the mean latency from a revocation's
// request to the lock's applied ack, with at least MinLocks acks a side;
// it alerts when after ≥ max(LatencyRatio × before, before +
// LatencyIncrease).
func CheckLatencyRegressions(r *RegressionRules, dim string, series []RegressionLatencySeries, now, historyStart int64) []Alert {
	if !r.Enabled || !slices.Contains(r.LatencyDimensions, dim) {
		return nil
	}
	w := r.Window.Ms()
	var out []Alert
	for i := range series {
		s := &series[i]
		if s.Value == "" || len(s.Hours) == 0 {
			continue
		}
		first := s.Hours[0].HourMs
		isNew, change := false, (now-w)/hourMs*hourMs
		var bn, an uint64
		var bs, as int64
		if first >= now-r.NewFor.Ms() && first >= historyStart+w {
			isNew, change = true, first
			an, as = s.sum(first, now)
			for j := range series {
				if j != i && series[j].Value != "" {
					n, sum := series[j].sum(first-w, first)
					bn, bs = bn+n, bs+sum
				}
			}
		} else {
			an, as = s.sum(change, now)
			bn, bs = s.sum(change-w, change)
		}
		if min := uint64(r.MinLocks); an < min || bn < min {
			continue
		}
		before, after := float64(bs)/float64(bn)/1000, float64(as)/float64(an)/1000
		needed := max(before*r.LatencyRatio, before+r.LatencyIncrease.D().Seconds())
		if after < needed {
			continue
		}
		at := time.UnixMilli(change).UTC().Format("2006-01-02 15:04 UTC")
		since := fmt.Sprintf("since it first appeared at %s, from %.1f s (%d locks) on the other %s values in the %s before",
			at, before, bn, dim, humanDuration(r.Window.D()))
		if !isNew {
			since = fmt.Sprintf("in the %s since %s, from %.1f s (%d locks) in the %s before", humanDuration(r.Window.D()), at,
				before, bn, humanDuration(r.Window.D()))
		}
		key := "revocation_latency:" + dim + "=" + s.Value
		id := int64(0)
		if isNew {
			id = change
		}
		ts := now
		if p := r.Suppress.Ms(); p > 0 {
			ts = max(change, now/p*p)
		}
		out = append(out, Alert{
			AlertID:  AlertID(Regression, key, id, period(now, r.Suppress)),
			Detector: Regression, Severity: r.Severity,
			TsMs: ts, WindowStartMs: change, WindowEndMs: now,
			Observed: round3(after), Threshold: round3(needed), Baseline: round3(before),
			Evidence: []string{},
			Explanation: fmt.Sprintf("Revocation latency at locks on %s %s rose to %.1f s on average (%d locks) %s. "+
				"Threshold %.1f s (×%g and +%s).", dim, s.Value, after, an, since, needed, r.LatencyRatio,
				humanDuration(r.LatencyIncrease.D())),
			SuggestedAction: fmt.Sprintf("Check the gateways and locks on %s %s (connectivity, command queue, a firmware change); "+
				"pending locks are in GET /v1/revocations and GET /v1/kpis?slice=%s shows the latency per value.", dim, s.Value, dim),
		})
	}
	return out
}

package detect

import (
	"fmt"
	"slices"
	"time"
)

// Regression is the batch detector that compares each slice of a device or
// lock dimension (an OS version, an app version, a lock firmware or model)
// before and after a change point and alerts when its denial share jumps:
// "everyone on the new OS can't open doors" becomes an alert in hours.
const Regression = "regression"

// RegressionDimensions are the dimensions regression can judge (access
// event columns; os_version values are "<os_name> <os_version>").
var RegressionDimensions = []string{"os_version", "app_version", "lock_firmware", "lock_model", "phone_model"}

// RegressionRules configure regression. A slice value first seen within
// NewFor of now (and at least a Window after the start of the History the
// store holds) is new: its change point is its first hour, "after" is the
// value since, and "before" is the other values of the dimension in the
// Window before the change point. Any other value is judged by a sliding
// split: the last Window against the Window before it. It alerts when both sides have at
// least MinAttempts attempts (granted + denied) and the after denial share
// is at least Ratio × before and at least MinIncrease (absolute) above it.
type RegressionRules struct {
	Common
	Dimensions  []string `json:"dimensions"`
	Window      Duration `json:"window"`
	History     Duration `json:"history"`
	NewFor      Duration `json:"new_for"`
	MinAttempts int      `json:"min_attempts"`
	Ratio       float64  `json:"ratio"`
	MinIncrease float64  `json:"min_increase"`
	// Revocation latency per lock dimension (CheckLatencyRegressions): the
	// mean from request to a lock's applied ack, at least MinLocks acks a
	// side, after ≥ LatencyRatio × before and ≥ before + LatencyIncrease.
	LatencyDimensions []string `json:"latency_dimensions"`
	MinLocks          int      `json:"min_locks"`
	LatencyRatio      float64  `json:"latency_ratio"`
	LatencyIncrease   Duration `json:"latency_increase"`
	Every             Duration `json:"every"`
}

// DefaultRegressionRules are regression's compiled-in rules.
func DefaultRegressionRules() RegressionRules {
	return RegressionRules{Common: common(SeverityHigh, 24*time.Hour),
		Dimensions: []string{"os_version", "app_version", "lock_firmware", "lock_model"},
		Window:     Duration(24 * time.Hour), History: Duration(14 * 24 * time.Hour), NewFor: Duration(72 * time.Hour),
		MinAttempts: 20, Ratio: 2, MinIncrease: 0.10,
		LatencyDimensions: []string{"lock_firmware", "lock_model"}, MinLocks: 10, LatencyRatio: 2,
		LatencyIncrease: Duration(30 * time.Second), Every: Duration(15 * time.Minute)}
}

func (r *RegressionRules) validate() []string {
	var errs []string
	if len(r.Dimensions) == 0 {
		errs = append(errs, "regression.dimensions: want at least one")
	}
	for _, d := range r.Dimensions {
		if !slices.Contains(RegressionDimensions, d) {
			errs = append(errs, fmt.Sprintf("regression.dimensions: %q is not one of %v", d, RegressionDimensions))
		}
	}
	if r.Window < Duration(time.Hour) || r.History < 2*r.Window || r.Every <= 0 || r.NewFor < 0 || r.NewFor > r.History {
		errs = append(errs, "regression: window at least 1h, history at least twice the window, new_for within the history, every positive")
	}
	for _, d := range r.LatencyDimensions {
		if !slices.Contains(RegressionLatencyDimensions, d) {
			errs = append(errs, fmt.Sprintf("regression.latency_dimensions: %q is not one of %v", d, RegressionLatencyDimensions))
		}
	}
	if len(r.LatencyDimensions) > 0 && (r.MinLocks < 1 || r.LatencyRatio < 1 || r.LatencyIncrease < 0) {
		errs = append(errs, "regression: min_locks at least 1, latency_ratio at least 1, latency_increase not negative")
	}
	if r.MinAttempts < 1 || r.Ratio < 1 || r.MinIncrease < 0 || r.MinIncrease >= 1 {
		errs = append(errs, "regression: min_attempts at least 1, ratio at least 1, min_increase in [0, 1)")
	}
	return errs
}

// RegressionHour is one hour of one slice value: access attempts (granted
// or denied) and denials.
type RegressionHour struct {
	HourMs   int64
	Attempts uint64
	Denied   uint64
}

// RegressionSeries is one value of a dimension, hour by hour (sorted, the
// hours with attempts only), over the rules' History up to now.
type RegressionSeries struct {
	Value string
	Hours []RegressionHour
}

// sum adds the hours in [from, to).
func (s *RegressionSeries) sum(from, to int64) (attempts, denied uint64) {
	for _, h := range s.Hours {
		if h.HourMs >= from && h.HourMs < to {
			attempts += h.Attempts
			denied += h.Denied
		}
	}
	return attempts, denied
}

// RegressionFinding is what regression measured for one slice value that
// regressed: the evidence of its alert.
type RegressionFinding struct {
	Dimension, Value string
	// New: the value first appeared at ChangeMs (before = the other values);
	// otherwise a sliding split at ChangeMs (before = the value itself).
	New                             bool
	ChangeMs                        int64
	BeforeAttempts, BeforeDenied    uint64
	AfterAttempts, AfterDenied      uint64
	BeforeShare, AfterShare, Needed float64
}

// CheckRegressions is regression for one dimension at now, over the series
// of its values (the empty value — unknown — is never judged, but counts
// as a peer of nothing). historyStart is the first hour the store holds
// (a value seen from then on is not new). It returns one alert per
// regressed value, with the findings in the same order.
func CheckRegressions(r *RegressionRules, dim string, series []RegressionSeries, now, historyStart int64) ([]Alert, []RegressionFinding) {
	if !r.Enabled {
		return nil, nil
	}
	w := r.Window.Ms()
	var alerts []Alert
	var findings []RegressionFinding
	for i := range series {
		s := &series[i]
		if s.Value == "" || len(s.Hours) == 0 {
			continue
		}
		f := RegressionFinding{Dimension: dim, Value: s.Value}
		first := s.Hours[0].HourMs
		if first >= now-r.NewFor.Ms() && first >= historyStart+w {
			f.New, f.ChangeMs = true, first
			f.AfterAttempts, f.AfterDenied = s.sum(first, now)
			for j := range series {
				if j == i || series[j].Value == "" {
					continue
				}
				a, d := series[j].sum(first-w, first)
				f.BeforeAttempts += a
				f.BeforeDenied += d
			}
		} else {
			f.ChangeMs = (now - w) / hourMs * hourMs
			f.AfterAttempts, f.AfterDenied = s.sum(f.ChangeMs, now)
			f.BeforeAttempts, f.BeforeDenied = s.sum(f.ChangeMs-w, f.ChangeMs)
		}
		min := uint64(r.MinAttempts)
		if f.AfterAttempts < min || f.BeforeAttempts < min {
			continue
		}
		f.BeforeShare = float64(f.BeforeDenied) / float64(f.BeforeAttempts)
		f.AfterShare = float64(f.AfterDenied) / float64(f.AfterAttempts)
		f.Needed = max(f.BeforeShare*r.Ratio, f.BeforeShare+r.MinIncrease)
		if f.AfterShare < f.Needed {
			continue
		}
		alerts = append(alerts, regressionAlert(r, f, now))
		findings = append(findings, f)
	}
	return alerts, findings
}

const hourMs = 60 * 60 * 1000

func regressionAlert(r *RegressionRules, f RegressionFinding, now int64) Alert {
	key := f.Dimension + "=" + f.Value
	change := int64(0) // a sliding split: one alert per suppression period
	if f.New {
		change = f.ChangeMs
	}
	ts := now
	if s := r.Suppress.Ms(); s > 0 {
		ts = max(f.ChangeMs, now/s*s)
	}
	pct := func(x float64) string { return fmt.Sprintf("%.1f%%", 100*x) }
	at := time.UnixMilli(f.ChangeMs).UTC().Format("2006-01-02 15:04 UTC")
	var text string
	if f.New {
		text = fmt.Sprintf("Denied share of %s %s jumped to %s (%d of %d attempts) since it first appeared at %s, "+
			"from %s (%d of %d attempts) on the other %s values in the %s before.",
			f.Dimension, f.Value, pct(f.AfterShare), f.AfterDenied, f.AfterAttempts, at,
			pct(f.BeforeShare), f.BeforeDenied, f.BeforeAttempts, f.Dimension, humanDuration(r.Window.D()))
	} else {
		text = fmt.Sprintf("Denied share of %s %s rose to %s (%d of %d attempts) in the %s since %s, from %s (%d of %d attempts) in the %s before.",
			f.Dimension, f.Value, pct(f.AfterShare), f.AfterDenied, f.AfterAttempts, humanDuration(r.Window.D()), at,
			pct(f.BeforeShare), f.BeforeDenied, f.BeforeAttempts, humanDuration(r.Window.D()))
	}
	text += fmt.Sprintf(" Threshold %s (×%g and +%.0f points).", pct(f.Needed), r.Ratio, 100*r.MinIncrease)
	return Alert{
		AlertID:  AlertID(Regression, key, change, period(now, r.Suppress)),
		Detector: Regression, Severity: r.Severity,
		TsMs: ts, WindowStartMs: f.ChangeMs, WindowEndMs: now,
		Observed: round3(f.AfterShare), Threshold: round3(f.Needed), Baseline: round3(f.BeforeShare),
		Evidence:    []string{},
		Explanation: text,
		SuggestedAction: fmt.Sprintf("Find what changed with %s %s (release notes, wallet/app and lock compatibility) and where it fails "+
			"(GET /v1/kpis?slice=lock_firmware&%s=…, or slice=os_version for a lock dimension); hold its rollout or roll back, "+
			"and tell support before the tickets arrive.", f.Dimension, f.Value, f.Dimension),
	}
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

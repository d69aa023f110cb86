// Package score measures detector alerts against the simulator's
// ground-truth labels: precision and recall per anomaly type, so detectors
// can be tuned on simulated data (`keyfleet simulate score`).
package score

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/keyfleet/keyfleet/internal/sim/activity"
)

// Alert is the part of a detector alert (issue 5's alert JSON) scoring needs.
type Alert struct {
	AlertID       string `json:"alert_id"`
	Detector      string `json:"detector"`
	SubjectID     string `json:"subject_id"`
	CredentialID  string `json:"credential_id"`
	DoorID        string `json:"door_id"`
	TsMs          int64  `json:"ts_ms"`
	WindowStartMs int64  `json:"window_start_ms"`
	WindowEndMs   int64  `json:"window_end_ms"`
}

// Options tune matching.
type Options struct {
	// Slack widens each label's window on both sides (default 15 minutes):
	// a detector judging a sliding window fires a little before a burst
	// ends or a little after the evidence.
	Slack time.Duration
}

// Result is one anomaly type's score.
type Result struct {
	Type      string  `json:"type"`
	Labels    int     `json:"labels"`
	Detected  int     `json:"detected"` // labels matched by at least one alert
	Alerts    int     `json:"alerts"`
	Matching  int     `json:"matching_alerts"` // alerts that match a label
	Precision float64 `json:"precision"`
	Recall    float64 `json:"recall"`
	F1        float64 `json:"f1"`
}

// Matches reports whether an alert is evidence of a label: the detector is
// the label's type, it names the same subject or credential (the same door
// for door-level anomalies), and its window overlaps the label's.
func Matches(l *activity.Label, a *Alert, slack time.Duration) bool {
	if a.Detector != l.Type {
		return false
	}
	same := func(x, y string) bool { return x != "" && x == y }
	switch l.Type {
	case activity.LabelDoorForced:
		if !same(a.DoorID, l.DoorID) {
			return false
		}
	case activity.LabelDeniedStorm:
		if !same(a.DoorID, l.DoorID) && !same(a.CredentialID, l.CredentialID) {
			return false
		}
	default:
		if !same(a.SubjectID, l.SubjectID) && !same(a.CredentialID, l.CredentialID) {
			return false
		}
	}
	from, until := a.TsMs, a.TsMs
	if a.WindowStartMs > 0 && a.WindowStartMs < from {
		from = a.WindowStartMs
	}
	if a.WindowEndMs > until {
		until = a.WindowEndMs
	}
	s := slack.Milliseconds()
	return from <= l.EndMs+s && until >= l.StartMs-s
}

// Score scores alerts against labels, one Result per label type (and per
// detector that fired without any label type of its name, with no recall).
func Score(labels []activity.Label, alerts []Alert, o Options) []Result {
	if o.Slack == 0 {
		o.Slack = 15 * time.Minute
	}
	byType := map[string]*Result{}
	get := func(typ string) *Result {
		r, ok := byType[typ]
		if !ok {
			r = &Result{Type: typ}
			byType[typ] = r
		}
		return r
	}
	for _, t := range activity.LabelTypes {
		get(t)
	}
	detected := make([]bool, len(labels))
	for i := range labels {
		get(labels[i].Type).Labels++
	}
	for ai := range alerts {
		a := &alerts[ai]
		r := get(a.Detector)
		r.Alerts++
		matched := false
		for li := range labels {
			if Matches(&labels[li], a, o.Slack) {
				matched = true
				detected[li] = true
			}
		}
		if matched {
			r.Matching++
		}
	}
	for i := range labels {
		if detected[i] {
			byType[labels[i].Type].Detected++
		}
	}
	out := make([]Result, 0, len(byType))
	for _, r := range byType {
		if r.Alerts > 0 {
			r.Precision = float64(r.Matching) / float64(r.Alerts)
		}
		if r.Labels > 0 {
			r.Recall = float64(r.Detected) / float64(r.Labels)
		}
		if r.Precision+r.Recall > 0 {
			r.F1 = 2 * r.Precision * r.Recall / (r.Precision + r.Recall)
		}
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// ReadLabels reads a labels file (JSON lines).
func ReadLabels(r io.Reader) ([]activity.Label, error) {
	var out []activity.Label
	err := readLines(r, func(line []byte) error {
		var l activity.Label
		if err := json.Unmarshal(line, &l); err != nil {
			return err
		}
		out = append(out, l)
		return nil
	})
	return out, err
}

// ReadAlerts reads alerts as JSON lines (what `keyfleet detect --replay`
// prints); lines that are not alerts (no detector) are skipped.
func ReadAlerts(r io.Reader) ([]Alert, error) {
	var out []Alert
	err := readLines(r, func(line []byte) error {
		var a Alert
		if err := json.Unmarshal(line, &a); err != nil {
			return err
		}
		if a.Detector != "" {
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

func readLines(r io.Reader, fn func([]byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Bytes()
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	return sc.Err()
}

// WriteTable writes results as a readable table.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "type\tlabels\tdetected\talerts\tmatching\tprecision\trecall\tF1\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%.3f\t%.3f\t%.3f\t\n", r.Type, r.Labels, r.Detected, r.Alerts, r.Matching,
			r.Precision, r.Recall, r.F1)
	}
	return tw.Flush()
}

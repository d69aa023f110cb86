package backtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/event"
)

// Label is one labelled anomaly (ground truth), a line of a labels file
// (the fleet simulator writes them). Type is a detector name.
type Label struct {
	Type         string `json:"type"`
	SubjectID    string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	DoorID       string `json:"door_id"`
	StartMs      int64  `json:"start_ms"`
	EndMs        int64  `json:"end_ms"`
	// Subtle marks unlock bursts only moderately above the subject's habit.
	Subtle bool `json:"subtle,omitempty"`
	// Scenario names the newcomers' scenario an anomaly belongs to (the
	// simulator's new-crew and new-building cohorts), so a backtest can
	// score it apart.
	Scenario string `json:"scenario,omitempty"`
}

// ReadLabels reads a labels file (JSON lines).
func ReadLabels(r io.Reader) ([]Label, error) {
	var out []Label
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var l Label
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("labels line %d: %w", line, err)
		}
		if l.Type == "" || l.EndMs < l.StartMs {
			return nil, fmt.Errorf("labels line %d: want a type and start_ms ≤ end_ms", line)
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read labels: %w", err)
	}
	return out, nil
}

// ReadAlerts reads alerts as JSON lines (what `keyfleet detect --replay`
// prints); lines that are not alerts (no detector) are skipped.
func ReadAlerts(r io.Reader) ([]detect.Alert, error) {
	var out []detect.Alert
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if len(strings.TrimSpace(string(b))) == 0 {
			continue
		}
		var a detect.Alert
		if err := json.Unmarshal(b, &a); err != nil {
			return nil, fmt.Errorf("alerts line %d: %w", line, err)
		}
		if a.Detector != "" {
			out = append(out, a)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	return out, nil
}

// doorScoped are detectors whose alerts are about a door: for them a label
// also matches on door_id.
var doorScoped = []string{detect.DeniedStorm, detect.DoorForced, detect.DoorAjar, detect.EmergencyUnlock}

// Matches reports whether an alert matches a label: same detector (type),
// the same subject or the same credential (for door-scoped detectors,
// denied_storm, door_forced, door_ajar and emergency_unlock, the same door
// also counts), and the alert's ts_ms within [start_ms, end_ms + grace].
func Matches(a *detect.Alert, l *Label, grace time.Duration) bool {
	if a.Detector != l.Type {
		return false
	}
	if a.TsMs < l.StartMs || a.TsMs > l.EndMs+grace.Milliseconds() {
		return false
	}
	same := func(x, y string) bool { return x != "" && x == y }
	if same(a.SubjectID, l.SubjectID) || same(a.CredentialID, l.CredentialID) {
		return true
	}
	return slices.Contains(doorScoped, a.Detector) && same(a.DoorID, l.DoorID)
}

// Result is the score of one detector (or of the baseline rule).
type Result struct {
	Detector      string  `json:"detector"`
	Labels        int     `json:"labels"`
	Alerts        int     `json:"alerts"`
	TruePositives int     `json:"true_positive_alerts"` // alerts matching a label
	LabelsFound   int     `json:"labels_found"`         // labels matched by an alert
	Precision     float64 `json:"precision"`
	Recall        float64 `json:"recall"`
	F1            float64 `json:"f1"`
	Scored        bool    `json:"scored"` // false when there are no labels of this type
}

// Score scores alerts (revision-0 alerts only; updates are ignored) against
// labels, per detector. Precision is the share of alerts that match a label
// of their type; recall the share of labels matched by at least one alert.
// Detectors without labels get Scored=false (their precision is unknown,
// not zero: the data may simply not label them).
func Score(alerts []detect.Alert, labels []Label, grace time.Duration) []Result {
	byDet := map[string]*Result{}
	get := func(d string) *Result {
		r := byDet[d]
		if r == nil {
			r = &Result{Detector: d}
			byDet[d] = r
		}
		return r
	}
	byType := map[string][]int{}
	for i, l := range labels {
		byType[l.Type] = append(byType[l.Type], i)
		get(l.Type).Labels++
	}
	found := make([]bool, len(labels))
	for i := range alerts {
		a := &alerts[i]
		if a.Revision != 0 {
			continue
		}
		r := get(a.Detector)
		r.Alerts++
		hit := false
		for _, li := range byType[a.Detector] {
			if Matches(a, &labels[li], grace) {
				hit = true
				found[li] = true
			}
		}
		if hit {
			r.TruePositives++
		}
	}
	for i, f := range found {
		if f {
			byDet[labels[i].Type].LabelsFound++
		}
	}
	out := make([]Result, 0, len(byDet))
	for _, r := range byDet {
		r.Scored = r.Labels > 0
		if r.Alerts > 0 {
			r.Precision = float64(r.TruePositives) / float64(r.Alerts)
		}
		if r.Labels > 0 {
			r.Recall = float64(r.LabelsFound) / float64(r.Labels)
		}
		if r.Precision+r.Recall > 0 {
			r.F1 = 2 * r.Precision * r.Recall / (r.Precision + r.Recall)
		}
		out = append(out, *r)
	}
	order := func(d string) int {
		if i := slices.Index(detect.Detectors, d); i >= 0 {
			return i
		}
		return len(detect.Detectors)
	}
	sort.Slice(out, func(i, j int) bool {
		if oi, oj := order(out[i].Detector), order(out[j].Detector); oi != oj {
			return oi < oj
		}
		return out[i].Detector < out[j].Detector
	})
	return out
}

// FixedRule is the naive baseline the detectors are compared with: a subject
// that opens at least Doors distinct doors within Window (sliding) raises an
// unlock_burst, at most one per subject per Window. It knows nothing of
// roles or habits.
type FixedRule struct {
	Doors  int
	Window time.Duration

	alerts []detect.Alert
	state  map[string]*fixedState
}

type fixedState struct {
	ts    []int64
	doors []string
	until int64
}

// NewFixedRule returns the baseline rule.
func NewFixedRule(doors int, window time.Duration) *FixedRule {
	return &FixedRule{Doors: doors, Window: window, state: map[string]*fixedState{}}
}

// Name describes the rule.
func (f *FixedRule) Name() string {
	return fmt.Sprintf("fixed: distinct doors per %s >= %d", f.Window, f.Doors)
}

// Access implements Observer.
func (f *FixedRule) Access(ev *event.Access) {
	if ev.Outcome != "granted" || (ev.Action != "unlock" && ev.Action != "unlatch") {
		return
	}
	key := ev.SubjectID
	if key == "" {
		key = "credential:" + ev.CredentialID
		if ev.CredentialID == "" {
			return
		}
	}
	s := f.state[key]
	if s == nil {
		s = &fixedState{}
		f.state[key] = s
	}
	door := ev.DoorID
	if door == "" {
		door = ev.LockID
	}
	w := f.Window.Milliseconds()
	drop := 0
	for drop < len(s.ts) && s.ts[drop] <= ev.TsMs-w {
		drop++
	}
	s.ts, s.doors = append(s.ts[:0], s.ts[drop:]...), append(s.doors[:0], s.doors[drop:]...)
	s.ts, s.doors = append(s.ts, ev.TsMs), append(s.doors, door)
	distinct := map[string]struct{}{}
	for _, d := range s.doors {
		distinct[d] = struct{}{}
	}
	if len(distinct) < f.Doors || ev.TsMs < s.until {
		return
	}
	s.until = ev.TsMs + w
	f.alerts = append(f.alerts, detect.Alert{
		AlertID: detect.AlertID("fixed", key, ev.TsMs, ev.EventID), Detector: detect.UnlockBurst,
		SubjectID: ev.SubjectID, CredentialID: ev.CredentialID, DoorID: door, SiteID: ev.SiteID,
		TsMs: ev.TsMs, Observed: float64(len(distinct)), Threshold: float64(f.Doors),
	})
}

// Alerts returns the rule's alerts.
func (f *FixedRule) Alerts() []detect.Alert { return f.alerts }

// WriteTable writes the scores as a readable table: the detectors' rows,
// then the baseline rule's row (scored as unlock_burst).
func WriteTable(w io.Writer, results []Result, baselineName string, baseline *Result) {
	fmt.Fprintf(w, "%-42s %7s %7s %7s %7s %9s %7s %6s\n", "detector", "labels", "alerts", "tp", "found", "precision", "recall", "f1")
	row := func(name string, r Result) {
		if !r.Scored {
			fmt.Fprintf(w, "%-42s %7d %7d %7s %7s %9s %7s %6s\n", name, r.Labels, r.Alerts, "-", "-", "n/a", "n/a", "n/a")
			return
		}
		fmt.Fprintf(w, "%-42s %7d %7d %7d %7d %9.3f %7.3f %6.3f\n", name, r.Labels, r.Alerts, r.TruePositives, r.LabelsFound, r.Precision, r.Recall, r.F1)
	}
	for _, r := range results {
		row(r.Detector, r)
	}
	if baseline != nil {
		row(baselineName, *baseline)
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/internal/flagenv"
)

// runDetect is `keyfleet detect --replay FILE [--rules FILE] [--labels FILE]`:
// the production detectors over a recorded file, alerts as JSON lines on
// stdout, and with --labels a score table on stderr (or --score-out).
func runDetect(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		replay, rulesFile, labelsFile, scoreOut string
		baselineDoors                           int
		baselineWindow, grace                   time.Duration
		printRules, quiet                       bool
	)
	fs := flagenv.New("detect", "Backtesting: runs exactly the production detectors over a recorded JSON-lines file\n"+
		"(access events and \"record\":\"credential\" lifecycle records, ordered by ts_ms) and prints\n"+
		"their alerts as JSON lines on stdout. With --labels it scores them per detector (precision,\n"+
		"recall, F1) beside a fixed-threshold rule (distinct doors per window >= N).\n"+
		"Live detection runs inside `keyfleet serve`.")
	fs.FlagSet().SetOutput(stderr)
	fs.String(&replay, "replay", "KEYFLEET_DETECT_REPLAY", "", "replay FILE (JSON lines; - for stdin)")
	fs.String(&rulesFile, "rules", "KEYFLEET_DETECT_RULES", "", "rules file (JSON with a version field); empty uses the compiled-in defaults")
	fs.String(&labelsFile, "labels", "KEYFLEET_DETECT_LABELS", "", "labels FILE (JSON lines {type, subject_id, credential_id, door_id, start_ms, end_ms}) to score against")
	fs.String(&scoreOut, "score-out", "KEYFLEET_DETECT_SCORE_OUT", "", "write the scores as JSON to this file instead of a table on stderr")
	fs.Int(&baselineDoors, "baseline-doors", "KEYFLEET_DETECT_BASELINE_DOORS", 8, "N of the fixed-threshold comparison rule (distinct doors per window >= N)")
	fs.Duration(&baselineWindow, "baseline-window", "KEYFLEET_DETECT_BASELINE_WINDOW", time.Hour, "window of the fixed-threshold comparison rule")
	fs.Duration(&grace, "grace", "KEYFLEET_DETECT_GRACE", 10*time.Minute, "an alert matches a label when its ts_ms is within [start_ms, end_ms + grace]")
	fs.Bool(&printRules, "print-rules", "KEYFLEET_DETECT_PRINT_RULES", false, "print the effective rules (defaults merged with --rules) as JSON and exit")
	fs.Bool(&quiet, "quiet", "KEYFLEET_DETECT_QUIET", false, "do not print alerts (scores only)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.Args() != nil && len(fs.Args()) > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	rules, err := detect.LoadRules(rulesFile)
	if err != nil {
		return usageError{err}
	}
	if printRules {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rules)
	}
	if replay == "" {
		return usageError{errors.New("--replay FILE is required (live detection runs in `keyfleet serve`)")}
	}
	if baselineDoors < 1 || baselineWindow <= 0 || grace < 0 {
		return usageError{errors.New("--baseline-doors must be ≥ 1, --baseline-window positive, --grace not negative")}
	}
	var labels []backtest.Label
	if labelsFile != "" {
		f, err := os.Open(labelsFile)
		if err != nil {
			return usageError{err}
		}
		labels, err = backtest.ReadLabels(f)
		f.Close()
		if err != nil {
			return err
		}
	}
	in := io.Reader(os.Stdin)
	if replay != "-" {
		f, err := os.Open(replay)
		if err != nil {
			return usageError{err}
		}
		defer f.Close()
		in = f
	}
	engine, err := detect.NewEngine(rules, detect.Options{BatchChecks: true})
	if err != nil {
		return err
	}
	out := bufio.NewWriterSize(stdout, 1<<16)
	defer out.Flush()
	var alerts []detect.Alert
	var fixed *backtest.FixedRule
	opts := backtest.Options{Engine: engine, Emit: func(a *detect.Alert) error {
		if labels != nil && a.Revision == 0 {
			alerts = append(alerts, *a)
		}
		if quiet {
			return nil
		}
		b, err := json.Marshal(a)
		if err != nil {
			return err
		}
		out.Write(b)
		return out.WriteByte('\n')
	}}
	if labels != nil {
		fixed = backtest.NewFixedRule(baselineDoors, baselineWindow)
		opts.Observer = fixed
	}
	start := time.Now()
	st, err := backtest.Replay(ctx, in, opts)
	if err != nil {
		return fmt.Errorf("replay %s: %w", replay, err)
	}
	if err := out.Flush(); err != nil {
		return err
	}
	elapsed := time.Since(start)
	fmt.Fprintf(stderr, "replayed %d access events and %d credential records in %s (%.0f records/s): %d alerts, %d updates\n",
		st.Access, st.Credentials, elapsed.Round(time.Millisecond),
		float64(st.Access+st.Credentials)/max(elapsed.Seconds(), 1e-9), st.Alerts, st.Updates)
	if labels == nil {
		return nil
	}
	results := backtest.Score(alerts, labels, grace)
	base := backtest.Score(fixed.Alerts(), labels, grace)
	var baseline backtest.Result
	for _, r := range base {
		if r.Detector == detect.UnlockBurst {
			baseline = r
		}
	}
	baseline.Detector = fixed.Name()
	if scoreOut != "" {
		doc := struct {
			Replay   string            `json:"replay"`
			Labels   string            `json:"labels"`
			Rules    int               `json:"rules_version"`
			GraceMs  int64             `json:"grace_ms"`
			Stats    backtest.Stats    `json:"stats"`
			Results  []backtest.Result `json:"detectors"`
			Baseline backtest.Result   `json:"baseline"`
		}{replay, labelsFile, rules.Version, grace.Milliseconds(), st, results, baseline}
		b, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return err
		}
		return os.WriteFile(scoreOut, append(b, '\n'), 0o644)
	}
	fmt.Fprintln(stderr)
	backtest.WriteTable(stderr, results, baseline.Detector+" (as unlock_burst)", &baseline)
	return nil
}

// Package backtest runs the production detectors over recorded data
// (`keyfleet detect --replay`) and scores their alerts against labelled
// ground truth, side by side with a fixed-threshold baseline rule.
//
// A replay file holds JSON lines ordered by ts_ms: access events in the
// common schema (optionally with "record":"access") and credential lifecycle
// records ("record":"credential", see event.Credential).
package backtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/event"
)

// Observer sees every access event of a replay (the baseline rule uses it).
type Observer interface {
	Access(ev *event.Access)
}

// Stats summarize a replay.
type Stats struct {
	Access      int `json:"access_events"`
	Credentials int `json:"credential_records"`
	Alerts      int `json:"alerts"`  // revision 0
	Updates     int `json:"updates"` // suppression-window updates
}

// Options configure a replay.
type Options struct {
	Engine   *detect.Engine
	Observer Observer // optional
	// Emit receives each alert as the engine emits it (raised, then updated).
	Emit func(a *detect.Alert) error
}

// Replay feeds the records of r to the engine in file order, then flushes
// every open suppression window. It stops at the first malformed line,
// naming it.
func Replay(ctx context.Context, r io.Reader, o Options) (Stats, error) {
	var st Stats
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), 16<<20)
	var alerts []detect.Alert
	var ev event.Access
	var cred event.Credential
	emit := func() error {
		for i := range alerts {
			if alerts[i].Revision == 0 {
				st.Alerts++
			} else {
				st.Updates++
			}
			if o.Emit != nil {
				if err := o.Emit(&alerts[i]); err != nil {
					return err
				}
			}
		}
		clear(alerts)
		alerts = alerts[:0]
		return nil
	}
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if line%8192 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		kind, err := recordKind(b)
		if err != nil {
			return st, fmt.Errorf("line %d: %w", line, err)
		}
		switch kind {
		case "access":
			if err := event.Decode(b, &ev); err != nil {
				return st, fmt.Errorf("line %d: access event: %w", line, err)
			}
			if ev.TsMs <= 0 {
				return st, fmt.Errorf("line %d: access event without ts_ms", line)
			}
			if o.Observer != nil {
				o.Observer.Access(&ev)
			}
			alerts = o.Engine.Access(alerts, &ev)
			st.Access++
		case "credential":
			cred = event.Credential{}
			if err := json.Unmarshal(b, &cred); err != nil {
				return st, fmt.Errorf("line %d: credential record: %w", line, err)
			}
			if !event.Valid(event.States, cred.State) {
				return st, fmt.Errorf("line %d: credential record: unknown state %q", line, cred.State)
			}
			ent := detect.Entitlement{} // the record's "locks", when it has them
			if err := json.Unmarshal(b, &ent); err != nil {
				return st, fmt.Errorf("line %d: credential record: %w", line, err)
			}
			o.Engine.Entitle(&ent)
			alerts = o.Engine.Credential(alerts, &cred)
			st.Credentials++
		default:
			return st, fmt.Errorf("line %d: unknown record %q (want access or credential)", line, kind)
		}
		if err := emit(); err != nil {
			return st, err
		}
	}
	if err := sc.Err(); err != nil {
		return st, fmt.Errorf("read line %d: %w", line+1, err)
	}
	alerts = o.Engine.Flush(alerts)
	return st, emit()
}

var (
	recordKey        = []byte(`"record"`)
	recordAccess     = []byte(`"record":"access"`)
	recordCredential = []byte(`"record":"credential"`)
)

// recordKind returns the line's record type ("access" when absent). A quote
// inside a JSON string is escaped, so the compact spellings can only be the
// key itself; anything else is parsed.
func recordKind(b []byte) (string, error) {
	switch {
	case !bytes.Contains(b, recordKey):
		return "access", nil
	case bytes.Contains(b, recordAccess):
		return "access", nil
	case bytes.Contains(b, recordCredential):
		return "credential", nil
	}
	var r struct {
		Record string `json:"record"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("not a JSON object: %w", err)
	}
	if r.Record == "" {
		return "access", nil
	}
	return r.Record, nil
}

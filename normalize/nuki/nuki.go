// Package nuki normalizes Nuki Web API smartlock log entries, bare or inside
// a DEVICE_LOGS webhook, and verifies Nuki's webhook signatures.
//
//	{"id":"6566e1b0c3a4f22e5c0d9b17","smartlockId":17171717,"deviceType":4,"authId":"6566dd0e...",
//	 "name":"...","action":1,"trigger":5,"state":0,"autoUnlock":false,"date":"2026-11-20T08:15:02.000Z","source":0}
//
// The lock id is the smartlockId, the vendor event id the log entry id, the
// user reference the authId. The name is never read.
package nuki

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/jsonscan"
	"github.com/keyfleet/keyfleet/normalize/internal/timestamp"
)

// Vendor is this adapter's vendor name.
const Vendor = "nuki"

// FeatureDeviceLogs is the webhook feature that carries log entries.
const FeatureDeviceLogs = "DEVICE_LOGS"

// Adapter maps Nuki log entries.
type Adapter struct{}

var (
	_ normalize.Adapter    = Adapter{}
	_ normalize.Documented = Adapter{}
	_ normalize.Described  = Adapter{}
)

// entry is the part of a log entry the adapter reads. Its JSON tags let the
// differential test decode it with encoding/json.
type entry struct {
	ID            jsonscan.Bytes `json:"id"`
	SmartlockID   jsonscan.Int   `json:"smartlockId"`
	AuthID        string         `json:"authId"`
	AccountUserID jsonscan.Int   `json:"accountUserId"`
	Action        jsonscan.Int   `json:"action"`
	Trigger       jsonscan.Int   `json:"trigger"`
	State         jsonscan.Int   `json:"state"`
	Source        jsonscan.Int   `json:"source"`
	AutoUnlock    bool           `json:"autoUnlock"`
	Date          jsonscan.Bytes `json:"date"`
}

// record is a bare log entry or a webhook: the webhook's log entry is
// decoded into the same entry (a bare entry has no feature).
type record struct {
	Feature string `json:"feature"`
	entry
	SmartlockLog *entry `json:"smartlockLog"`
}

// Normalize implements normalize.Adapter.
func (Adapter) Normalize(dst []event.Access, raw []byte) ([]event.Access, error) {
	var rec record
	var log entry
	wrapped, err := decode(raw, &rec.entry, &log, &rec.Feature)
	if err != nil {
		if otherFeature(&rec, err) {
			return dst, nil
		}
		return dst, normalize.DecodeError("nuki log entry", err)
	}
	// The webhook's entry is passed on by itself, not through
	// rec.SmartlockLog: that pointer would move log to the heap.
	var inner *entry
	if wrapped {
		inner = &log
	}
	return mapEntry(dst, rec.Feature, &rec.entry, inner)
}

// decode reads a payload: top-level entry fields into top, the webhook's
// smartlockLog into log. wrapped reports whether a smartlockLog object was present.
func decode(raw []byte, top, log *entry, feature *string) (wrapped bool, err error) {
	var r jsonscan.Reader
	r.Reset(raw)
	if _, err := r.Object(func(key []byte) error {
		switch string(key) {
		case "feature":
			return r.ReadString(feature, FeatureDeviceLogs)
		case "smartlockLog":
			// As encoding/json fills a pointer: a repeated member merges
			// into the entry, a null drops it.
			if !wrapped {
				*log = entry{}
			}
			ok, err := r.Object(func(key []byte) error { return decodeEntry(&r, key, log) })
			wrapped = ok
			return err
		default:
			return decodeEntry(&r, key, top)
		}
	}); err != nil {
		return false, err
	}
	return wrapped, r.Finish()
}

func decodeEntry(r *jsonscan.Reader, key []byte, e *entry) error {
	switch string(key) {
	case "id":
		return r.ReadBytes(&e.ID)
	case "smartlockId":
		return r.ReadInt(&e.SmartlockID)
	case "authId":
		return r.ReadString(&e.AuthID)
	case "accountUserId":
		return r.ReadInt(&e.AccountUserID)
	case "action":
		return r.ReadInt(&e.Action)
	case "trigger":
		return r.ReadInt(&e.Trigger)
	case "state":
		return r.ReadInt(&e.State)
	case "source":
		return r.ReadInt(&e.Source)
	case "autoUnlock":
		return r.ReadBool(&e.AutoUnlock)
	case "date":
		return r.ReadBytes(&e.Date)
	default: // name, deviceType, ... are not read
		return r.Skip()
	}
}

// otherFeature reports whether a payload that failed to decode is a webhook
// of another feature, whose fields (a DEVICE_STATUS state object, ...) are
// not a log entry's: it is not an access event, not an error.
func otherFeature(rec *record, err error) bool {
	if rec.Feature == "" || rec.Feature == FeatureDeviceLogs {
		return false
	}
	var se *jsonscan.SyntaxError
	var jse *json.SyntaxError
	return !errors.As(err, &se) && !errors.As(err, &jse)
}

func mapRecord(dst []event.Access, rec *record) ([]event.Access, error) {
	return mapEntry(dst, rec.Feature, &rec.entry, rec.SmartlockLog)
}

// mapEntry maps a bare log entry (top), or a webhook's (feature, inner).
func mapEntry(dst []event.Access, feature string, top, inner *entry) ([]event.Access, error) {
	e := top
	if feature != "" || inner != nil {
		if feature != "" && feature != FeatureDeviceLogs {
			return dst, nil // not an access event
		}
		if inner == nil {
			return dst, normalize.Errorf(normalize.ReasonMissingField, "nuki DEVICE_LOGS webhook has no smartlockLog")
		}
		e = inner
	}
	if !e.SmartlockID.Set {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "nuki log entry has no smartlockId")
	}
	if e.SmartlockID.V < 0 {
		return dst, normalize.Errorf(normalize.ReasonBadField, "nuki smartlockId is negative")
	}
	if len(e.Date.B) == 0 {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "nuki log entry has no date")
	}
	ts, ok := timestamp.ParseRFC3339(e.Date.B)
	if !ok {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "nuki log entry date is not RFC 3339")
	}
	if !e.Action.Set {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "nuki log entry has no action")
	}
	var buf [64]byte
	ev := event.Access{
		TsMs:     ts,
		LockID:   string(strconv.AppendInt(buf[:0], e.SmartlockID.V, 10)),
		Attested: "unknown",
		Method:   "unknown",
		UserRef:  e.AuthID,
	}
	if ev.UserRef == "" && e.AccountUserID.Set {
		ev.UserRef = "account:" + strconv.FormatInt(e.AccountUserID.V, 10)
	}
	if len(e.ID.B) > 0 {
		ev.EventID = event.IDBytes(Vendor, e.ID.B)
	}
	if m, ok := actions.Int(e.Action.V); ok {
		m.Apply(&ev)
	} else {
		ev.Action, ev.Outcome = "other", "info"
	}
	// Door sensor and housekeeping entries have no method; lock operations
	// take it from the trigger, refined by the source and autoUnlock.
	lockOp := ev.Action == "unlock" || ev.Action == "lock" || ev.Action == "unlatch"
	if e.Trigger.Set && lockOp {
		t := triggers
		if e.Trigger.V == 0 && ev.UserRef == "" {
			t = systemNoAuth
		}
		if m, ok := t.Int(e.Trigger.V); ok {
			m.Apply(&ev)
		}
	}
	if e.Source.Set && lockOp {
		if m, ok := sources.Int(e.Source.V); ok {
			m.Apply(&ev)
		}
	}
	if e.AutoUnlock && ev.Action == "unlock" {
		if m, ok := autoUnlock.Str("true"); ok {
			m.Apply(&ev)
		}
	}
	if tap := e.Trigger.Set && e.Trigger.V == triggerKeypadError && e.Source.Set && e.Source.V == sourceTapToUnlock; tap && e.State.Set {
		if m, ok := tapStates.Int(e.State.V); ok {
			m.Apply(&ev)
		} else {
			ev.Outcome, ev.Reason = "error", "unknown"
		}
	} else if e.State.Set && e.State.V != 0 {
		if m, ok := states.Int(e.State.V); ok {
			m.Apply(&ev)
		} else {
			ev.Outcome, ev.Reason = "error", "unknown"
		}
	}
	code := append(buf[:0], "action="...)
	code = normalize.AppendInt(code, e.Action.V)
	if e.Trigger.Set {
		code = normalize.AppendInt(append(code, " trigger="...), e.Trigger.V)
	}
	if e.State.Set {
		code = normalize.AppendInt(append(code, " state="...), e.State.V)
	}
	if e.Source.Set && e.Source.V != 0 {
		code = normalize.AppendInt(append(code, " source="...), e.Source.V)
	}
	ev.VendorCode = string(code)
	return append(dst, ev), nil
}

// referenceDecode is the encoding/json reading of a payload (for the
// differential test; kept beside decode so the two stay in step).
func referenceDecode(raw []byte) (record, error) {
	var rec record
	err := json.Unmarshal(raw, &rec)
	return rec, err
}

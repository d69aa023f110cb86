// Package seam normalizes Seam-style aggregator webhook events:
//
//	{"event_id":"...","event_type":"lock.unlocked","device_id":"...","workspace_id":"...",
//	 "created_at":"2026-11-20T08:15:03Z","occurred_at":"2026-11-20T08:15:02Z","method":"keycode","access_code_id":"..."}
//
// The lock id is the device_id, the vendor event id the event_id, the user
// reference the access_code_id (or acs_credential_id, user_identity_id).
package seam

import (
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/jsonscan"
	"github.com/keyfleet/keyfleet/normalize/internal/timestamp"
)

// Vendor is this adapter's vendor name.
const Vendor = "seam"

// Adapter maps Seam webhook events.
type Adapter struct{}

var (
	_ normalize.Adapter    = Adapter{}
	_ normalize.Documented = Adapter{}
	_ normalize.Described  = Adapter{}
)

// record is the part of an event the adapter reads. Its JSON tags let the
// differential test decode it with encoding/json.
type record struct {
	EventID         jsonscan.Bytes `json:"event_id"`
	EventType       string         `json:"event_type"`
	DeviceID        string         `json:"device_id"`
	CreatedAt       jsonscan.Bytes `json:"created_at"`
	OccurredAt      jsonscan.Bytes `json:"occurred_at"`
	Method          string         `json:"method"`
	AccessCodeID    string         `json:"access_code_id"`
	ACSCredentialID string         `json:"acs_credential_id"`
	UserIdentityID  string         `json:"user_identity_id"`
}

var (
	typeNames = func() []string {
		var names []string
		for _, m := range eventTypes.Rows() {
			names = append(names, m.Code)
		}
		return names
	}()
	methodNames = []string{"keycode", "manual", "automatic", "remote", "seamapi", "mobile_key", "unknown"}
)

// Normalize implements normalize.Adapter.
func (Adapter) Normalize(dst []event.Access, raw []byte) ([]event.Access, error) {
	var rec record
	if err := decode(raw, &rec); err != nil {
		return dst, normalize.DecodeError("seam event", err)
	}
	return mapRecord(dst, &rec)
}

func decode(raw []byte, rec *record) error {
	var r jsonscan.Reader
	r.Reset(raw)
	if _, err := r.Object(func(key []byte) error {
		switch string(key) {
		case "event_id":
			return r.ReadBytes(&rec.EventID)
		case "event_type":
			return r.ReadString(&rec.EventType, typeNames...)
		case "device_id":
			return r.ReadString(&rec.DeviceID)
		case "created_at":
			return r.ReadBytes(&rec.CreatedAt)
		case "occurred_at":
			return r.ReadBytes(&rec.OccurredAt)
		case "method":
			return r.ReadString(&rec.Method, methodNames...)
		case "access_code_id":
			return r.ReadString(&rec.AccessCodeID)
		case "acs_credential_id":
			return r.ReadString(&rec.ACSCredentialID)
		case "user_identity_id":
			return r.ReadString(&rec.UserIdentityID)
		default:
			return r.Skip()
		}
	}); err != nil {
		return err
	}
	return r.Finish()
}

func mapRecord(dst []event.Access, rec *record) ([]event.Access, error) {
	if rec.DeviceID == "" {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "seam event has no device_id")
	}
	when := rec.OccurredAt.B
	if len(when) == 0 {
		when = rec.CreatedAt.B
	}
	if len(when) == 0 {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "seam event has neither occurred_at nor created_at")
	}
	ts, ok := timestamp.ParseRFC3339(when)
	if !ok {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "seam event time is not RFC 3339")
	}
	if rec.EventType == "" {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "seam event has no event_type")
	}
	e := event.Access{
		TsMs:     ts,
		LockID:   rec.DeviceID,
		Attested: "unknown",
		Method:   "unknown",
		UserRef:  rec.AccessCodeID,
	}
	if e.UserRef == "" {
		e.UserRef = rec.ACSCredentialID
	}
	if e.UserRef == "" {
		e.UserRef = rec.UserIdentityID
	}
	if len(rec.EventID.B) > 0 {
		e.EventID = event.IDBytes(Vendor, rec.EventID.B)
	}
	if m, ok := eventTypes.Str(rec.EventType); ok {
		m.Apply(&e)
	} else {
		e.Action, e.Outcome = "other", "info"
	}
	e.VendorCode = rec.EventType
	if rec.Method != "" {
		if m, ok := methods.Str(rec.Method); ok {
			m.Apply(&e)
		}
		var buf [96]byte
		e.VendorCode = string(append(append(append(buf[:0], rec.EventType...), '/'), rec.Method...))
	}
	return append(dst, e), nil
}

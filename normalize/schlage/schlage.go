// Package schlage normalizes Schlage Home webhook events:
//
//	{"eventId":"...","trigger":"Device","deviceId":"a1b2c3d4e5f6","time":"2026-11-20T08:15:02.123Z",
//	 "eventType":"DeviceLockStateChanged","data":{"lockState":"Unlocked","accessor":{"id":"...","accessType":"VirtualKey"}},"version":"1.0"}
//
// The lock id is the deviceId, the vendor event id the eventId, the user
// reference the accessor id (or the access code id).
package schlage

import (
	"strconv"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/jsonscan"
	"github.com/keyfleet/keyfleet/normalize/internal/timestamp"
)

// Vendor is this adapter's vendor name.
const Vendor = "schlage"

// Adapter maps Schlage Home webhook events.
type Adapter struct{}

var (
	_ normalize.Adapter    = Adapter{}
	_ normalize.Documented = Adapter{}
	_ normalize.Described  = Adapter{}
)

// record is the part of a webhook the adapter reads. Its JSON tags let the
// differential test decode it with encoding/json.
type record struct {
	EventID   jsonscan.Bytes `json:"eventId"`
	DeviceID  string         `json:"deviceId"`
	Time      jsonscan.Bytes `json:"time"`
	EventType string         `json:"eventType"`
	Data      data           `json:"data"`
}

type data struct {
	LockState         lockState    `json:"lockState"`
	Accessor          accessor     `json:"accessor"`
	AccessCodeID      string       `json:"accessCodeId"`
	ConnectivityState string       `json:"connectivityState"`
	AlarmType         string       `json:"alarmType"`
	BatteryLevel      jsonscan.Int `json:"batteryLevel"`
}

type accessor struct {
	ID         string `json:"id"`
	AccessType string `json:"accessType"`
}

// lockState is a string name ("Locked") or an integer code (1).
type lockState struct {
	Code string
}

// UnmarshalJSON is the encoding/json reading (for the differential test).
func (l *lockState) UnmarshalJSON(b []byte) error {
	var r jsonscan.Reader
	r.Reset(b)
	if err := readLockState(&r, l); err != nil {
		return err
	}
	return r.Finish()
}

func readLockState(r *jsonscan.Reader, l *lockState) error {
	switch r.Kind() {
	case '"', 'n':
		return r.ReadString(&l.Code, stateNames...)
	default:
		v, ok, err := r.Int()
		if ok {
			l.Code = strconv.FormatInt(v, 10)
		}
		return err
	}
}

var (
	eventNames = []string{"DeviceLockStateChanged", "AccessCodeUsed", "InvalidAccessCodeAttempted", "DeviceAlarmTriggered",
		"DeviceBatteryLevelChanged", "DeviceConnectivityStateChanged", "DeviceKeypadLockedOut", "CommandStatusUpdated"}
	stateNames  = []string{"Unlocked", "Locked", "Jammed"}
	accessNames = []string{"VirtualKey", "AccessCode", "AutoRelock", "Thumbturn", "UnlockButton", "LockButton",
		"ScheduledLock", "AppleHome", "AppleHomeNFC", "AccessTypeUnavailable"}
	onlineNames = []string{"Online", "Offline"}
	alarmNames  = []string{"Tamper", "ForcedEntry", "Activity"}
)

// Normalize implements normalize.Adapter.
func (Adapter) Normalize(dst []event.Access, raw []byte) ([]event.Access, error) {
	var rec record
	if err := decode(raw, &rec); err != nil {
		return dst, normalize.DecodeError("schlage event", err)
	}
	return mapRecord(dst, &rec)
}

func decode(raw []byte, rec *record) error {
	var r jsonscan.Reader
	r.Reset(raw)
	if _, err := r.Object(func(key []byte) error {
		switch string(key) {
		case "eventId":
			return r.ReadBytes(&rec.EventID)
		case "deviceId":
			return r.ReadString(&rec.DeviceID)
		case "time":
			return r.ReadBytes(&rec.Time)
		case "eventType":
			return r.ReadString(&rec.EventType, eventNames...)
		case "data":
			_, err := r.Object(func(key []byte) error { return decodeData(&r, key, &rec.Data) })
			return err
		default:
			return r.Skip()
		}
	}); err != nil {
		return err
	}
	return r.Finish()
}

func decodeData(r *jsonscan.Reader, key []byte, d *data) error {
	switch string(key) {
	case "lockState":
		return readLockState(r, &d.LockState)
	case "accessor":
		_, err := r.Object(func(key []byte) error {
			switch string(key) {
			case "id":
				return r.ReadString(&d.Accessor.ID)
			case "accessType":
				return r.ReadString(&d.Accessor.AccessType, accessNames...)
			default:
				return r.Skip()
			}
		})
		return err
	case "accessCodeId":
		return r.ReadString(&d.AccessCodeID)
	case "connectivityState":
		return r.ReadString(&d.ConnectivityState, onlineNames...)
	case "alarmType":
		return r.ReadString(&d.AlarmType, alarmNames...)
	case "batteryLevel":
		return r.ReadInt(&d.BatteryLevel)
	default:
		return r.Skip()
	}
}

func mapRecord(dst []event.Access, rec *record) ([]event.Access, error) {
	if rec.DeviceID == "" {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "schlage event has no deviceId")
	}
	if len(rec.Time.B) == 0 {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "schlage event has no time")
	}
	ts, ok := timestamp.ParseRFC3339(rec.Time.B)
	if !ok {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "schlage event time is not RFC 3339")
	}
	if rec.EventType == "" {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "schlage event has no eventType")
	}
	d := &rec.Data
	e := event.Access{
		TsMs:     ts,
		LockID:   rec.DeviceID,
		Attested: "unknown",
		Method:   "unknown",
		UserRef:  d.Accessor.ID,
	}
	if e.UserRef == "" {
		e.UserRef = d.AccessCodeID
	}
	if len(rec.EventID.B) > 0 {
		e.EventID = event.IDBytes(Vendor, rec.EventID.B)
	}
	var buf [96]byte
	code := append(buf[:0], rec.EventType...)
	m, known := eventTypes.Str(rec.EventType)
	if !known {
		e.Action, e.Outcome = "other", "info"
		e.VendorCode = string(code)
		return append(dst, e), nil
	}
	m.Apply(&e)
	switch rec.EventType {
	case "DeviceLockStateChanged":
		if d.LockState.Code == "" {
			return dst, normalize.Errorf(normalize.ReasonMissingField, "schlage DeviceLockStateChanged has no data.lockState")
		}
		code = append(append(code, '/'), d.LockState.Code...)
		if m, ok := lockStates.Str(d.LockState.Code); ok {
			m.Apply(&e)
		} else {
			e.Action, e.Outcome = "other", "info"
		}
		if d.Accessor.AccessType != "" {
			code = append(append(code, '/'), d.Accessor.AccessType...)
			if m, ok := accessTypes.Str(d.Accessor.AccessType); ok {
				m.Apply(&e)
			}
		}
	case "DeviceAlarmTriggered":
		if d.AlarmType != "" {
			code = append(append(code, '/'), d.AlarmType...)
			if m, ok := alarmTypes.Str(d.AlarmType); ok {
				m.Apply(&e)
			}
		}
	case "DeviceConnectivityStateChanged":
		if d.ConnectivityState != "" {
			code = append(append(code, '/'), d.ConnectivityState...)
			if m, ok := connectivityStates.Str(d.ConnectivityState); ok {
				m.Apply(&e)
			}
		}
	case "DeviceBatteryLevelChanged":
		if d.BatteryLevel.Set {
			code = normalize.AppendInt(append(code, '/'), d.BatteryLevel.V)
			if d.BatteryLevel.V <= lowBattery {
				if m, ok := batteryLevels.Str("<=20"); ok {
					m.Apply(&e)
				}
			}
		}
	}
	e.VendorCode = string(code)
	return append(dst, e), nil
}

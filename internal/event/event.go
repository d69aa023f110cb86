// Package event holds keyfleet's common access-event schema: the one shape every
// vendor payload is normalized into, stored in Kafka (access.events) and in
// ClickHouse (access_events).
package event

import (
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Access is one normalized access event. JSON names are the schema's contract.
type Access struct {
	EventID      string `json:"event_id"`
	TsMs         int64  `json:"ts_ms"`
	ReceivedMs   int64  `json:"received_ms"`
	Vendor       string `json:"vendor"`
	SiteID       string `json:"site_id"`
	ZoneID       string `json:"zone_id"`
	DoorID       string `json:"door_id"`
	LockID       string `json:"lock_id"`
	SubjectID    string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	DeviceID     string `json:"device_id"`
	Attested     string `json:"attested"`
	Action       string `json:"action"`
	Outcome      string `json:"outcome"`
	Method       string `json:"method"`
	Reason       string `json:"reason"`
	VendorCode   string `json:"vendor_code"`
	BreakGlass   bool   `json:"break_glass"`
	RawRef       string `json:"raw_ref"`

	// Device and lock dimensions (issue 19), empty when unknown: the lock's
	// model and firmware (from the payload when the vendor reports them,
	// else the lock registry) and the phone's model, OS name, OS version and
	// wallet/app version (from the payload, else the credential's activation
	// record through the registry). Omitted from JSON when empty.
	LockModel    string `json:"lock_model,omitempty"`
	LockFirmware string `json:"lock_firmware,omitempty"`
	PhoneModel   string `json:"phone_model,omitempty"`
	OSName       string `json:"os_name,omitempty"`
	OSVersion    string `json:"os_version,omitempty"`
	AppVersion   string `json:"app_version,omitempty"`

	// UserRef is the vendor's own reference to who acted (a Matter user index,
	// a Nuki auth id, a Schlage accessor id, a panel card number). Adapters set
	// it; the normalizer resolves it to SubjectID/CredentialID through the
	// registry and then clears it, so it never reaches Kafka or ClickHouse.
	UserRef string `json:"-"`
}

// Vendors are the lock vendors keyfleet normalizes.
var Vendors = []string{"matter", "nuki", "schlage", "seam", "legacy"}

// Actions are the values of Access.Action.
var Actions = []string{
	"unlock", "lock", "unlatch", "access_denied", "door_opened", "door_closed",
	"door_forced", "door_ajar", "tamper", "lock_jammed", "battery_low", "offline",
	"online", "credential_added", "credential_removed", "credential_modified",
	"emergency_unlock", "manual_override", "other",
}

// Outcomes are the values of Access.Outcome.
var Outcomes = []string{"granted", "denied", "error", "info"}

// Methods are the values of Access.Method.
var Methods = []string{
	"phone_nfc", "phone_ble", "aliro", "wallet", "app_remote", "pin", "card",
	"biometric", "mechanical", "button", "auto", "schedule", "unknown",
}

// Reasons are the values of Access.Reason (empty when there is none).
var Reasons = []string{
	"invalid_credential", "revoked", "expired", "outside_schedule", "disabled_user",
	"insufficient_battery", "jammed", "unknown",
}

// Dimensions are the device and lock dimension fields of an event (JSON and
// ClickHouse column names), the slices KPIs and the regression detector cut by.
var Dimensions = []string{"lock_model", "lock_firmware", "phone_model", "os_name", "os_version", "app_version"}

// Dimension returns the value of one of Dimensions (and "" for any other name).
func (a *Access) Dimension(name string) string {
	switch name {
	case "lock_model":
		return a.LockModel
	case "lock_firmware":
		return a.LockFirmware
	case "phone_model":
		return a.PhoneModel
	case "os_name":
		return a.OSName
	case "os_version":
		return a.OSVersion
	case "app_version":
		return a.AppVersion
	}
	return ""
}

// Attestations are the values of Access.Attested.
var Attestations = []string{"attested", "unattested", "unknown"}

// namespace is the UUIDv5 namespace of keyfleet event ids (a fixed random UUID).
var namespace = [16]byte{0x6b, 0x65, 0x79, 0x66, 0x6c, 0x65, 0x65, 0x74, 0x9a, 0x41, 0x4e, 0x1c, 0x8f, 0x0d, 0x3b, 0x27}

// ID returns the deterministic event id of a vendor event: a UUIDv5 over the
// vendor name and the vendor's own event id (or, when the vendor has none, over
// a stable fingerprint of the payload). Re-delivered events get the same id.
func ID(vendor, vendorEventID string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(vendor))
	h.Write([]byte{0})
	h.Write([]byte(vendorEventID))
	var sum [20]byte
	h.Sum(sum[:0])
	sum[6] = (sum[6] & 0x0f) | 0x50 // version 5
	sum[8] = (sum[8] & 0x3f) | 0x80 // RFC 4122 variant
	return formatUUID(sum[:16])
}

// IDBytes is ID for a vendor event id held in bytes: the same id, computed
// without allocating anything but the result (the normalizers' hot path).
func IDBytes(vendor string, vendorEventID []byte) string {
	var buf [256]byte
	if len(namespace)+len(vendor)+1+len(vendorEventID) > len(buf) {
		return ID(vendor, string(vendorEventID))
	}
	b := append(buf[:0], namespace[:]...)
	b = append(b, vendor...)
	b = append(b, 0)
	b = append(b, vendorEventID...)
	sum := sha1.Sum(b)
	sum[6] = (sum[6] & 0x0f) | 0x50 // version 5
	sum[8] = (sum[8] & 0x3f) | 0x80 // RFC 4122 variant
	return formatUUID(sum[:16])
}

func formatUUID(b []byte) string {
	var buf [36]byte
	hex.Encode(buf[0:8], b[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], b[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], b[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], b[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], b[10:16])
	return string(buf[:])
}

// Valid reports whether v is one of the allowed values.
func Valid(allowed []string, v string) bool {
	for _, a := range allowed {
		if a == v {
			return true
		}
	}
	return false
}

// AppendJSON appends the event as one JSON object to dst. It writes the same
// document encoding/json would (tested), several times faster, because every
// event crosses Kafka twice on the hot path.
func (a *Access) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, a.EventID)
	dst = append(dst, `,"ts_ms":`...)
	dst = strconv.AppendInt(dst, a.TsMs, 10)
	dst = append(dst, `,"received_ms":`...)
	dst = strconv.AppendInt(dst, a.ReceivedMs, 10)
	dst = appendField(dst, `,"vendor":`, a.Vendor)
	dst = appendField(dst, `,"site_id":`, a.SiteID)
	dst = appendField(dst, `,"zone_id":`, a.ZoneID)
	dst = appendField(dst, `,"door_id":`, a.DoorID)
	dst = appendField(dst, `,"lock_id":`, a.LockID)
	dst = appendField(dst, `,"subject_id":`, a.SubjectID)
	dst = appendField(dst, `,"credential_id":`, a.CredentialID)
	dst = appendField(dst, `,"device_id":`, a.DeviceID)
	dst = appendField(dst, `,"attested":`, a.Attested)
	dst = appendField(dst, `,"action":`, a.Action)
	dst = appendField(dst, `,"outcome":`, a.Outcome)
	dst = appendField(dst, `,"method":`, a.Method)
	dst = appendField(dst, `,"reason":`, a.Reason)
	dst = appendField(dst, `,"vendor_code":`, a.VendorCode)
	dst = append(dst, `,"break_glass":`...)
	dst = strconv.AppendBool(dst, a.BreakGlass)
	dst = appendField(dst, `,"raw_ref":`, a.RawRef)
	for _, f := range [...]struct{ name, v string }{
		{`,"lock_model":`, a.LockModel}, {`,"lock_firmware":`, a.LockFirmware}, {`,"phone_model":`, a.PhoneModel},
		{`,"os_name":`, a.OSName}, {`,"os_version":`, a.OSVersion}, {`,"app_version":`, a.AppVersion},
	} {
		if f.v != "" {
			dst = appendField(dst, f.name, f.v)
		}
	}
	return append(dst, '}')
}

func appendField(dst []byte, name, v string) []byte {
	return appendString(append(dst, name...), v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping like encoding/json
// (including its HTML-safe escapes of <, > and &).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Decode parses one access event document into a. Flat documents (what
// AppendJSON writes, in any key order, unknown keys skipped) take a fast path
// (decodeFlat); anything else is decoded by encoding/json, with the same
// result (differential tests and fuzzing hold the two together).
func Decode(data []byte, a *Access) error {
	*a = Access{}
	if decodeFlat(data, a) {
		return nil
	}
	*a = Access{}
	return json.Unmarshal(data, a)
}

package event

import (
	"bytes"
	"unicode/utf8"
)

// plain marks the bytes a JSON string holds as is: printable ASCII except the
// backslash (an escape; '"' ends the string and never reaches the table).
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '\\'
	}
	return t
}()

var interned = func() map[string]string {
	m := map[string]string{}
	for _, list := range [][]string{Vendors, Actions, Outcomes, Methods, Reasons, Attestations} {
		for _, v := range list {
			m[v] = v
		}
	}
	return m
}()

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// decodeFlat decodes the common shape of an access event document — a flat
// object of strings without escapes, integers and booleans, in any key order,
// with unknown keys (like a replay file's "record") skipped — giving exactly
// encoding/json's result. Enum values are shared strings, so most fields
// allocate nothing. false means "use encoding/json" (escapes, nesting,
// floats, duplicate keys, anything invalid), leaving a in any state.
func decodeFlat(b []byte, a *Access) bool {
	i, n := 0, len(b)
	ws := func() {
		for i < n && isSpace(b[i]) {
			i++
		}
	}
	// str returns the raw bytes of a string without escapes starting at b[i]=='"'.
	str := func() ([]byte, bool) {
		if i >= n || b[i] != '"' {
			return nil, false
		}
		i++
		end := bytes.IndexByte(b[i:], '"')
		if end < 0 {
			return nil, false
		}
		s := b[i : i+end]
		ascii := true
		for _, c := range s {
			if plain[c] {
				continue
			}
			if c == '\\' || c < 0x20 {
				return nil, false
			}
			ascii = false
		}
		if !ascii && !utf8.Valid(s) {
			return nil, false
		}
		i += end + 1
		return s, true
	}
	num := func() (int64, bool) {
		neg := false
		if i < n && b[i] == '-' {
			neg = true
			i++
		}
		start := i
		var v int64
		for i < n && b[i] >= '0' && b[i] <= '9' {
			if i-start >= 18 {
				return 0, false
			}
			v = v*10 + int64(b[i]-'0')
			i++
		}
		if i == start || (b[start] == '0' && i-start > 1) {
			return 0, false
		}
		if i < n && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
			return 0, false
		}
		if neg {
			v = -v
		}
		return v, true
	}
	lit := func(s string) bool {
		if n-i >= len(s) && string(b[i:i+len(s)]) == s {
			i += len(s)
			return true
		}
		return false
	}
	seen := uint32(0)
	ws()
	if i >= n || b[i] != '{' {
		return false
	}
	i++
	ws()
	if i < n && b[i] == '}' {
		i++
		ws()
		return i == n
	}
	for {
		ws()
		key, ok := str()
		if !ok {
			return false
		}
		ws()
		if i >= n || b[i] != ':' {
			return false
		}
		i++
		ws()
		if i >= n {
			return false
		}
		f := fieldIndex(key)
		if f >= 0 {
			if seen&(1<<f) != 0 {
				return false // duplicate key: let encoding/json decide
			}
			seen |= 1 << f
		}
		switch c := b[i]; {
		case c == '"':
			s, ok := str()
			if !ok {
				return false
			}
			// Each field gets its own string (not a substring of one
			// copy of the document): detectors keep ids of many events in
			// their windows, and a substring would pin the whole document.
			if f != -1 && !setString(a, f, s) {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			v, ok := num()
			if !ok {
				return false
			}
			switch f {
			case fTsMs:
				a.TsMs = v
			case fReceivedMs:
				a.ReceivedMs = v
			case -1:
			default:
				return false
			}
		case c == 't' || c == 'f':
			v := c == 't'
			if !lit("true") && !lit("false") {
				return false
			}
			switch f {
			case fBreakGlass:
				a.BreakGlass = v
			case -1:
			default:
				return false
			}
		case c == 'n':
			if !lit("null") {
				return false
			}
			// null leaves the zero value, as encoding/json does.
		default:
			return false
		}
		ws()
		if i >= n {
			return false
		}
		if b[i] == ',' {
			i++
			continue
		}
		if b[i] != '}' {
			return false
		}
		i++
		ws()
		return i == n
	}
}

const (
	fEventID = iota
	fTsMs
	fReceivedMs
	fVendor
	fSiteID
	fZoneID
	fDoorID
	fLockID
	fSubjectID
	fCredentialID
	fDeviceID
	fAttested
	fAction
	fOutcome
	fMethod
	fReason
	fVendorCode
	fBreakGlass
	fRawRef
	fLockModel
	fLockFirmware
	fPhoneModel
	fOSName
	fOSVersion
	fAppVersion
)

// fieldIndex maps a JSON key to a field (-1 for keys Access does not have).
// encoding/json matches keys case-insensitively; the fast path only knows
// the exact names and leaves other spellings to it.
func fieldIndex(k []byte) int {
	switch string(k) {
	case "event_id":
		return fEventID
	case "ts_ms":
		return fTsMs
	case "received_ms":
		return fReceivedMs
	case "vendor":
		return fVendor
	case "site_id":
		return fSiteID
	case "zone_id":
		return fZoneID
	case "door_id":
		return fDoorID
	case "lock_id":
		return fLockID
	case "subject_id":
		return fSubjectID
	case "credential_id":
		return fCredentialID
	case "device_id":
		return fDeviceID
	case "attested":
		return fAttested
	case "action":
		return fAction
	case "outcome":
		return fOutcome
	case "method":
		return fMethod
	case "reason":
		return fReason
	case "vendor_code":
		return fVendorCode
	case "break_glass":
		return fBreakGlass
	case "raw_ref":
		return fRawRef
	case "lock_model":
		return fLockModel
	case "lock_firmware":
		return fLockFirmware
	case "phone_model":
		return fPhoneModel
	case "os_name":
		return fOSName
	case "os_version":
		return fOSVersion
	case "app_version":
		return fAppVersion
	}
	for _, c := range k {
		if c >= 'A' && c <= 'Z' || c >= utf8.RuneSelf {
			return -2 // maybe a case variant of a known key
		}
	}
	return -1
}

func setString(a *Access, f int, s []byte) bool {
	enum := func() string {
		if v, ok := interned[string(s)]; ok {
			return v
		}
		return string(s)
	}
	switch f {
	case fEventID:
		a.EventID = string(s)
	case fVendor:
		a.Vendor = enum()
	case fSiteID:
		a.SiteID = string(s)
	case fZoneID:
		a.ZoneID = string(s)
	case fDoorID:
		a.DoorID = string(s)
	case fLockID:
		a.LockID = string(s)
	case fSubjectID:
		a.SubjectID = string(s)
	case fCredentialID:
		a.CredentialID = string(s)
	case fDeviceID:
		a.DeviceID = string(s)
	case fAttested:
		a.Attested = enum()
	case fAction:
		a.Action = enum()
	case fOutcome:
		a.Outcome = enum()
	case fMethod:
		a.Method = enum()
	case fReason:
		a.Reason = enum()
	case fVendorCode:
		a.VendorCode = string(s)
	case fRawRef:
		a.RawRef = string(s)
	case fLockModel:
		a.LockModel = string(s)
	case fLockFirmware:
		a.LockFirmware = string(s)
	case fPhoneModel:
		a.PhoneModel = string(s)
	case fOSName:
		a.OSName = string(s)
	case fOSVersion:
		a.OSVersion = string(s)
	case fAppVersion:
		a.AppVersion = string(s)
	case -1:
	default:
		return false // a string where a number/bool belongs, or a case variant
	}
	return true
}

// Package legacy normalizes CSV export lines of older card/PIN panels:
//
//	2026-11-20T08:15:02Z,PANEL-7,READER-3,CARD,00123456,GRANTED
//
// The lock id is "<panel>/<reader>"; lines have no event id (the normalizer
// fingerprints them); the user reference is the card or PIN number, which
// never appears in output or error text.
package legacy

import (
	"bytes"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/timestamp"
)

// Vendor is this adapter's vendor name.
const Vendor = "legacy"

// Header is the export's header line; it produces no event.
const Header = "time,panel,reader,kind,number,result"

// Adapter maps legacy panel CSV lines.
type Adapter struct{}

var (
	_ normalize.Adapter    = Adapter{}
	_ normalize.Documented = Adapter{}
	_ normalize.Described  = Adapter{}
)

const fields = 6

var fieldNames = [fields]string{"time", "panel", "reader", "kind", "number", "result"}

// Normalize implements normalize.Adapter.
func (Adapter) Normalize(dst []event.Access, raw []byte) ([]event.Access, error) {
	line := bytes.TrimSpace(raw)
	if len(line) == 0 {
		return dst, normalize.Errorf(normalize.ReasonMalformed, "legacy line is empty")
	}
	if string(line) == Header {
		return dst, nil
	}
	var f [fields][]byte
	n := 0
	for n < fields-1 {
		i := bytes.IndexByte(line, ',')
		if i < 0 {
			break
		}
		f[n], line = bytes.TrimSpace(line[:i]), line[i+1:]
		n++
	}
	if n != fields-1 || bytes.IndexByte(line, ',') >= 0 {
		return dst, normalize.Errorf(normalize.ReasonMalformed, "legacy line does not have 6 comma-separated fields")
	}
	f[n] = bytes.TrimSpace(line)
	for i, v := range f {
		if bytes.IndexByte(v, '"') >= 0 {
			return dst, normalize.Errorf(normalize.ReasonMalformed, "legacy line has a quoted field (not supported)")
		}
		// A control character (a NUL from a truncated export, an escape
		// sequence) is part of no field: refuse the line rather than read
		// a result like "GRANTED\x00" as an unknown one. Whitespace
		// around a field (tabs, CR LF) is trimmed before.
		if j := controlChar(v); j >= 0 {
			return dst, normalize.Errorf(normalize.ReasonMalformed, "legacy line has a control character (0x%02x) in its %s field", v[j], fieldNames[i])
		}
	}
	when, panel, reader, kind, number, result := f[0], f[1], f[2], f[3], f[4], f[5]
	if len(when) == 0 {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "legacy line has no time")
	}
	ts, ok := timestamp.ParseRFC3339(when)
	if !ok {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "legacy line time is not RFC 3339")
	}
	if len(panel) == 0 || len(reader) == 0 {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "legacy line has no panel or reader")
	}
	if len(result) == 0 {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "legacy line has no result")
	}
	if len(number) > 0 && len(kind) == 0 {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "legacy line has a credential number but no kind")
	}
	var buf [128]byte
	e := event.Access{
		TsMs:     ts,
		LockID:   string(append(append(append(buf[:0], panel...), '/'), reader...)),
		Attested: "unknown",
		Method:   "unknown",
		UserRef:  string(number),
	}
	if m, ok := results.Str(string(result)); ok {
		m.Apply(&e)
	} else {
		e.Action, e.Outcome = "other", "info"
	}
	code := append(buf[:0], result...)
	if len(kind) > 0 {
		if m, ok := kinds.Str(string(kind)); ok {
			m.Apply(&e)
		}
		code = append(append(code, '/'), kind...)
	}
	e.VendorCode = string(code)
	return append(dst, e), nil
}

// controlChar returns the index of the first ASCII control character (C0 or
// DEL) in field, or -1.
func controlChar(field []byte) int {
	for i, c := range field {
		if c < 0x20 || c == 0x7f {
			return i
		}
	}
	return -1
}

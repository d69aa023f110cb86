package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
)

// Raw is the envelope of one vendor record on lock.events.raw:
// {"vendor":"nuki","received_ms":1764230400123,"payload":{...}}. JSON vendors
// carry their payload as a JSON value; line-based vendors (legacy CSV) carry it
// as a JSON string.
type Raw struct {
	Vendor     string          `json:"vendor"`
	ReceivedMs int64           `json:"received_ms"`
	Payload    json.RawMessage `json:"payload"`
}

// ErrNoPayload is returned for an envelope without a payload.
var ErrNoPayload = errors.New("envelope has no payload")

// DecodeRaw parses an envelope.
func DecodeRaw(data []byte) (Raw, error) {
	var r Raw
	if err := json.Unmarshal(data, &r); err != nil {
		return Raw{}, fmt.Errorf("envelope: %w", err)
	}
	if r.Vendor == "" {
		return Raw{}, errors.New("envelope has no vendor")
	}
	if len(r.Payload) == 0 || string(r.Payload) == "null" {
		return Raw{}, ErrNoPayload
	}
	return r, nil
}

// PayloadBytes returns the vendor payload: the JSON value itself, or the
// unquoted text when the payload is a JSON string (a CSV line).
func (r Raw) PayloadBytes() ([]byte, error) {
	if len(r.Payload) > 0 && r.Payload[0] == '"' {
		var s string
		if err := json.Unmarshal(r.Payload, &s); err != nil {
			return nil, fmt.Errorf("envelope payload: %w", err)
		}
		return []byte(s), nil
	}
	return r.Payload, nil
}

// NewRaw wraps a payload in an envelope. A payload that is not a JSON object
// or array (a CSV line) is carried as a JSON string.
func NewRaw(vendor string, receivedMs int64, payload []byte) Raw {
	p := bytes.TrimSpace(payload)
	if !json.Valid(payload) || (len(payload) > 0 && payload[0] != '{' && payload[0] != '[') {
		p = appendString(nil, string(p))
	}
	return Raw{Vendor: vendor, ReceivedMs: receivedMs, Payload: p}
}

// AppendJSON appends the envelope as JSON.
func (r Raw) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"vendor":`...)
	dst = appendString(dst, r.Vendor)
	dst = append(dst, `,"received_ms":`...)
	dst = strconv.AppendInt(dst, r.ReceivedMs, 10)
	dst = append(dst, `,"payload":`...)
	dst = append(dst, r.Payload...)
	return append(dst, '}')
}

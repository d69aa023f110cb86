package normalize

import (
	"errors"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize/internal/jsonscan"
)

// Envelope is a decoded raw record (event.Raw): the vendor, when keyfleet
// received it, and the vendor payload (a JSON value's bytes, or the text of
// a JSON string such as a CSV line).
type Envelope struct {
	Vendor     string
	ReceivedMs int64
	Payload    []byte
}

// DecodeEnvelope parses a raw record {"vendor","received_ms","payload"}
// like event.DecodeRaw followed by PayloadBytes, without encoding/json: the
// payload of a JSON value is a slice of data (no copy), a string payload is
// unescaped into a new buffer. Known vendor names are not allocated. Errors
// are *Error with ReasonBadEnvelope.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var env Envelope
	var r jsonscan.Reader
	r.Reset(data)
	var payload []byte
	var isString bool
	_, err := r.Object(func(key []byte) error {
		switch string(key) {
		case "vendor":
			return r.ReadString(&env.Vendor, event.Vendors...)
		case "received_ms":
			var v jsonscan.Int
			err := r.ReadInt(&v)
			if v.Set {
				env.ReceivedMs = v.V
			}
			return err
		case "payload":
			if r.Kind() == '"' {
				s, _, err := r.String()
				payload, isString = append([]byte(nil), s...), true
				return err
			}
			raw, err := r.Raw()
			payload, isString = raw, false
			return err
		default:
			return r.Skip()
		}
	})
	if err == nil {
		err = r.Finish()
	}
	if err != nil {
		return Envelope{}, &Error{Reason: ReasonBadEnvelope, Err: DecodeError("envelope", err).Err}
	}
	if env.Vendor == "" {
		return Envelope{}, &Error{Reason: ReasonBadEnvelope, Err: errors.New("envelope has no vendor")}
	}
	if (len(payload) == 0 && !isString) || string(payload) == "null" && !isString {
		return Envelope{}, &Error{Reason: ReasonBadEnvelope, Err: event.ErrNoPayload}
	}
	env.Payload = payload
	return env, nil
}

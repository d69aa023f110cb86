package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// DecodeStrict decodes one JSON value from a request body, refusing unknown
// fields and anything after the value.
func DecodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if d.More() {
		return errors.New("invalid JSON: trailing data")
	}
	return nil
}

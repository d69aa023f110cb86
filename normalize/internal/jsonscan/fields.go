package jsonscan

import (
	"strconv"
	"unicode/utf8"
)

// Int is an optional integer member: Set is false when the member is
// absent, null or of the wrong type. Its UnmarshalJSON gives encoding/json
// the same reading, for the reference decoders of the differential tests.
type Int struct {
	V   int64
	Set bool
}

// UnmarshalJSON implements json.Unmarshaler (null leaves i unchanged).
func (i *Int) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	v, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return &TypeError{Want: "integer", Got: kindOf(b[0])}
	}
	*i = Int{V: v, Set: true}
	return nil
}

// ReadInt reads an optional integer into dst (unchanged when null).
func (r *Reader) ReadInt(dst *Int) error {
	v, ok, err := r.Int()
	if ok {
		*dst = Int{V: v, Set: true}
	}
	return err
}

// ReadString reads a string into dst (unchanged when null). Strings equal to
// one of intern are returned without allocating.
func (r *Reader) ReadString(dst *string, intern ...string) error {
	s, ok, err := r.String()
	if !ok {
		return err
	}
	for _, k := range intern {
		if string(s) == k {
			*dst = k
			return nil
		}
	}
	*dst = string(s)
	return nil
}

// ReadBool reads a boolean into dst (unchanged when null).
func (r *Reader) ReadBool(dst *bool) error {
	v, ok, err := r.Bool()
	if ok {
		*dst = v
	}
	return err
}

// ValidUTF8 reports whether b is valid UTF-8 (for callers that keep bytes).
func ValidUTF8(b []byte) bool { return utf8.Valid(b) }

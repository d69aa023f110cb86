package jsonscan

import (
	"strconv"
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

// Bytes is an optional string member kept as bytes: a slice of the payload
// when the string has no escapes (no copy), else a copy. Use it for members
// the mapping only parses or hashes (times, event ids).
type Bytes struct {
	B []byte
}

// UnmarshalJSON implements json.Unmarshaler (null leaves b unchanged).
func (b *Bytes) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		return nil
	}
	if data[0] != '"' {
		return &TypeError{Want: "string", Got: kindOf(data[0])}
	}
	var r Reader
	r.Reset(data)
	s, _, err := r.String()
	if err != nil {
		return err
	}
	b.B = append([]byte{}, s...)
	return nil
}

// ReadBytes reads a string into dst (unchanged when null).
func (r *Reader) ReadBytes(dst *Bytes) error {
	s, ok, err := r.String()
	if !ok {
		return err
	}
	if len(r.scratch) > 0 && len(s) > 0 && &s[0] == &r.scratch[0] {
		s = append([]byte(nil), s...) // the scratch buffer is reused
	}
	dst.B = s
	return nil
}

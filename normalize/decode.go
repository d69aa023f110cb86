package normalize

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/keyfleet/keyfleet/normalize/internal/jsonscan"
)

// DecodeError turns an error of an adapter's JSON decoding (its own reader's
// or encoding/json's) into an *Error: a syntax error is ReasonMalformed, a
// value of the wrong type ReasonBadField. The message gives byte offsets and
// JSON types only, never payload values.
func DecodeError(what string, err error) *Error {
	var (
		se  *jsonscan.SyntaxError
		te  *jsonscan.TypeError
		jse *json.SyntaxError
		jte *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return Errorf(ReasonMalformed, "%s: invalid JSON at byte %d", what, se.Offset)
	case errors.As(err, &jse):
		return Errorf(ReasonMalformed, "%s: invalid JSON at byte %d", what, jse.Offset)
	case errors.As(err, &te):
		return Errorf(ReasonBadField, "%s: a field has the wrong type (want %s, got %s)", what, te.Want, te.Got)
	case errors.As(err, &jte):
		return Errorf(ReasonBadField, "%s: field %s has the wrong type", what, jte.Field)
	case errors.Is(err, jsonscan.ErrRange):
		return Errorf(ReasonBadField, "%s: a number is out of range", what)
	default:
		return Errorf(ReasonMalformed, "%s: invalid JSON", what)
	}
}

// AppendInt is strconv.AppendInt in base 10 (for vendor codes).
func AppendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

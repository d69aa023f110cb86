// Package jsonscan is the strict, allocation-free JSON reader the vendor
// adapters decode their payloads with. It accepts exactly the documents
// encoding/json accepts (RFC 8259, at most 10000 levels deep, nothing but
// white space after the value) and reads them the way encoding/json fills a
// struct: members are matched by exact key, unknown members are skipped
// (but validated), a null value is the same as an absent member, a later
// duplicate member overwrites an earlier one, and invalid UTF-8 in strings
// becomes U+FFFD. A differential test holds it to encoding/json.
//
// The reader walks the input once, calling back per object member; it copies
// nothing except escaped strings, which it unescapes into a scratch buffer
// that is reused by the next read. Error messages give offsets and JSON
// types, never the payload's values (they may be personal data).
package jsonscan

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting accepted (encoding/json's limit).
const MaxDepth = 10000

// SyntaxError is input that is not JSON.
type SyntaxError struct {
	Offset int // byte offset of the problem
	msg    string
}

func (e *SyntaxError) Error() string {
	return e.msg + " at byte " + strconv.Itoa(e.Offset)
}

// TypeError is a JSON value of the wrong type for the field reading it.
type TypeError struct {
	Offset int    // byte offset of the value
	Want   string // what the reader wanted: string, integer, boolean, object, array
	Got    string // the JSON type found: string, number, boolean, object, array
}

func (e *TypeError) Error() string {
	return "want " + e.Want + ", got " + e.Got + " at byte " + strconv.Itoa(e.Offset)
}

// ErrRange is a number outside the range of the integer reading it.
var ErrRange = errors.New("number out of range")

// Reader reads one JSON document. The zero value is not usable; use Reset.
//
// Errors: the reads return only syntax errors, which end the document. A
// value of the wrong type (or an integer out of range) is skipped, reads as
// absent (ok=false) and is remembered; Finish reports the first one. This is
// encoding/json's order: a syntax error anywhere wins over a type error.
type Reader struct {
	data    []byte
	pos     int
	depth   int
	typeErr error
	scratch []byte
}

// Reset makes r read data.
func (r *Reader) Reset(data []byte) {
	r.data, r.pos, r.depth, r.typeErr = data, 0, 0, nil
}

// Finish checks that nothing but white space follows the value read and
// returns the first type error met, if any.
func (r *Reader) Finish() error {
	if r.peek() != 0 || r.pos < len(r.data) {
		return r.syntax("invalid character after top-level value")
	}
	return r.typeErr
}

func (r *Reader) mismatch(err error) {
	if r.typeErr == nil {
		r.typeErr = err
	}
}

func (r *Reader) syntax(msg string) error { return &SyntaxError{Offset: r.pos, msg: msg} }

func (r *Reader) ws() {
	if r.pos < len(r.data) && r.data[r.pos] > ' ' {
		return // the common case: no white space
	}
	for r.pos < len(r.data) {
		switch r.data[r.pos] {
		case ' ', '\t', '\n', '\r':
			r.pos++
		default:
			return
		}
	}
}

// peek returns the first byte of the next value (0 at the end of input).
func (r *Reader) peek() byte {
	r.ws()
	if r.pos >= len(r.data) {
		return 0
	}
	return r.data[r.pos]
}

func kindOf(c byte) string {
	switch c {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// typeError skips the value at the read position and remembers a
// TypeError for it; it returns only a syntax error met while skipping.
func (r *Reader) typeError(want string) error {
	off, c := r.pos, r.peek()
	if err := r.Skip(); err != nil {
		return err
	}
	r.mismatch(&TypeError{Offset: off, Want: want, Got: kindOf(c)})
	return nil
}

// Null consumes a null literal if one is next and reports whether it did.
func (r *Reader) Null() (bool, error) {
	if r.peek() != 'n' {
		return false, nil
	}
	return true, r.literal("null")
}

func (r *Reader) literal(lit string) error {
	if len(r.data)-r.pos < len(lit) || string(r.data[r.pos:r.pos+len(lit)]) != lit {
		// Find the first mismatching byte for the offset.
		for i := 0; i < len(lit); i++ {
			if r.pos >= len(r.data) {
				return r.syntax("unexpected end of JSON input")
			}
			if r.data[r.pos] != lit[i] {
				return r.syntax("invalid character in literal")
			}
			r.pos++
		}
	}
	r.pos += len(lit)
	return nil
}

// Object reads an object, calling member for each member with its key (valid
// only during the call); member must read or Skip the value. A null reads as
// an empty object and returns ok=false.
func (r *Reader) Object(member func(key []byte) error) (ok bool, err error) {
	switch r.peek() {
	case '{':
	case 'n':
		return false, r.literal("null")
	case 0:
		return false, r.syntax("unexpected end of JSON input")
	default:
		return false, r.typeError("object")
	}
	if r.depth++; r.depth > MaxDepth {
		return false, r.syntax("exceeded max depth")
	}
	r.pos++
	if r.peek() == '}' {
		r.pos++
		r.depth--
		return true, nil
	}
	for {
		if r.peek() != '"' {
			if r.pos >= len(r.data) {
				return false, r.syntax("unexpected end of JSON input")
			}
			return false, r.syntax("invalid character looking for beginning of object key string")
		}
		key, err := r.str()
		if err != nil {
			return false, err
		}
		if r.peek() != ':' {
			if r.pos >= len(r.data) {
				return false, r.syntax("unexpected end of JSON input")
			}
			return false, r.syntax("invalid character after object key")
		}
		r.pos++
		if err := member(key); err != nil {
			return false, err
		}
		switch r.peek() {
		case ',':
			r.pos++
		case '}':
			r.pos++
			r.depth--
			return true, nil
		case 0:
			return false, r.syntax("unexpected end of JSON input")
		default:
			return false, r.syntax("invalid character after object key:value pair")
		}
	}
}

// Array reads an array, calling elem for each element; elem must read or
// Skip it. A null reads as an empty array and returns ok=false.
func (r *Reader) Array(elem func() error) (ok bool, err error) {
	switch r.peek() {
	case '[':
	case 'n':
		return false, r.literal("null")
	case 0:
		return false, r.syntax("unexpected end of JSON input")
	default:
		return false, r.typeError("array")
	}
	if r.depth++; r.depth > MaxDepth {
		return false, r.syntax("exceeded max depth")
	}
	r.pos++
	if r.peek() == ']' {
		r.pos++
		r.depth--
		return true, nil
	}
	for {
		if err := elem(); err != nil {
			return false, err
		}
		switch r.peek() {
		case ',':
			r.pos++
		case ']':
			r.pos++
			r.depth--
			return true, nil
		case 0:
			return false, r.syntax("unexpected end of JSON input")
		default:
			return false, r.syntax("invalid character after array element")
		}
	}
}

// String reads a string value. The bytes are valid until the next read. A
// null returns ok=false.
func (r *Reader) String() (s []byte, ok bool, err error) {
	switch r.peek() {
	case '"':
		s, err = r.str()
		return s, err == nil, err
	case 'n':
		return nil, false, r.literal("null")
	case 0:
		return nil, false, r.syntax("unexpected end of JSON input")
	default:
		return nil, false, r.typeError("string")
	}
}

// Bool reads a boolean. A null returns ok=false.
func (r *Reader) Bool() (v, ok bool, err error) {
	switch r.peek() {
	case 't':
		return true, true, r.literal("true")
	case 'f':
		return false, true, r.literal("false")
	case 'n':
		return false, false, r.literal("null")
	case 0:
		return false, false, r.syntax("unexpected end of JSON input")
	default:
		return false, false, r.typeError("boolean")
	}
}

// Int reads an integer (a JSON number without fraction or exponent) that
// fits in an int64. A null returns ok=false.
func (r *Reader) Int() (v int64, ok bool, err error) {
	lit, ok, err := r.number("integer")
	if !ok || err != nil {
		return 0, ok, err
	}
	neg := lit[0] == '-'
	if neg {
		lit = lit[1:]
	}
	var u uint64
	for _, c := range lit {
		if c < '0' || c > '9' {
			r.mismatch(&TypeError{Offset: r.pos - len(lit), Want: "integer", Got: "number"})
			return 0, false, nil
		}
		if u > (1<<63)/10 {
			r.mismatch(ErrRange)
			return 0, false, nil
		}
		u = u*10 + uint64(c-'0')
		if u > 1<<63 {
			r.mismatch(ErrRange)
			return 0, false, nil
		}
	}
	if !neg {
		if u > 1<<63-1 {
			r.mismatch(ErrRange)
			return 0, false, nil
		}
		return int64(u), true, nil
	}
	return -int64(u), true, nil // -(1<<63) wraps to itself, as intended
}

// Number reads any number and returns its literal text. A null returns ok=false.
func (r *Reader) Number() (lit []byte, ok bool, err error) { return r.number("number") }

func (r *Reader) number(want string) ([]byte, bool, error) {
	switch c := r.peek(); {
	case c == '-' || (c >= '0' && c <= '9'):
	case c == 'n':
		return nil, false, r.literal("null")
	case c == 0:
		return nil, false, r.syntax("unexpected end of JSON input")
	default:
		return nil, false, r.typeError(want)
	}
	start := r.pos
	if err := r.scanNumber(); err != nil {
		return nil, false, err
	}
	return r.data[start:r.pos], true, nil
}

// scanNumber consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (r *Reader) scanNumber() error {
	d := r.data
	i := r.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i >= len(d):
		r.pos = i
		return r.syntax("unexpected end of JSON input")
	case d[i] == '0':
		i++
	case d[i] >= '1' && d[i] <= '9':
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	default:
		r.pos = i
		return r.syntax("invalid character in numeric literal")
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) {
			r.pos = i
			return r.syntax("unexpected end of JSON input")
		}
		if d[i] < '0' || d[i] > '9' {
			r.pos = i
			return r.syntax("invalid character after decimal point in numeric literal")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) {
			r.pos = i
			return r.syntax("unexpected end of JSON input")
		}
		if d[i] < '0' || d[i] > '9' {
			r.pos = i
			return r.syntax("invalid character in exponent of numeric literal")
		}
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	}
	r.pos = i
	return nil
}

// Skip consumes one value of any type, validating it.
func (r *Reader) Skip() error {
	switch c := r.peek(); c {
	case '"':
		return r.skipString()
	case '{':
		_, err := r.Object(func([]byte) error { return r.Skip() })
		return err
	case '[':
		_, err := r.Array(r.Skip)
		return err
	case 't':
		return r.literal("true")
	case 'f':
		return r.literal("false")
	case 'n':
		return r.literal("null")
	case 0:
		return r.syntax("unexpected end of JSON input")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return r.scanNumber()
		}
		return r.syntax("invalid character looking for beginning of value")
	}
}

// skipString validates a string without unescaping it.
func (r *Reader) skipString() error {
	d := r.data
	i := r.pos + 1
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			r.pos = i + 1
			return nil
		case c == '\\':
			r.pos = i
			n, err := r.escapeLen()
			if err != nil {
				return err
			}
			i += n
		case c < 0x20:
			r.pos = i
			return r.syntax("invalid character in string literal")
		default:
			i++
		}
	}
	r.pos = i
	return r.syntax("unexpected end of JSON input")
}

// escapeLen validates the escape at r.pos and returns its length.
func (r *Reader) escapeLen() (int, error) {
	d := r.data
	i := r.pos + 1
	if i >= len(d) {
		r.pos = i
		return 0, r.syntax("unexpected end of JSON input")
	}
	switch d[i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return 2, nil
	case 'u':
		for k := 1; k <= 4; k++ {
			if i+k >= len(d) {
				r.pos = i + k
				return 0, r.syntax("unexpected end of JSON input")
			}
			if hexVal(d[i+k]) < 0 {
				r.pos = i + k
				return 0, r.syntax("invalid character in \\u hexadecimal character escape")
			}
		}
		return 6, nil
	default:
		r.pos = i
		return 0, r.syntax("invalid character in string escape code")
	}
}

func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// str reads the string at r.pos (which is '"') and returns its unescaped
// bytes: a slice of the input when it holds no escapes and valid UTF-8,
// otherwise the scratch buffer.
func (r *Reader) str() ([]byte, error) {
	d := r.data
	start := r.pos + 1
	for i := start; i < len(d); i++ {
		if plain[d[i]] {
			continue
		}
		if d[i] == '"' {
			r.pos = i + 1
			return d[start:i], nil
		}
		break
	}
	// Slow path: escapes, control characters or non-ASCII.
	if err := r.skipString(); err != nil {
		return nil, err
	}
	end := r.pos - 1
	raw := d[start:end]
	if !hasEscape(raw) && utf8.Valid(raw) {
		return raw, nil
	}
	r.scratch = unquote(r.scratch[:0], raw)
	return r.scratch, nil
}

// plain marks the bytes a string's fast path passes over: printable ASCII
// except '"' and '\\'.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func hasEscape(b []byte) bool {
	for _, c := range b {
		if c == '\\' {
			return true
		}
	}
	return false
}

// unquote appends the unescaped form of a validated string body to dst, the
// way encoding/json does (lone surrogates and invalid UTF-8 become U+FFFD).
func unquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch s[i+1] {
			case '"', '\\', '/':
				dst = append(dst, s[i+1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				rr := hex4(s[i+2:])
				i += 6
				if utf16.IsSurrogate(rr) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if dec := utf16.DecodeRune(rr, hex4(s[i+2:])); dec != utf8.RuneError {
							i += 6
							dst = utf8.AppendRune(dst, dec)
							continue
						}
					}
					rr = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, rr)
				continue
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			rr, size := utf8.DecodeRune(s[i:])
			if rr == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// Kind returns the first byte of the next value: '"', '{', '[', 't', 'f',
// 'n', '-' or a digit, or 0 at the end of the input.
func (r *Reader) Kind() byte { return r.peek() }

// Raw consumes one value of any type and returns its bytes (a slice of the input).
func (r *Reader) Raw() ([]byte, error) {
	r.ws()
	start := r.pos
	if err := r.Skip(); err != nil {
		return nil, err
	}
	return r.data[start:r.pos], nil
}

package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tree decodes any document into the shapes encoding/json (with UseNumber)
// produces for an `any`.
func tree(data []byte) (any, error) {
	var r Reader
	r.Reset(data)
	v, err := value(&r)
	if err != nil {
		return nil, err
	}
	return v, r.Finish()
}

func value(r *Reader) (any, error) {
	switch r.peek() {
	case '{':
		m := map[string]any{}
		_, err := r.Object(func(key []byte) error {
			k := string(key)
			v, err := value(r)
			m[k] = v
			return err
		})
		return m, err
	case '[':
		a := []any{}
		_, err := r.Array(func() error {
			v, err := value(r)
			a = append(a, v)
			return err
		})
		return a, err
	case '"':
		s, _, err := r.String()
		return string(s), err
	case 't', 'f':
		b, _, err := r.Bool()
		return b, err
	case 'n':
		_, err := r.Null()
		return nil, err
	default:
		lit, _, err := r.Number()
		return json.Number(lit), err
	}
}

func std(data []byte) (any, error) {
	if !json.Valid(data) {
		var v any
		return nil, json.Unmarshal(data, &v)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

var seeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e-3`, `-12E+4`, `"x"`,
	`{"a":1,"b":[1,2,{"c":null}],"d":"e\u00e9\ud83d\ude00\"\\\/\b\f\n\r\t"}`,
	`{"a":1,"a":2}`, ` { "a" : [ ] , "b" : { } } `, `"\ud800"`, `"\ud800\u0041"`, `"\udc00\ud800"`,
	"\"\xff\xfe\"", "{\"\xffk\":1}", `{"k\u0041":2}`,
	`{`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `01`, `1.`, `.5`, `-`, `1e`, `1e+`, `tru`, `nul`, `"abc`,
	"\"a\x01b\"", `"\x"`, `"\u12G4"`, `{"a":1} x`, `{} {}`, "{}\x00", `[[[[]]]]`, `{"a":[1,2,3]`,
	`123456789012345678901234567890`, `"` + strings.Repeat("é", 10) + `"`,
}

func TestTreeMatchesEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		got, gerr := tree([]byte(s))
		want, werr := std([]byte(s))
		require.Equal(t, werr != nil, gerr != nil, "%q: got err %v, want err %v", s, gerr, werr)
		if werr == nil {
			assert.Equal(t, want, got, "%q", s)
		}
	}
}

func TestDepth(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth)
	_, err := tree([]byte(deep))
	require.NoError(t, err)
	deeper := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	_, err = tree([]byte(deeper))
	var se *SyntaxError
	require.ErrorAs(t, err, &se)
}

func TestTypedReads(t *testing.T) {
	f := func(doc string, wantInt int64, wantOK bool, wantTypeErr bool) {
		t.Helper()
		var r Reader
		r.Reset([]byte(doc))
		var v int64
		var ok bool
		_, err := r.Object(func(key []byte) error {
			var err error
			v, ok, err = r.Int()
			return err
		})
		require.NoError(t, err)
		ferr := r.Finish()
		assert.Equal(t, wantTypeErr, ferr != nil, "%s: %v", doc, ferr)
		assert.Equal(t, wantOK, ok, doc)
		assert.Equal(t, wantInt, v, doc)
	}
	f(`{"a":42}`, 42, true, false)
	f(`{"a":-9223372036854775808}`, -9223372036854775808, true, false)
	f(`{"a":9223372036854775807}`, 9223372036854775807, true, false)
	f(`{"a":9223372036854775808}`, 0, false, true)
	f(`{"a":1.5}`, 0, false, true)
	f(`{"a":1e2}`, 0, false, true)
	f(`{"a":"1"}`, 0, false, true)
	f(`{"a":null}`, 0, false, false)
	f(`{"a":[1]}`, 0, false, true)
}

func TestErrorsDoNotEchoValues(t *testing.T) {
	for _, doc := range []string{`{"a":"secret-name@example.com" x}`, `{"a":"secret-name@example.com`, `"secret\q"`} {
		_, err := tree([]byte(doc))
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "secret")
	}
}

func FuzzTreeMatchesEncodingJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, gerr := tree(data)
		want, werr := std(data)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("%q: got err %v, want err %v", data, gerr, werr)
		}
		if werr == nil {
			assert.Equal(t, want, got, "%q", data)
		}
	})
}

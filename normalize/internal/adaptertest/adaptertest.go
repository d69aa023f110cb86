// Package adaptertest holds the checks every vendor adapter's tests run:
// golden output over named cases, one case per mapping-table row, the fuzz
// body (no panic, every event passes the schema check, errors are typed),
// the differential against an encoding/json reference decoder, and the
// guard that no raw personal data reaches output or error text.
package adaptertest

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/difftest"
)

// Update rewrites golden files instead of comparing (go test -update).
var Update = flag.Bool("update", false, "rewrite golden files and docs/vendors.md")

// ReceivedMs and RawRef are the fixed envelope values of the tests.
const (
	ReceivedMs = 1764230499000
	RawRef     = "lock.events.raw/0/42"
)

// Key is the pseudonym key of the tests.
var Key = []byte("adaptertest-pseudonym-key")

// Case is one named payload.
type Case struct {
	Name    string
	Payload string
	// Secrets are raw personal values in the payload that must appear
	// nowhere in the output or the error text.
	Secrets []string
}

// Normalizer returns a normalizer over one adapter, without a registry.
func Normalizer(vendor string, a normalize.Adapter) *normalize.Normalizer {
	return normalize.New(map[string]normalize.Adapter{vendor: a}, nil, Key)
}

// Run normalizes one payload and returns the output lines: one JSON event
// per line, or "error <reason>: <message>".
func Run(n *normalize.Normalizer, vendor, payload string) ([]event.Access, string, error) {
	events, err := n.Normalize(nil, vendor, ReceivedMs, RawRef, []byte(payload))
	var out []byte
	if err != nil {
		out = append(out, "error "...)
		out = append(out, err.Error()...)
		out = append(out, '\n')
	}
	for i := range events {
		out = events[i].AppendJSON(out)
		out = append(out, '\n')
	}
	return events, string(out), err
}

// Golden runs every case and compares the output with testdata/golden.txt
// (rewritten with -update). It also checks the privacy guard per case.
func Golden(t *testing.T, vendor string, a normalize.Adapter, cases []Case) {
	t.Helper()
	n := Normalizer(vendor, a)
	var buf bytes.Buffer
	seen := map[string]bool{}
	for _, c := range cases {
		require.False(t, seen[c.Name], "case %q twice", c.Name)
		seen[c.Name] = true
		_, out, err := Run(n, vendor, c.Payload)
		if err != nil {
			var nerr *normalize.Error
			require.True(t, errors.As(err, &nerr), "%s: error %v is not a *normalize.Error", c.Name, err)
			assert.NotEqual(t, normalize.ReasonSchema, nerr.Reason, "%s: adapter produced an invalid event", c.Name)
		}
		for _, s := range c.Secrets {
			assert.NotContains(t, out, s, "%s: output leaks a raw personal value", c.Name)
		}
		buf.WriteString("## " + c.Name + "\n" + out)
	}
	path := filepath.Join("testdata", "golden.txt")
	if *Update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create the golden file")
	if !assert.Equal(t, string(want), buf.String(), "golden output differs (go test -update rewrites it)") {
		t.Log(diffHint(string(want), buf.String()))
	}
}

func diffHint(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) && i < len(gl); i++ {
		if wl[i] != gl[i] {
			return "first difference at line " + itoa(i+1) + ":\n got  " + gl[i] + "\n want " + wl[i]
		}
	}
	return "one output is a prefix of the other"
}

func itoa(i int) string { return strconv.Itoa(i) }

// Row is a mapping row with the payload that exercises it.
type Row struct {
	Mapping normalize.Mapping
	Payload string
}

// Rows checks that every mapping row is exercised by a payload that
// produces exactly one event carrying the row's values.
func Rows(t *testing.T, vendor string, a normalize.Documented, payload func(m normalize.Mapping) (string, bool)) {
	t.Helper()
	n := Normalizer(vendor, a.(normalize.Adapter))
	for _, m := range a.Mappings() {
		p, ok := payload(m)
		if !assert.True(t, ok, "no payload for mapping row %s=%s", m.Field, m.Code) {
			continue
		}
		events, out, err := Run(n, vendor, p)
		if !assert.NoError(t, err, "%s=%s: %s", m.Field, m.Code, p) || !assert.Len(t, events, 1, out) {
			continue
		}
		e := events[0]
		check := func(field, got, want string) {
			if want != "" && !strings.HasPrefix(want, "(") {
				assert.Equal(t, want, got, "%s=%s (%s): %s", m.Field, m.Code, field, p)
			}
		}
		check("action", e.Action, m.Action)
		check("outcome", e.Outcome, m.Outcome)
		check("method", e.Method, m.Method)
		check("reason", e.Reason, m.Reason)
	}
}

// CheckTable checks that every row names valid schema values.
func CheckTable(t *testing.T, a normalize.Documented) {
	t.Helper()
	for _, m := range a.Mappings() {
		assert.NotEmpty(t, m.Field)
		assert.NotEmpty(t, m.Code)
		if m.Action != "" {
			assert.True(t, event.Valid(event.Actions, m.Action), "%s=%s: action %q", m.Field, m.Code, m.Action)
		}
		if m.Outcome != "" {
			assert.True(t, event.Valid(event.Outcomes, m.Outcome), "%s=%s: outcome %q", m.Field, m.Code, m.Outcome)
		}
		if m.Method != "" {
			assert.True(t, event.Valid(event.Methods, m.Method), "%s=%s: method %q", m.Field, m.Code, m.Method)
		}
		if m.Reason != "" {
			assert.True(t, event.Valid(event.Reasons, m.Reason), "%s=%s: reason %q", m.Field, m.Code, m.Reason)
		}
	}
}

// Seed adds the cases' payloads to a fuzz corpus.
func Seed(f *testing.F, cases []Case) {
	for _, c := range cases {
		f.Add([]byte(c.Payload))
	}
}

// Fuzz is the body of an adapter's fuzz target: it must not panic, every
// error is a *normalize.Error that is not a schema violation, and every
// event passes normalize.Check.
func Fuzz(t *testing.T, vendor string, a normalize.Adapter, payload []byte) {
	n := Normalizer(vendor, a)
	events, err := n.Normalize(nil, vendor, ReceivedMs, RawRef, payload)
	if err != nil {
		var nerr *normalize.Error
		if !errors.As(err, &nerr) {
			t.Fatalf("error %v is not a *normalize.Error", err)
		}
		if nerr.Reason == normalize.ReasonSchema {
			t.Fatalf("adapter produced an invalid event: %v", err)
		}
		return
	}
	for i := range events {
		if err := normalize.Check(&events[i]); err != nil {
			t.Fatalf("event %d fails the schema check: %v", i, err)
		}
		if events[i].UserRef != "" {
			t.Fatalf("event %d kept its raw user reference", i)
		}
	}
}

// Reference maps a payload with an encoding/json decoder.
type Reference func(payload []byte) ([]event.Access, error)

// Differential checks that the adapter and its encoding/json reference agree
// on a payload: both fail with the same reason, or both produce the same
// events. Payloads whose keys match recordType's JSON names only
// case-insensitively are skipped (encoding/json folds case, the adapters do not).
func Differential(t *testing.T, a normalize.Adapter, ref Reference, recordType any, payload []byte) {
	t.Helper()
	if difftest.Ambiguous(payload, typeOf(recordType)) {
		t.Skip("case-folded key")
	}
	got, gerr := a.Normalize(nil, payload)
	want, werr := ref(payload)
	if (gerr != nil) != (werr != nil) {
		t.Fatalf("%q: adapter error %v, reference error %v", payload, gerr, werr)
	}
	if werr != nil {
		if normalize.ReasonOf(gerr) != normalize.ReasonOf(werr) {
			t.Fatalf("%q: adapter reason %s (%v), reference reason %s (%v)", payload, normalize.ReasonOf(gerr), gerr, normalize.ReasonOf(werr), werr)
		}
		return
	}
	require.Equal(t, want, got, "%q", payload)
}

func typeOf(v any) reflect.Type { return reflect.TypeOf(v) }

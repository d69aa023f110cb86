package normalize

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize/internal/difftest"
)

var envelopes = []string{
	`{"vendor":"nuki","received_ms":1764230400123,"payload":{"id":"a","smartlockId":1}}`,
	`{"vendor":"legacy","received_ms":1,"payload":"2026-11-20T08:15:02Z,P,R,CARD,1,GRANTED"}`,
	`{"payload":"line \"quoted\" \u00e9","vendor":"legacy"}`,
	`{"vendor":"acme","payload":[1,2]}`,
	`{"vendor":"matter","payload":5}`,
	`{"vendor":"matter","payload":null}`,
	`{"vendor":"matter"}`,
	`{"payload":{}}`,
	`{"vendor":"matter","received_ms":"x","payload":{}}`,
	`{"vendor":"matter","payload":{}`,
	`[]`, ``, `null`,
}

// TestDecodeEnvelopeMatchesDecodeRaw holds DecodeEnvelope to event.DecodeRaw
// and PayloadBytes (encoding/json).
func TestDecodeEnvelopeMatchesDecodeRaw(t *testing.T) {
	for _, s := range envelopes {
		checkEnvelope(t, []byte(s))
	}
}

func checkEnvelope(t *testing.T, data []byte) {
	t.Helper()
	if difftest.Ambiguous(data, typeOfRaw) {
		return
	}
	got, gerr := DecodeEnvelope(data)
	raw, werr := event.DecodeRaw(data)
	var want []byte
	if werr == nil {
		want, werr = raw.PayloadBytes()
	}
	require.Equal(t, werr != nil, gerr != nil, "%q: got %v, want %v", data, gerr, werr)
	if werr != nil {
		assert.Equal(t, ReasonBadEnvelope, ReasonOf(gerr))
		return
	}
	assert.Equal(t, raw.Vendor, got.Vendor)
	assert.Equal(t, raw.ReceivedMs, got.ReceivedMs)
	assert.Equal(t, string(want), string(got.Payload), "%q", data)
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range envelopes {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkEnvelope(t, data) })
}

var typeOfRaw = reflectTypeOf(event.Raw{})

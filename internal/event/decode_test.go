package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var decodeSeeds = []Access{
	{},
	{EventID: "d0038663-6530-59f8-a9ca-f9ae5ac3f362", TsMs: 1764230400123, ReceivedMs: 1764230499000, Vendor: "matter",
		SiteID: "site-1", ZoneID: "z", DoorID: "door-1", LockID: "0x1A2B3C4D", SubjectID: "subj", CredentialID: "cred",
		DeviceID: "dev", Attested: "unknown", Action: "unlock", Outcome: "granted", Method: "aliro", Reason: "",
		VendorCode: "LockOperation/1/10", BreakGlass: true, RawRef: "lock.events.raw/0/42"},
	{TsMs: -5, LockID: "PANEL-7/READER-3", VendorCode: `quote " and \ and <tag> é`, RawRef: "\u2028"},
}

// TestDecodeMatchesEncodingJSON holds Decode's fast path to encoding/json.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, a := range decodeSeeds {
		doc := a.AppendJSON(nil)
		var got, want Access
		require.NoError(t, Decode(doc, &got))
		require.NoError(t, json.Unmarshal(doc, &want))
		assert.Equal(t, want, got)
		assert.Equal(t, a, got)
	}
	var a Access
	assert.True(t, decodeFlat(decodeSeeds[1].AppendJSON(nil), &a), "AppendJSON's own output takes the fast path")
}

// Documents that are not AppendJSON's own layout, for the fuzzer's seeds.
var otherDocs = []string{
	`{"record":"access","event_id":"e2","ts_ms":5,"door_id":"ü-door","break_glass":false,"reason":null}`,
	`  { "event_id" : "e3" , "ts_ms" : -7 }  `,
	`{}`,
	`{"event_id":"a","event_id":"b"}`,
	`{"EVENT_ID":"x","ts_ms":1}`,
	`{"ts_ms":"1"}`,
	`{"ts_ms":1.5}`,
	`{"ts_ms":1e3}`,
	`{"door_id":5}`,
	`{"door_id":"a\u0041b"}`,
	`{"extra":{"nested":[1,2]},"ts_ms":2}`,
	`{"ts_ms":01}`,
	`{"ts_ms":99999999999999999999}`,
	`{"door_id":"` + "\xff" + `"}`,
	`{"door_id":"a"} x`,
	`[1]`,
	`{"break_glass":true,"break_glass":false}`,
	`{"-":"x","UserRef":"y"}`,
}

func FuzzDecode(f *testing.F) {
	for _, a := range decodeSeeds {
		f.Add(a.AppendJSON(nil))
	}
	f.Add([]byte(`{"event_id":"x","ts_ms":01}`))
	for _, d := range otherDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Access{UserRef: "stale"}
		gerr := Decode(data, &got)
		var want Access
		werr := json.Unmarshal(data, &want)
		if (gerr != nil) != (werr != nil) {
			t.Fatalf("%q: Decode error %v, encoding/json error %v", data, gerr, werr)
		}
		if werr == nil && got != want {
			t.Fatalf("%q: Decode %+v, encoding/json %+v", data, got, want)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	doc := decodeSeeds[1].AppendJSON(nil)
	b.ReportAllocs()
	var a Access
	for b.Loop() {
		if err := Decode(doc, &a); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeEncodingJSON(b *testing.B) {
	doc := decodeSeeds[1].AppendJSON(nil)
	b.ReportAllocs()
	var a Access
	for b.Loop() {
		a = Access{}
		if err := json.Unmarshal(doc, &a); err != nil {
			b.Fatal(err)
		}
	}
}

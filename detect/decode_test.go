package detect_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/event"
)

var decodeSeeds = []string{
	string((&event.Access{EventID: "e1", TsMs: 1740000000000, ReceivedMs: 1740000000123, Vendor: "nuki", SiteID: "site-1",
		DoorID: "d<1>", LockID: "l\"1", SubjectID: "s1", CredentialID: "c1", DeviceID: "p1", Attested: "attested",
		Action: "unlock", Outcome: "granted", Method: "phone_nfc", VendorCode: "1/2", BreakGlass: true, RawRef: "t/0/1"}).AppendJSON(nil)),
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

// FuzzDecodeAccess: the fast decoder agrees with encoding/json on every input.
func FuzzDecodeAccess(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var want, got event.Access
		werr := event.Decode(data, &want)
		gerr := detect.DecodeAccess(data, &got)
		if werr != nil {
			require.Error(t, gerr, "encoding/json rejects %q", data)
			return
		}
		require.NoError(t, gerr, "%q", data)
		require.Equal(t, want, got, "%q", data)
	})
}

func BenchmarkDecodeAccess(b *testing.B) {
	data := (&event.Access{EventID: "5f0e8a4e-8d7c-5a51-9a3e-6f1d2c3b4a59", TsMs: 1740000000000, ReceivedMs: 1740000000123,
		Vendor: "nuki", SiteID: "site-1", DoorID: "s1-svc-12", LockID: "lock-s1-svc-12", SubjectID: "sub-1-18", CredentialID: "cred-1-18",
		DeviceID: "dev-1-18-a", Attested: "unknown", Action: "unlock", Outcome: "granted", Method: "phone_nfc",
		RawRef: "lock.events.raw/3/123456"}).AppendJSON(nil)
	var a event.Access
	b.Run("fast", func(b *testing.B) {
		for range b.N {
			_ = detect.DecodeAccess(data, &a)
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		for range b.N {
			_ = event.Decode(data, &a)
		}
	})
}

package seam

import (
	"encoding/json"
	"testing"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/adaptertest"
)

func ev(eventType, extra string) string {
	return `{"event_id":"4d1b6c8e-2f0a-4c1e-9b7d-5a6e7f8091a2","event_type":"` + eventType + `","device_id":"9f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b",` +
		`"workspace_id":"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9","connected_account_id":"c1","created_at":"2026-11-20T08:15:03.000Z",` +
		`"occurred_at":"2026-11-20T08:15:02.000Z"` + extra + `}`
}

var secrets = []string{"alice@example.com", "Alice"}

var cases = []adaptertest.Case{
	{Name: "unlocked by keycode", Payload: ev("lock.unlocked", `,"method":"keycode","access_code_id":"c0ffee00-1111-2222-3333-444455556666","access_code_name":"Alice Example"`), Secrets: secrets},
	{Name: "unlocked manually", Payload: ev("lock.unlocked", `,"method":"manual"`)},
	{Name: "unlocked via api", Payload: ev("lock.unlocked", `,"method":"seamapi","action_attempt_id":"aa1","user_identity_id":"ui-9","user_identity_email":"alice@example.com"`), Secrets: secrets},
	{Name: "locked automatically", Payload: ev("lock.locked", `,"method":"automatic"`)},
	{Name: "locked unknown method value", Payload: ev("lock.locked", `,"method":"telepathy"`)},
	{Name: "access denied", Payload: ev("lock.access_denied", `,"access_code_id":"ac-2"`)},
	{Name: "access code set", Payload: ev("access_code.set_on_device", `,"access_code_id":"ac-2","code":"123456"`), Secrets: []string{"123456"}},
	{Name: "access code removed", Payload: ev("access_code.removed_from_device", `,"access_code_id":"ac-2"`)},
	{Name: "access code failed", Payload: ev("access_code.failed_to_set_on_device", `,"access_code_id":"ac-2"`)},
	{Name: "unlisted access code event", Payload: ev("access_code.unmanaged.converted_to_managed", `,"access_code_id":"ac-2"`)},
	{Name: "device disconnected", Payload: ev("device.disconnected", ``)},
	{Name: "low battery", Payload: ev("device.low_battery", `,"battery_level":0.1`)},
	{Name: "tampered", Payload: ev("device.tampered", ``)},
	{Name: "created at only", Payload: `{"event_id":"e2","event_type":"lock.locked","device_id":"d2","created_at":"2026-11-20T08:15:03Z"}`},
	{Name: "no event id", Payload: `{"event_type":"device.connected","device_id":"d2","occurred_at":"2026-11-20T08:15:03Z"}`},
	{Name: "error not json", Payload: `{"event_type":"lock.locked",`},
	{Name: "error no device", Payload: `{"event_id":"e","event_type":"lock.locked","occurred_at":"2026-11-20T08:15:03Z"}`},
	{Name: "error no time", Payload: `{"event_id":"e","event_type":"lock.locked","device_id":"d"}`},
	{Name: "error bad time", Payload: `{"event_id":"e","event_type":"lock.locked","device_id":"d","occurred_at":"1700000000"}`},
	{Name: "error no type", Payload: `{"event_id":"e","device_id":"d","occurred_at":"2026-11-20T08:15:03Z"}`},
	{Name: "error method number", Payload: ev("lock.unlocked", `,"method":1`)},
}

func TestGolden(t *testing.T) { adaptertest.Golden(t, Vendor, Adapter{}, cases) }

func TestTable(t *testing.T) { adaptertest.CheckTable(t, Adapter{}) }

func TestEveryMappingRow(t *testing.T) {
	adaptertest.Rows(t, Vendor, Adapter{}, func(m normalize.Mapping) (string, bool) {
		switch m.Field {
		case "event_type":
			return ev(m.Code, ``), true
		case "method":
			return ev("lock.unlocked", `,"method":"`+m.Code+`"`), true
		}
		return "", false
	})
}

func reference(raw []byte) ([]event.Access, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, normalize.DecodeError("seam event", err)
	}
	return mapRecord(nil, &rec)
}

func TestDifferential(t *testing.T) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			adaptertest.Differential(t, Adapter{}, reference, record{}, []byte(c.Payload))
		})
	}
}

func FuzzAdapter(f *testing.F) {
	adaptertest.Seed(f, cases)
	f.Fuzz(func(t *testing.T, payload []byte) {
		adaptertest.Fuzz(t, Vendor, Adapter{}, payload)
		adaptertest.Differential(t, Adapter{}, reference, record{}, payload)
	})
}

var benchPayload = []byte(ev("lock.unlocked", `,"method":"keycode","access_code_id":"c0ffee00-1111-2222-3333-444455556666"`))

func BenchmarkAdapter(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	var dst []event.Access
	for b.Loop() {
		var err error
		dst, err = Adapter{}.Normalize(dst[:0], benchPayload)
		if err != nil || len(dst) != 1 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

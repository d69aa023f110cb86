package schlage

import (
	"encoding/json"
	"testing"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/adaptertest"
)

func webhook(eventType, data string) string {
	return `{"eventId":"0b7e4c1a-6c55-4f7e-9d7c-2f1e0f0a9b11","trigger":"Device","deviceId":"a1b2c3d4e5f6","time":"2026-11-20T08:15:02.123Z",` +
		`"eventType":"` + eventType + `","data":` + data + `,"version":"1.0"}`
}

func stateChange(state, accessType string) string {
	return webhook("DeviceLockStateChanged", `{"lockState":`+state+`,"accessor":{"id":"7f6e5d4c","accessType":"`+accessType+`","name":"Alice Example"}}`)
}

var secrets = []string{"Alice"}

var cases = []adaptertest.Case{
	{Name: "unlocked by mobile key", Payload: stateChange(`"Unlocked"`, "VirtualKey"), Secrets: secrets},
	{Name: "unlocked by apple home key", Payload: stateChange(`"Unlocked"`, "AppleHomeNFC"), Secrets: secrets},
	{Name: "unlocked by access code", Payload: stateChange(`"Unlocked"`, "AccessCode"), Secrets: secrets},
	{Name: "locked by auto relock", Payload: stateChange(`"Locked"`, "AutoRelock")},
	{Name: "locked by thumbturn numeric state", Payload: stateChange(`1`, "Thumbturn")},
	{Name: "unlocked numeric state", Payload: stateChange(`0`, "UnlockButton")},
	{Name: "jammed", Payload: stateChange(`"Jammed"`, "AccessTypeUnavailable")},
	{Name: "scheduled lock", Payload: stateChange(`"Locked"`, "ScheduledLock")},
	{Name: "apple home remote", Payload: stateChange(`"Locked"`, "AppleHome")},
	{Name: "unknown lock state", Payload: stateChange(`"Moving"`, "LockButton")},
	{Name: "unknown access type", Payload: stateChange(`"Unlocked"`, "Retina")},
	{Name: "access code used", Payload: webhook("AccessCodeUsed", `{"accessCodeId":"ac-123","accessCodeName":"Alice Example"}`), Secrets: secrets},
	{Name: "invalid access code", Payload: webhook("InvalidAccessCodeAttempted", `{}`)},
	{Name: "alarm forced entry", Payload: webhook("DeviceAlarmTriggered", `{"alarmType":"ForcedEntry"}`)},
	{Name: "alarm without type", Payload: webhook("DeviceAlarmTriggered", `{}`)},
	{Name: "battery low", Payload: webhook("DeviceBatteryLevelChanged", `{"batteryLevel":15}`)},
	{Name: "battery fine", Payload: webhook("DeviceBatteryLevelChanged", `{"batteryLevel":80}`)},
	{Name: "offline", Payload: webhook("DeviceConnectivityStateChanged", `{"connectivityState":"Offline"}`)},
	{Name: "online", Payload: webhook("DeviceConnectivityStateChanged", `{"connectivityState":"Online"}`)},
	{Name: "keypad locked out", Payload: webhook("DeviceKeypadLockedOut", `{}`)},
	{Name: "command status", Payload: webhook("CommandStatusUpdated", `{"commandId":"c1","status":"Succeeded"}`)},
	{Name: "unknown event type", Payload: webhook("DeviceFirmwareUpdated", `{"version":"2.1"}`)},
	{Name: "no event id", Payload: `{"deviceId":"d1","time":"2026-11-20T08:15:02Z","eventType":"DeviceKeypadLockedOut"}`},
	{Name: "error not json", Payload: `{"deviceId":`},
	{Name: "error no device", Payload: `{"eventId":"e","time":"2026-11-20T08:15:02Z","eventType":"AccessCodeUsed"}`},
	{Name: "error device number", Payload: `{"eventId":"e","deviceId":5,"time":"2026-11-20T08:15:02Z","eventType":"AccessCodeUsed"}`},
	{Name: "error no time", Payload: `{"eventId":"e","deviceId":"d","eventType":"AccessCodeUsed"}`},
	{Name: "error bad time", Payload: `{"eventId":"e","deviceId":"d","time":"yesterday","eventType":"AccessCodeUsed"}`},
	{Name: "error no event type", Payload: `{"eventId":"e","deviceId":"d","time":"2026-11-20T08:15:02Z"}`},
	{Name: "error state change without state", Payload: webhook("DeviceLockStateChanged", `{"accessor":{"id":"x","accessType":"Thumbturn"}}`)},
	{Name: "error lock state object", Payload: stateChange(`{"v":1}`, "Thumbturn")},
	{Name: "error accessor id number", Payload: webhook("DeviceLockStateChanged", `{"lockState":"Locked","accessor":{"id":42}}`)},
}

func TestGolden(t *testing.T) { adaptertest.Golden(t, Vendor, Adapter{}, cases) }

func TestTable(t *testing.T) { adaptertest.CheckTable(t, Adapter{}) }

func TestEveryMappingRow(t *testing.T) {
	adaptertest.Rows(t, Vendor, Adapter{}, func(m normalize.Mapping) (string, bool) {
		switch m.Field {
		case "eventType":
			if m.Code == "DeviceLockStateChanged" {
				return stateChange(`"Locked"`, "Thumbturn"), true
			}
			return webhook(m.Code, `{}`), true
		case "data.lockState":
			if m.Code[0] >= '0' && m.Code[0] <= '9' {
				return stateChange(m.Code, "AccessTypeUnavailable"), true
			}
			return stateChange(`"`+m.Code+`"`, "AccessTypeUnavailable"), true
		case "data.accessor.accessType":
			return stateChange(`"Unlocked"`, m.Code), true
		case "data.alarmType":
			return webhook("DeviceAlarmTriggered", `{"alarmType":"`+m.Code+`"}`), true
		case "data.connectivityState":
			return webhook("DeviceConnectivityStateChanged", `{"connectivityState":"`+m.Code+`"}`), true
		case "data.batteryLevel":
			return webhook("DeviceBatteryLevelChanged", `{"batteryLevel":20}`), true
		}
		return "", false
	})
}

func reference(raw []byte) ([]event.Access, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, normalize.DecodeError("schlage event", err)
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

var benchPayload = []byte(stateChange(`"Unlocked"`, "AppleHomeNFC"))

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

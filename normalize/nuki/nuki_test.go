package nuki

import (
	"strings"
	"testing"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/adaptertest"
)

const name = "Alice Example"

func entryJSON(action, trigger, state string, extra string) string {
	return `{"id":"6566e1b0c3a4f22e5c0d9b17","smartlockId":17171717,"deviceType":4,"authId":"6566dd0ec3a4f22e5c0d9a01",` +
		`"name":"` + name + `","action":` + action + `,"trigger":` + trigger + `,"state":` + state +
		`,"autoUnlock":false,"date":"2026-11-20T08:15:02.000Z","source":0` + extra + `}`
}

func webhook(entry string) string {
	return `{"feature":"DEVICE_LOGS","smartlockLog":` + entry + `}`
}

var secrets = []string{"Alice", "alice@example.com"}

var cases = []adaptertest.Case{
	{Name: "app unlock", Payload: entryJSON("1", "5", "0", ""), Secrets: secrets},
	{Name: "app unlock in webhook", Payload: webhook(entryJSON("1", "5", "0", "")), Secrets: secrets},
	{Name: "auto unlock", Payload: strings.Replace(entryJSON("1", "5", "0", ""), `"autoUnlock":false`, `"autoUnlock":true`, 1), Secrets: secrets},
	{Name: "web lock", Payload: entryJSON("2", "4", "0", "")},
	{Name: "button unlatch", Payload: entryJSON("3", "2", "0", "")},
	{Name: "lock n go", Payload: entryJSON("4", "2", "0", "")},
	{Name: "lock n go unlatch", Payload: entryJSON("5", "7", "0", "")},
	{Name: "manual lock", Payload: entryJSON("2", "1", "0", "")},
	{Name: "auto lock", Payload: entryJSON("2", "6", "0", "")},
	{Name: "system unlock is the app over bluetooth", Payload: entryJSON("1", "0", "0", ""), Secrets: secrets},
	{Name: "system auto unlock", Payload: strings.Replace(entryJSON("1", "0", "0", ""), `"autoUnlock":false`, `"autoUnlock":true`, 1), Secrets: secrets},
	{Name: "system unlatch with account user", Payload: `{"id":"a2","smartlockId":5,"accountUserId":4242,"action":3,"trigger":0,"state":0,"date":"2026-11-20T08:15:02Z"}`},
	{Name: "system lock without authorization", Payload: `{"id":"a3","smartlockId":5,"action":2,"trigger":0,"state":0,"date":"2026-11-20T08:15:02Z"}`},
	{Name: "time control lock", Payload: `{"id":"a4","smartlockId":5,"action":2,"trigger":3,"state":0,"date":"2026-11-20T22:00:00Z"}`},
	{Name: "fob unlatch", Payload: entryJSON("3", "7", "0", ""), Secrets: secrets},
	{Name: "tap to unlock", Payload: entryJSON("1", "0", "0", `,"source":3`), Secrets: secrets},
	{Name: "tap to unlock access document revoked", Payload: entryJSON("1", "253", "0", `,"source":3`), Secrets: secrets},
	{Name: "tap to unlock invalid access rights", Payload: entryJSON("1", "253", "37", `,"source":3`), Secrets: secrets},
	{Name: "tap to unlock unknown state", Payload: entryJSON("1", "253", "99", `,"source":3`), Secrets: secrets},
	{Name: "keypad error invalid code", Payload: entryJSON("1", "253", "224", `,"source":1`)},
	{Name: "nuki mode lock", Payload: entryJSON("2", "254", "0", "")},
	{Name: "factory reset", Payload: entryJSON("11", "0", "0", "")},
	{Name: "keypad code unlock", Payload: entryJSON("1", "255", "0", `,"source":1`)},
	{Name: "fingerprint unlock", Payload: entryJSON("1", "255", "0", `,"source":2`)},
	{Name: "keypad invalid code", Payload: entryJSON("1", "255", "224", "")},
	{Name: "invalid fingerprint", Payload: entryJSON("1", "255", "225", "")},
	{Name: "invalid nfc tag", Payload: entryJSON("1", "7", "226", "")},
	{Name: "motor blocked", Payload: entryJSON("2", "5", "1", "")},
	{Name: "low motor voltage", Payload: entryJSON("1", "5", "5", "")},
	{Name: "rejected night mode", Payload: entryJSON("1", "5", "10", "")},
	{Name: "unknown error state", Payload: entryJSON("1", "5", "77", "")},
	{Name: "door ajar warning", Payload: entryJSON("208", "0", "0", "")},
	{Name: "door opened", Payload: entryJSON("240", "0", "0", "")},
	{Name: "door closed", Payload: entryJSON("241", "0", "0", "")},
	{Name: "door sensor jammed", Payload: entryJSON("242", "0", "0", "")},
	{Name: "firmware update", Payload: entryJSON("243", "0", "0", "")},
	{Name: "unknown action", Payload: entryJSON("99", "3", "0", "")},
	{Name: "account user without auth", Payload: `{"id":"a1","smartlockId":5,"accountUserId":4242,"action":1,"trigger":5,"state":0,"date":"2026-11-20T08:15:02Z"}`},
	{Name: "no id fingerprints", Payload: `{"smartlockId":5,"authId":"x1","action":2,"trigger":6,"date":"2026-11-20T09:15:02+01:00"}`},
	{Name: "device status webhook", Payload: `{"feature":"DEVICE_STATUS","smartlockId":17171717,"state":{"mode":2,"state":1,"batteryCritical":false}}`},
	{Name: "error webhook without log", Payload: `{"feature":"DEVICE_LOGS"}`},
	{Name: "error not json", Payload: `{"id":"x","smartlockId":`},
	{Name: "error no smartlock id", Payload: `{"id":"x","action":1,"date":"2026-11-20T08:15:02Z","name":"` + name + `"}`, Secrets: secrets},
	{Name: "error smartlock id string", Payload: `{"id":"x","smartlockId":"17171717","action":1,"date":"2026-11-20T08:15:02Z"}`},
	{Name: "error no date", Payload: `{"id":"x","smartlockId":1,"action":1}`},
	{Name: "error bad date", Payload: `{"id":"x","smartlockId":1,"action":1,"date":"20 Nov 2026 alice@example.com"}`, Secrets: secrets},
	{Name: "error no action", Payload: `{"id":"x","smartlockId":1,"date":"2026-11-20T08:15:02Z"}`},
	{Name: "name of any shape is skipped", Payload: `{"id":"x","smartlockId":1,"action":1,"date":"2026-11-20T08:15:02Z","name":{"first":"Alice"}}`, Secrets: secrets},
	{Name: "error auto unlock not bool", Payload: `{"id":"x","smartlockId":1,"action":1,"date":"2026-11-20T08:15:02Z","autoUnlock":"yes"}`},
	{Name: "error smartlockLog not object", Payload: `{"feature":"DEVICE_LOGS","smartlockLog":[1]}`},
}

func TestGolden(t *testing.T) { adaptertest.Golden(t, Vendor, Adapter{}, cases) }

func TestTable(t *testing.T) { adaptertest.CheckTable(t, Adapter{}) }

func TestEveryMappingRow(t *testing.T) {
	adaptertest.Rows(t, Vendor, Adapter{}, func(m normalize.Mapping) (string, bool) {
		switch m.Field {
		case "action":
			return entryJSON(m.Code, "3", "0", ""), true
		case "trigger":
			return entryJSON("1", m.Code, "0", ""), true
		case "trigger, no authId":
			return strings.Replace(entryJSON("1", m.Code, "0", ""), `"authId":"6566dd0ec3a4f22e5c0d9a01",`, "", 1), true
		case "state, tap to unlock error":
			return entryJSON("1", "253", m.Code, `,"source":3`), true
		case "source":
			return entryJSON("1", "255", "0", `,"source":`+m.Code), true
		case "state":
			return entryJSON("1", "3", m.Code, ""), true
		case "autoUnlock":
			return strings.Replace(entryJSON("1", "5", "0", ""), `"autoUnlock":false`, `"autoUnlock":true`, 1), true
		}
		return "", false
	})
}

func TestEventIDAndWebhookAgree(t *testing.T) {
	n := adaptertest.Normalizer(Vendor, Adapter{})
	bare, _, err := adaptertest.Run(n, Vendor, entryJSON("1", "5", "0", ""))
	if err != nil {
		t.Fatal(err)
	}
	wrapped, _, err := adaptertest.Run(n, Vendor, webhook(entryJSON("1", "5", "0", "")))
	if err != nil {
		t.Fatal(err)
	}
	if bare[0] != wrapped[0] {
		t.Fatalf("webhook %+v differs from bare entry %+v", wrapped[0], bare[0])
	}
	if bare[0].EventID != event.ID(Vendor, "6566e1b0c3a4f22e5c0d9b17") {
		t.Fatalf("event id %s is not event.ID(nuki, id)", bare[0].EventID)
	}
}

func reference(raw []byte) ([]event.Access, error) {
	rec, err := referenceDecode(raw)
	if err != nil {
		if otherFeature(&rec, err) {
			return nil, nil
		}
		return nil, normalize.DecodeError("nuki log entry", err)
	}
	return mapRecord(nil, &rec)
}

func TestDifferential(t *testing.T) {
	for _, c := range append(cases,
		adaptertest.Case{Name: "repeated log merges", Payload: `{"feature":"DEVICE_LOGS","smartlockLog":{"smartlockId":1,"action":1},"smartlockLog":{"date":"2026-11-20T08:15:02Z"}}`},
		adaptertest.Case{Name: "null log drops", Payload: `{"feature":"DEVICE_LOGS","smartlockLog":{"smartlockId":1,"action":1,"date":"2026-11-20T08:15:02Z"},"smartlockLog":null}`},
	) {
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

// benchPayload is a typical ~300-byte log entry.
var benchPayload = []byte(entryJSON("1", "5", "0", `,"accountUserId":987654`))

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

func BenchmarkReferenceEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		if _, err := reference(benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

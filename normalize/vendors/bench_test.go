package vendors

import (
	"testing"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/normalize"
)

// benchPayloads are typical payloads of about 300 bytes, one per vendor,
// with the user reference of each registered in the bench registry.
var benchPayloads = []struct {
	vendor, lockID, ref string
	payload             string
}{
	{"matter", "0x1A2B3C4D", "3", `{"nodeId":"0x1A2B3C4D","endpointId":1,"clusterId":257,"eventName":"LockOperation","eventNumber":4711,` +
		`"timestampMs":1764230400123,"priority":"info","data":{"lockOperationType":1,"operationSource":10,"userIndex":3,"fabricIndex":1,` +
		`"sourceNode":1311768467463790320,"credentials":[{"credentialType":7,"credentialIndex":2}]}}`},
	{"nuki", "17171717", "6566dd0ec3a4f22e5c0d9a01", `{"id":"6566e1b0c3a4f22e5c0d9b17","smartlockId":17171717,"deviceType":4,` +
		`"authId":"6566dd0ec3a4f22e5c0d9a01","name":"Alice Example","action":1,"trigger":5,"state":0,"autoUnlock":false,` +
		`"date":"2026-11-20T08:15:02.000Z","source":0,"accountUserId":987654}`},
	{"schlage", "a1b2c3d4e5f6", "7f6e5d4c", `{"eventId":"0b7e4c1a-6c55-4f7e-9d7c-2f1e0f0a9b11","trigger":"Device","deviceId":"a1b2c3d4e5f6",` +
		`"time":"2026-11-20T08:15:02.123Z","eventType":"DeviceLockStateChanged","data":{"lockState":"Unlocked",` +
		`"accessor":{"id":"7f6e5d4c","accessType":"AppleHomeNFC"}},"version":"1.0"}`},
	{"seam", "9f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b", "c0ffee00-1111-2222-3333-444455556666", `{"event_id":"4d1b6c8e-2f0a-4c1e-9b7d-5a6e7f8091a2",` +
		`"event_type":"lock.unlocked","device_id":"9f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b","workspace_id":"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9",` +
		`"created_at":"2026-11-20T08:15:03.000Z","occurred_at":"2026-11-20T08:15:02.000Z","method":"keycode","access_code_id":"c0ffee00-1111-2222-3333-444455556666"}`},
	{"legacy", "PANEL-7/READER-3", "00123456", `2026-11-20T08:15:02Z,PANEL-7,READER-3,CARD,00123456,GRANTED`},
}

// BenchmarkNormalize measures one vendor payload through the whole
// Normalizer (adapter, event id, registry lookups with the keyed user-ref
// hash, schema check): events/s per core is the pipeline's normalize cost.
func BenchmarkNormalize(b *testing.B) {
	key := []byte("bench-pseudonym-key-0123456789")
	reg := registry.New()
	var f registry.File
	for _, p := range benchPayloads {
		f.Locks = append(f.Locks, registry.Lock{Vendor: p.vendor, LockID: p.lockID,
			LockInfo: registry.LockInfo{SiteID: "site-1", ZoneID: "zone-1", DoorID: "door-1"}})
		f.Credentials = append(f.Credentials, registry.Credential{Vendor: p.vendor, UserRefHash: event.RefHash(key, p.vendor, p.ref),
			CredentialInfo: registry.CredentialInfo{SubjectID: "subj-1", CredentialID: "cred-1", DeviceID: "dev-1"}})
	}
	reg.Apply(f)
	n := normalize.New(Adapters(), reg, key)
	for _, p := range benchPayloads {
		payload := []byte(p.payload)
		b.Run(p.vendor, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			var dst []event.Access
			for b.Loop() {
				var err error
				dst, err = n.Normalize(dst[:0], p.vendor, 1764230499000, "lock.events.raw/0/42", payload)
				if err != nil || len(dst) != 1 || dst[0].SubjectID != "subj-1" || dst[0].DoorID != "door-1" {
					b.Fatalf("%v %+v", err, dst)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

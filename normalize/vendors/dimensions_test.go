package vendors

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/normalize"
)

// TestDimensions: where an event's device and lock dimensions come from —
// the payload first (a Matter node's Basic Information), else the lock
// registry's model and firmware and the credential's activation record.
func TestDimensions(t *testing.T) {
	key := []byte("dims-key")
	var f registry.File
	for _, p := range benchPayloads {
		f.Locks = append(f.Locks, registry.Lock{Vendor: p.vendor, LockID: p.lockID, Model: p.vendor + "-model", Firmware: "1.0.0",
			LockInfo: registry.LockInfo{SiteID: "site-1", ZoneID: "zone-1", DoorID: "door-1"}})
		f.Credentials = append(f.Credentials, registry.Credential{Vendor: p.vendor, UserRefHash: event.RefHash(key, p.vendor, p.ref),
			CredentialInfo: registry.CredentialInfo{SubjectID: "subj-1", CredentialID: "cred-1", DeviceID: "dev-1",
				PhoneModel: "Pixel 9", OSName: "android", OSVersion: "16", AppVersion: "2026.11.1"}})
	}
	reg := registry.New()
	reg.Apply(f)
	n := normalize.New(Adapters(), reg, key)
	for _, p := range benchPayloads {
		out, err := n.Normalize(nil, p.vendor, 1, "raw/0/1", []byte(p.payload))
		require.NoError(t, err, p.vendor)
		require.Len(t, out, 1)
		e := out[0]
		assert.Equal(t, []string{p.vendor + "-model", "1.0.0", "Pixel 9", "android", "16", "2026.11.1"},
			[]string{e.LockModel, e.LockFirmware, e.PhoneModel, e.OSName, e.OSVersion, e.AppVersion}, p.vendor)
	}

	// A Matter node reporting its Basic Information: the payload wins.
	matter := `{"nodeId":"0x1A2B3C4D","endpointId":1,"clusterId":257,"eventName":"LockOperation","eventNumber":4712,` +
		`"timestampMs":1764230400123,"basicInformation":{"vendorName":"Acme","productName":"Acme Door Lock 2","softwareVersionString":"2.4.1"},` +
		`"data":{"lockOperationType":1,"operationSource":7,"userIndex":3}}`
	out, err := n.Normalize(nil, "matter", 1, "raw/0/2", []byte(matter))
	require.NoError(t, err)
	assert.Equal(t, "Acme Door Lock 2", out[0].LockModel)
	assert.Equal(t, "2.4.1", out[0].LockFirmware)
}

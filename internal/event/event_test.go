package event

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIDIsDeterministicUUIDv5(t *testing.T) {
	a := ID("matter", "0x1A#4711")
	assert.Equal(t, a, ID("matter", "0x1A#4711"), "same input, same id")
	assert.NotEqual(t, a, ID("matter", "0x1A#4712"), "different vendor event")
	assert.NotEqual(t, a, ID("nuki", "0x1A#4711"), "different vendor")
	assert.NotEqual(t, ID("ab", "c"), ID("a", "bc"), "vendor/id boundary is kept")
	assert.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, a)
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	f := func(a Access) {
		t.Helper()
		want, err := json.Marshal(a)
		require.NoError(t, err)
		got := a.AppendJSON(nil)
		assert.Equal(t, string(want), string(got))
		var back, viaStdlib Access
		require.NoError(t, Decode(got, &back))
		require.NoError(t, json.Unmarshal(want, &viaStdlib))
		assert.Equal(t, viaStdlib, back)
		assert.Empty(t, back.UserRef, "UserRef never leaves the process")
	}
	f(Access{})
	f(Access{EventID: ID("matter", "1"), TsMs: 1764230400123, ReceivedMs: 1764230400999, Vendor: "matter",
		SiteID: "site-1", ZoneID: "z", DoorID: "door-7", LockID: "0x1A2B", SubjectID: "sub_1",
		CredentialID: "cred_1", DeviceID: "dev", Attested: "attested", Action: "unlock", Outcome: "granted",
		Method: "aliro", Reason: "", VendorCode: "LockOperation/1/10", BreakGlass: true, RawRef: "t/0/1", UserRef: "3"})
	f(Access{EventID: ID("nuki", "2"), Vendor: "nuki", LockModel: "Smart Lock 4.0", LockFirmware: "4.2.7",
		PhoneModel: "Pixel 9", OSName: "android", OSVersion: "16", AppVersion: "2026.11.1"})
	f(Access{OSVersion: "18.2", AppVersion: "x\"<y>"})
	f(Access{VendorCode: "quote\" backslash\\ nl\n tab\t ctl\x01 html<>& unicode é 😀 bad\xff sep\u2028\u2029"})
}

func FuzzAppendJSON(f *testing.F) {
	f.Add("plain", "x\"y\\z<>&\n\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, a, b string) {
		e := Access{Vendor: a, VendorCode: b, TsMs: 1}
		want, err := json.Marshal(e)
		require.NoError(t, err)
		require.Equal(t, string(want), string(e.AppendJSON(nil)))
	})
}

func TestRawRoundTrip(t *testing.T) {
	f := func(payload, wantPayload string) {
		t.Helper()
		r := NewRaw("legacy", 42, []byte(payload))
		back, err := DecodeRaw(r.AppendJSON(nil))
		require.NoError(t, err)
		assert.Equal(t, "legacy", back.Vendor)
		assert.Equal(t, int64(42), back.ReceivedMs)
		p, err := back.PayloadBytes()
		require.NoError(t, err)
		assert.Equal(t, wantPayload, string(p))
	}
	f(`{"a":1}`, `{"a":1}`)
	f("  {\"a\":1}\n", `{"a":1}`)
	f(`2026-11-20T08:15:02Z,PANEL-7,READER-3,CARD,00123456,GRANTED`, `2026-11-20T08:15:02Z,PANEL-7,READER-3,CARD,00123456,GRANTED`)
	f(`"quoted",csv`, `"quoted",csv`)

	_, err := DecodeRaw([]byte(`{"vendor":"x"}`))
	assert.ErrorIs(t, err, ErrNoPayload)
	_, err = DecodeRaw([]byte(`{"payload":{}}`))
	assert.Error(t, err)
}

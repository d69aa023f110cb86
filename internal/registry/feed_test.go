package registry_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

func TestFeedAppliesAndReplacesRefs(t *testing.T) {
	r := registry.New()
	f := registry.NewFeed(r)
	ref1 := event.CredentialRef{Vendor: "matter", UserRefHash: "h1"}
	ref2 := event.CredentialRef{Vendor: "nuki", LockID: "n-1", UserRefHash: "h2"}
	f.Apply(event.Credential{CredentialID: "c1", SubjectID: "s1", DeviceID: "d1", State: event.StateActive,
		BreakGlass: true, Refs: []event.CredentialRef{ref1, ref2}})
	got, ok := r.Credential("matter", "any-lock", "h1")
	require.True(t, ok)
	assert.Equal(t, "c1", got.CredentialID)
	assert.Equal(t, "s1", got.SubjectID)
	assert.True(t, got.BreakGlass)
	_, ok = r.Credential("nuki", "n-1", "h2")
	assert.True(t, ok)

	// The next record drops ref2 and changes the device.
	f.Apply(event.Credential{CredentialID: "c1", SubjectID: "s1", DeviceID: "d2", State: event.StatePendingActivation,
		Refs: []event.CredentialRef{ref1}})
	_, ok = r.Credential("nuki", "n-1", "h2")
	assert.False(t, ok)
	got, _ = r.Credential("matter", "x", "h1")
	assert.Equal(t, "d2", got.DeviceID)
	assert.False(t, got.BreakGlass)

	// Revoked credentials still resolve.
	require.NoError(t, f.ApplyJSON([]byte(`{"credential_id":"c1","subject_id":"s1","state":"revoked","refs":[{"vendor":"matter","user_ref_hash":"h1"}],"extra_field":1}`)))
	got, ok = r.Credential("matter", "x", "h1")
	require.True(t, ok)
	assert.Equal(t, "c1", got.CredentialID)
	assert.Error(t, f.ApplyJSON([]byte(`{`)))
}

// Replace does what Apply does, with the previous record's references
// given by the caller instead of kept by the feed.
func TestFeedReplace(t *testing.T) {
	key := []byte("k")
	h1, h2 := event.RefHash(key, "matter", "1"), event.RefHash(key, "nuki", "2")
	r := registry.New()
	f := registry.NewFeed(r)
	ref1 := event.CredentialRef{Vendor: "matter", UserRefHash: h1}
	ref2 := event.CredentialRef{Vendor: "nuki", LockID: "n-1", UserRefHash: h2}
	ref3 := event.CredentialRef{Vendor: "nuki", UserRefHash: "not-a-ref-hash"}
	first := event.Credential{CredentialID: "c1", SubjectID: "s1", DeviceID: "d1", BreakGlass: true,
		Refs: []event.CredentialRef{ref1, ref2, ref3}}
	f.Replace(nil, first)
	for _, ref := range first.Refs {
		got, ok := r.Credential(ref.Vendor, ref.LockID, ref.UserRefHash)
		require.True(t, ok, ref)
		assert.Equal(t, registry.CredentialInfo{SubjectID: "s1", CredentialID: "c1", DeviceID: "d1", BreakGlass: true}, got)
	}
	_, ok := r.Credential("nuki", "n-1", strings.ToUpper(h2))
	assert.False(t, ok, "hashes are compared as text")
	_, ok = r.Credential("nuki", "n-2", h2)
	assert.False(t, ok, "a lock-specific reference is not vendor-wide")

	f.Replace(first.Refs, event.Credential{CredentialID: "c1", SubjectID: "s1", DeviceID: "d2", Refs: []event.CredentialRef{ref1},
		Device: &event.Device{PhoneModel: "Pixel 9", OSName: "android", OSVersion: "16", AppVersion: "4.2"}})
	_, ok = r.Credential("nuki", "n-1", h2)
	assert.False(t, ok)
	_, ok = r.Credential("nuki", "", "not-a-ref-hash")
	assert.False(t, ok)
	got, ok := r.Credential("matter", "x", h1)
	require.True(t, ok)
	assert.Equal(t, registry.CredentialInfo{SubjectID: "s1", CredentialID: "c1", DeviceID: "d2",
		PhoneModel: "Pixel 9", OSName: "android", OSVersion: "16", AppVersion: "4.2"}, got)
	_, n := r.Len()
	assert.Equal(t, 1, n)
}

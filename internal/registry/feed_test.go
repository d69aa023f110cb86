package registry_test

import (
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

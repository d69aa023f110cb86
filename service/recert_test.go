package service

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/recert"
	recertapi "github.com/keyfleet/keyfleet/recert/api"
)

// TestAccessRecertification: a campaign of a site lists the people with
// access there; a reviewer's revocation revokes the credential through the
// control plane (its locks confirm), a confirmation is recorded, each audited.
// (Deadline enforcement is pinned by recert/api's test with a held clock.)
func TestAccessRecertification(t *testing.T) {
	s := startEstateServe(t, registry.File{Locks: []registry.Lock{
		lockOf("matter", "m-lobby", "s1", "lobby", "door-lock-aliro", 1, "entrance"),
		lockOf("matter", "m-other", "s2", "lobby", "door-lock-aliro", 1, "entrance"),
	}})
	acker(t, s.bus)
	var ids []string
	for i, site := range []string{"s1", "s1", "s2"} {
		var pr control.ProvisionResponse
		sub := fmt.Sprintf("resident-%d", i)
		require.Equal(t, http.StatusAccepted, s.json("POST", "/v1/credentials", control.CredentialRequest{SubjectID: sub, Role: "resident",
			SiteID: site, DeviceID: "phone-" + sub, Attestation: s.attestation("phone-" + sub)}, &pr))
		ids = append(ids, pr.CredentialIDs[0])
	}
	state := func(id string) string {
		var v control.CredentialView
		if s.call("GET", "/v1/credentials/"+id, "", "", &v) != http.StatusOK {
			return ""
		}
		return v.Credential.State
	}
	for _, id := range ids {
		require.Eventually(t, func() bool { return state(id) == "active" }, 60*time.Second, 100*time.Millisecond)
	}

	var camp recertapi.CampaignView
	require.Equal(t, http.StatusCreated, s.json("POST", "/v1/recertifications", map[string]any{"site_id": "s1",
		"deadline_ms": time.Now().Add(7 * 24 * time.Hour).UnixMilli()}, &camp))
	require.Len(t, camp.Items, 2, "the two credentials of s1")
	assert.Equal(t, recert.OnDeadlineSuspend, camp.OnDeadline)

	var out map[string]any
	require.Equal(t, http.StatusOK, s.json("POST", "/v1/recertifications/"+camp.ID+":decide",
		map[string]string{"credential_id": ids[0], "decision": "confirmed", "note": "still a resident"}, &out))
	require.Equal(t, http.StatusOK, s.json("POST", "/v1/recertifications/"+camp.ID+":decide",
		map[string]string{"credential_id": ids[1], "decision": "revoked", "note": "moved out"}, &out))
	assert.NotEmpty(t, out["revocation_id"])
	require.Eventually(t, func() bool { return state(ids[1]) == "revoked" }, 60*time.Second, 100*time.Millisecond)
	assert.Equal(t, "active", state(ids[0]))

	var got recertapi.CampaignView
	require.Equal(t, http.StatusOK, s.call("GET", "/v1/recertifications/"+camp.ID, "", "", &got))
	assert.Equal(t, recert.Counts{Items: 2, Confirmed: 1, Revoked: 1}, got.Counts)
	assert.Equal(t, recert.StatusOpen, got.Status)

	actions := s.auditActions()
	for _, want := range []string{"recert.open recert/" + camp.ID, "recert.confirmed " + ids[0], "recert.revoked " + ids[1]} {
		assert.Contains(t, actions, want)
	}
}

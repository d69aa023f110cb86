package api_test

import (
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/testenv"
)

// TestActivationRecordsDevice: an activation keeps what the app reports of
// the phone, with Android key attestation's hardware-enforced OS version and
// patch level in place of the reported ones (device_facts attested); App
// Attest proves no OS version, so its record says app_reported. The facts
// reach credential_events.
func TestActivationRecordsDevice(t *testing.T) {
	bc := testenv.RequireRealKafka(t, 2)
	conn, _ := testenv.ClickHouse(t)
	e := newEnv(t, bc, conn)

	reported := &control.DeviceInput{PhoneModel: "Pixel 9", OSName: "Android", OSVersion: "14", OSPatchLevel: "2024-01", AppVersion: "2026.11.1"}
	ch, _ := challenges.Issue("", "dev-android", time.Now())
	ev, err := testCA.Mint(attest.FormatAndroidKey, attesttest.Options{Challenge: ch, AndroidOSVersion: 160000})
	require.NoError(t, err)
	req := e.resident("subj-android")
	req.DeviceID = "dev-android"
	req.Attestation = &control.AttestationInput{Format: attest.FormatAndroidKey, Evidence: base64.StdEncoding.EncodeToString(ev),
		Challenge: base64.StdEncoding.EncodeToString(ch), Device: reported}
	android := e.issue("mgr1", req)
	v := e.waitState(android, event.StateActive)
	require.NotNil(t, v.Credential.Device)
	assert.Equal(t, event.Device{PhoneModel: "Pixel 9", OSName: "android", OSVersion: "16", OSPatchLevel: "2026-01",
		AppVersion: "2026.11.1", Facts: event.DeviceAttested}, *v.Credential.Device)

	req = e.resident("subj-iphone")
	req.DeviceID, req.Attestation = e.attested("dev-iphone")
	req.Attestation.Device = &control.DeviceInput{PhoneModel: "iPhone 16", OSName: "iOS", OSVersion: "18.2", AppVersion: "2026.11.1"}
	iphone := e.issue("mgr1", req)
	v = e.waitState(iphone, event.StateActive)
	require.NotNil(t, v.Credential.Device)
	assert.Equal(t, event.Device{PhoneModel: "iPhone 16", OSName: "ios", OSVersion: "18.2", AppVersion: "2026.11.1",
		Facts: event.DeviceAppReported}, *v.Credential.Device)

	type row struct{ phone, os, version, patch, facts string }
	stored := func(id string) row {
		var r row
		_ = conn.QueryRow(context.Background(), "SELECT phone_model, os_name, os_version, os_patch_level, device_facts "+
			"FROM credential_events WHERE credential_id = ? AND state = 'active' LIMIT 1", id).Scan(&r.phone, &r.os, &r.version, &r.patch, &r.facts)
		return r
	}
	require.Eventually(t, func() bool { return stored(android).facts != "" && stored(iphone).facts != "" }, 60*time.Second, 100*time.Millisecond)
	assert.Equal(t, row{"Pixel 9", "android", "16", "2026-01", "attested"}, stored(android))
	assert.Equal(t, row{"iPhone 16", "ios", "18.2", "", "app_reported"}, stored(iphone))
}

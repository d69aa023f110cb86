package service

import (
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
)

// testAttestation is a test CA serve trusts for App Attest: credentials
// are activated with evidence it mints for a challenge serve issued.
type testAttestation struct {
	ca *attesttest.CA
	// Args are serve's flags trusting the CA.
	Args []string
}

func newTestAttestation(t testing.TB) *testAttestation {
	t.Helper()
	dir := t.TempDir()
	ca, err := attesttest.New(time.Now())
	require.NoError(t, err)
	require.NoError(t, ca.Save(dir))
	return &testAttestation{ca: ca, Args: []string{"--attest-apple-roots", filepath.Join(dir, attesttest.FileAppleRoots),
		"--attest-apple-app-ids", attesttest.AppID}}
}

// evidence asks serve for a challenge (challenge posts the request and
// decodes the answer) and returns the device's App Attest evidence of it.
func (a *testAttestation) evidence(t testing.TB, deviceID string,
	challenge func(control.ChallengeRequest) control.ChallengeResponse) *control.AttestationInput {
	t.Helper()
	ch := challenge(control.ChallengeRequest{DeviceID: deviceID})
	raw, err := base64.StdEncoding.DecodeString(ch.Challenge)
	require.NoError(t, err)
	ev, err := a.ca.At(time.Now()).Mint(attest.FormatAppleAppAttest, attesttest.Options{Challenge: raw})
	require.NoError(t, err)
	return &control.AttestationInput{Format: attest.FormatAppleAppAttest, Evidence: base64.StdEncoding.EncodeToString(ev),
		Challenge: ch.Challenge}
}

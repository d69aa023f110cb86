package wallet_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/session"
	"github.com/keyfleet/keyfleet/sim/wallet"
)

var secret = []byte("wallet-test-secret-012345")

func noSleep(context.Context, time.Duration) error { return nil }

func TestSessionWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	svc, err := wallet.New(wallet.Options{Secret: secret, FailRate: 0.5, Seed: 3, Now: func() time.Time { return now },
		Sleep: noSleep})
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	c, err := session.New(session.Options{URL: srv.URL + "/v1/sessions/revoke", Secret: secret, Attempts: 20,
		Now: func() time.Time { return now }, Sleep: noSleep})
	require.NoError(t, err)
	s := control.Session{Key: "rv1/cr1", RevocationID: "rv1", CredentialID: "cr1", DeviceID: "d1", RequestedMs: now.UnixMilli()}
	n, err := c.Revoke(context.Background(), s)
	require.NoError(t, err, "retried through the failures")
	rv, ok := svc.Revocation("rv1/cr1")
	require.True(t, ok)
	assert.True(t, rv.Revoked)
	assert.Equal(t, n, rv.Calls)
	assert.Equal(t, n-1, rv.Failed)
	// The same key again (a re-delivered revocation) is not a failure.
	svc.SetFailRate(0)
	_, err = c.Revoke(context.Background(), s)
	require.NoError(t, err)
	assert.Equal(t, 1, svc.Stats().Repeats)
	assert.Equal(t, 1, svc.Stats().Revoked)

	// A bad signature is refused (and not retried by the client).
	bad, err := session.New(session.Options{URL: srv.URL + "/v1/sessions/revoke", Secret: []byte("not-the-secret-0123456"),
		Now: func() time.Time { return now }, Sleep: noSleep})
	require.NoError(t, err)
	n, err = bad.Revoke(context.Background(), s)
	require.Error(t, err)
	assert.Equal(t, 1, n)
	assert.Contains(t, err.Error(), "HTTP 401")

	// Down: every call fails, the client gives up with why.
	svc.SetFailRate(0.999999)
	down, err := session.New(session.Options{URL: srv.URL + "/v1/sessions/revoke", Secret: secret, Attempts: 3,
		Now: func() time.Time { return now }, Sleep: noSleep})
	require.NoError(t, err)
	_, err = down.Revoke(context.Background(), control.Session{Key: "rv2/cr2", CredentialID: "cr2", DeviceID: "d2"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "after 3 attempt(s): HTTP 503")
}

func TestDevicesAttest(t *testing.T) {
	now := time.Now()
	ca, err := attesttest.New(now)
	require.NoError(t, err)
	svc, err := wallet.New(wallet.Options{Secret: secret, CA: ca, Sleep: noSleep})
	require.NoError(t, err)
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	v, err := attest.New(ca.Config())
	require.NoError(t, err)
	challenge := []byte("a challenge of 57 bytes or so, whatever the server issued")
	for _, tc := range []struct {
		format, forgery string
		want            attest.Reason
	}{
		{attest.FormatAppleAppAttest, "", ""},
		{attest.FormatAndroidKey, "", ""},
		{attest.FormatWebAuthn, "", ""},
		{attest.FormatAppleAppAttest, string(attesttest.UntrustedChain), attest.ReasonUntrustedChain},
		{attest.FormatAndroidKey, string(attesttest.WrongChallenge), attest.ReasonWrongChallenge},
	} {
		out, err := wallet.Attest(context.Background(), http.DefaultClient, srv.URL, "phone-1", wallet.AttestRequest{
			Format: tc.format, Challenge: base64.StdEncoding.EncodeToString(challenge), Forgery: tc.forgery})
		require.NoError(t, err)
		assert.Equal(t, tc.forgery != "", out.Forged)
		wantOS := "ios"
		if tc.format == attest.FormatAndroidKey {
			wantOS = "android"
		}
		assert.Equal(t, wantOS, out.Device.OSName, "the phone reports its platform")
		assert.NotEmpty(t, out.Device.PhoneModel)
		assert.NotEmpty(t, out.Device.OSVersion)
		ev, err := base64.StdEncoding.DecodeString(out.Evidence)
		require.NoError(t, err)
		_, err = v.Verify(tc.format, ev, challenge)
		assert.Equal(t, tc.want, attest.ReasonOf(err), "%s %s", tc.format, tc.forgery)
	}
	// A forge rate of 1 forges everything.
	forger, err := wallet.New(wallet.Options{Secret: secret, CA: ca, ForgeRate: 1, Sleep: noSleep})
	require.NoError(t, err)
	fs := httptest.NewServer(forger.Handler())
	defer fs.Close()
	out, err := wallet.Attest(context.Background(), http.DefaultClient, fs.URL, "phone-2", wallet.AttestRequest{
		Challenge: base64.StdEncoding.EncodeToString(challenge)})
	require.NoError(t, err)
	assert.True(t, out.Forged)
	ev, _ := base64.StdEncoding.DecodeString(out.Evidence)
	_, err = v.Verify(attest.FormatAppleAppAttest, ev, challenge)
	assert.Error(t, err, "a forgery (%s) is refused", out.Forgery)
}

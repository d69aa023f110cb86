package attesttest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
)

func TestMint(t *testing.T) {
	ca, err := attesttest.New(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	_, err = ca.Mint(attest.FormatAndroidKey, attesttest.Options{})
	require.ErrorContains(t, err, "no challenge")
	_, err = ca.Mint(attest.FormatAliro, attesttest.Options{Challenge: []byte("c")})
	require.Error(t, err)

	cases, err := ca.Cases([]byte("c"))
	require.NoError(t, err)
	n := 0
	for _, f := range attest.SupportedFormats() {
		n += len(attesttest.Forgeries(f))
	}
	assert.Len(t, cases, n)
	for _, c := range cases {
		assert.NotEmpty(t, c.Evidence, c.Name)
		assert.Equal(t, c.Forgery == attesttest.Genuine, c.Want == "", c.Name)
	}
	// Each call mints a fresh key.
	a, err := ca.Apple(attesttest.Options{Challenge: []byte("c")})
	require.NoError(t, err)
	b, err := ca.Apple(attesttest.Options{Challenge: []byte("c")})
	require.NoError(t, err)
	assert.NotEqual(t, a, b)
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ca, err := attesttest.LoadOrNew(dir, start)
	require.NoError(t, err)
	later := start.Add(90 * 24 * time.Hour) // past a leaf's 30 days from the first clock
	again, err := attesttest.LoadOrNew(dir, later)
	require.NoError(t, err)
	assert.Equal(t, ca.AppleRootsPEM(), again.AppleRootsPEM(), "the saved CA, not a new one")
	assert.Equal(t, later, again.Now())
	cfg := ca.At(later).Config()
	cfg.Android.Roots = attest.Roots{Files: []string{dir + "/" + attesttest.FileAndroidRoots}}
	cfg.Apple.Roots = attest.Roots{Files: []string{dir + "/" + attesttest.FileAppleRoots}}
	cfg.WebAuthn.Roots = attest.Roots{Files: []string{dir + "/" + attesttest.FileWebAuthnRoot}}
	v, err := attest.New(cfg)
	require.NoError(t, err)
	cases, err := again.Cases([]byte("challenge"))
	require.NoError(t, err)
	for _, c := range cases {
		_, err := v.Verify(c.Format, c.Evidence, c.Challenge)
		assert.Equal(t, c.Want, attest.ReasonOf(err), c.Name)
	}
}

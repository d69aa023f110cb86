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

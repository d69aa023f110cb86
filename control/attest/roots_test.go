package attest_test

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/attest"
)

// TestShippedRoots pins the default roots: each is self-signed and has the
// SHA-256 its file header (and the publisher) states.
func TestShippedRoots(t *testing.T) {
	f := func(name string, pemBytes []byte, want []string) {
		t.Run(name, func(t *testing.T) {
			var got []string
			for rest := pemBytes; ; {
				var block *pem.Block
				block, rest = pem.Decode(rest)
				if block == nil {
					break
				}
				c, err := x509.ParseCertificate(block.Bytes)
				require.NoError(t, err)
				require.NoError(t, c.CheckSignatureFrom(c), "self-signed")
				assert.True(t, c.IsCA)
				s := sha256.Sum256(c.Raw)
				got = append(got, hex.EncodeToString(s[:]))
			}
			assert.Equal(t, want, got)
		})
	}
	f("apple", attest.DefaultAppleRoots(), []string{"1cb9823ba28ba6ad2d33a006941de2ae4f513ef1d4e831b9f7e0fa7b6242c932"})
	f("google", attest.DefaultAndroidRoots(), []string{
		"1ef1a04b8ba58ab94589ac498c8982a783f24ea7307e0159a0c3a73b377d87cc",
		"ab6641178a36e179aa0c1cdddf9a16eb45fa20943e2b8cd7c7c05c26cf8b487a",
		"cedb1cb6dc896ae5ec797348bce9286753c2b38ee71ce0fbe34a9a1248800dfc",
		"6d9db4ce6c5c0b293166d08986e05774a8776ceb525d9e4329520de12ba4bcc0",
	})
}

package nuki

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerify(t *testing.T) {
	secret := []byte("webhook-secret")
	body := []byte(`{"feature":"DEVICE_LOGS","smartlockLog":{"id":"a"}}`)
	sig := Sign(secret, body)
	// Known answer: HMAC-SHA256("webhook-secret", body).
	require.Len(t, sig, 64)
	f := func(secret, body []byte, sig string, ok bool) {
		t.Helper()
		err := Verify(secret, body, sig)
		if ok {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, ErrBadSignature)
		}
	}
	f(secret, body, sig, true)
	f(secret, body, strings.ToUpper(sig), true)
	f(secret, body, " "+sig+"\n", true)
	f(secret, append(body, ' '), sig, false)
	f([]byte("other-secret"), body, sig, false)
	f(secret, body, sig[:62], false)
	f(secret, body, "zz"+sig[2:], false)
	f(secret, body, "", false)
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte("k"), []byte("{}"), "00")
	f.Fuzz(func(t *testing.T, secret, body []byte, sig string) {
		if Verify(secret, body, Sign(secret, body)) != nil {
			t.Fatal("own signature rejected")
		}
		if sig != Sign(secret, body) && strings.TrimSpace(strings.ToLower(sig)) != Sign(secret, body) && Verify(secret, body, sig) == nil {
			t.Fatalf("foreign signature %q accepted", sig)
		}
	})
}

package seam

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestVerify(t *testing.T) {
	// The Standard Webhooks specification's example: this secret, id,
	// timestamp and body give exactly this signature.
	key, err := DecodeSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	require.NoError(t, err)
	const id, ts = "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330"
	body := []byte(`{"test": 2432232314}`)
	const known = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
	at := time.Unix(1614265330, 0)
	assert.Equal(t, known, Sign(key, id, at, body))

	f := func(key []byte, id, ts, sigs string, body []byte, now time.Time, want error) {
		t.Helper()
		err := Verify(key, id, ts, sigs, body, now)
		if want == nil {
			assert.NoError(t, err)
		} else {
			assert.ErrorIs(t, err, want)
		}
	}
	f(key, id, ts, known, body, at, nil)
	f(key, id, ts, known, body, at.Add(Tolerance), nil)
	f(key, id, ts, known, body, at.Add(Tolerance+time.Second), ErrStaleSignature)
	f(key, id, ts, known, body, at.Add(-Tolerance-time.Second), ErrStaleSignature)
	// Secret rotation: several signatures, one valid is enough.
	f(key, id, ts, "v1,bm9wZQ== v2,whatever "+known, body, at, nil)
	f(key, id, ts, known, append(body, ' '), at, ErrBadSignature)
	f(key, "msg_other", ts, known, body, at, ErrBadSignature)
	f(key, id, "1614265331", known, body, at, ErrBadSignature)
	f([]byte("other key"), id, ts, known, body, at, ErrBadSignature)
	f(key, id, ts, "v2,"+strings.TrimPrefix(known, "v1,"), body, at, ErrBadSignature)
	f(key, id, ts, "v1,not base64!", body, at, ErrBadSignature)
	f(key, "", ts, known, body, at, ErrBadSignature)
	f(key, id, "", known, body, at, ErrBadSignature)
	f(key, id, "yesterday", known, body, at, ErrBadSignature)
	f(key, id, ts, "", body, at, ErrBadSignature)
}

func TestDecodeSecret(t *testing.T) {
	raw := []byte("0123456789abcdef0123456789abcdef")
	enc := base64.StdEncoding.EncodeToString(raw)
	for _, s := range []string{"whsec_" + enc, enc, " whsec_" + enc + "\n"} {
		got, err := DecodeSecret(s)
		require.NoError(t, err, s)
		assert.Equal(t, raw, got)
	}
	for _, s := range []string{"", "whsec_", "whsec_!!!", "plain text secret"} {
		_, err := DecodeSecret(s)
		assert.Error(t, err, s)
	}
}

func FuzzVerify(f *testing.F) {
	f.Add([]byte("k"), "msg_1", int64(1614265330), []byte("{}"))
	f.Fuzz(func(t *testing.T, key []byte, id string, sec int64, body []byte) {
		if id == "" || sec < 0 || sec > 1<<40 {
			return
		}
		at := time.Unix(sec, 0)
		sig := Sign(key, id, at, body)
		if err := Verify(key, id, strconv.FormatInt(sec, 10), sig, body, at); err != nil {
			t.Fatalf("own signature rejected: %v", err)
		}
		if Verify(key, id, strconv.FormatInt(sec, 10), sig, append(body, 'x'), at) == nil {
			t.Fatal("changed body accepted")
		}
	})
}

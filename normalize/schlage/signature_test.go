package schlage

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sign signs body as Schlage does: RSASSA-PSS with SHA-256, base64.
func sign(t *testing.T, k *rsa.PrivateKey, body []byte, salt int) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: salt})
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(sig)
}

func TestVerify(t *testing.T) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	require.NoError(t, err)
	pub, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	require.NoError(t, err)
	pkcs1, err := ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&k.PublicKey)}))
	require.NoError(t, err)
	assert.True(t, pub.Equal(pkcs1))

	body := []byte(`{"eventId":"e1","eventType":"DeviceStateChanged","deviceId":"d1"}`)
	// Salt lengths of the common signers (digest length, maximum) all verify.
	for _, salt := range []int{rsa.PSSSaltLengthEqualsHash, rsa.PSSSaltLengthAuto, 0} {
		assert.NoError(t, Verify(pub, body, sign(t, k, body, salt)), "salt %d", salt)
	}
	sig := sign(t, k, body, rsa.PSSSaltLengthEqualsHash)
	assert.NoError(t, Verify(pub, body, " "+sig+"\n"))
	assert.ErrorIs(t, Verify(pub, append(body, ' '), sig), ErrBadSignature)
	assert.ErrorIs(t, Verify(pub, body, sign(t, other, body, rsa.PSSSaltLengthEqualsHash)), ErrBadSignature)
	assert.ErrorIs(t, Verify(pub, body, "not base64!"), ErrBadSignature)
	assert.ErrorIs(t, Verify(pub, body, ""), ErrBadSignature)
	// A PKCS #1 v1.5 signature is not what Schlage sends.
	sum := sha256.Sum256(body)
	v15, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	require.NoError(t, err)
	assert.ErrorIs(t, Verify(pub, body, base64.StdEncoding.EncodeToString(v15)), ErrBadSignature)
}

func TestParsePublicKey(t *testing.T) {
	_, err := ParsePublicKey([]byte("not pem"))
	assert.ErrorContains(t, err, "no PEM block")
	_, err = ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1}}))
	assert.ErrorContains(t, err, "want PUBLIC KEY")
	_, err = ParsePublicKey(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1, 2, 3}}))
	assert.Error(t, err)
}

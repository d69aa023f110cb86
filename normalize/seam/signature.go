package seam

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Seam delivers webhooks through Svix, which signs them the Standard
// Webhooks way: HMAC-SHA256 over "{id}.{timestamp}.{body}" keyed with the
// endpoint's signing secret ("whsec_" + base64), sent as a space-separated
// list of "v1,<base64>" signatures (more than one while a secret rotates).
// Svix's white-labelled form uses webhook-* instead of svix-* headers.
const (
	HeaderID        = "svix-id"
	HeaderTimestamp = "svix-timestamp"
	HeaderSignature = "svix-signature"

	HeaderIDStd        = "webhook-id"
	HeaderTimestampStd = "webhook-timestamp"
	HeaderSignatureStd = "webhook-signature"
)

// Tolerance is how far a webhook's timestamp may be from the receiver's
// clock; older (replayed) or future-dated deliveries are refused.
const Tolerance = 5 * time.Minute

var (
	// ErrBadSignature is a signature that does not match the message.
	ErrBadSignature = errors.New("seam webhook signature does not match the body")
	// ErrStaleSignature is a delivery whose timestamp is outside Tolerance.
	ErrStaleSignature = errors.New("seam webhook timestamp is more than 5 minutes away from now")
)

// DecodeSecret decodes a signing secret as Seam shows it ("whsec_" and the
// base64 key; the prefix is optional).
func DecodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(strings.TrimSpace(secret), "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, errors.New(`want "whsec_" followed by the base64 key Seam shows for the webhook`)
	}
	return key, nil
}

// Sign returns the "v1,<base64>" signature of a delivery.
func Sign(key []byte, id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, id, strconv.FormatInt(ts.Unix(), 10), body))
}

// Verify checks a delivery: its timestamp (unix seconds) must be within
// Tolerance of now and one of the v1 signatures must match, compared in
// constant time. It is pure: no I/O, no logging.
func Verify(key []byte, id, timestamp, signatures string, body []byte, now time.Time) error {
	if id == "" || timestamp == "" {
		return fmt.Errorf("%w: %s and %s are required with %s", ErrBadSignature, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(timestamp), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrBadSignature, timestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return ErrStaleSignature
	}
	want := mac(key, id, strings.TrimSpace(timestamp), body)
	for _, s := range strings.Fields(signatures) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}

func mac(key []byte, id, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Package session is the device-session layer's contract: when keyfleet
// revokes a credential (or moves it to another device) it tells the
// wallet provider or MDM that holds the phone's key to end the session on
// that device, over a signed webhook. Client makes the calls (with retries),
// Verify is what a receiver checks.
//
// # The webhook
//
//	POST <--session-revoke-url>
//	Content-Type: application/json
//	Idempotency-Key: <key>               revocation_id/credential_id, or device-change/<command id>
//	X-Keyfleet-Timestamp: <unix seconds>
//	X-Keyfleet-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
//	{"type":"session.revoke","key":"…","revocation_id":"…","credential_id":"…",
//	 "subject_id":"…","device_id":"…","scope":"subject","reason":"…",
//	 "requested_ms":1764230400123,"attempt":1}
//
// The receiver recomputes the signature over the raw body with the shared
// secret, refuses a timestamp more than five minutes off, and treats the
// Idempotency-Key as the revocation's identity: the same key again
// (keyfleet retries, and re-sends after a restart) must not fail because the
// session is already gone. Answers:
//
//   - 2xx: the session is revoked (or there was none): the layer is done.
//   - 408, 425, 429, 5xx, a timeout or a network error: keyfleet retries
//     with exponential backoff and jitter (Retry-After is honoured up to
//     the backoff cap), up to Attempts times, then the layer is failed.
//   - any other 4xx (bad signature, unknown device ...): failed at once;
//     the response body's first 200 bytes say why.
//
// A revoked credential without a device has no session: keyfleet does not
// call the webhook and the layer is done. Without --session-revoke-url the
// layer reads not_configured on every revocation.
package session

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/control"
)

// Header names of the webhook.
const (
	HeaderTimestamp      = "X-Keyfleet-Timestamp"
	HeaderSignature      = "X-Keyfleet-Signature"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// TypeRevoke is the type of a session revocation request.
const TypeRevoke = "session.revoke"

// Request is the webhook body.
type Request struct {
	Type         string `json:"type"`
	Key          string `json:"key"`
	RevocationID string `json:"revocation_id,omitempty"`
	CredentialID string `json:"credential_id"`
	SubjectID    string `json:"subject_id,omitempty"`
	DeviceID     string `json:"device_id"`
	Scope        string `json:"scope,omitempty"`
	Reason       string `json:"reason,omitempty"`
	RequestedMs  int64  `json:"requested_ms"`
	Attempt      int    `json:"attempt"`
}

// RequestFor is the webhook body of a session revocation.
func RequestFor(s control.Session, attempt int) Request {
	return Request{Type: TypeRevoke, Key: s.Key, RevocationID: s.RevocationID, CredentialID: s.CredentialID,
		SubjectID: s.SubjectID, DeviceID: s.DeviceID, Scope: s.Scope, Reason: s.Reason, RequestedMs: s.RequestedMs,
		Attempt: attempt}
}

// Sign returns the signature header value of a body sent at timestamp.
func Sign(secret []byte, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// MaxSkew is how far a receiver accepts the timestamp from its clock.
const MaxSkew = 5 * time.Minute

// Verify checks a request's signature headers against its raw body at now.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("bad or missing " + HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%s %s is more than %s off", HeaderTimestamp, timestamp, MaxSkew)
	}
	if !hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature)) {
		return errors.New("signature does not match")
	}
	return nil
}

// Options configure a Client.
type Options struct {
	URL    string
	Secret []byte
	// Attempts bounds the calls per session (default 6); Backoff is the
	// first retry's delay (default 250 ms), doubled per retry up to
	// MaxBackoff (default 10 s), with ±25 % jitter.
	Attempts   int
	Backoff    time.Duration
	MaxBackoff time.Duration
	// Timeout bounds one call (default 10 s).
	Timeout time.Duration
	HTTP    *http.Client
	Now     func() time.Time
	// Sleep waits between attempts (tests); default a timer honouring ctx.
	Sleep func(ctx context.Context, d time.Duration) error
}

// Validate fills defaults and checks the options.
func (o *Options) Validate() error {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("session revoke url %q: want http(s)://host/path", o.URL)
	}
	if len(o.Secret) < 16 {
		return errors.New("session revoke secret: at least 16 bytes")
	}
	if o.Attempts <= 0 {
		o.Attempts = 6
	}
	if o.Backoff <= 0 {
		o.Backoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 10 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return nil
}

// Client calls the session webhook.
type Client struct{ o Options }

// New returns a Client.
func New(o Options) (*Client, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Client{o: o}, nil
}

// Error is a failed session revocation: the last answer and how many calls
// were made.
type Error struct {
	Attempts  int
	Permanent bool // the receiver refused it (a 4xx): not retried
	Err       error
}

func (e *Error) Error() string {
	return fmt.Sprintf("after %d attempt(s): %v", e.Attempts, e.Err)
}
func (e *Error) Unwrap() error { return e.Err }

// Refused reports whether the receiver refused the call (not worth another
// round of retries).
func (e *Error) Refused() bool { return e.Permanent }

// Revoke asks the provider to end a device's session, retrying transient
// failures. It returns the number of calls made and an *Error when the
// session could not be revoked.
func (c *Client) Revoke(ctx context.Context, s control.Session) (int, error) {
	backoff := c.o.Backoff
	var last error
	for attempt := 1; attempt <= c.o.Attempts; attempt++ {
		retryAfter, err := c.call(ctx, s, attempt)
		if err == nil {
			return attempt, nil
		}
		last = err
		var perm *permanent
		if errors.As(err, &perm) {
			return attempt, &Error{Attempts: attempt, Permanent: true, Err: err}
		}
		if attempt == c.o.Attempts || ctx.Err() != nil {
			break
		}
		wait := time.Duration(float64(backoff) * (0.75 + 0.5*rand.Float64()))
		if retryAfter > wait {
			wait = min(retryAfter, c.o.MaxBackoff)
		}
		if err := c.o.Sleep(ctx, wait); err != nil {
			return attempt, &Error{Attempts: attempt, Err: errors.Join(last, err)}
		}
		backoff = min(2*backoff, c.o.MaxBackoff)
	}
	return c.o.Attempts, &Error{Attempts: c.o.Attempts, Err: last}
}

type permanent struct{ error }

func (c *Client) call(ctx context.Context, s control.Session, attempt int) (time.Duration, error) {
	body, err := json.Marshal(RequestFor(s, attempt))
	if err != nil {
		return 0, &permanent{fmt.Errorf("encode: %w", err)}
	}
	cctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, c.o.URL, bytes.NewReader(body))
	if err != nil {
		return 0, &permanent{err}
	}
	ts := c.o.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(HeaderIdempotencyKey, s.Key)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(c.o.Secret, ts, body))
	resp, err := c.o.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("POST: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
	if resp.StatusCode/100 == 2 {
		return 0, nil
	}
	why := fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooEarly,
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		var after time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			after = time.Duration(s) * time.Second
		}
		return after, why
	}
	return 0, &permanent{why}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

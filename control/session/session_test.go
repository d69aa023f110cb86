package session_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/session"
)

var secret = []byte("session-secret-0123456789")

var now = time.Unix(1_800_000_000, 0)

func sess() control.Session {
	return control.Session{Key: "rv1/cr1", RevocationID: "rv1", CredentialID: "cr1", SubjectID: "s1", DeviceID: "d1",
		Scope: control.ScopeSubject, Reason: "move-out", RequestedMs: now.UnixMilli()}
}

// receiver answers each call with the next status of answers (the last
// one repeats) and records what it got.
type receiver struct {
	mu      sync.Mutex
	answers []int
	calls   []session.Request
	keys    []string
	bad     int
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := session.Verify(secret, req.Header.Get(session.HeaderTimestamp), req.Header.Get(session.HeaderSignature), body, now); err != nil {
		r.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var in session.Request
	_ = json.Unmarshal(body, &in)
	r.calls = append(r.calls, in)
	r.keys = append(r.keys, req.Header.Get(session.HeaderIdempotencyKey))
	code := r.answers[min(len(r.calls)-1, len(r.answers)-1)]
	if code == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(code)
	_, _ = w.Write([]byte("answer " + strconv.Itoa(code)))
}

func client(t *testing.T, url string, slept *[]time.Duration) *session.Client {
	t.Helper()
	c, err := session.New(session.Options{URL: url, Secret: secret, Attempts: 4, Backoff: 100 * time.Millisecond,
		MaxBackoff: 400 * time.Millisecond, Now: func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error { *slept = append(*slept, d); return nil }})
	require.NoError(t, err)
	return c
}

func TestRevoke(t *testing.T) {
	cases := []struct {
		name      string
		answers   []int
		calls     int
		err       string
		permanent bool
	}{
		{"done at once", []int{200}, 1, "", false},
		{"retried until done", []int{503, 500, 204}, 3, "", false},
		{"rate limited, then done", []int{429, 200}, 2, "", false},
		{"transient failures exhaust the attempts", []int{502}, 4, "after 4 attempt(s): HTTP 502: answer 502", false},
		{"a refusal is not retried", []int{404}, 1, "after 1 attempt(s): HTTP 404: answer 404", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &receiver{answers: tc.answers}
			srv := httptest.NewServer(r)
			defer srv.Close()
			var slept []time.Duration
			n, err := client(t, srv.URL, &slept).Revoke(context.Background(), sess())
			assert.Equal(t, tc.calls, n)
			assert.Len(t, r.calls, tc.calls)
			assert.Len(t, slept, tc.calls-1)
			assert.Zero(t, r.bad)
			for i, c := range r.calls {
				assert.Equal(t, i+1, c.Attempt)
				assert.Equal(t, "rv1/cr1", r.keys[i], "idempotent by revocation and credential")
				assert.Equal(t, session.Request{Type: session.TypeRevoke, Key: "rv1/cr1", RevocationID: "rv1", CredentialID: "cr1",
					SubjectID: "s1", DeviceID: "d1", Scope: "subject", Reason: "move-out", RequestedMs: now.UnixMilli(),
					Attempt: i + 1}, c)
			}
			if tc.err == "" {
				require.NoError(t, err)
				return
			}
			var se *session.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.err, err.Error())
			assert.Equal(t, tc.permanent, se.Permanent)
		})
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	r := &receiver{answers: []int{500}}
	srv := httptest.NewServer(r)
	defer srv.Close()
	var slept []time.Duration
	_, err := client(t, srv.URL, &slept).Revoke(context.Background(), sess())
	require.Error(t, err)
	require.Len(t, slept, 3)
	for i, base := range []time.Duration{100, 200, 400} {
		base *= time.Millisecond
		assert.GreaterOrEqual(t, slept[i], base*3/4, "retry %d", i)
		assert.LessOrEqual(t, slept[i], base*5/4, "retry %d", i)
	}
}

func TestUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	var slept []time.Duration
	n, err := client(t, url, &slept).Revoke(context.Background(), sess())
	assert.Equal(t, 4, n)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "POST")
}

func TestVerify(t *testing.T) {
	body := []byte(`{"type":"session.revoke"}`)
	ts := now.Unix()
	sig := session.Sign(secret, ts, body)
	require.NoError(t, session.Verify(secret, strconv.FormatInt(ts, 10), sig, body, now))
	assert.Error(t, session.Verify(secret, strconv.FormatInt(ts, 10), sig, append(body, ' '), now), "body changed")
	assert.Error(t, session.Verify([]byte("another-secret-0123456"), strconv.FormatInt(ts, 10), sig, body, now))
	assert.Error(t, session.Verify(secret, strconv.FormatInt(ts, 10), sig, body, now.Add(6*time.Minute)), "too old")
	assert.Error(t, session.Verify(secret, "soon", sig, body, now))
}

func TestOptions(t *testing.T) {
	_, err := session.New(session.Options{URL: "ftp://x", Secret: secret})
	assert.Error(t, err)
	_, err = session.New(session.Options{URL: "http://127.0.0.1:1/revoke", Secret: []byte("short")})
	assert.Error(t, err)
}

// FuzzVerify: a receiver's check never panics on what arrives, and accepts
// only the signature of the body at a timestamp within the skew.
func FuzzVerify(f *testing.F) {
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"type":"session.revoke","key":"rv1/cr1"}`)
	f.Add(ts, session.Sign(secret, now.Unix(), body), body)
	f.Add("", "", []byte{})
	f.Add("-9223372036854775808", "v1=00", []byte("x"))
	f.Add(ts, "v1="+strings.Repeat("0", 64), body)
	f.Fuzz(func(t *testing.T, timestamp, signature string, body []byte) {
		err := session.Verify(secret, timestamp, signature, body, now)
		if err != nil {
			return
		}
		n, perr := strconv.ParseInt(timestamp, 10, 64)
		if perr != nil || signature != session.Sign(secret, n, body) {
			t.Fatalf("accepted %q %q for %q", timestamp, signature, body)
		}
	})
}

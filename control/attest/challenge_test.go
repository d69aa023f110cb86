package attest_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
)

var challengeKey = bytes.Repeat([]byte{7}, 32)

func newChallenger(t testing.TB) *attest.Challenger {
	t.Helper()
	c, err := attest.NewChallenger(challengeKey, time.Minute)
	require.NoError(t, err)
	return c
}

func TestChallenger(t *testing.T) {
	c := newChallenger(t)
	ch, exp := c.Issue("cred-1", "dev-1", testNow)
	assert.Equal(t, testNow.Add(time.Minute), exp)
	other, _ := c.Issue("cred-1", "dev-1", testNow)
	assert.NotEqual(t, ch, other, "a nonce makes each challenge unique")

	otherKey, err := attest.NewChallenger(bytes.Repeat([]byte{8}, 32), time.Minute)
	require.NoError(t, err)
	flipped := bytes.Clone(ch)
	flipped[5] ^= 0x01 // the expiry

	f := func(name string, c *attest.Challenger, challenge []byte, cred, dev string, now time.Time, want attest.Reason) {
		t.Run(name, func(t *testing.T) {
			err := c.Check(challenge, cred, dev, now)
			if want == "" {
				require.NoError(t, err)
				return
			}
			requireReason(t, err, want)
		})
	}
	f("fresh", c, ch, "cred-1", "dev-1", testNow, "")
	f("at expiry", c, ch, "cred-1", "dev-1", exp, "")
	f("after expiry", c, ch, "cred-1", "dev-1", exp.Add(time.Second), attest.ReasonChallengeExpired)
	f("other credential", c, ch, "cred-2", "dev-1", testNow, attest.ReasonWrongChallenge)
	f("other device", c, ch, "cred-1", "dev-2", testNow, attest.ReasonWrongChallenge)
	f("ids shifted across the boundary", c, ch, "cred-1d", "ev-1", testNow, attest.ReasonWrongChallenge)
	f("other key", otherKey, ch, "cred-1", "dev-1", testNow, attest.ReasonWrongChallenge)
	f("expiry edited", c, flipped, "cred-1", "dev-1", testNow, attest.ReasonWrongChallenge)
	f("truncated", c, ch[:len(ch)-1], "cred-1", "dev-1", testNow, attest.ReasonWrongChallenge)
	f("empty", c, nil, "cred-1", "dev-1", testNow, attest.ReasonWrongChallenge)
}

func TestNewChallenger(t *testing.T) {
	_, err := attest.NewChallenger(make([]byte, 31), time.Minute)
	require.Error(t, err)
	_, err = attest.NewChallenger(challengeKey, -time.Second)
	require.Error(t, err)
	c, err := attest.NewChallenger(challengeKey, 0)
	require.NoError(t, err)
	_, exp := c.Issue("c", "d", testNow)
	assert.Equal(t, testNow.Add(attest.DefaultChallengeTTL), exp)
}

// TestChallengerWithVerifier: a challenge from Issue is what the device
// binds its attestation to.
func TestChallengerWithVerifier(t *testing.T) {
	ca := newCA(t)
	v := newVerifier(t, ca.Config())
	c := newChallenger(t)
	ch, _ := c.Issue("cred-1", "dev-1", testNow)
	ev, err := ca.Apple(attesttest.Options{Challenge: ch})
	require.NoError(t, err)
	require.NoError(t, c.Check(ch, "cred-1", "dev-1", testNow.Add(30*time.Second)))
	_, err = v.Verify(attest.FormatAppleAppAttest, ev, ch)
	require.NoError(t, err)
}

package attest_test

import (
	"slices"
	"testing"
	"time"

	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
)

var knownReasons = []attest.Reason{
	attest.ReasonUnsupportedFormat, attest.ReasonFormatNotAllowed, attest.ReasonMalformed,
	attest.ReasonUntrustedChain, attest.ReasonExpired, attest.ReasonBadSignature,
	attest.ReasonWrongChallenge, attest.ReasonChallengeExpired, attest.ReasonWrongApp,
	attest.ReasonWeakSecurityLevel, attest.ReasonUnverifiedBoot, attest.ReasonWrongEnvironment,
	attest.ReasonSelfAttestationNotAllowed, attest.ReasonInconsistent,
}

// seeds returns the evidence of every table case of a format (genuine and
// forged).
func seeds(f *testing.F, format string) [][]byte {
	ca := newCA(f)
	var out [][]byte
	for _, forgery := range attesttest.Forgeries(format) {
		ev, err := ca.Mint(format, attesttest.Options{Challenge: testChallenge, Forgery: forgery})
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// fuzzParse fuzzes the decoding of one format (no signature checks, so it
// runs fast): it must not panic and must refuse with a documented reason.
func fuzzParse(f *testing.F, format string) {
	for _, s := range seeds(f, format) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, evidence []byte) {
		err := attest.ParseEvidence(format, evidence)
		if err != nil && !slices.Contains(knownReasons, attest.ReasonOf(err)) {
			t.Fatalf("refusal %v has no documented reason", err)
		}
	})
}

func FuzzParseAndroid(f *testing.F) {
	fuzzParse(f, attest.FormatAndroidKey)
}

func FuzzParseApple(f *testing.F) {
	fuzzParse(f, attest.FormatAppleAppAttest)
}

func FuzzParseWebAuthn(f *testing.F) { fuzzParse(f, attest.FormatWebAuthn) }

// fuzzVerify fuzzes Verify end to end (slow under the fuzzer's
// instrumentation: every input that parses costs signature checks): it
// must not panic, must refuse with a documented reason, and must return a
// result exactly when it does not refuse.
func fuzzVerify(f *testing.F, format string) {
	v := newVerifier(f, newCA(f).Config())
	for _, s := range seeds(f, format) {
		f.Add(s, testChallenge)
		f.Add(s, []byte("testasdf"))
	}
	f.Fuzz(func(t *testing.T, evidence, challenge []byte) {
		res, err := v.Verify(format, evidence, challenge)
		if err == nil {
			if res == nil || res.Format != format {
				t.Fatalf("accepted without a %s result: %+v", format, res)
			}
			return
		}
		if res != nil {
			t.Fatalf("refused (%v) with a result", err)
		}
		if r := attest.ReasonOf(err); !slices.Contains(knownReasons, r) {
			t.Fatalf("refusal %v has no documented reason", err)
		}
	})
}

func FuzzVerifyAndroid(f *testing.F) {
	fuzzVerify(f, attest.FormatAndroidKey)
}

func FuzzVerifyApple(f *testing.F) {
	fuzzVerify(f, attest.FormatAppleAppAttest)
}

func FuzzVerifyWebAuthn(f *testing.F) { fuzzVerify(f, attest.FormatWebAuthn) }

func FuzzChallengerCheck(f *testing.F) {
	c := newChallenger(f)
	ch, _ := c.Issue("cred-1", "dev-1", testNow)
	f.Add(ch, "cred-1", "dev-1", int64(0))
	f.Add(ch[:10], "cred-1", "dev-1", int64(120))
	f.Fuzz(func(t *testing.T, challenge []byte, cred, dev string, offset int64) {
		err := c.Check(challenge, cred, dev, testNow.Add(time.Duration(offset)*time.Second))
		if err == nil {
			return
		}
		if r := attest.ReasonOf(err); r != attest.ReasonWrongChallenge && r != attest.ReasonChallengeExpired {
			t.Fatalf("refusal %v has reason %q", err, r)
		}
	})
}

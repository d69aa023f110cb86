package api

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/control/attest/attesttest"
	"github.com/keyfleet/keyfleet/control/internal/metrics"
	"github.com/keyfleet/keyfleet/internal/event"
)

// parseState is what request parsing reads of a State: the templates and
// the lock registry (three locks: m1 entrance and m2 unit:B-204 at site-a,
// n1 garage and service at site-b). Parsing calls nothing else.
type parseState struct {
	State
	templates *control.Templates
}

type parseLock struct {
	ref    control.LockRef
	site   string
	groups []string
}

var parseLocks = []parseLock{
	{control.LockRef{Vendor: "matter", LockID: "m1"}, "site-a", []string{"entrance"}},
	{control.LockRef{Vendor: "matter", LockID: "m2"}, "site-a", []string{"unit:B-204"}},
	{control.LockRef{Vendor: "nuki", LockID: "n1"}, "site-b", []string{"garage", "service"}},
}

func (s parseState) Templates() *control.Templates { return s.templates }
func (s parseState) DoorGroups() map[string]int {
	return map[string]int{"entrance": 1, "unit:B-204": 1, "garage": 1, "service": 1}
}
func (s parseState) Sites() map[string]int { return map[string]int{"site-a": 2, "site-b": 1} }
func (s parseState) LocksFor(site string, groups []string) []control.LockRef {
	var out []control.LockRef
	for _, l := range parseLocks {
		if site != "" && l.site != site {
			continue
		}
		for _, g := range groups {
			if g == "*" || slices.Contains(l.groups, g) {
				out = append(out, l.ref)
				break
			}
		}
	}
	return out
}

// parseCA mints the parse tests' attestations.
var parseCA = func() *attesttest.CA {
	ca, err := attesttest.New(time.UnixMilli(1_800_000_000_000))
	if err != nil {
		panic(err)
	}
	return ca
}()

// parseAPI is an API with what request parsing needs (no Kafka, no
// ClickHouse): templates, the lock registry, the pseudonym key, and an
// attestation verifier trusting parseCA.
func parseAPI(t testing.TB) *API {
	st := parseState{templates: control.NewTemplates()}
	v, err := attest.New(parseCA.Config())
	require.NoError(t, err)
	ch, err := attest.NewChallenger([]byte("parse-challenge-key-0123456789abcdef"), time.Hour)
	require.NoError(t, err)
	return &API{opts: Options{PseudonymKey: []byte("k"), Now: time.Now, Attester: v, Challenges: ch}, m: metrics.New(nil), state: st}
}

// minted is App Attest evidence from parseCA for a request's challenge.
func minted(t testing.TB, p *API, device string, forgery attesttest.Forgery) *control.AttestationInput {
	ch, _ := p.opts.Challenges.Issue("", device, now)
	ev, err := parseCA.Mint(attest.FormatAppleAppAttest, attesttest.Options{Challenge: ch, Forgery: forgery})
	require.NoError(t, err)
	return &control.AttestationInput{Format: attest.FormatAppleAppAttest, Evidence: base64.StdEncoding.EncodeToString(ev),
		Challenge: base64.StdEncoding.EncodeToString(ch)}
}

var now = time.UnixMilli(1_800_000_000_000)

func TestResolve(t *testing.T) {
	p := parseAPI(t)
	ev := base64.StdEncoding.EncodeToString([]byte("x"))
	f := func(name string, in control.CredentialRequest, check func(t *testing.T, s control.Spec), wantField string) {
		t.Run(name, func(t *testing.T) {
			s, fe := p.resolve(in, now)
			if wantField != "" {
				require.NotNil(t, fe, "want an error on %s", wantField)
				assert.Equal(t, wantField, fe.field, fe.reason)
				if check != nil {
					check(t, control.Spec{})
				}
				return
			}
			require.Nil(t, fe)
			check(t, s)
		})
	}
	f("resident with a unit", control.CredentialRequest{SubjectID: "s1", Role: "resident", DoorGroups: []string{"unit:B-204"},
		Refs: []control.RefInput{{Vendor: "matter", UserRef: "17"}}}, func(t *testing.T, s control.Spec) {
		assert.Equal(t, []string{"amenity", "entrance", "garage", "unit:B-204"}, s.DoorGroups)
		assert.Equal(t, control.ApprovalAuto, s.ApprovalRule)
		assert.False(t, s.Exception)
		assert.Equal(t, now.UnixMilli()+400*24*3600*1000, s.ValidUntilMs, "template max validity")
		require.Len(t, s.Refs, 1)
		assert.Equal(t, event.RefHash([]byte("k"), "matter", "17"), s.Refs[0].UserRefHash, "only the keyed hash is kept")
	}, "")
	f("extra group beyond the template is an exception needing approval", control.CredentialRequest{SubjectID: "s1",
		Role: "guest", DoorGroups: []string{"service"}}, func(t *testing.T, s control.Spec) {
		assert.True(t, s.Exception)
		assert.Contains(t, s.ExceptionWhy, "service")
		assert.Equal(t, control.ApprovalOne, s.ApprovalRule)
	}, "")
	f("validity beyond the template is an exception", control.CredentialRequest{SubjectID: "s1", Role: "guest",
		ValidUntilMs: now.Add(30 * 24 * time.Hour).UnixMilli()}, func(t *testing.T, s control.Spec) {
		assert.True(t, s.Exception)
		assert.Contains(t, s.ExceptionWhy, "validity")
	}, "")
	f("verified attestation kept as digests", control.CredentialRequest{SubjectID: "s1", Role: "staff", DeviceID: "d1",
		Attestation: minted(t, p, "d1", attesttest.Genuine)}, func(t *testing.T, s control.Spec) {
		require.NotNil(t, s.Attestation)
		assert.Len(t, s.Attestation.EvidenceSHA256, 64)
		assert.Len(t, s.Attestation.KeySHA256, 64)
		assert.Equal(t, "secure_enclave", s.Attestation.SecurityLevel)
		assert.Equal(t, attesttest.AppID, s.Attestation.AppID)
		assert.Equal(t, control.ApprovalOne, s.ApprovalRule)
	}, "")
	for _, tc := range []struct {
		name   string
		att    *control.AttestationInput
		device string
		code   string
		reason string
	}{
		{"forged chain", minted(t, p, "d1", attesttest.UntrustedChain), "d1", "attestation_untrusted_chain", "untrusted_chain"},
		{"expired leaf", minted(t, p, "d1", attesttest.ExpiredLeaf), "d1", "attestation_expired", "expired"},
		{"another device's challenge", minted(t, p, "d2", attesttest.Genuine), "d1", "attestation_wrong_challenge", "wrong_challenge"},
		{"no challenge", func() *control.AttestationInput {
			a := minted(t, p, "d1", attesttest.Genuine)
			a.Challenge = ""
			return a
		}(),
			"d1", "attestation_wrong_challenge", "wrong_challenge"},
		{"aliro", func() *control.AttestationInput {
			a := minted(t, p, "d1", attesttest.Genuine)
			a.Format = "aliro"
			return a
		}(),
			"d1", "attestation_unsupported_format", "unsupported_format"},
	} {
		t.Run("refused: "+tc.name, func(t *testing.T) {
			_, fe := p.resolve(control.CredentialRequest{SubjectID: "s1", Role: "staff", DeviceID: tc.device, Attestation: tc.att}, now)
			require.NotNil(t, fe)
			assert.Equal(t, "attestation", fe.field)
			assert.Equal(t, tc.code, fe.code)
			assert.Equal(t, 422, fe.status)
			assert.Equal(t, tc.reason, fe.extra["reason"])
			assert.Contains(t, fe.problem().Detail, tc.reason)
		})
	}
	t.Run("refused: no verifier configured", func(t *testing.T) {
		q := parseAPI(t)
		q.opts.Attester, q.opts.Challenges = nil, nil
		_, fe := q.resolve(control.CredentialRequest{SubjectID: "s1", Role: "staff", DeviceID: "d1",
			Attestation: minted(t, p, "d1", attesttest.Genuine)}, now)
		require.NotNil(t, fe)
		assert.Equal(t, "attestation_not_configured", fe.code)
		assert.Equal(t, 501, fe.status)
	})
	f("unknown site", control.CredentialRequest{SubjectID: "s", Role: "guest", SiteID: "site-99"}, func(t *testing.T, _ control.Spec) {
		_, fe := p.resolve(control.CredentialRequest{SubjectID: "s", Role: "guest", SiteID: "site-99"}, now)
		assert.Equal(t, `unknown site "site-99": the lock registry has no lock there (sites: site-a, site-b)`, fe.reason)
	}, "site_id")
	f("door groups without a lock at the site", control.CredentialRequest{SubjectID: "s", Role: "guest", SiteID: "site-b"}, func(t *testing.T, _ control.Spec) {
		_, fe := p.resolve(control.CredentialRequest{SubjectID: "s", Role: "guest", SiteID: "site-b"}, now)
		assert.Contains(t, fe.reason, "no lock of site site-b is in door groups amenity, entrance")
	}, "door_groups")
	f("allow_additional carried", control.CredentialRequest{SubjectID: "s", Role: "guest", AllowAdditional: true},
		func(t *testing.T, s control.Spec) { assert.True(t, s.AllowAdditional) }, "")
	f("no subject", control.CredentialRequest{Role: "guest"}, nil, "subject_id")
	f("email subject", control.CredentialRequest{SubjectID: "a@b.c", Role: "guest"}, nil, "subject_id")
	f("unknown role", control.CredentialRequest{SubjectID: "s", Role: "king"}, nil, "role")
	f("break-glass role", control.CredentialRequest{SubjectID: "s", Role: "emergency_responder"}, nil, "role")
	f("unknown door group", control.CredentialRequest{SubjectID: "s", Role: "guest", DoorGroups: []string{"vault"}}, nil, "door_groups")
	f("past expiry", control.CredentialRequest{SubjectID: "s", Role: "guest", ValidUntilMs: now.UnixMilli() - 1}, nil, "valid_until_ms")
	f("until before from", control.CredentialRequest{SubjectID: "s", Role: "guest", ValidFromMs: now.UnixMilli() + 10_000,
		ValidUntilMs: now.UnixMilli() + 5_000}, nil, "valid_until_ms")
	f("attestation without device", control.CredentialRequest{SubjectID: "s", Role: "guest",
		Attestation: &control.AttestationInput{Format: "aliro", Evidence: ev}}, nil, "device_id")
	f("unknown attestation format", control.CredentialRequest{SubjectID: "s", Role: "guest", DeviceID: "d",
		Attestation: &control.AttestationInput{Format: "trust-me", Evidence: ev}}, nil, "attestation.format")
	f("unknown vendor", control.CredentialRequest{SubjectID: "s", Role: "guest", Refs: []control.RefInput{{Vendor: "acme", UserRef: "1"}}}, nil, "refs[0].vendor")
	f("empty ref", control.CredentialRequest{SubjectID: "s", Role: "guest", Refs: []control.RefInput{{Vendor: "nuki"}}}, nil, "refs[0].user_ref")
}

func TestParseCSV(t *testing.T) {
	p := parseAPI(t)
	items, err := p.parseCSV([]byte("\ufeffsubject_id,role,door_groups,valid_until,vendor,user_ref\n"+
		"s1,resident,unit:B-204,,matter,1\n"+
		"s2,guest,,2099-01-01T00:00:00Z,,\n"+
		"s3,guest,,not-a-time,,\n"+
		"s4,guest\n"+ // short rows are fine: missing columns are empty
		"s5,resident,unit:B-204;garage,4102444800000,nuki,5\n"), now)
	require.NoError(t, err)
	require.Len(t, items, 5)
	assert.Nil(t, items[0].err)
	assert.Equal(t, 2, items[0].line)
	assert.Nil(t, items[1].err)
	assert.Equal(t, time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli(), items[1].spec.ValidUntilMs)
	require.NotNil(t, items[2].err)
	assert.Equal(t, "valid_until", items[2].err.field)
	assert.Nil(t, items[3].err)
	assert.Nil(t, items[4].err)
	assert.Contains(t, items[4].spec.DoorGroups, "garage")

	_, err = p.parseCSV([]byte("subject_id,colour\n"), now)
	assert.ErrorContains(t, err, "unknown CSV column")
	_, err = p.parseCSV([]byte("role\nguest\n"), now)
	assert.ErrorContains(t, err, "lacks subject_id")
	_, err = p.parseCSV([]byte("subject_id,role\n\"unterminated,guest\n"), now)
	assert.Error(t, err)
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("subject_id,role,door_groups\ns1,resident,unit:B-204\n"))
	f.Add([]byte("subject_id,role,valid_from,valid_until,device_id,attestation_format,attestation_evidence\ns,guest,0,2099-01-01T00:00:00Z,d,aliro,eA==\n"))
	f.Add([]byte("subject_id,role,vendor,lock_id,user_ref,reason\ns,staff,nuki,n1,42,\"quoted, reason\"\n"))
	f.Add([]byte("\ufeffSUBJECT_ID , Role\n\"a\nb\",guest\n"))
	p := parseAPI(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := p.parseCSV(data, now)
		if err != nil {
			return
		}
		for i, it := range items {
			if it.index != i {
				t.Fatalf("item %d has index %d", i, it.index)
			}
			if it.err == nil && (it.spec.SubjectID == "" || it.spec.Role == "") {
				t.Fatalf("item %d accepted without subject or role: %+v", i, it.spec)
			}
			if it.err == nil && strings.ContainsAny(it.spec.SubjectID, " @") {
				t.Fatalf("item %d accepted a bad subject %q", i, it.spec.SubjectID)
			}
		}
	})
}

func FuzzParseJSONArray(f *testing.F) {
	f.Add([]byte(`[{"subject_id":"s","role":"guest"}]`))
	f.Add([]byte(`[{"subject_id":"s","role":"resident","door_groups":["unit:B-204"],"refs":[{"vendor":"matter","user_ref":"1"}]}]`))
	f.Add([]byte(`[{"subject_id":"s","role":"guest","attestation":{"format":"aliro","evidence":"eA=="},"device_id":"d"}, 5, null]`))
	p := parseAPI(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		items, err := p.parseJSONArray(data, now)
		if err != nil {
			return
		}
		for i, it := range items {
			if it.err == nil && (it.spec.SubjectID == "" || it.spec.Role == "") {
				t.Fatalf("item %d accepted without subject or role", i)
			}
		}
	})
}

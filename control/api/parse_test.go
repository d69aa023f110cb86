package api

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/internal/metrics"
	"github.com/keyfleet/keyfleet/internal/event"
)

// parseState is what request parsing reads of a State: the templates and
// the lock registry's door groups (three locks: m1 entrance, m2 unit:B-204,
// n1 garage and service). Parsing calls nothing else.
type parseState struct {
	State
	templates *control.Templates
}

func (s parseState) Templates() *control.Templates { return s.templates }
func (s parseState) DoorGroups() map[string]int {
	return map[string]int{"entrance": 1, "unit:B-204": 1, "garage": 1, "service": 1}
}

// parseAPI is an API with what request parsing needs (no Kafka, no
// ClickHouse): templates, door groups and the pseudonym key.
func parseAPI() *API {
	st := parseState{templates: control.NewTemplates()}
	return &API{opts: Options{PseudonymKey: []byte("k"), Now: time.Now}, m: metrics.New(nil), state: st}
}

var now = time.UnixMilli(1_800_000_000_000)

func TestResolve(t *testing.T) {
	p := parseAPI()
	ev := base64.StdEncoding.EncodeToString([]byte("x"))
	f := func(name string, in control.CredentialRequest, check func(t *testing.T, s control.Spec), wantField string) {
		t.Run(name, func(t *testing.T) {
			s, fe := p.resolve(in, now)
			if wantField != "" {
				require.NotNil(t, fe, "want an error on %s", wantField)
				assert.Equal(t, wantField, fe.field, fe.reason)
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
	f("attestation kept as a digest", control.CredentialRequest{SubjectID: "s1", Role: "staff", DeviceID: "d1",
		Attestation: &control.AttestationInput{Format: "aliro", Evidence: ev}}, func(t *testing.T, s control.Spec) {
		require.NotNil(t, s.Attestation)
		assert.Len(t, s.Attestation.EvidenceSHA256, 64)
		assert.Equal(t, control.ApprovalOne, s.ApprovalRule)
	}, "")
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
	p := parseAPI()
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
	p := parseAPI()
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
	p := parseAPI()
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

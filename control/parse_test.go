package control

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/normalize"
)

// parsePlane is a Plane with what request parsing needs (no Kafka, no
// ClickHouse): templates, the lock index and the pseudonym key.
func parsePlane() *Plane {
	reg := registry.New()
	reg.Apply(registry.File{Locks: []registry.Lock{
		{Vendor: "matter", LockID: "m1", Groups: []string{"entrance"}},
		{Vendor: "matter", LockID: "m2", Groups: []string{"unit:B-204"}},
		{Vendor: "nuki", LockID: "n1", Groups: []string{"garage", "service"}},
	}})
	return &Plane{opts: Options{PseudonymKey: []byte("k"), Now: time.Now}, m: newMetrics(nil),
		templates: &templates{by: DefaultTemplates()}, locks: newLockIndex(reg)}
}

var now = time.UnixMilli(1_800_000_000_000)

func TestResolve(t *testing.T) {
	p := parsePlane()
	ev := base64.StdEncoding.EncodeToString([]byte("x"))
	f := func(name string, in CredentialRequest, check func(t *testing.T, s Spec), wantField string) {
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
	f("resident with a unit", CredentialRequest{SubjectID: "s1", Role: "resident", DoorGroups: []string{"unit:B-204"},
		Refs: []RefInput{{Vendor: "matter", UserRef: "17"}}}, func(t *testing.T, s Spec) {
		assert.Equal(t, []string{"amenity", "entrance", "garage", "unit:B-204"}, s.DoorGroups)
		assert.Equal(t, ApprovalAuto, s.ApprovalRule)
		assert.False(t, s.Exception)
		assert.Equal(t, now.UnixMilli()+400*day*1000, s.ValidUntilMs, "template max validity")
		require.Len(t, s.Refs, 1)
		assert.Equal(t, normalize.RefHash([]byte("k"), "matter", "17"), s.Refs[0].UserRefHash, "only the keyed hash is kept")
	}, "")
	f("extra group beyond the template is an exception needing approval", CredentialRequest{SubjectID: "s1",
		Role: "guest", DoorGroups: []string{"service"}}, func(t *testing.T, s Spec) {
		assert.True(t, s.Exception)
		assert.Contains(t, s.ExceptionWhy, "service")
		assert.Equal(t, ApprovalOne, s.ApprovalRule)
	}, "")
	f("validity beyond the template is an exception", CredentialRequest{SubjectID: "s1", Role: "guest",
		ValidUntilMs: now.Add(30 * 24 * time.Hour).UnixMilli()}, func(t *testing.T, s Spec) {
		assert.True(t, s.Exception)
		assert.Contains(t, s.ExceptionWhy, "validity")
	}, "")
	f("attestation kept as a digest", CredentialRequest{SubjectID: "s1", Role: "staff", DeviceID: "d1",
		Attestation: &AttestationInput{Format: "aliro", Evidence: ev}}, func(t *testing.T, s Spec) {
		require.NotNil(t, s.Attestation)
		assert.Len(t, s.Attestation.EvidenceSHA256, 64)
		assert.Equal(t, ApprovalOne, s.ApprovalRule)
	}, "")
	f("no subject", CredentialRequest{Role: "guest"}, nil, "subject_id")
	f("email subject", CredentialRequest{SubjectID: "a@b.c", Role: "guest"}, nil, "subject_id")
	f("unknown role", CredentialRequest{SubjectID: "s", Role: "king"}, nil, "role")
	f("break-glass role", CredentialRequest{SubjectID: "s", Role: "emergency_responder"}, nil, "role")
	f("unknown door group", CredentialRequest{SubjectID: "s", Role: "guest", DoorGroups: []string{"vault"}}, nil, "door_groups")
	f("past expiry", CredentialRequest{SubjectID: "s", Role: "guest", ValidUntilMs: now.UnixMilli() - 1}, nil, "valid_until_ms")
	f("until before from", CredentialRequest{SubjectID: "s", Role: "guest", ValidFromMs: now.UnixMilli() + 10_000,
		ValidUntilMs: now.UnixMilli() + 5_000}, nil, "valid_until_ms")
	f("attestation without device", CredentialRequest{SubjectID: "s", Role: "guest",
		Attestation: &AttestationInput{Format: "aliro", Evidence: ev}}, nil, "device_id")
	f("unknown attestation format", CredentialRequest{SubjectID: "s", Role: "guest", DeviceID: "d",
		Attestation: &AttestationInput{Format: "trust-me", Evidence: ev}}, nil, "attestation.format")
	f("unknown vendor", CredentialRequest{SubjectID: "s", Role: "guest", Refs: []RefInput{{Vendor: "acme", UserRef: "1"}}}, nil, "refs[0].vendor")
	f("empty ref", CredentialRequest{SubjectID: "s", Role: "guest", Refs: []RefInput{{Vendor: "nuki"}}}, nil, "refs[0].user_ref")
}

func TestParseCSV(t *testing.T) {
	p := parsePlane()
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

func TestTemplateValidate(t *testing.T) {
	for role, tpl := range DefaultTemplates() {
		require.NoError(t, tpl.Validate(), role)
	}
	f := func(name string, change func(t *Template), want string) {
		t.Run(name, func(t *testing.T) {
			tpl := DefaultTemplates()["contractor"]
			change(&tpl)
			assert.ErrorContains(t, tpl.Validate(), want)
		})
	}
	f("role", func(t *Template) { t.Role = "pirate" }, "unknown role")
	f("groups", func(t *Template) { t.DoorGroups = nil }, "door_groups")
	f("approval", func(t *Template) { t.Approval = "always" }, "approval")
	f("break-glass needs two", func(t *Template) { t.BreakGlass = true }, "two approvers")
	f("window", func(t *Template) { t.Windows = []Window{{Start: "7am", End: "19:00"}} }, "HH:MM")
	f("day", func(t *Template) { t.Windows = []Window{{Days: []string{"funday"}, Start: "07:00", End: "19:00"}} }, "day")
}

func TestRefForAndDiff(t *testing.T) {
	refs := []event.CredentialRef{{Vendor: "matter", UserRefHash: "wide"}, {Vendor: "matter", LockID: "m2", UserRefHash: "m2-only"}}
	assert.Equal(t, "m2-only", refFor(refs, LockRef{"matter", "m2"}))
	assert.Equal(t, "wide", refFor(refs, LockRef{"matter", "m1"}))
	assert.Equal(t, "", refFor(refs, LockRef{"nuki", "n1"}))
	removed, added := diffLocks([]LockRef{{"a", "1"}, {"a", "2"}}, []LockRef{{"a", "2"}, {"a", "3"}})
	assert.Equal(t, []LockRef{{"a", "1"}}, removed)
	assert.Equal(t, []LockRef{{"a", "3"}}, added)
}

func TestLockIndex(t *testing.T) {
	li := parsePlane().locks
	assert.Equal(t, []LockRef{{"matter", "m1"}, {"nuki", "n1"}}, li.forCredential("", []string{"entrance", "garage", "service"}))
	assert.Len(t, li.forCredential("", []string{"*"}), 3)
	assert.Len(t, li.forCredential("other-site", []string{"*"}), 3, "locks without a site are not filtered out")
}

func TestBacklogAdmit(t *testing.T) {
	p := parsePlane()
	b := newBacklog(p.opts.Bus, 10, p.m.queueDepth, nil)
	ok, _ := b.admit(8)
	assert.True(t, ok)
	ok, retry := b.admit(3)
	assert.False(t, ok)
	assert.Equal(t, 5*time.Second, retry, "no drain rate known yet")
	b.rate = 1
	_, retry = b.admit(5)
	assert.Equal(t, 3*time.Second, retry, "3 over the limit at 1 command/s")
	b.release(8)
	ok, _ = b.admit(10)
	assert.True(t, ok)
}

func FuzzParseCSV(f *testing.F) {
	f.Add([]byte("subject_id,role,door_groups\ns1,resident,unit:B-204\n"))
	f.Add([]byte("subject_id,role,valid_from,valid_until,device_id,attestation_format,attestation_evidence\ns,guest,0,2099-01-01T00:00:00Z,d,aliro,eA==\n"))
	f.Add([]byte("subject_id,role,vendor,lock_id,user_ref,reason\ns,staff,nuki,n1,42,\"quoted, reason\"\n"))
	f.Add([]byte("\ufeffSUBJECT_ID , Role\n\"a\nb\",guest\n"))
	p := parsePlane()
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
	p := parsePlane()
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

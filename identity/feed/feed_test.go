package feed

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/identity/scim"
)

var now = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	f := func(name, data, format string, want []Person, wantErr string) {
		t.Helper()
		got, err := Parse([]byte(data), format)
		if wantErr != "" {
			assert.ErrorContains(t, err, wantErr, name)
			return
		}
		require.NoError(t, err, name)
		assert.Equal(t, want, got, name)
	}
	f("csv", "\ufeffExternal_ID,user_name,email,active,end_date,site,groups,subject_id\n"+
		"e1,pat@example.com,pat@example.com,,2026-05-31,site-a, staff ; Front desk;staff,\n"+
		"\n"+
		"e2,,,no,2026-04-01T12:00:00+02:00,,,subj-7\n", "",
		[]Person{
			{ExternalID: "e1", UserName: "pat@example.com", Email: "pat@example.com", Active: true,
				EndDate: time.Date(2026, 5, 31, 23, 59, 59, 0, time.UTC), Site: "site-a", Groups: []string{"Front desk", "staff"}},
			{ExternalID: "e2", UserName: "e2", EndDate: time.Date(2026, 4, 1, 10, 0, 0, 0, time.UTC), SubjectID: "subj-7"},
		}, "")
	f("json", `[{"external_id":"e1","groups":["b","a"],"active":false},{"external_id":"e2","groups":"x;y","active":"yes"}]`, "",
		[]Person{{ExternalID: "e1", UserName: "e1", Groups: []string{"a", "b"}}, {ExternalID: "e2", UserName: "e2", Active: true, Groups: []string{"x", "y"}}}, "")
	f("unknown column", "external_id,salary\n", "", nil, `unknown column "salary"`)
	f("no id column", "user_name\nx\n", "", nil, "external_id column is required")
	f("empty", "", "csv", nil, "empty file")
	f("missing id", "external_id,site\n,site-a\n", "", nil, "row 1: external_id: required")
	f("repeated id", "external_id\ne1\ne1\n", "", nil, `row 2: external_id: "e1" repeats row 1`)
	f("bad date", "external_id,end_date\ne1,31.05.2026\n", "", nil, "row 1: end_date")
	f("bad active", "external_id,active\ne1,maybe\n", "", nil, "row 1: active")
	f("e-mail subject", "external_id,subject_id\ne1,pat@example.com\n", "", nil, "row 1: subject_id")
	f("control character", "external_id,site\ne1,\"a\x00b\"\n", "", nil, "control character")
	f("too many fields", "external_id\ne1,x\n", "", nil, "row 1: 2 fields")
	f("json unknown field", `[{"external_id":"e1","salary":1}]`, "", nil, "row 1: salary: unknown field")
	f("json not array", `{"external_id":"e1"}`, "", nil, "JSON array")
	f("format", "x", "xml", nil, `feed format "xml"`)
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"external_id,user_name,email,active,end_date,site,groups,subject_id\ne1,u,u@x,true,2026-05-31,s,a;b,\n",
		`[{"external_id":"e1","groups":["a"],"active":false,"end_date":"2026-01-01T00:00:00Z"}]`,
		"external_id\n\"e1\"\"x\",\n", "\ufeffexternal_id,groups\ne1, ; ;\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		people, err := Parse(data, "")
		if err != nil {
			return
		}
		seen := map[string]bool{}
		for _, p := range people {
			if p.ExternalID == "" || p.UserName == "" || seen[p.ExternalID] {
				t.Fatalf("accepted a bad row: %+v", p)
			}
			seen[p.ExternalID] = true
		}
	})
}

// fixture is a SCIM service on the in-memory store, recording changes.
type fixture struct {
	svc     *scim.Service
	mu      sync.Mutex
	changes []identity.Change
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{}
	n := 0
	svc, err := scim.New(scim.Options{Store: scim.NewMemoryStore(), Subject: func(s string) string { return "sub-" + s },
		SubjectFromExternalID: true, Now: func() time.Time { return now },
		NewID: func() string {
			f.mu.Lock()
			defer f.mu.Unlock()
			n++
			return fmt.Sprintf("id%02d", n)
		},
		Notify: func(_ context.Context, c identity.Change) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changes = append(f.changes, c)
			return nil
		}})
	require.NoError(t, err)
	f.svc = svc
	return f
}

// take returns the changes since the last call as "kind subject reason
// groups", sorted (the import writes people in parallel).
func (f *fixture) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []string{}
	for _, c := range f.changes {
		var gs []string
		for _, g := range c.Groups {
			gs = append(gs, g.DisplayName)
		}
		out = append(out, fmt.Sprintf("%s %s %s [%s]", c.Kind, c.SubjectID, c.Reason, strings.Join(gs, ",")))
	}
	f.changes = nil
	sort.Strings(out)
	return out
}

func brief(p *Plan) []string {
	out := []string{}
	for _, c := range p.Changes {
		s := fmt.Sprintf("%s %s %s %s", c.ExternalID, c.Op, c.Kind, strings.Join(c.Fields, ","))
		if len(c.GroupsAdded)+len(c.GroupsRemoved) > 0 {
			s += fmt.Sprintf(" +%v -%v", c.GroupsAdded, c.GroupsRemoved)
		}
		if c.Error != "" {
			s += " error: " + c.Error
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestImportProducesJoinersMoversLeavers(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	imp := func(csv string, o Options) *Plan {
		t.Helper()
		people, err := Parse([]byte(csv), "csv")
		require.NoError(t, err)
		o.Now = now
		p, err := Import(ctx, f.svc, people, o)
		require.NoError(t, err)
		assert.Zero(t, p.Failed, "%+v", p)
		return p
	}
	header := "external_id,user_name,given_name,email,site,groups,end_date,active\n"
	day1 := header +
		"e1,pat@example.com,Pat,pat@example.com,site-a,resident,,\n" +
		"e2,kim@example.com,Kim,,site-a,staff;Front desk,,\n" +
		"e3,lee@example.com,Lee,,site-b,maintenance,2026-02-01,\n" // end date passed: never entitled

	// A dry run plans and writes nothing.
	p := imp(day1, Options{DryRun: true})
	assert.Equal(t, []string{
		"e1 create joined access.site,access.source,active,emails,externalId,name,userName +[resident] -[]",
		"e2 create joined access.site,access.source,active,externalId,name,userName +[Front desk staff] -[]",
		"e3 create none access.end_date,access.site,access.source,active,externalId,name,userName +[maintenance] -[]",
	}, brief(p))
	assert.Equal(t, "sub-e1", p.Changes[0].SubjectID)
	assert.Equal(t, map[string]int{"joined": 2, "none": 1}, p.Counts)
	assert.Equal(t, []GroupChange{{Name: "Front desk", Create: true, Added: 1}, {Name: "maintenance", Create: true, Added: 1},
		{Name: "resident", Create: true, Added: 1}, {Name: "staff", Create: true, Added: 1}}, p.Groups)
	users, err := f.svc.Records(ctx, scim.TypeUser)
	require.NoError(t, err)
	assert.Empty(t, users)
	assert.Equal(t, []string{}, f.take())

	p = imp(day1, Options{})
	assert.True(t, p.Applied)
	assert.Equal(t, []string{
		"joined sub-e1 created []", "joined sub-e2 created []",
		"moved sub-e1 membership [resident]", "moved sub-e2 membership [Front desk,staff]", "moved sub-e2 membership [Front desk]",
	}, f.take())

	// The same file again: nothing.
	p = imp(day1, Options{})
	assert.Empty(t, p.Changes)
	assert.Equal(t, map[string]int{"none": 3}, p.Counts)
	assert.Equal(t, []string{}, f.take())

	// Day two: e2 moves from staff to maintenance (the new group first),
	// e1 changes site, e3 leaves the file (full: deactivated; not
	// entitled, so no change), e4 joins deactivated (nothing), e5 joins.
	day2 := header +
		"e1,pat@example.com,Pat,pat@example.com,site-b,resident,,\n" +
		"e2,kim@example.com,Kim,,site-a,maintenance;Front desk,,\n" +
		"e4,max@example.com,Max,,site-a,staff,,false\n" +
		"e5,ana@example.com,Ana,,site-a,,,\n"
	p = imp(day2, Options{})
	assert.Equal(t, []string{
		"e1 update updated access.site",
		"e2 groups moved  +[maintenance] -[staff]",
		"e3 deactivate none active",
		"e4 create none access.site,access.source,active,externalId,name,userName",
		"e5 create joined access.site,access.source,active,externalId,name,userName",
	}, brief(p))
	assert.Equal(t, []string{
		"joined sub-e5 created []",
		"moved sub-e2 membership [Front desk,maintenance,staff]",
		"moved sub-e2 membership [Front desk,maintenance]",
		"updated sub-e1 attributes [resident]",
	}, f.take())

	// Day three, delta: e1 leaves (active false); nobody else is touched.
	p = imp(header+"e1,pat@example.com,Pat,pat@example.com,site-b,resident,,false\n", Options{Mode: ModeDelta})
	assert.Equal(t, []string{"e1 deactivate left active"}, brief(p)[:1])
	assert.Equal(t, []string{"left sub-e1 deactivated []"}, f.take())

	// Users pushed over SCIM (no source) are never touched by the feed.
	_, err = f.svc.Create(ctx, scim.TypeUser, map[string]any{"userName": "idp-user", "externalId": "e9"})
	require.NoError(t, err)
	f.take()
	p = imp(header+"e9,other@example.com,,,,,,\n", Options{Mode: ModeDelta})
	assert.Equal(t, []Conflict{{ExternalID: "e9", Reason: "a user with this externalId is managed by the identity provider (SCIM), not by feed hr"}}, p.Conflicts)
	assert.Empty(t, p.Changes)
	p = imp(header, Options{})
	for _, c := range p.Changes {
		assert.NotEqual(t, "e9", c.ExternalID)
	}
}

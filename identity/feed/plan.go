package feed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/keyfleet/keyfleet/identity"
	"github.com/keyfleet/keyfleet/identity/scim"
)

// Target is where a feed is compared and written: the SCIM service
// (scim.Service), whose writes emit the joiner/mover/leaver changes.
type Target interface {
	Records(ctx context.Context, typ string) ([]scim.Record, error)
	Create(ctx context.Context, typ string, doc map[string]any) (scim.Record, error)
	Replace(ctx context.Context, typ, id, ifMatch string, doc map[string]any) (scim.Record, error)
	Subject(r scim.Record) string
	Status(r scim.Record, now time.Time) identity.Status
}

// Modes of an import.
const (
	// ModeFull: the file is everyone the feed manages; the feed's users it
	// does not list are deactivated (leavers).
	ModeFull = "full"
	// ModeDelta: only the rows in the file change (a row with active
	// false, or an end date in the past, is a leaver).
	ModeDelta = "delta"
)

// Options say how to import.
type Options struct {
	// Source names the feed (default "hr"); it owns the users it creates.
	Source string
	Mode   string // full (default) or delta
	DryRun bool
	// Workers write users in parallel (default 32: the identity owner
	// decides concurrent writes in one batch).
	Workers int
	Now     time.Time
}

// Ops of a person's change.
const (
	OpCreate     = "create"
	OpUpdate     = "update"
	OpDeactivate = "deactivate"
	OpGroups     = "groups" // only group memberships change
)

// PersonChange is one person's difference. It names attributes, never
// their values: the plan carries no personal data beyond the HR id.
type PersonChange struct {
	ExternalID string `json:"external_id"`
	// SubjectID is the pseudonymous subject id the person has (or will
	// have; empty when it is derived from a SCIM id not assigned yet).
	SubjectID string `json:"subject_id,omitempty"`
	Op        string `json:"op"`
	// Kind is the joiner/mover/leaver change the write will cause:
	// joined, moved, left, updated, or none.
	Kind          string   `json:"kind"`
	Fields        []string `json:"fields,omitempty"`
	GroupsAdded   []string `json:"groups_added,omitempty"`
	GroupsRemoved []string `json:"groups_removed,omitempty"`
	Error         string   `json:"error,omitempty"`

	id      string
	doc     map[string]any
	ifMatch string
	groups  []string
}

// GroupChange is a group to create or whose feed members change.
type GroupChange struct {
	Name    string `json:"name"`
	Create  bool   `json:"create,omitempty"`
	Added   int    `json:"added"`
	Removed int    `json:"removed"`
	Error   string `json:"error,omitempty"`
}

// Conflict is a row the feed may not apply.
type Conflict struct {
	ExternalID string `json:"external_id"`
	Reason     string `json:"reason"`
}

// Plan is an import's difference (and, once applied, its outcome).
type Plan struct {
	Source    string         `json:"source"`
	Mode      string         `json:"mode"`
	DryRun    bool           `json:"dry_run"`
	People    int            `json:"people"`
	Counts    map[string]int `json:"counts"` // by kind: joined, moved, left, updated, none
	Changes   []PersonChange `json:"changes"`
	Groups    []GroupChange  `json:"groups"`
	Conflicts []Conflict     `json:"conflicts"`
	Applied   bool           `json:"applied"`
	Failed    int            `json:"failed"`
}

// Import compares people with target's users and, unless DryRun, applies
// the difference: people first (created, updated, re-activated), then
// group memberships (additions before removals, so a mover gets the new
// role before losing the old), then the deactivations of leavers.
func Import(ctx context.Context, t Target, people []Person, o Options) (*Plan, error) {
	if o.Source == "" {
		o.Source = "hr"
	}
	if o.Mode == "" {
		o.Mode = ModeFull
	}
	if o.Mode != ModeFull && o.Mode != ModeDelta {
		return nil, fmt.Errorf("import mode %q: want full or delta", o.Mode)
	}
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	users, err := t.Records(ctx, scim.TypeUser)
	if err != nil {
		return nil, err
	}
	groups, err := t.Records(ctx, scim.TypeGroup)
	if err != nil {
		return nil, err
	}
	p := diff(t, users, groups, people, o)
	if o.DryRun || ctx.Err() != nil {
		return p, ctx.Err()
	}
	return p, p.apply(ctx, t, groups, o)
}

type groupState struct {
	rec     *scim.Record
	name    string
	members []string // user ids
}

func diff(t Target, users, groups []scim.Record, people []Person, o Options) *Plan {
	p := &Plan{Source: o.Source, Mode: o.Mode, DryRun: o.DryRun, People: len(people), Counts: map[string]int{},
		Changes: []PersonChange{}, Groups: []GroupChange{}, Conflicts: []Conflict{}}
	byExt := map[string]*scim.Record{}
	for i := range users {
		if ext, _ := users[i].Doc["externalId"].(string); ext != "" {
			byExt[ext] = &users[i]
		}
	}
	memberOf := map[string][]string{} // user id → group names
	for _, g := range groups {
		name, _ := g.Doc["displayName"].(string)
		for _, id := range members(g.Doc) {
			memberOf[id] = append(memberOf[id], name)
		}
	}
	listed := map[string]bool{}
	for _, person := range people {
		listed[person.ExternalID] = true
		cur := byExt[person.ExternalID]
		if cur != nil && scim.Source(cur.Doc) != o.Source {
			p.Conflicts = append(p.Conflicts, Conflict{ExternalID: person.ExternalID,
				Reason: "a user with this externalId is managed by " + sourceName(scim.Source(cur.Doc)) + ", not by feed " + o.Source})
			continue
		}
		c := PersonChange{ExternalID: person.ExternalID, groups: person.Groups}
		doc := desired(person, cur, o.Source)
		before := []string{}
		if cur == nil {
			c.Op, c.doc = OpCreate, doc
			c.Fields = fieldNames(nil, doc)
			// Known now unless it derives from the SCIM id, assigned on create.
			a := t.Subject(scim.Record{Type: scim.TypeUser, ID: "a", Doc: doc})
			if a == t.Subject(scim.Record{Type: scim.TypeUser, ID: "b", Doc: doc}) {
				c.SubjectID = a
			}
		} else {
			c.id, c.ifMatch = cur.ID, scim.Etag(*cur)
			c.SubjectID = t.Subject(*cur)
			before = memberOf[cur.ID]
			c.Fields = fieldNames(cur.Doc, doc)
			if len(c.Fields) > 0 {
				c.Op, c.doc = OpUpdate, doc
			}
			if cur.Doc["active"] != false && !person.Active {
				c.Op = OpDeactivate
			}
		}
		c.GroupsAdded, c.GroupsRemoved = groupDiff(before, person.Groups)
		if !person.Active {
			c.GroupsAdded = nil // a leaver joins no group on the way out
		}
		c.Kind = kind(t, cur, doc, c, o.Now)
		if c.Op == "" && len(c.GroupsAdded)+len(c.GroupsRemoved) == 0 {
			p.Counts["none"]++
			continue
		}
		if c.Op == "" {
			c.Op = OpGroups
		}
		p.Counts[c.Kind]++
		p.Changes = append(p.Changes, c)
	}
	if o.Mode == ModeFull {
		for _, u := range users {
			ext, _ := u.Doc["externalId"].(string)
			if scim.Source(u.Doc) != o.Source || listed[ext] || u.Doc["active"] == false {
				continue
			}
			doc := copyDoc(u.Doc)
			doc["active"] = false
			c := PersonChange{ExternalID: ext, SubjectID: t.Subject(u), Op: OpDeactivate, Fields: []string{"active"},
				id: u.ID, ifMatch: scim.Etag(u), doc: doc, groups: memberOf[u.ID]}
			c.Kind = kind(t, &u, doc, c, o.Now)
			p.Counts[c.Kind]++
			p.Changes = append(p.Changes, c)
		}
	}
	// Groups: the feed's people's memberships per group name.
	state := map[string]*groupState{}
	for i := range groups {
		name, _ := groups[i].Doc["displayName"].(string)
		key := strings.ToLower(name)
		if _, dup := state[key]; !dup {
			state[key] = &groupState{rec: &groups[i], name: name, members: members(groups[i].Doc)}
		}
	}
	adds, removes := map[string]int{}, map[string]int{}
	for _, c := range p.Changes {
		for _, g := range c.GroupsAdded {
			adds[strings.ToLower(g)]++
			if state[strings.ToLower(g)] == nil {
				state[strings.ToLower(g)] = &groupState{name: g}
			}
		}
		for _, g := range c.GroupsRemoved {
			removes[strings.ToLower(g)]++
		}
	}
	var names []string
	for k := range state {
		if adds[k]+removes[k] > 0 {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		p.Groups = append(p.Groups, GroupChange{Name: state[k].name, Create: state[k].rec == nil, Added: adds[k], Removed: removes[k]})
	}
	return p
}

func sourceName(s string) string {
	if s == "" {
		return "the identity provider (SCIM)"
	}
	return "feed " + s
}

// kind predicts the change a person's write causes.
func kind(t Target, cur *scim.Record, doc map[string]any, c PersonChange, now time.Time) string {
	after := t.Status(scim.Record{Type: scim.TypeUser, Doc: doc}, now)
	if cur == nil {
		if after.Entitled {
			return string(identity.Joined)
		}
		return "none"
	}
	before := t.Status(*cur, now)
	switch {
	case before.Entitled && !after.Entitled:
		return string(identity.Left)
	case !before.Entitled && after.Entitled:
		return string(identity.Joined)
	case !after.Entitled:
		return "none"
	case len(c.GroupsAdded)+len(c.GroupsRemoved) > 0:
		return string(identity.Moved)
	case before.Site != after.Site || !before.EndDate.Equal(after.EndDate):
		return string(identity.Updated)
	}
	return "none"
}

// desired returns the stored document a person should have: the current
// one (attributes the feed does not carry are kept) with the feed's
// attributes set.
func desired(p Person, cur *scim.Record, source string) map[string]any {
	doc := map[string]any{}
	if cur != nil {
		doc = copyDoc(cur.Doc)
	}
	set := func(m map[string]any, k, v string) {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	set(doc, "userName", p.UserName)
	set(doc, "externalId", p.ExternalID)
	set(doc, "displayName", p.DisplayName)
	name, _ := doc["name"].(map[string]any)
	if name == nil {
		name = map[string]any{}
	}
	set(name, "givenName", p.GivenName)
	set(name, "familyName", p.FamilyName)
	if len(name) == 0 {
		delete(doc, "name")
	} else {
		doc["name"] = name
	}
	if p.Email == "" {
		delete(doc, "emails")
	} else if !hasPrimaryEmail(doc, p.Email) {
		doc["emails"] = []any{map[string]any{"value": p.Email, "type": "work", "primary": true}}
	}
	doc["active"] = p.Active
	acc, _ := doc[scim.SchemaAccess].(map[string]any)
	if acc == nil {
		acc = map[string]any{}
	}
	set(acc, "site", p.Site)
	if p.EndDate.IsZero() {
		delete(acc, "end_date")
	} else if old, ok := acc["end_date"].(string); !ok || !sameTime(old, p.EndDate) {
		acc["end_date"] = p.EndDate.UTC().Format(time.RFC3339)
	}
	if p.SubjectID != "" {
		acc["subject_id"] = p.SubjectID
	}
	acc["source"] = source
	doc[scim.SchemaAccess] = acc
	return doc
}

func hasPrimaryEmail(doc map[string]any, email string) bool {
	ems, _ := doc["emails"].([]any)
	for _, e := range ems {
		if m, ok := e.(map[string]any); ok && m["primary"] == true && strings.EqualFold(fmt.Sprint(m["value"]), email) {
			return len(ems) == 1
		}
	}
	return false
}

func sameTime(s string, t time.Time) bool {
	v, err := time.Parse(time.RFC3339Nano, s)
	return err == nil && v.Equal(t)
}

// fieldNames lists the attributes whose values differ (dotted for the
// access extension's), sorted.
func fieldNames(old, doc map[string]any) []string {
	var out []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range doc {
		keys[k] = true
	}
	for k := range keys {
		if k == scim.SchemaAccess {
			o, _ := old[k].(map[string]any)
			n, _ := doc[k].(map[string]any)
			for _, sk := range fieldNames(o, n) {
				out = append(out, "access."+sk)
			}
			continue
		}
		if !jsonEqual(old[k], doc[k]) {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

func jsonEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	x, err1 := json.Marshal(a)
	y, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && reflect.DeepEqual(normJSON(x), normJSON(y))
}

func normJSON(b []byte) any {
	var v any
	_ = json.Unmarshal(b, &v)
	return v
}

func copyDoc(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	_ = d.Decode(&out)
	if out == nil {
		out = map[string]any{}
	}
	return out
}

func members(doc map[string]any) []string {
	var out []string
	ms, _ := doc["members"].([]any)
	for _, m := range ms {
		if mm, ok := m.(map[string]any); ok {
			if v, ok := mm["value"].(string); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

// groupDiff returns the groups of want not in have and of have not in
// want (case-insensitive).
func groupDiff(have, want []string) (added, removed []string) {
	in := func(list []string, g string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, g) })
	}
	for _, g := range want {
		if !in(have, g) {
			added = append(added, g)
		}
	}
	for _, g := range have {
		if !in(want, g) {
			removed = append(removed, g)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	return added, removed
}

// apply writes the plan.
func (p *Plan) apply(ctx context.Context, t Target, groups []scim.Record, o Options) error {
	fail := func(c *PersonChange, err error) {
		c.Error = errorText(err)
		p.Failed++
	}
	// People: creates and updates in parallel; deactivations wait until
	// group changes are done.
	var mu sync.Mutex
	sem := make(chan struct{}, o.Workers)
	var wg sync.WaitGroup
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.doc == nil || c.Op == OpDeactivate {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var r scim.Record
			var err error
			if c.Op == OpCreate {
				r, err = t.Create(ctx, scim.TypeUser, c.doc)
			} else {
				r, err = t.Replace(ctx, scim.TypeUser, c.id, c.ifMatch, c.doc)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fail(c, err)
				return
			}
			c.id, c.SubjectID = r.ID, t.Subject(r)
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// Groups: one write per group with its new member list.
	byName := map[string]*scim.Record{}
	for i := range groups {
		name, _ := groups[i].Doc["displayName"].(string)
		if _, dup := byName[strings.ToLower(name)]; !dup {
			byName[strings.ToLower(name)] = &groups[i]
		}
	}
	for _, additions := range []bool{true, false} {
		for gi := range p.Groups {
			gc := &p.Groups[gi]
			key := strings.ToLower(gc.Name)
			var add, remove []string
			for _, c := range p.Changes {
				if c.id == "" || c.Error != "" {
					continue
				}
				if additions && slices.ContainsFunc(c.GroupsAdded, func(g string) bool { return strings.EqualFold(g, gc.Name) }) {
					add = append(add, c.id)
				}
				if !additions && slices.ContainsFunc(c.GroupsRemoved, func(g string) bool { return strings.EqualFold(g, gc.Name) }) {
					remove = append(remove, c.id)
				}
			}
			if len(add)+len(remove) == 0 {
				continue
			}
			if err := writeGroup(ctx, t, byName, key, gc.Name, add, remove); err != nil {
				gc.Error = errorText(err)
				p.Failed++
			}
		}
	}
	for i := range p.Changes {
		c := &p.Changes[i]
		if c.Op != OpDeactivate || c.doc == nil {
			continue
		}
		if _, err := t.Replace(ctx, scim.TypeUser, c.id, c.ifMatch, c.doc); err != nil {
			fail(c, err)
		}
	}
	p.Applied = true
	return ctx.Err()
}

// writeGroup adds and removes members of a group (created when missing),
// re-reading it when a concurrent change wins (If-Match).
func writeGroup(ctx context.Context, t Target, byName map[string]*scim.Record, key, name string, add, remove []string) error {
	for attempt := 0; attempt < 5; attempt++ {
		g := byName[key]
		if g == nil {
			ms := []any{}
			for _, id := range add {
				ms = append(ms, map[string]any{"value": id, "type": "User"})
			}
			r, err := t.Create(ctx, scim.TypeGroup, map[string]any{"displayName": name, "members": ms})
			if err == nil {
				byName[key] = &r
			}
			return err
		}
		doc := copyDoc(g.Doc)
		cur := members(doc)
		var ms []any
		if old, ok := doc["members"].([]any); ok {
			for _, m := range old {
				mm, _ := m.(map[string]any)
				if id, _ := mm["value"].(string); !slices.Contains(remove, id) {
					ms = append(ms, m)
				}
			}
		}
		for _, id := range add {
			if !slices.Contains(cur, id) {
				ms = append(ms, map[string]any{"value": id, "type": "User"})
			}
		}
		if len(ms) == 0 {
			delete(doc, "members")
		} else {
			doc["members"] = ms
		}
		r, err := t.Replace(ctx, scim.TypeGroup, g.ID, scim.Etag(*g), doc)
		var se *scim.Error
		if errors.As(err, &se) && se.Status == 412 {
			fresh, rerr := t.Records(ctx, scim.TypeGroup)
			if rerr != nil {
				return rerr
			}
			for i := range fresh {
				if fresh[i].ID == g.ID {
					byName[key] = &fresh[i]
				}
			}
			continue
		}
		if err == nil {
			byName[key] = &r
		}
		return err
	}
	return fmt.Errorf("group %s changed concurrently too often; import again", name)
}

func errorText(err error) string {
	var se *scim.Error
	if errors.As(err, &se) {
		return se.Detail
	}
	return err.Error()
}

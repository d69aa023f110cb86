// Package scim is keyfleet's SCIM 2.0 service provider (RFC 7643, RFC 7644)
// at /scim/v2: identity providers (Entra ID, Okta, a tenant system) push
// Users and Groups, and every change of a person's entitlement becomes an
// identity.Change (joined, moved, left, updated) for the credential
// automation.
//
// The engine is schema-driven: the schemas published under /Schemas are
// the ones requests are validated, patched, filtered, sorted and rendered
// against. Filters and PATCH paths are parsed by
// github.com/scim2/filter-parser; evaluation, PATCH semantics, ETags and
// storage bookkeeping are here. Personal data is held by the Store only;
// changes carry a pseudonymous subject id from the caller's keyed function.
package scim

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/scim2/filter-parser/v2"

	"github.com/keyfleet/keyfleet/identity"
)

// Options configure the service.
type Options struct {
	// Store holds the resources. Required.
	Store Store
	// Subject derives a pseudonymous subject id from a user's SCIM id (or
	// externalId, see SubjectFromExternalID): a keyed function such as an
	// HMAC. Required.
	Subject func(string) string
	// SubjectFromExternalID derives subject ids from externalId (the id the
	// identity provider or HR system knows the person by); users without
	// one fall back to their SCIM id. A change of externalId is then a
	// leave of the old subject and a join of the new one.
	SubjectFromExternalID bool
	// Notify receives joiner/mover/leaver changes, after the write they
	// follow is stored. An error is logged and counted, not returned to
	// the identity provider (the write stands); Resync re-emits the state.
	Notify func(ctx context.Context, c identity.Change) error
	// BaseURL is the externally visible URL of /scim/v2 (for meta.location
	// and Location headers); empty derives it from each request.
	BaseURL string
	// MaxResults caps count on list and search requests (default 200).
	MaxResults int
	// SweepInterval is how often Run reports users whose end_date passed
	// (default 1 minute).
	SweepInterval time.Duration
	// Timeout bounds one request's store calls (default 30 s).
	Timeout    time.Duration
	Now        func() time.Time
	NewID      func() string
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Validate checks the options.
func (o Options) Validate() error {
	if o.Store == nil {
		return errors.New("scim: Store is required")
	}
	if o.Subject == nil {
		return errors.New("scim: Subject is required")
	}
	if o.MaxResults < 0 || o.SweepInterval < 0 || o.Timeout < 0 {
		return errors.New("scim: MaxResults, SweepInterval and Timeout must not be negative")
	}
	return nil
}

// Service serves SCIM and emits changes.
type Service struct {
	opts    Options
	log     *slog.Logger
	types   []*ResourceType
	changes *prometheus.CounterVec
	failed  prometheus.Counter
	ignored prometheus.Counter
}

// New returns a service.
func New(opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxResults == 0 {
		opts.MaxResults = 200
	}
	if opts.SweepInterval == 0 {
		opts.SweepInterval = time.Minute
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = func() string { return uuid.NewString() }
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.BaseURL = strings.TrimSuffix(opts.BaseURL, "/")
	s := &Service{
		opts:  opts,
		log:   opts.Logger,
		types: []*ResourceType{userType, groupType},
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyfleet_scim_changes_total",
			Help: "Joiner/mover/leaver changes emitted by the SCIM service provider, by kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_scim_notify_failures_total",
			Help: "Changes the Notify callback refused (the SCIM write stands; run a resync).",
		}),
		ignored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyfleet_scim_ignored_attributes_total",
			Help: "Attributes in SCIM requests that keyfleet does not keep and dropped.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{s.changes, s.failed, s.ignored} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("register scim metrics: %w", err)
			}
		}
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.opts.Now().UTC() }

func (s *Service) typeByName(name string) *ResourceType {
	for _, rt := range s.types {
		if strings.EqualFold(rt.Name, name) {
			return rt
		}
	}
	return nil
}

// storeErr maps a store error to a SCIM error.
func storeErr(rt *ResourceType, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return notFound("%s not found", rt.Name)
	case errors.Is(err, ErrVersion):
		return &Error{Status: http.StatusServiceUnavailable, Detail: fmt.Sprintf("%s is being changed concurrently; retry", rt.Name)}
	case errors.Is(err, ErrConflict):
		key := strings.TrimPrefix(err.Error(), ErrConflict.Error()+": ")
		if key == err.Error() {
			key = "a unique attribute"
		}
		return &Error{Status: http.StatusConflict, ScimType: errUniqueness, Detail: fmt.Sprintf("%s: %s is already taken", rt.Name, key)}
	}
	return fmt.Errorf("scim store: %w", err)
}

func (s *Service) get(ctx context.Context, rt *ResourceType, id string) (Record, error) {
	r, err := s.opts.Store.Get(ctx, rt.Name, id)
	if err != nil {
		return Record{}, storeErr(rt, err)
	}
	return r, nil
}

func preconditionFailed() *Error {
	return &Error{Status: http.StatusPreconditionFailed, Detail: "the resource changed: its version does not match If-Match"}
}

// create stores a new resource.
func (s *Service) create(ctx context.Context, rt *ResourceType, body map[string]any) (Record, error) {
	doc, ignored, err := normDoc(rt, body)
	if err != nil {
		return Record{}, err
	}
	s.ignored.Add(float64(ignored))
	if err := s.checkDoc(ctx, rt, doc, nil); err != nil {
		return Record{}, err
	}
	now := s.now()
	r := Record{Type: rt.Name, ID: s.opts.NewID(), Version: 1, Created: now, Modified: now, Doc: doc}
	if err := s.opts.Store.Create(ctx, r); err != nil {
		return Record{}, storeErr(rt, err)
	}
	s.changed(ctx, rt, nil, &r)
	return r, nil
}

// checkDoc checks a document before it is stored: schema rules, and that
// a group's members exist (those prev, the stored version, does not have:
// a large group's other members are not looked up again on every change).
func (s *Service) checkDoc(ctx context.Context, rt *ResourceType, doc, prev map[string]any) error {
	if err := checkDoc(rt, doc); err != nil {
		return err
	}
	if rt != groupType {
		return checkSubject(doc)
	}
	known := memberIDs(prev)
	type member struct{ id, typ string }
	var check []member
	ms, _ := doc["members"].([]any)
	for _, m := range ms {
		mm, _ := m.(map[string]any)
		id, _ := mm["value"].(string)
		if id == "" {
			return badRequest(errInvalidValue, "every member needs a value (the member's id)")
		}
		if !slices.Contains(known, id) {
			typ, _ := mm["type"].(string)
			check = append(check, member{id, typ})
		}
	}
	// Many new members (a group created with its members): two listings
	// instead of one lookup each.
	var all map[string]map[string]bool // type → ids
	if len(check) > 16 {
		all = map[string]map[string]bool{}
		for _, t := range []*ResourceType{userType, groupType} {
			recs, err := s.opts.Store.List(ctx, Query{Type: t.Name})
			if err != nil {
				return fmt.Errorf("scim store: %w", err)
			}
			all[t.Name] = map[string]bool{}
			for _, r := range recs {
				all[t.Name][r.ID] = true
			}
		}
	}
	for _, m := range check {
		found := false
		for _, t := range []*ResourceType{userType, groupType} {
			if m.typ != "" && !strings.EqualFold(m.typ, t.Name) {
				continue
			}
			if all != nil {
				found = all[t.Name][m.id]
			} else if _, err := s.opts.Store.Get(ctx, t.Name, m.id); err == nil {
				found = true
			} else if !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("scim store: %w", err)
			}
			if found {
				break
			}
		}
		if !found {
			return badRequest(errInvalidValue, "member %s is not a known User or Group", m.id)
		}
	}
	return nil
}

// update runs a read-modify-write until it is stored: mutate returns the
// new document from the current record. Without If-Match a concurrent
// change is retried; with it, it is a 412.
func (s *Service) update(ctx context.Context, rt *ResourceType, id, ifMatch string, mutate func(Record) (map[string]any, error)) (Record, error) {
	for attempt := 0; ; attempt++ {
		cur, err := s.get(ctx, rt, id)
		if err != nil {
			return Record{}, err
		}
		if ifMatch != "" && !etagMatches(ifMatch, cur.Version) {
			return Record{}, preconditionFailed()
		}
		doc, err := mutate(cur)
		if err != nil {
			return Record{}, err
		}
		if err := s.checkDoc(ctx, rt, doc, cur.Doc); err != nil {
			return Record{}, err
		}
		if jsonEqual(doc, cur.Doc) {
			return cur, nil // nothing changed: no new version
		}
		next := cur
		next.Doc = doc
		next.Version = cur.Version + 1
		next.Modified = s.now()
		err = s.opts.Store.Replace(ctx, next, cur.Version)
		if errors.Is(err, ErrVersion) {
			if ifMatch != "" {
				return Record{}, preconditionFailed()
			}
			if retryWait(ctx, attempt) {
				continue
			}
		}
		if err != nil {
			return Record{}, storeErr(rt, err)
		}
		s.changed(ctx, rt, &cur, &next)
		return next, nil
	}
}

// replace is PUT: the body replaces every writable attribute.
func (s *Service) replace(ctx context.Context, rt *ResourceType, id, ifMatch string, body map[string]any) (Record, error) {
	return s.update(ctx, rt, id, ifMatch, func(cur Record) (map[string]any, error) {
		doc, ignored, err := normDoc(rt, body)
		if err != nil {
			return nil, err
		}
		s.ignored.Add(float64(ignored))
		if err := keepImmutable(rt, cur.Doc, doc); err != nil {
			return nil, err
		}
		return doc, nil
	})
}

// keepImmutable refuses a PUT that changes a set immutable attribute and
// keeps one it leaves out.
func keepImmutable(rt *ResourceType, old, doc map[string]any) error {
	schemas := []*Schema{rt.Schema}
	for _, e := range rt.Extensions {
		schemas = append(schemas, e.Schema)
	}
	for _, sc := range schemas {
		for _, a := range sc.Attributes {
			if a.Mutability != Immutable {
				continue
			}
			t := target{attr: a}
			if sc != rt.Schema {
				t.ext = sc
			}
			oc := t.container(old, false)
			if oc == nil || oc[a.Name] == nil {
				continue
			}
			nc := t.container(doc, true)
			switch {
			case nc[a.Name] == nil:
				nc[a.Name] = deepCopy(oc[a.Name])
			case !jsonEqual(nc[a.Name], oc[a.Name]):
				return badRequest(errMutability, "attribute %s is immutable", t.name())
			}
		}
	}
	return nil
}

// patch applies a PatchOp.
func (s *Service) patch(ctx context.Context, rt *ResourceType, id, ifMatch string, req patchRequest) (Record, error) {
	if len(req.Schemas) > 0 && !slices.ContainsFunc(req.Schemas, func(v string) bool { return strings.EqualFold(v, msgPatchOp) }) {
		return Record{}, badRequest(errInvalidSyntax, "a PATCH body has schema %s", msgPatchOp)
	}
	if len(req.Operations) == 0 {
		return Record{}, badRequest(errInvalidValue, "a PATCH body needs at least one operation")
	}
	return s.update(ctx, rt, id, ifMatch, func(cur Record) (map[string]any, error) {
		doc, ignored, err := applyPatch(rt, cur.Doc, req.Operations)
		if err != nil {
			return nil, err
		}
		s.ignored.Add(float64(ignored))
		return doc, nil
	})
}

// remove is DELETE. A deleted user also leaves every group it was in.
func (s *Service) remove(ctx context.Context, rt *ResourceType, id, ifMatch string) error {
	for attempt := 0; ; attempt++ {
		cur, err := s.get(ctx, rt, id)
		if err != nil {
			return err
		}
		if ifMatch != "" && !etagMatches(ifMatch, cur.Version) {
			return preconditionFailed()
		}
		err = s.opts.Store.Delete(ctx, rt.Name, id, cur.Version)
		if errors.Is(err, ErrVersion) {
			if ifMatch != "" {
				return preconditionFailed()
			}
			if retryWait(ctx, attempt) {
				continue
			}
		}
		if err != nil {
			return storeErr(rt, err)
		}
		groups, gerr := s.groupsOf(ctx, id)
		s.changed(ctx, rt, &cur, nil)
		if gerr != nil {
			return gerr
		}
		for _, g := range groups {
			if _, err := s.update(ctx, groupType, g.ID, "", func(r Record) (map[string]any, error) {
				doc := copyDoc(r.Doc)
				ms, _ := doc["members"].([]any)
				var keep []any
				for _, m := range ms {
					if mm, ok := m.(map[string]any); !ok || mm["value"] != id {
						keep = append(keep, m)
					}
				}
				setOrDelete(doc, "members", listOrNil(keep))
				return doc, nil
			}); err != nil && !isNotFound(err) {
				return err
			}
		}
		return nil
	}
}

// retryWait waits before another attempt at a write that lost a race
// (attempt counts from 0) and reports whether to make it.
func retryWait(ctx context.Context, attempt int) bool {
	if attempt >= maxAttempts-1 {
		return false
	}
	t := time.NewTimer(time.Duration(attempt+1) * time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// maxAttempts bounds the read-modify-write attempts of one request.
const maxAttempts = 16

func isNotFound(err error) bool {
	var se *Error
	return errors.As(err, &se) && se.Status == http.StatusNotFound
}

// groupsOf returns the groups that have id as a direct member, by name then id.
func (s *Service) groupsOf(ctx context.Context, id string) ([]identity.Group, error) {
	recs, err := s.opts.Store.List(ctx, Query{Type: groupType.Name, Key: KeyMember, Value: id})
	if err != nil {
		return nil, fmt.Errorf("scim store: %w", err)
	}
	var out []identity.Group
	for _, r := range recs {
		if slices.Contains(memberIDs(r.Doc), id) {
			out = append(out, groupRef(r))
		}
	}
	sortGroups(out)
	return out, nil
}

func groupRef(r Record) identity.Group {
	ext, _ := r.Doc["externalId"].(string)
	name, _ := r.Doc["displayName"].(string)
	return identity.Group{ID: r.ID, ExternalID: ext, DisplayName: name}
}

func sortGroups(gs []identity.Group) {
	slices.SortFunc(gs, func(a, b identity.Group) int {
		return cmp.Or(strings.Compare(a.DisplayName, b.DisplayName), strings.Compare(a.ID, b.ID))
	})
}

// groupValues renders a user's groups attribute.
func groupValues(base string, gs []identity.Group) []any {
	var out []any
	for _, g := range gs {
		v := map[string]any{"value": g.ID, "$ref": location(base, groupType, g.ID), "type": "direct"}
		if g.DisplayName != "" {
			v["display"] = g.DisplayName
		}
		out = append(out, v)
	}
	return out
}

// render returns the full view of one record.
func (s *Service) render(ctx context.Context, rt *ResourceType, r Record, base string) (map[string]any, error) {
	var groups []any
	if rt == userType {
		gs, err := s.groupsOf(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		groups = groupValues(base, gs)
	}
	return view(rt, r, base, groups), nil
}

// listParams are a query's parameters (RFC 7644 §3.4.2).
type listParams struct {
	filter     filter.Expression
	sortBy     *filter.AttributePath
	descending bool
	start      int // 1-based
	count      int // -1: not given
	proj       projection
}

type listed struct {
	rt   *ResourceType
	rec  Record
	view map[string]any
}

// list runs a query over the resource types and returns the total and the
// requested page of full views.
func (s *Service) list(ctx context.Context, rts []*ResourceType, p listParams, base string) (int, []listed, error) {
	if p.filter != nil {
		if err := checkFilter(rts, p.filter); err != nil {
			return 0, nil, err
		}
	}
	var all []listed
	for _, rt := range rts {
		q := Query{Type: rt.Name}
		q.Key, q.Value = hint(rt, p.filter)
		recs, err := s.opts.Store.List(ctx, q)
		if err != nil {
			return 0, nil, fmt.Errorf("scim store: %w", err)
		}
		memberships := map[string][]identity.Group{}
		if rt == userType && len(recs) > 0 {
			groups, err := s.opts.Store.List(ctx, Query{Type: groupType.Name})
			if err != nil {
				return 0, nil, fmt.Errorf("scim store: %w", err)
			}
			for _, g := range groups {
				for _, id := range memberIDs(g.Doc) {
					memberships[id] = append(memberships[id], groupRef(g))
				}
			}
		}
		slices.SortFunc(recs, func(a, b Record) int {
			return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
		})
		for _, r := range recs {
			gs := memberships[r.ID]
			sortGroups(gs)
			v := view(rt, r, base, groupValues(base, gs))
			if p.filter != nil && !(scope{rt: rt}).matches(p.filter, v) {
				continue
			}
			all = append(all, listed{rt: rt, rec: r, view: v})
		}
	}
	if p.sortBy != nil {
		sortListed(all, *p.sortBy, p.descending)
	}
	total := len(all)
	count := p.count
	if count < 0 || count > s.opts.MaxResults {
		count = s.opts.MaxResults
	}
	from := min(p.start-1, total)
	to := min(from+count, total)
	return total, all[from:to], nil
}

// hint narrows a store query for the filters identity providers send most
// (userName eq, externalId eq, displayName eq, members[value eq]).
func hint(rt *ResourceType, e filter.Expression) (Key, string) {
	if x, ok := e.(*filter.LogicalExpression); ok && x.Operator == filter.AND {
		if k, v := hint(rt, x.Left); k != "" {
			return k, v
		}
		return hint(rt, x.Right)
	}
	x, ok := e.(*filter.AttributeExpression)
	if !ok || x.Operator != filter.EQ {
		return "", ""
	}
	v, ok := x.CompareValue.(string)
	if !ok {
		return "", ""
	}
	t, known, err := resolve(rt, x.AttributePath)
	if err != nil || !known || t.ext != nil || t.attr == nil {
		return "", ""
	}
	switch {
	case t.sub == nil && t.attr.Name == "userName":
		return KeyUserName, strings.ToLower(v)
	case t.sub == nil && t.attr.Name == "externalId":
		return KeyExternalID, v
	case t.sub == nil && t.attr.Name == "displayName" && rt == groupType:
		return KeyDisplayName, strings.ToLower(v)
	case t.attr.Name == "members" && (t.sub == nil || t.sub.Name == "value"):
		return KeyMember, v
	}
	return "", ""
}

// sortListed sorts by an attribute (its primary, else first value);
// resources without a value come last in either order (RFC 7644 §3.4.2.3).
func sortListed(all []listed, by filter.AttributePath, desc bool) {
	type keyed struct {
		leaf *Attribute
		v    any
	}
	keys := make([]keyed, len(all))
	for i, l := range all {
		t, known, err := resolve(l.rt, by)
		if err != nil || !known || t.attr == nil {
			continue
		}
		vals := t.values(l.view)
		if len(vals) == 0 {
			continue
		}
		v := vals[0]
		if t.attr.MultiValued && t.attr.complex() && t.sub == nil {
			for _, el := range elements(t, l.view) {
				if el["primary"] == true && el[t.leaf().Name] != nil {
					v = el[t.leaf().Name]
				}
			}
		}
		keys[i] = keyed{leaf: t.leaf(), v: v}
	}
	idx := make([]int, len(all))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(i, j int) int {
		a, b := keys[i], keys[j]
		switch {
		case a.v == nil && b.v == nil:
			return 0
		case a.v == nil:
			return 1
		case b.v == nil:
			return -1
		}
		c := 0
		switch {
		case compare(a.leaf, filter.LT, a.v, b.v):
			c = -1
		case compare(a.leaf, filter.GT, a.v, b.v):
			c = 1
		}
		if desc {
			c = -c
		}
		return c
	})
	sorted := make([]listed, len(all))
	for i, k := range idx {
		sorted[i] = all[k]
	}
	copy(all, sorted)
}

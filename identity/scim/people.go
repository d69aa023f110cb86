package scim

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/keyfleet/keyfleet/identity"
)

// People as the rest of keyfleet sees them: a pseudonymous subject id and
// an entitlement, never a name. And the writes of in-process callers (the
// HR feed), which take the same path as SCIM requests and so produce the
// same changes.

// explicitSubject returns a user's access-extension subject_id ("" when unset).
func explicitSubject(doc map[string]any) string {
	acc, _ := doc[SchemaAccess].(map[string]any)
	s, _ := acc["subject_id"].(string)
	return s
}

// Source returns the feed that manages a user ("" for users pushed over SCIM).
func Source(doc map[string]any) string {
	acc, _ := doc[SchemaAccess].(map[string]any)
	s, _ := acc["source"].(string)
	return s
}

// SubjectOf returns the pseudonymous subject id of a user record: its
// access extension's subject_id when set; else keyed(externalId) when
// fromExternalID and the user has one; else keyed(SCIM id).
func SubjectOf(r Record, keyed func(string) string, fromExternalID bool) string {
	if s := explicitSubject(r.Doc); s != "" {
		return s
	}
	if ext, _ := r.Doc["externalId"].(string); fromExternalID && ext != "" {
		return keyed(ext)
	}
	return keyed(r.ID)
}

// checkSubject refuses an explicit subject_id that is not a pseudonymous id.
func checkSubject(doc map[string]any) error {
	s := explicitSubject(doc)
	switch {
	case s == "":
		return nil
	case len(s) > 128:
		return badRequest(errInvalidValue, "subject_id is longer than 128 characters")
	case strings.ContainsAny(s, " \t\r\n"):
		return badRequest(errInvalidValue, "subject_id must not contain whitespace")
	case strings.Contains(s, "@"):
		return badRequest(errInvalidValue, "subject_id looks like an e-mail address; use a pseudonymous id")
	}
	return nil
}

// Subject returns the pseudonymous subject id of a user record.
func (s *Service) Subject(r Record) string {
	return SubjectOf(r, s.opts.Subject, s.opts.SubjectFromExternalID)
}

// Status returns a user's entitlement at now (Groups not filled: see
// StatusWithGroups).
func (s *Service) Status(r Record, now time.Time) identity.Status {
	st := s.state(&r, now.UTC())
	out := identity.Status{SubjectID: st.subject, Known: true, Entitled: st.entitled, Active: st.active,
		Site: st.site, EndDate: st.end}
	switch {
	case !st.active:
		out.Reason = "deactivated"
	case !st.entitled:
		out.Reason = "end_date"
	}
	return out
}

// StatusWithGroups returns a user's entitlement and direct groups.
func (s *Service) StatusWithGroups(ctx context.Context, r Record, now time.Time) (identity.Status, error) {
	st := s.Status(r, now)
	gs, err := s.groupsOf(ctx, r.ID)
	if err != nil {
		return identity.Status{}, err
	}
	st.Groups = gs
	return st, nil
}

// Resource type names.
const (
	TypeUser  = "User"
	TypeGroup = "Group"
)

func (s *Service) resourceType(typ string) (*ResourceType, error) {
	rt := s.typeByName(typ)
	if rt == nil {
		return nil, fmt.Errorf("scim: unknown resource type %q", typ)
	}
	return rt, nil
}

// Create stores a new resource from a SCIM document, as POST does (the
// same validation and changes). Refusals are *Error.
func (s *Service) Create(ctx context.Context, typ string, doc map[string]any) (Record, error) {
	rt, err := s.resourceType(typ)
	if err != nil {
		return Record{}, err
	}
	return s.create(ctx, rt, deepCopy(doc).(map[string]any))
}

// Replace replaces a resource's writable attributes, as PUT does; a
// non-empty ifMatch makes it conditional on that ETag.
func (s *Service) Replace(ctx context.Context, typ, id, ifMatch string, doc map[string]any) (Record, error) {
	rt, err := s.resourceType(typ)
	if err != nil {
		return Record{}, err
	}
	return s.replace(ctx, rt, id, ifMatch, deepCopy(doc).(map[string]any))
}

// Delete removes a resource, as DELETE does.
func (s *Service) Delete(ctx context.Context, typ, id string) error {
	rt, err := s.resourceType(typ)
	if err != nil {
		return err
	}
	return s.remove(ctx, rt, id, "")
}

// Records returns every stored resource of a type, oldest first.
func (s *Service) Records(ctx context.Context, typ string) ([]Record, error) {
	rt, err := s.resourceType(typ)
	if err != nil {
		return nil, err
	}
	recs, err := s.opts.Store.List(ctx, Query{Type: rt.Name})
	if err != nil {
		return nil, fmt.Errorf("scim store: %w", err)
	}
	return recs, nil
}

// Etag returns the ETag of a record's version (for conditional Replace).
func Etag(r Record) string { return etag(r.Version) }

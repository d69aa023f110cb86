package scim

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scim2/filter-parser/v2"
)

// Rendering: a record becomes its full view (schemas, id, meta, computed
// attributes) and the view is cut down to what the client asked for
// (attributes / excludedAttributes, RFC 7644 §3.4.2.5).

// etag is the entity tag of a version (RFC 7644 §3.14): weak, as the
// representation may vary with attributes/excludedAttributes.
func etag(version int64) string { return `W/"` + strconv.FormatInt(version, 10) + `"` }

// etagMatches tells whether an If-Match / If-None-Match header value names
// the version ("*" names any). Weak and strong forms compare equal.
func etagMatches(header string, version int64) bool {
	want := strconv.FormatInt(version, 10)
	for _, tag := range strings.Split(header, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return true
		}
		tag = strings.TrimPrefix(tag, "W/")
		if strings.Trim(tag, `"`) == want {
			return true
		}
	}
	return false
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// view is the full representation of a record. groups, for users, are the
// computed group references.
func view(rt *ResourceType, r Record, base string, groups []any) map[string]any {
	v := copyDoc(r.Doc)
	v["id"] = r.ID
	schemas := []any{rt.Schema.ID}
	for _, e := range rt.Extensions {
		if _, ok := v[e.Schema.ID]; ok {
			schemas = append(schemas, e.Schema.ID)
		}
	}
	v["schemas"] = schemas
	v["meta"] = map[string]any{
		"resourceType": rt.Name,
		"created":      fmtTime(r.Created),
		"lastModified": fmtTime(r.Modified),
		"location":     location(base, rt, r.ID),
		"version":      etag(r.Version),
	}
	if len(groups) > 0 {
		v["groups"] = groups
	}
	return v
}

func location(base string, rt *ResourceType, id string) string {
	return base + rt.Endpoint + "/" + id
}

// projection is a parsed attributes or excludedAttributes parameter.
type projection struct {
	include bool
	paths   []filter.AttributePath
}

// parseProjection parses the comma-separated attribute lists; at most one
// may be given.
func parseProjection(attributes, excluded []string) (projection, error) {
	if len(attributes) > 0 && len(excluded) > 0 {
		return projection{}, badRequest(errInvalidSyntax, "attributes and excludedAttributes are mutually exclusive")
	}
	p := projection{include: len(attributes) > 0}
	list := attributes
	if !p.include {
		list = excluded
	}
	for _, item := range list {
		for _, s := range strings.Split(item, ",") {
			s = strings.TrimSpace(s)
			if s == "" {
				continue
			}
			ap, err := filter.ParseAttrPath([]byte(s))
			if err != nil {
				// A bare extension URN does not parse as an attribute path.
				fp, perr := filter.ParsePath([]byte(s))
				if perr != nil || fp.ValueExpression != nil {
					return projection{}, badRequest(errInvalidPath, "attribute list entry %q is not an attribute path", s)
				}
				ap = fp.AttributePath
			}
			p.paths = append(p.paths, ap)
		}
	}
	return p, nil
}

// apply cuts a full view down to the projection. Unknown paths are ignored.
func (p projection) apply(rt *ResourceType, v map[string]any) map[string]any {
	if len(p.paths) == 0 {
		return v
	}
	if !p.include {
		out := copyDoc(v)
		for _, ap := range p.paths {
			t, known, err := resolve(rt, ap)
			if err != nil || !known {
				continue
			}
			if t.attr == nil {
				delete(out, t.ext.ID)
				continue
			}
			if t.attr.Returned == ReturnAlways || (t.sub != nil && t.sub.Returned == ReturnAlways) {
				continue
			}
			c := t.container(out, false)
			if c == nil {
				continue
			}
			if t.sub == nil {
				delete(c, t.attr.Name)
			} else {
				dropSub(c, t.attr, t.sub)
			}
			if t.ext != nil && len(c) == 0 {
				delete(out, t.ext.ID)
			}
		}
		return out
	}
	out := map[string]any{"id": v["id"], "schemas": v["schemas"]}
	for _, ap := range p.paths {
		t, known, err := resolve(rt, ap)
		if err != nil || !known {
			continue
		}
		if t.attr == nil {
			if x, ok := v[t.ext.ID]; ok {
				out[t.ext.ID] = deepCopy(x)
			}
			continue
		}
		src := t.container(v, false)
		if src == nil || src[t.attr.Name] == nil {
			continue
		}
		dst := t.container(out, true)
		if t.sub == nil {
			dst[t.attr.Name] = deepCopy(src[t.attr.Name])
			continue
		}
		keepSub(dst, src, t.attr, t.sub)
	}
	return out
}

func dropSub(c map[string]any, a, sub *Attribute) {
	switch x := c[a.Name].(type) {
	case map[string]any:
		delete(x, sub.Name)
		if len(x) == 0 {
			delete(c, a.Name)
		}
	case []any:
		var keep []any
		for _, el := range x {
			if m, ok := el.(map[string]any); ok {
				delete(m, sub.Name)
				if len(m) == 0 {
					continue
				}
			}
			keep = append(keep, el)
		}
		setOrDelete(c, a.Name, listOrNil(keep))
	}
}

// keepSub copies sub of attribute a from src into dst, merging with what
// an earlier path of the same attribute put there (emails.value,emails.type).
func keepSub(dst, src map[string]any, a, sub *Attribute) {
	switch x := src[a.Name].(type) {
	case map[string]any:
		if x[sub.Name] == nil {
			return
		}
		m, _ := dst[a.Name].(map[string]any)
		if m == nil {
			m = map[string]any{}
			dst[a.Name] = m
		}
		m[sub.Name] = deepCopy(x[sub.Name])
	case []any:
		prev, _ := dst[a.Name].([]any)
		if len(prev) != len(x) {
			prev = make([]any, len(x))
			for i := range prev {
				prev[i] = map[string]any{}
			}
		}
		for i, el := range x {
			if m, ok := el.(map[string]any); ok && m[sub.Name] != nil {
				prev[i].(map[string]any)[sub.Name] = deepCopy(m[sub.Name])
			}
		}
		dst[a.Name] = prev
	}
}

// listResponse is a ListResponse message (RFC 7644 §3.4.2).
func listResponse(total, start int, items []any) map[string]any {
	if items == nil {
		items = []any{}
	}
	return map[string]any{
		"schemas":      []string{msgListResponse},
		"totalResults": total,
		"startIndex":   start,
		"itemsPerPage": len(items),
		"Resources":    items,
	}
}

func describe(rt *ResourceType, base string) map[string]any {
	exts := []any{}
	for _, e := range rt.Extensions {
		exts = append(exts, map[string]any{"schema": e.Schema.ID, "required": e.Required})
	}
	return map[string]any{
		"schemas":          []string{schemaResourceType},
		"id":               rt.Name,
		"name":             rt.Name,
		"endpoint":         rt.Endpoint,
		"description":      rt.Description,
		"schema":           rt.Schema.ID,
		"schemaExtensions": exts,
		"meta": map[string]any{
			"resourceType": "ResourceType",
			"location":     base + "/ResourceTypes/" + rt.Name,
		},
	}
}

func describeSchema(s *Schema, base string) map[string]any {
	return map[string]any{
		"schemas":     []string{schemaSchema},
		"id":          s.ID,
		"name":        s.Name,
		"description": s.Description,
		"attributes":  s.Attributes,
		"meta": map[string]any{
			"resourceType": "Schema",
			"location":     base + "/Schemas/" + s.ID,
		},
	}
}

func spConfig(base string, maxResults int) map[string]any {
	return map[string]any{
		"schemas":          []string{schemaSPConfig},
		"documentationUri": "https://keyfleet.dev/docs/scim",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
		"filter":           map[string]any{"supported": true, "maxResults": maxResults},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": true},
		"etag":             map[string]any{"supported": true},
		"authenticationSchemes": []any{map[string]any{
			"type":        "oauthbearertoken",
			"name":        "OAuth Bearer Token",
			"description": "Authentication with a keyfleet API token of role scim (Authorization: Bearer <token>).",
			"specUri":     "https://www.rfc-editor.org/info/rfc6750",
			"primary":     true,
		}},
		"meta": map[string]any{
			"resourceType": "ServiceProviderConfig",
			"location":     base + "/ServiceProviderConfig",
		},
	}
}

func errorf(status int, format string, args ...any) *Error {
	return &Error{Status: status, Detail: fmt.Sprintf(format, args...)}
}

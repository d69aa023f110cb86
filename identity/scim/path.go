package scim

import (
	"encoding/json"
	"strings"

	"github.com/scim2/filter-parser/v2"
)

// target is an attribute path resolved against a resource type: an
// attribute of the core schema (or a common one: id, externalId, meta), of
// an extension, or a whole extension (attr nil).
type target struct {
	ext  *Schema
	attr *Attribute
	sub  *Attribute
}

func (t target) name() string {
	s := ""
	if t.ext != nil {
		s = t.ext.ID
		if t.attr != nil {
			s += ":"
		}
	}
	if t.attr != nil {
		s += t.attr.Name
	}
	if t.sub != nil {
		s += "." + t.sub.Name
	}
	return s
}

// leaf is the attribute whose values a filter compares: the
// sub-attribute, else a complex attribute's "value", else the attribute.
func (t target) leaf() *Attribute {
	if t.sub != nil {
		return t.sub
	}
	if t.attr.complex() {
		if v := t.attr.Sub("value"); v != nil {
			return v
		}
	}
	return t.attr
}

// resolve resolves p against rt. known is false for an attribute the type
// does not define; err is an invalidPath error for a malformed path (a
// sub-attribute of a simple attribute).
func resolve(rt *ResourceType, p filter.AttributePath) (t target, known bool, err error) {
	uri, name, subName := p.URI(), p.AttributeName, p.SubAttributeName()
	var schemas []*Schema
	switch {
	case uri == "":
		schemas = []*Schema{rt.Schema, commonSchema}
	case strings.EqualFold(uri, rt.Schema.ID):
		schemas = []*Schema{rt.Schema, commonSchema}
	default:
		// "urn:...:enterprise:2.0:User" parses as URI "urn:...:2.0" and name "User".
		if ext := rt.extension(uri + ":" + name); ext != nil && subName == "" {
			return target{ext: ext}, true, nil
		}
		ext := rt.extension(uri)
		if ext == nil {
			return target{}, false, nil
		}
		t.ext = ext
		schemas = []*Schema{ext}
	}
	for _, s := range schemas {
		if a := s.Attr(name); a != nil {
			t.attr = a
			break
		}
	}
	if t.attr == nil {
		return target{}, false, nil
	}
	if subName != "" {
		if !t.attr.complex() {
			return target{}, false, badRequest(errInvalidPath, "attribute %s has no sub-attributes", t.attr.Name)
		}
		if t.sub = t.attr.Sub(subName); t.sub == nil {
			return target{}, false, nil
		}
	}
	return t, true, nil
}

// container returns the map holding t's attribute in doc: doc itself or
// the extension's object (created when create is set; nil otherwise).
func (t target) container(doc map[string]any, create bool) map[string]any {
	if t.ext == nil {
		return doc
	}
	m, _ := doc[t.ext.ID].(map[string]any)
	if m == nil && create {
		m = map[string]any{}
		doc[t.ext.ID] = m
	}
	return m
}

// values returns the leaf values of t in obj (nil values left out).
func (t target) values(obj map[string]any) []any {
	c := t.container(obj, false)
	if c == nil || t.attr == nil {
		return nil
	}
	raw := c[t.attr.Name]
	if raw == nil {
		return nil
	}
	els := []any{raw}
	if t.attr.MultiValued {
		els, _ = raw.([]any)
	}
	leaf := t.leaf()
	var out []any
	for _, el := range els {
		if leaf != t.attr {
			m, _ := el.(map[string]any)
			el = m[leaf.Name]
		}
		if el != nil {
			out = append(out, el)
		}
	}
	return out
}

// unescapeFilter decodes the JSON escapes of every compare string in e in
// place (the parser keeps them as written).
func unescapeFilter(e filter.Expression) {
	switch x := e.(type) {
	case *filter.AttributeExpression:
		if s, ok := x.CompareValue.(string); ok && strings.Contains(s, `\`) {
			var out string
			if err := json.Unmarshal([]byte(`"`+s+`"`), &out); err == nil {
				x.CompareValue = out
			}
		}
	case *filter.LogicalExpression:
		unescapeFilter(x.Left)
		unescapeFilter(x.Right)
	case *filter.NotExpression:
		unescapeFilter(x.Expression)
	case *filter.ValuePath:
		unescapeFilter(x.ValueFilter)
	}
}

// parseFilter parses a filter (RFC 7644 §3.4.2.2).
func parseFilter(s string) (filter.Expression, error) {
	e, err := filter.ParseFilter([]byte(s))
	if err != nil {
		return nil, badRequest(errInvalidFilter, "the filter is not valid SCIM filter syntax")
	}
	unescapeFilter(e)
	return e, nil
}

// parsePath parses a PATCH path (RFC 7644 §3.5.2).
func parsePath(s string) (filter.Path, error) {
	p, err := filter.ParsePath([]byte(s))
	if err != nil {
		return filter.Path{}, badRequest(errInvalidPath, "the path is not valid SCIM path syntax")
	}
	if p.ValueExpression != nil {
		unescapeFilter(p.ValueExpression)
	}
	return p, nil
}

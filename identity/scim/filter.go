package scim

import (
	"strings"
	"time"

	"github.com/scim2/filter-parser/v2"
)

// Filter evaluation (RFC 7644 §3.4.2.2) over a resource's full view (the
// stored document plus id, meta and computed attributes). A filter is
// checked once against the schemas (checkFilter) so that evaluating it
// (matches) cannot fail: unknown attributes and operators that do not fit
// an attribute's type are invalidFilter errors up front.
//
// Multi-valued attributes match when any value matches; "ne" matches when
// no value equals. A complex attribute without a sub-attribute is compared
// through its "value" sub-attribute. "eq null" and "ne null" mean absent
// and present.

// scope is where a filter's attribute paths are resolved: a resource type,
// or, inside a value filter (emails[type eq "work"]), the sub-attributes of
// a complex attribute.
type scope struct {
	rt     *ResourceType
	parent *Attribute
}

func (s scope) lookup(p filter.AttributePath) (target, bool, error) {
	if s.parent == nil {
		return resolve(s.rt, p)
	}
	if p.URIPrefix != nil || p.SubAttribute != nil {
		return target{}, false, badRequest(errInvalidFilter, "a value filter of %s names only its sub-attributes", s.parent.Name)
	}
	sub := s.parent.Sub(p.AttributeName)
	if sub == nil {
		return target{}, false, nil
	}
	return target{attr: sub}, true, nil
}

// checkFilter validates e against every resource type in rts: it must
// check against at least one (a search across types may name attributes
// only one of them has).
func checkFilter(rts []*ResourceType, e filter.Expression) error {
	var first error
	for _, rt := range rts {
		err := scope{rt: rt}.check(e)
		if err == nil {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (s scope) check(e filter.Expression) error {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if err := s.check(x.Left); err != nil {
			return err
		}
		return s.check(x.Right)
	case *filter.NotExpression:
		return s.check(x.Expression)
	case *filter.ValuePath:
		t, known, err := s.lookup(x.AttributePath)
		if err != nil {
			return err
		}
		if !known {
			return badRequest(errInvalidFilter, "unknown attribute %s", x.AttributePath.String())
		}
		if t.attr == nil || t.sub != nil || !t.attr.complex() {
			return badRequest(errInvalidFilter, "a value filter needs a complex attribute, not %s", t.name())
		}
		return scope{rt: s.rt, parent: t.attr}.check(x.ValueFilter)
	case *filter.AttributeExpression:
		t, known, err := s.lookup(x.AttributePath)
		if err != nil {
			return err
		}
		if !known {
			return badRequest(errInvalidFilter, "unknown attribute %s", x.AttributePath.String())
		}
		if t.attr == nil {
			return badRequest(errInvalidFilter, "%s names a schema, not an attribute", t.name())
		}
		return checkCompare(t, x.Operator, x.CompareValue)
	}
	return badRequest(errInvalidFilter, "unsupported filter expression")
}

func checkCompare(t target, op filter.CompareOperator, cv any) error {
	leaf := t.leaf()
	bad := func(why string) error {
		return badRequest(errInvalidFilter, "%s %s: %s", t.name(), op, why)
	}
	if op == filter.PR {
		return nil
	}
	if cv == nil {
		if op == filter.EQ || op == filter.NE {
			return nil
		}
		return bad("null compares only with eq and ne")
	}
	ordering := op == filter.GT || op == filter.GE || op == filter.LT || op == filter.LE
	substring := op == filter.CO || op == filter.SW || op == filter.EW
	switch leaf.Type {
	case TypeString, TypeReference, TypeBinary:
		if _, ok := cv.(string); !ok {
			return bad("the value must be a string")
		}
		if leaf.Type == TypeBinary && (ordering || substring) {
			return bad("binary attributes compare with eq and ne only")
		}
	case TypeBoolean:
		if _, ok := asBool(cv); !ok {
			return bad("the value must be true or false")
		}
		if ordering || substring {
			return bad("booleans compare with eq and ne only")
		}
	case TypeInteger, TypeDecimal:
		if _, ok := toFloat(cv); !ok {
			return bad("the value must be a number")
		}
		if substring {
			return bad("numbers do not compare with co, sw or ew")
		}
	case TypeDateTime:
		s, ok := cv.(string)
		if !ok {
			return bad("the value must be an RFC 3339 date-time string")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return bad("the value must be an RFC 3339 date-time string")
		}
		if substring {
			return bad("date-times do not compare with co, sw or ew")
		}
	case TypeComplex:
		return bad("a complex attribute is tested with pr only")
	}
	return nil
}

func asBool(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		switch {
		case strings.EqualFold(b, "true"):
			return true, true
		case strings.EqualFold(b, "false"):
			return false, true
		}
	}
	return false, false
}

// matches evaluates a checked filter against a resource view.
func (s scope) matches(e filter.Expression, obj map[string]any) bool {
	switch x := e.(type) {
	case *filter.LogicalExpression:
		if x.Operator == filter.AND {
			return s.matches(x.Left, obj) && s.matches(x.Right, obj)
		}
		return s.matches(x.Left, obj) || s.matches(x.Right, obj)
	case *filter.NotExpression:
		return !s.matches(x.Expression, obj)
	case *filter.ValuePath:
		t, known, err := s.lookup(x.AttributePath)
		if err != nil || !known || t.attr == nil {
			return false
		}
		inner := scope{rt: s.rt, parent: t.attr}
		for _, el := range elements(t, obj) {
			if inner.matches(x.ValueFilter, el) {
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		t, known, err := s.lookup(x.AttributePath)
		if err != nil || !known || t.attr == nil {
			return false
		}
		vals := t.values(obj)
		switch {
		case x.Operator == filter.PR:
			return len(vals) > 0
		case x.CompareValue == nil && x.Operator == filter.EQ:
			return len(vals) == 0
		case x.CompareValue == nil && x.Operator == filter.NE:
			return len(vals) > 0
		case x.Operator == filter.NE:
			for _, v := range vals {
				if compare(t.leaf(), filter.EQ, v, x.CompareValue) {
					return false
				}
			}
			return true
		}
		for _, v := range vals {
			if compare(t.leaf(), x.Operator, v, x.CompareValue) {
				return true
			}
		}
		return false
	}
	return false
}

// elements returns the complex values of t in obj.
func elements(t target, obj map[string]any) []map[string]any {
	c := t.container(obj, false)
	if c == nil {
		return nil
	}
	raw := c[t.attr.Name]
	var out []map[string]any
	switch x := raw.(type) {
	case map[string]any:
		out = append(out, x)
	case []any:
		for _, el := range x {
			if m, ok := el.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out
}

// compare applies op (not pr, not ne) to an attribute value and a filter value.
func compare(a *Attribute, op filter.CompareOperator, v, cv any) bool {
	switch a.Type {
	case TypeString, TypeReference, TypeBinary:
		s, ok1 := v.(string)
		c, ok2 := cv.(string)
		if !ok1 || !ok2 {
			return false
		}
		if !a.CaseExact {
			s, c = strings.ToLower(s), strings.ToLower(c)
		}
		switch op {
		case filter.EQ:
			return s == c
		case filter.CO:
			return strings.Contains(s, c)
		case filter.SW:
			return strings.HasPrefix(s, c)
		case filter.EW:
			return strings.HasSuffix(s, c)
		}
		return ordered(op, strings.Compare(s, c))
	case TypeBoolean:
		b, ok1 := v.(bool)
		c, ok2 := asBool(cv)
		return ok1 && ok2 && op == filter.EQ && b == c
	case TypeInteger, TypeDecimal:
		f, ok1 := toFloat(v)
		c, ok2 := toFloat(cv)
		if !ok1 || !ok2 {
			return false
		}
		switch {
		case f < c:
			return ordered(op, -1)
		case f > c:
			return ordered(op, 1)
		}
		return ordered(op, 0)
	case TypeDateTime:
		s, ok1 := v.(string)
		c, ok2 := cv.(string)
		if !ok1 || !ok2 {
			return false
		}
		tv, err1 := time.Parse(time.RFC3339Nano, s)
		tc, err2 := time.Parse(time.RFC3339Nano, c)
		if err1 != nil || err2 != nil {
			return false
		}
		return ordered(op, tv.Compare(tc))
	}
	return false
}

// ordered tells whether a three-way comparison result satisfies op.
func ordered(op filter.CompareOperator, c int) bool {
	switch op {
	case filter.EQ:
		return c == 0
	case filter.GT:
		return c > 0
	case filter.GE:
		return c >= 0
	case filter.LT:
		return c < 0
	case filter.LE:
		return c <= 0
	}
	return false
}

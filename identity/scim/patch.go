package scim

import (
	"encoding/json"
	"strings"

	"github.com/scim2/filter-parser/v2"
)

// PATCH (RFC 7644 §3.5.2) applied to a stored document, with the quirks
// identity providers are known for:
//   - op names in any case ("Replace", "Add");
//   - booleans as strings ("active": "False");
//   - add/replace without a path whose value keys are attribute paths
//     ("name.givenName", "urn:...:enterprise:2.0:User:department");
//   - add/replace with a value filter that matches nothing
//     (emails[type eq "work"].value) creates the value the filter describes
//     when the filter is a conjunction of eq tests;
//   - remove of members with a value list instead of a filter (Entra ID);
//   - the enterprise manager given as a bare id string.
// Removing something that is not there is a no-op, so retried requests
// succeed. Attributes keyfleet does not keep are ignored (counted), as on
// POST and PUT.

type patchRequest struct {
	Schemas    []string    `json:"schemas"`
	Operations []patchOpIn `json:"Operations"`
}

type patchOpIn struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

type patcher struct {
	rt      *ResourceType
	doc     map[string]any
	ignored int
}

// applyPatch applies the operations to a copy of doc and returns it.
func applyPatch(rt *ResourceType, doc map[string]any, ops []patchOpIn) (map[string]any, int, error) {
	p := &patcher{rt: rt, doc: copyDoc(doc)}
	for i, op := range ops {
		var value any
		hasValue := len(op.Value) > 0
		if hasValue {
			v, err := decodeJSON(op.Value)
			if err != nil {
				return nil, 0, badRequest(errInvalidSyntax, "operation %d: the value is not valid JSON", i+1)
			}
			value = v
		}
		var err error
		switch strings.ToLower(op.Op) {
		case "add":
			if !hasValue {
				return nil, 0, badRequest(errInvalidValue, "operation %d: add needs a value", i+1)
			}
			err = p.op("add", op.Path, value, true)
		case "replace":
			if !hasValue {
				return nil, 0, badRequest(errInvalidValue, "operation %d: replace needs a value", i+1)
			}
			err = p.op("replace", op.Path, value, true)
		case "remove":
			err = p.op("remove", op.Path, value, hasValue && value != nil)
		default:
			return nil, 0, badRequest(errInvalidSyntax, "operation %d: op must be add, replace or remove", i+1)
		}
		if err != nil {
			return nil, 0, err
		}
	}
	return p.doc, p.ignored, nil
}

func (p *patcher) op(op, path string, value any, hasValue bool) error {
	if path == "" {
		if op == "remove" {
			return badRequest(errNoTarget, "remove needs a path")
		}
		m, ok := value.(map[string]any)
		if !ok {
			return badRequest(errInvalidValue, "%s without a path needs an object value", op)
		}
		for k, v := range m {
			switch strings.ToLower(k) {
			case "schemas", "id", "meta":
				continue
			}
			if ext := p.rt.extension(k); ext != nil {
				if err := p.whole(op, ext, v); err != nil {
					return err
				}
				continue
			}
			pp, err := parsePath(k)
			if err != nil {
				return err
			}
			if err := p.at(op, pp, v, true, true); err != nil {
				return err
			}
		}
		return nil
	}
	pp, err := parsePath(path)
	if err != nil {
		return err
	}
	return p.at(op, pp, value, hasValue, false)
}

// whole applies an operation to a whole extension.
func (p *patcher) whole(op string, ext *Schema, value any) error {
	if op == "remove" {
		delete(p.doc, ext.ID)
		return nil
	}
	if value == nil {
		if op == "replace" {
			delete(p.doc, ext.ID)
		}
		return nil
	}
	m, ok := value.(map[string]any)
	if !ok {
		return badRequest(errInvalidValue, "extension %s: expected an object", ext.ID)
	}
	for k, v := range m {
		a := ext.Attr(k)
		if a == nil || a.Mutability == ReadOnly {
			p.ignored++
			continue
		}
		if err := p.attr(op, target{ext: ext, attr: a}, nil, v, true); err != nil {
			return err
		}
	}
	return nil
}

// at applies an operation at a parsed path. lenient (keys of a path-less
// value) ignores read-only attributes instead of refusing them.
func (p *patcher) at(op string, pp filter.Path, value any, hasValue, lenient bool) error {
	ap := pp.AttributePath
	var valueFilter filter.Expression = pp.ValueExpression
	if pp.SubAttribute != nil {
		if ap.SubAttribute != nil {
			return badRequest(errInvalidPath, "the path names two sub-attributes")
		}
		ap.SubAttribute = pp.SubAttribute
	}
	t, known, err := resolve(p.rt, ap)
	if err != nil {
		return err
	}
	if !known {
		p.ignored++
		return nil
	}
	if t.attr == nil {
		if valueFilter != nil {
			return badRequest(errInvalidPath, "a schema URN takes no value filter")
		}
		return p.whole(op, t.ext, value)
	}
	if t.attr.Mutability == ReadOnly || (t.sub != nil && t.sub.Mutability == ReadOnly) {
		if lenient {
			return nil
		}
		return badRequest(errMutability, "attribute %s is read-only", t.name())
	}
	if valueFilter != nil {
		if !t.attr.complex() || !t.attr.MultiValued {
			return badRequest(errInvalidPath, "a value filter needs a multi-valued complex attribute, not %s", t.attr.Name)
		}
		if err := (scope{rt: p.rt, parent: t.attr}).check(valueFilter); err != nil {
			return badRequest(errInvalidPath, "%s", err.(*Error).Detail)
		}
	}
	return p.attr(op, t, valueFilter, value, hasValue)
}

// attr applies an operation to a resolved attribute (with optional value
// filter and sub-attribute).
func (p *patcher) attr(op string, t target, vf filter.Expression, value any, hasValue bool) error {
	a := t.attr
	c := t.container(p.doc, true)
	defer func() {
		if t.ext != nil && len(c) == 0 {
			delete(p.doc, t.ext.ID)
		}
	}()
	if a.Mutability == Immutable && op != "add" {
		return badRequest(errMutability, "attribute %s is immutable", t.name())
	}
	if a.Mutability == Immutable && c[a.Name] != nil {
		return badRequest(errMutability, "attribute %s is immutable and already set", t.name())
	}
	switch {
	case !a.MultiValued && t.sub == nil:
		return p.single(op, c, a, value, t.name())
	case !a.MultiValued:
		m, _ := c[a.Name].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		if op == "remove" {
			delete(m, t.sub.Name)
		} else {
			nv, err := normValue(t.sub, value, t.name())
			if err != nil {
				return err
			}
			setOrDelete(m, t.sub.Name, nv)
		}
		setOrDelete(c, a.Name, emptyNil(m))
		return nil
	case vf == nil && t.sub == nil:
		return p.multi(op, c, a, value, hasValue, t.name())
	}
	return p.filtered(op, c, t, vf, value)
}

// single: a single-valued attribute (simple or complex) without sub-attribute.
func (p *patcher) single(op string, c map[string]any, a *Attribute, value any, name string) error {
	if op == "remove" {
		delete(c, a.Name)
		return nil
	}
	nv, err := normValue(a, value, name)
	if err != nil {
		return err
	}
	if a.complex() && nv != nil {
		// add and replace of a complex attribute merge sub-attributes (§3.5.2.1, §3.5.2.3).
		m, _ := c[a.Name].(map[string]any)
		m = copyDoc(m)
		for k, v := range nv.(map[string]any) {
			m[k] = v
		}
		nv = m
	}
	setOrDelete(c, a.Name, nv)
	return nil
}

// multi: a whole multi-valued attribute.
func (p *patcher) multi(op string, c map[string]any, a *Attribute, value any, hasValue bool, name string) error {
	cur, _ := c[a.Name].([]any)
	switch op {
	case "remove":
		if !hasValue {
			delete(c, a.Name)
			return nil
		}
		// Entra ID: remove members given as a value list.
		rm, err := normValue(a, value, name)
		if err != nil {
			return err
		}
		rml, _ := rm.([]any)
		var keep []any
		for _, el := range cur {
			if !containsValue(a, rml, el) {
				keep = append(keep, el)
			}
		}
		setOrDelete(c, a.Name, listOrNil(keep))
		return nil
	case "replace":
		nv, err := normValue(a, value, name)
		if err != nil {
			return err
		}
		setOrDelete(c, a.Name, nv)
		return nil
	}
	nv, err := normValue(a, value, name)
	if err != nil {
		return err
	}
	add, _ := nv.([]any)
	if hasPrimary(add) {
		clearPrimary(cur)
	}
	for _, el := range add {
		if !containsValue(a, cur, el) {
			cur = append(cur, el)
		}
	}
	setOrDelete(c, a.Name, listOrNil(cur))
	return nil
}

// filtered: a multi-valued complex attribute with a value filter and/or a
// sub-attribute.
func (p *patcher) filtered(op string, c map[string]any, t target, vf filter.Expression, value any) error {
	a := t.attr
	cur, _ := c[a.Name].([]any)
	in := scope{parent: a}
	var hit []int
	for i, el := range cur {
		m, _ := el.(map[string]any)
		if m != nil && (vf == nil || in.matches(vf, m)) {
			hit = append(hit, i)
		}
	}
	if t.sub != nil && t.sub.Mutability == Immutable && (op != "add" || len(hit) > 0) {
		return badRequest(errMutability, "attribute %s is immutable", t.name())
	}
	switch op {
	case "remove":
		var keep []any
		for i, el := range cur {
			if !containsInt(hit, i) {
				keep = append(keep, el)
				continue
			}
			if t.sub != nil {
				m := el.(map[string]any)
				delete(m, t.sub.Name)
				if len(m) > 0 {
					keep = append(keep, m)
				}
			}
		}
		setOrDelete(c, a.Name, listOrNil(keep))
		return nil
	}
	// add or replace
	var nv any
	var err error
	if t.sub != nil {
		nv, err = normValue(t.sub, value, t.name())
	} else {
		nv, err = normSingle(a, value, t.name())
	}
	if err != nil {
		return err
	}
	if len(hit) == 0 {
		if vf == nil {
			if nv == nil {
				return nil
			}
			el := map[string]any{}
			if t.sub != nil {
				el[t.sub.Name] = nv
			}
			cur = append(cur, el)
			setOrDelete(c, a.Name, cur)
			return nil
		}
		el, ok := fromEqFilter(a, vf)
		if !ok {
			return badRequest(errNoTarget, "the value filter of %s matches no value", t.name())
		}
		if nv == nil {
			return nil
		}
		if t.sub != nil {
			el[t.sub.Name] = nv
		} else {
			for k, v := range nv.(map[string]any) {
				el[k] = v
			}
		}
		if el["primary"] == true {
			clearPrimary(cur)
		}
		setOrDelete(c, a.Name, append(cur, el))
		return nil
	}
	for _, i := range hit {
		m := cur[i].(map[string]any)
		switch {
		case t.sub != nil:
			setOrDelete(m, t.sub.Name, nv)
		case op == "replace" && nv != nil:
			cur[i] = nv
		case nv != nil:
			for k, v := range nv.(map[string]any) {
				m[k] = v
			}
		default:
			cur[i] = map[string]any{}
		}
	}
	var keep []any
	for _, el := range cur {
		if m, ok := el.(map[string]any); ok && len(m) > 0 {
			keep = append(keep, el)
		}
	}
	setOrDelete(c, a.Name, listOrNil(keep))
	return nil
}

// fromEqFilter builds the value a conjunction of eq tests describes
// (type eq "work" and primary eq true).
func fromEqFilter(a *Attribute, e filter.Expression) (map[string]any, bool) {
	out := map[string]any{}
	var walk func(e filter.Expression) bool
	walk = func(e filter.Expression) bool {
		switch x := e.(type) {
		case *filter.LogicalExpression:
			return x.Operator == filter.AND && walk(x.Left) && walk(x.Right)
		case *filter.AttributeExpression:
			if x.Operator != filter.EQ || x.AttributePath.SubAttribute != nil || x.CompareValue == nil {
				return false
			}
			sub := a.Sub(x.AttributePath.AttributeName)
			if sub == nil {
				return false
			}
			nv, err := normSingle(sub, x.CompareValue, sub.Name)
			if err != nil || nv == nil {
				return false
			}
			out[sub.Name] = nv
			return true
		}
		return false
	}
	return out, walk(e)
}

// containsValue tells whether list holds v: complex values with a "value"
// sub-attribute are the same when their values are (members, e-mails).
func containsValue(a *Attribute, list []any, v any) bool {
	key := func(x any) (string, bool) {
		if a.complex() && a.Sub("value") != nil {
			m, _ := x.(map[string]any)
			s, ok := m["value"].(string)
			if !ok {
				return "", false
			}
			if !a.Sub("value").CaseExact {
				s = strings.ToLower(s)
			}
			return s, true
		}
		return "", false
	}
	kv, hasKey := key(v)
	for _, el := range list {
		if hasKey {
			if ke, ok := key(el); ok && ke == kv {
				return true
			}
			continue
		}
		if jsonEqual(el, v) {
			return true
		}
	}
	return false
}

func hasPrimary(list []any) bool {
	for _, el := range list {
		if m, ok := el.(map[string]any); ok && m["primary"] == true {
			return true
		}
	}
	return false
}

// clearPrimary sets primary to false on existing values when a new primary
// value arrives (RFC 7644 §3.5.2).
func clearPrimary(list []any) {
	for _, el := range list {
		if m, ok := el.(map[string]any); ok && m["primary"] == true {
			m["primary"] = false
		}
	}
}

func listOrNil(l []any) any {
	if len(l) == 0 {
		return nil
	}
	return l
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

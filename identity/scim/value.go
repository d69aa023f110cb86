package scim

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/scim2/filter-parser/v2"
)

// Input normalisation: what a client sends is turned into the canonical
// stored form (canonical attribute names, json.Number numbers, booleans
// from "True"/"False" strings as Entra ID sends them), checked against the
// attribute's type. Attributes the schema does not define are dropped
// (identity providers send far more than keyfleet keeps); read-only ones
// are ignored on input (RFC 7644 §3.3). Errors name the attribute, never
// the value.

// normValue normalises a value for attribute a; nil means unassigned.
func normValue(a *Attribute, v any, name string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if !a.MultiValued {
		return normSingle(a, v, name)
	}
	in, ok := v.([]any)
	if !ok {
		in = []any{v}
	}
	var out []any
	for _, el := range in {
		nv, err := normSingle(a, el, name)
		if err != nil {
			return nil, err
		}
		if nv != nil {
			out = append(out, nv)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

func normSingle(a *Attribute, v any, name string) (any, error) {
	if v == nil {
		return nil, nil
	}
	bad := func(want string) (any, error) {
		return nil, badRequest(errInvalidValue, "attribute %s: expected %s", name, want)
	}
	switch a.Type {
	case TypeComplex:
		m, ok := v.(map[string]any)
		if !ok {
			// Entra ID sends the enterprise manager as a bare id string.
			if s, isStr := v.(string); isStr && a.Sub("value") != nil {
				m = map[string]any{"value": s}
			} else {
				return bad("an object")
			}
		}
		out := map[string]any{}
		for k, sv := range m {
			sub := a.Sub(k)
			if sub == nil || sub.Mutability == ReadOnly {
				continue
			}
			nv, err := normValue(sub, sv, name+"."+sub.Name)
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out[sub.Name] = nv
			}
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	case TypeString:
		s, ok := v.(string)
		if !ok {
			return bad("a string")
		}
		if s == "" {
			return nil, nil
		}
		return s, nil
	case TypeReference:
		s, ok := v.(string)
		if !ok {
			return bad("a reference (string)")
		}
		if s == "" {
			return nil, nil
		}
		return s, nil
	case TypeBoolean:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			switch {
			case strings.EqualFold(b, "true"):
				return true, nil
			case strings.EqualFold(b, "false"):
				return false, nil
			}
		}
		return bad("a boolean")
	case TypeInteger:
		n, ok := asNumber(v)
		if !ok {
			return bad("an integer")
		}
		i, err := n.Int64()
		if err != nil {
			return bad("an integer")
		}
		return json.Number(strconv.FormatInt(i, 10)), nil
	case TypeDecimal:
		n, ok := asNumber(v)
		if !ok {
			return bad("a decimal")
		}
		if _, err := n.Float64(); err != nil {
			return bad("a decimal")
		}
		return n, nil
	case TypeDateTime:
		s, ok := v.(string)
		if !ok {
			return bad("a dateTime (RFC 3339 string)")
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return bad("a dateTime (RFC 3339 string)")
		}
		return s, nil
	case TypeBinary:
		s, ok := v.(string)
		if !ok {
			return bad("base64 binary")
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return bad("base64 binary")
		}
		return s, nil
	}
	return bad("a known type")
}

func asNumber(v any) (json.Number, bool) {
	switch n := v.(type) {
	case json.Number:
		return n, true
	case float64:
		return json.Number(strconv.FormatFloat(n, 'g', -1, 64)), true
	case int:
		return json.Number(strconv.Itoa(n)), true
	case int64:
		return json.Number(strconv.FormatInt(n, 10)), true
	}
	return "", false
}

func toFloat(v any) (float64, bool) {
	n, ok := asNumber(v)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}

// normDoc normalises a whole resource body (POST, PUT). ignored counts the
// attributes dropped because the schema does not define them.
func normDoc(rt *ResourceType, in map[string]any) (doc map[string]any, ignored int, err error) {
	doc = map[string]any{}
	for k, v := range in {
		switch strings.ToLower(k) {
		case "schemas", "id", "meta":
			continue
		case "externalid":
			nv, err := normValue(commonSchema.Attr("externalId"), v, "externalId")
			if err != nil {
				return nil, 0, err
			}
			setOrDelete(doc, "externalId", nv)
			continue
		}
		if ext := rt.extension(k); ext != nil {
			m, ok := v.(map[string]any)
			if v != nil && !ok {
				return nil, 0, badRequest(errInvalidValue, "extension %s: expected an object", ext.ID)
			}
			em := map[string]any{}
			for sk, sv := range m {
				a := ext.Attr(sk)
				if a == nil || a.Mutability == ReadOnly {
					ignored++
					continue
				}
				nv, err := normValue(a, sv, a.Name)
				if err != nil {
					return nil, 0, err
				}
				setOrDelete(em, a.Name, nv)
			}
			setOrDelete(doc, ext.ID, emptyNil(em))
			continue
		}
		t, known := resolveKey(rt, k)
		if !known || t.attr.Mutability == ReadOnly {
			ignored++
			continue
		}
		nv, err := normValue(t.attr, v, t.attr.Name)
		if err != nil {
			return nil, 0, err
		}
		c := t.container(doc, true)
		setOrDelete(c, t.attr.Name, nv)
		if t.ext != nil {
			setOrDelete(doc, t.ext.ID, emptyNil(c))
		}
	}
	return doc, ignored, nil
}

// resolveKey resolves a body key: a core attribute name, or one qualified
// with its schema URN (urn:...:enterprise:2.0:User:department).
func resolveKey(rt *ResourceType, k string) (target, bool) {
	if a := rt.Schema.Attr(k); a != nil {
		return target{attr: a}, true
	}
	if !strings.Contains(k, ":") {
		return target{}, false
	}
	p, err := filter.ParsePath([]byte(k))
	if err != nil || p.ValueExpression != nil || p.SubAttribute != nil || p.AttributePath.SubAttribute != nil {
		return target{}, false
	}
	t, known, err := resolve(rt, p.AttributePath)
	if err != nil || !known || t.attr == nil {
		return target{}, false
	}
	return t, true
}

func setOrDelete(m map[string]any, k string, v any) {
	if v == nil {
		delete(m, k)
		return
	}
	m[k] = v
}

// emptyNil returns nil for an empty map so that setOrDelete drops it.
func emptyNil(m map[string]any) any {
	if len(m) == 0 {
		return nil
	}
	return m
}

// checkDoc enforces what must hold for a stored document: required
// attributes present, "primary" true at most once per multi-valued attribute.
func checkDoc(rt *ResourceType, doc map[string]any) error {
	check := func(s *Schema, c map[string]any) error {
		for _, a := range s.Attributes {
			v, ok := c[a.Name]
			if a.Required && (!ok || v == nil) {
				return badRequest(errInvalidValue, "attribute %s is required", a.Name)
			}
			if a.MultiValued && a.Sub("primary") != nil {
				n := 0
				els, _ := v.([]any)
				for _, el := range els {
					if m, ok := el.(map[string]any); ok && m["primary"] == true {
						n++
					}
				}
				if n > 1 {
					return badRequest(errInvalidValue, "attribute %s: primary may be true for one value only", a.Name)
				}
			}
		}
		return nil
	}
	if err := check(rt.Schema, doc); err != nil {
		return err
	}
	for _, e := range rt.Extensions {
		m, _ := doc[e.Schema.ID].(map[string]any)
		if m == nil && !e.Required {
			continue
		}
		if m == nil {
			m = map[string]any{}
		}
		if err := check(e.Schema, m); err != nil {
			return err
		}
	}
	return nil
}

// deepCopy copies a JSON-shaped value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

func copyDoc(doc map[string]any) map[string]any {
	if doc == nil {
		return map[string]any{}
	}
	return deepCopy(doc).(map[string]any)
}

func jsonEqual(a, b any) bool { return reflect.DeepEqual(a, b) }

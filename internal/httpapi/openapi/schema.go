package openapi

import (
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Fields refine a schema reflected from a Go type, keyed by the JSON path
// of a property: "role", "attestation.format", "refs[].vendor" (an array's
// items are "name[]"). A path that names no property panics: descriptions
// must not drift from the types they describe.
type Fields map[string]Field

// Field refines one property of a reflected schema.
type Field struct {
	Description string
	Enum        []string
	Pattern     string
	Format      string
	Min, Max    *float64 // numbers
	MinLength   int
	MaxLength   int
	MinItems    int
	MaxItems    int
	// Required: a request body must have the property (request schemas
	// list only these; response schemas list every property Go always
	// encodes).
	Required bool
	// Nullable: the property may be JSON null.
	Nullable bool
	Example  any
	// Schema replaces the reflected schema of the property entirely.
	Schema map[string]any
}

// Num returns a pointer to v, for Field.Min and Field.Max.
func Num(v float64) *float64 { return &v }

// RequestSchema returns the JSON schema of a request body that decodes into v:
// objects refuse properties they do not have (the handlers decode
// strictly), and a property is required only when fields say so. It panics
// when fields name a property v does not have.
func RequestSchema(v any, fields Fields) map[string]any {
	r := reflector{fields: fields, used: map[string]bool{}, request: true}
	s := r.schema(reflect.TypeOf(v), "", 0)
	r.check()
	return s
}

// ResponseSchema returns the JSON schema of what encoding/json makes of v:
// properties without omitempty are required, and nil slices, maps and
// pointers Go may encode as null are nullable. It panics when fields name
// a property v does not have.
func ResponseSchema(v any, fields Fields) map[string]any {
	r := reflector{fields: fields, used: map[string]bool{}}
	s := r.schema(reflect.TypeOf(v), "", 0)
	r.check()
	return s
}

type reflector struct {
	fields  Fields
	used    map[string]bool
	request bool
}

func (r *reflector) check() {
	var unknown []string
	for k := range r.fields {
		if !r.used[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		panic(fmt.Sprintf("openapi: fields name no property: %s", strings.Join(unknown, ", ")))
	}
}

var (
	timeType          = reflect.TypeOf(time.Time{})
	rawType           = reflect.TypeOf(json.RawMessage{})
	jsonMarshalerType = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
	textMarshalerType = reflect.TypeOf((*encoding.TextMarshaler)(nil)).Elem()
)

// schema reflects t at a JSON path.
func (r *reflector) schema(t reflect.Type, path string, depth int) map[string]any {
	if f, ok := r.fields[path]; ok {
		r.used[path] = true
		if f.Schema != nil {
			return f.Schema
		}
	}
	s := r.base(t, path, depth)
	if f, ok := r.fields[path]; ok {
		apply(s, f)
	}
	return s
}

func (r *reflector) base(t reflect.Type, path string, depth int) map[string]any {
	if depth > 12 {
		return map[string]any{}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t == rawType || t.Kind() == reflect.Interface:
		return map[string]any{}
	case t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType):
		return map[string]any{}
	case t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		// The type's range: a number beyond it does not decode (400).
		bits := t.Bits()
		return map[string]any{"type": "integer", "minimum": int64(-1) << (bits - 1), "maximum": int64(uint64(1)<<(bits-1) - 1)}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": uint64(1)<<(t.Bits()-1) - 1 + uint64(1)<<(t.Bits()-1)}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && t.Kind() == reflect.Slice {
			return map[string]any{"type": "string", "format": "byte"}
		}
		items := r.schema(t.Elem(), path+"[]", depth+1)
		// encoding/json decodes a null item of scalars into the zero value;
		// an item the fields constrain (or an object) is checked by the
		// handler, which refuses the zero value.
		if _, constrained := r.fields[path+"[]"]; r.request && !constrained && scalar(t.Elem()) {
			items = clone(items)
			items["nullable"] = true
		}
		return map[string]any{"type": "array", "items": items}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": r.schema(t.Elem(), path+"{}", depth+1)}
	case reflect.Struct:
		return r.object(t, path, depth)
	}
	return map[string]any{}
}

func (r *reflector) object(t reflect.Type, path string, depth int) map[string]any {
	props := map[string]any{}
	var required []string
	r.properties(t, path, depth, props, &required)
	s := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		sort.Strings(required)
		s["required"] = required
	}
	if r.request {
		s["additionalProperties"] = false
	}
	return s
}

// properties adds t's JSON properties (embedded structs flattened, as
// encoding/json does).
func (r *reflector) properties(t reflect.Type, path string, depth int, props map[string]any, required *[]string) {
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				r.properties(et, path, depth, props, required)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		p := name
		if path != "" {
			p = path + "." + name
		}
		s := r.schema(ft, p, depth+1)
		omit := strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")
		// encoding/json decodes null into any property (leaving the zero
		// value): an optional property may be null, as if it were absent.
		if r.request && !r.fields[p].Required {
			if _, ok := s["$ref"]; !ok {
				s = clone(s)
				s["nullable"] = true
				if enum, ok := s["enum"].([]string); ok { // OpenAPI 3.0: null must be one of the values
					vals := []any{nil}
					for _, e := range enum {
						vals = append(vals, e)
					}
					s["enum"] = vals
				}
			}
		}
		if !r.request && !omit && nullable(ft) {
			if _, ok := s["$ref"]; !ok {
				s = clone(s)
				s["nullable"] = true
			}
		}
		props[name] = s
		f := r.fields[p]
		if r.request && f.Required || !r.request && !omit {
			*required = append(*required, name)
		}
	}
}

// scalar reports whether t encodes as a JSON string, number or boolean.
func scalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// nullable reports whether encoding/json may write null for a value of t.
func nullable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface:
		return t != rawType
	}
	return false
}

func clone(s map[string]any) map[string]any {
	out := make(map[string]any, len(s)+1)
	for k, v := range s {
		out[k] = v
	}
	return out
}

func apply(s map[string]any, f Field) {
	if f.Description != "" {
		s["description"] = f.Description
	}
	if len(f.Enum) > 0 {
		s["enum"] = f.Enum
	}
	if f.Pattern != "" {
		s["pattern"] = f.Pattern
	}
	if f.Format != "" {
		s["format"] = f.Format
	}
	if f.Min != nil {
		s["minimum"] = *f.Min
	}
	if f.Max != nil {
		s["maximum"] = *f.Max
	}
	if f.MinLength > 0 {
		s["minLength"] = f.MinLength
	}
	if f.MaxLength > 0 {
		s["maxLength"] = f.MaxLength
	}
	if f.MinItems > 0 {
		s["minItems"] = f.MinItems
	}
	if f.MaxItems > 0 {
		s["maxItems"] = f.MaxItems
	}
	if f.Nullable {
		s["nullable"] = true
	}
	if f.Example != nil {
		s["example"] = f.Example
	}
}

// JSON is the content map of an application/json body or response.
func JSON(schema map[string]any) map[string]map[string]any {
	return map[string]map[string]any{"application/json": schema}
}

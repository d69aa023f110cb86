// Package difftest supports the differential tests that hold the adapters'
// hand-written decoders to encoding/json.
package difftest

import (
	"encoding/json"
	"reflect"
	"strings"
)

// Ambiguous reports whether data has an object key that encoding/json would
// match to one of t's JSON field names only case-insensitively (a key the
// exact-match decoders ignore on purpose), so the two readings differ by
// design. t is a struct type; nested struct and slice-of-struct fields count.
func Ambiguous(data []byte, t reflect.Type) bool {
	names := map[string]bool{}
	collect(t, names, map[reflect.Type]bool{})
	var v any
	if json.Unmarshal(data, &v) != nil {
		return false
	}
	return walk(v, names)
}

func collect(t reflect.Type, names map[string]bool, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || seen[t] {
		return
	}
	seen[t] = true
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		names[name] = true
		collect(f.Type, names, seen)
	}
}

func walk(v any, names map[string]bool) bool {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if !names[k] {
				for n := range names {
					if strings.EqualFold(k, n) {
						return true
					}
				}
			}
			if walk(x, names) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if walk(x, names) {
				return true
			}
		}
	}
	return false
}

package openapi

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Check lists what an OpenAPI document built by Build leaves undescribed
// (empty when it is complete):
//   - a POST, PUT or PATCH operation without a request body schema (unless
//     its Operation says NoBody);
//   - an operation without a success (2xx) response, or a success response
//     other than 204 without a content schema;
//   - a request body or success response schema that says nothing: no type
//     or reference, an object without properties (or additionalProperties),
//     an array without items.
func Check(doc []byte) ([]string, error) {
	var d struct {
		Paths map[string]map[string]struct {
			NoBody      bool `json:"x-no-body"`
			NoSuccess   bool `json:"x-no-success"`
			RequestBody *struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"requestBody"`
			Responses map[string]struct {
				Content map[string]struct {
					Schema map[string]any `json:"schema"`
				} `json:"content"`
			} `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("openapi check: %w", err)
	}
	var out []string
	for path, ops := range d.Paths {
		for method, op := range ops {
			name := strings.ToUpper(method) + " " + path
			switch strings.ToUpper(method) {
			case "POST", "PUT", "PATCH":
				switch {
				case op.RequestBody == nil && !op.NoBody:
					out = append(out, name+": no request body schema")
				case op.RequestBody != nil && len(op.RequestBody.Content) == 0:
					out = append(out, name+": a request body without a media type")
				}
			}
			if op.RequestBody != nil {
				for ct, c := range op.RequestBody.Content {
					if why := vague(c.Schema); why != "" {
						out = append(out, fmt.Sprintf("%s: request body %s: %s", name, ct, why))
					}
				}
			}
			ok := false
			for code, r := range op.Responses {
				if len(code) != 3 || code[0] != '2' {
					continue
				}
				ok = true
				if code == "204" {
					continue
				}
				if len(r.Content) == 0 {
					out = append(out, fmt.Sprintf("%s: response %s has no content schema", name, code))
				}
				for ct, c := range r.Content {
					if why := vague(c.Schema); why != "" {
						out = append(out, fmt.Sprintf("%s: response %s %s: %s", name, code, ct, why))
					}
				}
			}
			if !ok && !op.NoSuccess {
				out = append(out, name+": no success response")
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// vague says why a schema describes nothing ("" when it does).
func vague(s map[string]any) string {
	if s == nil {
		return "no schema"
	}
	if _, ok := s["$ref"]; ok {
		return ""
	}
	for _, k := range []string{"oneOf", "anyOf", "allOf"} {
		if _, ok := s[k]; ok {
			return ""
		}
	}
	switch s["type"] {
	case nil:
		return "no type"
	case "object":
		_, props := s["properties"]
		_, more := s["additionalProperties"]
		if !props && !more {
			return "an object without properties"
		}
	case "array":
		if _, ok := s["items"]; !ok {
			return "an array without items"
		}
	}
	return ""
}

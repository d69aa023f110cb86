// Package openapi builds keyfleet's OpenAPI 3 document from the route table
// the HTTP server actually serves (httpapi.Route) plus per-route operation
// descriptions. Query parameters are declared once, as Params, and the
// handlers validate requests against the same declarations (Values), so the
// document and the behaviour cannot drift apart.
package openapi

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// Param types.
const (
	TypeString  = "string"
	TypeInteger = "integer"
	TypeBoolean = "boolean"
	TypeTime    = "time" // RFC 3339, a date (start of day UTC), epoch milliseconds, or now[-duration]
)

// Param is one request parameter.
type Param struct {
	Name        string
	In          string // "query" (default) or "path"
	Type        string // TypeString (default), TypeInteger, TypeBoolean, TypeTime
	Description string
	Enum        []string
	List        bool // a comma-separated list of values
	Required    bool
	Default     string
	Min, Max    int64  // integer bounds (both zero: unbounded)
	MaxLen      int    // string length limit (0: 256)
	Pattern     string // a regular expression string values match (checked by Parse)
	// AllowEmpty: the route takes an empty value (as if the parameter were
	// absent); Parse refuses empty values, so only for routes that do not use it.
	AllowEmpty bool
	// AnyText: the route takes any characters (Parse refuses control
	// characters; only for routes that do not use it).
	AnyText bool
}

// Printable is the pattern of text without control characters (what Parse
// and the handlers accept as printable, for ASCII).
const Printable = `^[^\x00-\x1f\x7f-\x9f]*$`

// listItem is one value of a comma-separated list: printable, no comma,
// not only spaces (Parse trims items and refuses empty ones).
const listItem = `^[^,\x00-\x1f\x7f-\x9f]*[^ ,\x00-\x1f\x7f-\x9f][^,\x00-\x1f\x7f-\x9f]*$`

// TimePattern is the grammar ParseTime reads: now, now-<duration>, epoch
// milliseconds, a date, an RFC 3339 time.
const TimePattern = `^(now(-[0-9]{1,6}(\.[0-9]{1,3})?(ns|us|ms|s|m|h|d))?|[0-9]{1,15}|` +
	`[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])` +
	`(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?)$`

// Operation describes one route beyond what httpapi.Route says.
type Operation struct {
	Description string
	Params      []Param
	// Body, when set, is the JSON schema of the request body.
	Body map[string]any
	// BodyTypes are request bodies of other media types (text/csv,
	// multipart/form-data ...), or of several: media type → schema.
	BodyTypes map[string]map[string]any
	// BodyOptional: the route also takes a request without a body.
	BodyOptional bool
	// NoBody says a POST, PUT or PATCH route takes no body (Check
	// requires a body schema of those otherwise).
	NoBody bool
	// NoSuccess says the route never succeeds: a catch-all that answers
	// only errors (404, 405, 501). Check requires a success response otherwise.
	NoSuccess bool
	// Headers are request headers the route reads (Idempotency-Key ...).
	Headers []Param
	// Responses by status code; each a description and optional content
	// types → schema. Check requires a success response with content.
	Responses map[int]Response
}

// Response is one documented response.
type Response struct {
	Description string
	Content     map[string]map[string]any // content type → schema
}

// Key is the map key of an operation: "GET /v1/events".
func Key(method, path string) string { return method + " " + path }

// Info heads the document.
type Info struct {
	Title, Version, Description string
}

var pathParamRE = regexp.MustCompile(`\\:|:([A-Za-z_][A-Za-z0-9_]*)\??|\*`)

// Path turns a fiber route path into an OpenAPI path template and the names
// of its path parameters (/v1/alerts/:id → /v1/alerts/{id}; a * wildcard
// becomes {path}; an escaped colon, as in /v1/credentials/:id\:revoke, is a
// literal colon).
func Path(fiberPath string) (string, []string) {
	var names []string
	p := pathParamRE.ReplaceAllStringFunc(fiberPath, func(m string) string {
		if m == `\:` {
			return ":"
		}
		name := "path"
		if m != "*" {
			name = strings.TrimSuffix(strings.TrimPrefix(m, ":"), "?")
		}
		names = append(names, name)
		return "{" + name + "}"
	})
	return p, names
}

// Build returns the OpenAPI 3.0 document (JSON) of routes. ops may describe
// any route further; an op naming a route that does not exist is an error,
// so stale descriptions fail loudly.
func Build(info Info, routes []httpapi.Route, ops map[string]Operation) ([]byte, error) {
	known := map[string]bool{}
	paths := map[string]map[string]any{}
	for _, r := range routes {
		key := Key(r.Method, r.Path)
		known[key] = true
		op, err := operation(r, ops[key])
		if err != nil {
			return nil, fmt.Errorf("openapi %s: %w", key, err)
		}
		tmpl, _ := Path(r.Path)
		if paths[tmpl] == nil {
			paths[tmpl] = map[string]any{}
		}
		paths[tmpl][strings.ToLower(r.Method)] = op
	}
	var stale []string
	for key := range ops {
		if !known[key] {
			stale = append(stale, key)
		}
	}
	if len(stale) > 0 {
		sort.Strings(stale)
		return nil, fmt.Errorf("openapi: operations describe routes that are not registered: %s", strings.Join(stale, ", "))
	}
	doc := map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title": info.Title, "version": info.Version, "description": info.Description,
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer",
					"description": "An API token (keyfleet token create). Each token has one role."},
			},
			"schemas": map[string]any{"Problem": problemSchema},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

var problemSchema = map[string]any{
	"type":        "object",
	"description": "RFC 9457 problem document; branch on code.",
	"properties": map[string]any{
		"type":     map[string]any{"type": "string"},
		"title":    map[string]any{"type": "string"},
		"status":   map[string]any{"type": "integer"},
		"code":     map[string]any{"type": "string", "description": "stable machine-readable error code"},
		"detail":   map[string]any{"type": "string"},
		"instance": map[string]any{"type": "string"},
		"field":    map[string]any{"type": "string", "description": "the invalid input, for 400s"},
	},
	"required": []string{"type", "title", "status", "code"},
}

func problemResponse(desc string) map[string]any {
	return map[string]any{
		"description": desc,
		"content": map[string]any{"application/problem+json": map[string]any{
			"schema": map[string]any{"$ref": "#/components/schemas/Problem"}}},
	}
}

// Roles lists the roles a route admits, admin first.
func Roles(r httpapi.Route) []string {
	if r.Public {
		return []string{"public"}
	}
	out := []string{string(httpapi.RoleAdmin)}
	for _, role := range httpapi.AllRoles {
		if role != httpapi.RoleAdmin && slices.Contains(r.Roles, role) {
			out = append(out, string(role))
		}
	}
	return out
}

func operation(r httpapi.Route, op Operation) (map[string]any, error) {
	_, pathNames := Path(r.Path)
	declared := map[string]bool{}
	var params []any
	for _, p := range op.Params {
		if p.In == "" {
			p.In = "query"
		}
		if p.In == "path" && !slices.Contains(pathNames, p.Name) {
			return nil, fmt.Errorf("path parameter %q is not in the path", p.Name)
		}
		if declared[p.In+p.Name] {
			return nil, fmt.Errorf("parameter %q declared twice", p.Name)
		}
		declared[p.In+p.Name] = true
		params = append(params, paramObject(p))
	}
	for _, name := range pathNames {
		if !declared["path"+name] {
			params = append(params, paramObject(Param{Name: name, In: "path", Required: true}))
		}
	}
	for _, h := range op.Headers {
		h.In = "header"
		params = append(params, paramObject(h))
	}
	desc := op.Description
	roles := Roles(r)
	if r.Public {
		desc = strings.TrimSpace(desc + "\n\nPublic: no token needed.")
	} else {
		desc = strings.TrimSpace(desc + "\n\nRoles: " + strings.Join(roles, ", ") + ".")
	}
	responses := map[string]any{}
	if len(op.Responses) == 0 {
		responses["200"] = map[string]any{"description": "OK"}
	}
	for code, resp := range op.Responses {
		out := map[string]any{"description": resp.Description}
		if len(resp.Content) > 0 {
			content := map[string]any{}
			for ct, schema := range resp.Content {
				content[ct] = map[string]any{"schema": schema}
			}
			out["content"] = content
		}
		responses[fmt.Sprint(code)] = out
	}
	hasBody := op.Body != nil || len(op.BodyTypes) > 0
	if _, ok := responses["400"]; !ok && (len(op.Params) > 0 || hasBody) {
		responses["400"] = problemResponse("invalid input; field names it")
	}
	if !r.Public {
		responses["401"] = problemResponse("no token, or an unknown or revoked token")
		responses["403"] = problemResponse("the token's role may not call this route")
	}
	responses["default"] = problemResponse("error")
	out := map[string]any{
		"summary":     r.Summary,
		"description": desc,
		"operationId": operationID(r),
		"responses":   responses,
		"x-roles":     roles,
	}
	if !r.Public {
		out["x-site-scoped"] = r.SiteScoped
		if r.SiteScoped {
			out["description"] = desc + " Honours site-scoped tokens: reads are limited to the token's sites, writes outside them are 403 out_of_scope."
		} else {
			out["description"] = desc + " Fleet-wide: a site-scoped token gets 403 scope_unsupported."
		}
	}
	if len(params) > 0 {
		out["parameters"] = params
	}
	if r.Public {
		out["security"] = []any{}
	}
	if hasBody {
		content := map[string]any{}
		if op.Body != nil {
			content["application/json"] = map[string]any{"schema": op.Body}
		}
		for ct, schema := range op.BodyTypes {
			content[ct] = map[string]any{"schema": schema}
		}
		out["requestBody"] = map[string]any{"required": !op.BodyOptional, "content": content}
	}
	if op.NoSuccess {
		out["x-no-success"] = true
	}
	if op.NoBody {
		out["x-no-body"] = true
	}
	return out, nil
}

var nonWord = regexp.MustCompile(`[^A-Za-z0-9]+`)

func operationID(r httpapi.Route) string {
	return strings.ToLower(r.Method) + strings.Trim(nonWord.ReplaceAllString(r.Path, "_"), "_")
}

func paramObject(p Param) map[string]any {
	schema := map[string]any{}
	switch p.Type {
	case TypeInteger:
		schema["type"] = "integer"
		if p.Min != 0 || p.Max != 0 {
			schema["minimum"], schema["maximum"] = p.Min, p.Max
		}
	case TypeBoolean:
		schema["type"] = "boolean"
	case TypeTime:
		schema["type"] = "string"
		schema["description"] = "RFC 3339 time, a date (2026-12-01: start of that day, UTC), epoch milliseconds, now, " +
			"or now-<duration> (e.g. now-24h, now-7d)"
		schema["pattern"] = TimePattern
		schema["minLength"] = 1
		schema["maxLength"] = maxLen(p)
	default:
		schema["type"] = "string"
		if len(p.Enum) == 0 {
			schema["maxLength"] = maxLen(p)
			if !p.AllowEmpty {
				schema["minLength"] = 1 // Parse refuses empty values
			}
			switch {
			case p.Pattern != "":
				schema["pattern"] = p.Pattern
			case p.List:
				schema["pattern"] = listItem // no comma, not only spaces
			case !p.AnyText:
				schema["pattern"] = Printable
			}
		}
	}
	if len(p.Enum) > 0 {
		schema["enum"] = p.Enum
		if p.AllowEmpty {
			schema["enum"] = append([]string{""}, p.Enum...)
		}
	}
	if p.List {
		schema = map[string]any{"type": "array", "items": schema, "minItems": 1, "maxItems": maxListItems}
	}
	if p.Default != "" {
		schema["default"] = p.Default
	}
	out := map[string]any{"name": p.Name, "in": p.In, "schema": schema}
	if p.In == "" {
		out["in"] = "query"
	}
	if p.Description != "" {
		out["description"] = p.Description
	}
	if p.Required || p.In == "path" {
		out["required"] = true
	}
	if p.List {
		out["style"], out["explode"] = "form", false
	}
	return out
}

func maxLen(p Param) int {
	if p.MaxLen > 0 {
		return p.MaxLen
	}
	return 256
}

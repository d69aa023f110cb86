package openapi

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

type inner struct {
	Format   string `json:"format"`
	Evidence string `json:"evidence"`
}

type base struct {
	ID string `json:"id"`
}

type sample struct {
	base
	Name    string            `json:"name"`
	Count   int64             `json:"count,omitempty"`
	Seq     uint64            `json:"seq"`
	Score   float64           `json:"score"`
	On      bool              `json:"on"`
	Tags    []string          `json:"tags"`
	Labels  map[string]string `json:"labels,omitempty"`
	Att     *inner            `json:"att,omitempty"`
	Refs    []inner           `json:"refs,omitempty"`
	At      time.Time         `json:"at"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
	Skipped string            `json:"-"`
	hidden  string
}

func TestRequestSchema(t *testing.T) {
	s := RequestSchema(sample{}, Fields{
		"name":            {Required: true, MaxLength: 64, Description: "who"},
		"att.format":      {Enum: []string{"a", "b"}, Required: true},
		"refs[].format":   {Pattern: "^[a-z]+$"},
		"count":           {Min: Num(1), Max: Num(10)},
		"labels{}":        {MaxLength: 8},
		"tags":            {MaxItems: 3},
		"tags[]":          {MinLength: 1},
		"id":              {Format: "uuid"},
		"at":              {Example: "2026-01-01T00:00:00Z"},
		"att":             {Description: "evidence"},
		"refs":            {MinItems: 1},
		"refs[].evidence": {Schema: map[string]any{"type": "string", "format": "byte"}},
	})
	b, err := json.Marshal(s)
	require.NoError(t, err)
	// encoding/json decodes null into anything: every optional property may be null.
	want := `{"additionalProperties":false,"properties":{"at":{"example":"2026-01-01T00:00:00Z","format":"date-time","nullable":true,"type":"string"},` +
		`"att":{"additionalProperties":false,"description":"evidence","nullable":true,"properties":{"evidence":{"nullable":true,"type":"string"},"format":{"enum":["a","b"],"type":"string"}},"required":["format"],"type":"object"},` +
		`"count":{"maximum":10,"minimum":1,"nullable":true,"type":"integer"},"id":{"format":"uuid","nullable":true,"type":"string"},` +
		`"labels":{"additionalProperties":{"maxLength":8,"type":"string"},"nullable":true,"type":"object"},` +
		`"name":{"description":"who","maxLength":64,"type":"string"},"on":{"nullable":true,"type":"boolean"},"raw":{"nullable":true},` +
		`"refs":{"items":{"additionalProperties":false,"properties":{"evidence":{"format":"byte","nullable":true,"type":"string"},"format":{"nullable":true,"pattern":"^[a-z]+$","type":"string"}},"type":"object"},"minItems":1,"nullable":true,"type":"array"},` +
		`"score":{"nullable":true,"type":"number"},"seq":{"maximum":18446744073709551615,"minimum":0,"nullable":true,"type":"integer"},` +
		`"tags":{"items":{"minLength":1,"type":"string"},"maxItems":3,"nullable":true,"type":"array"}},"required":["name"],"type":"object"}`
	assert.JSONEq(t, want, string(b))
}

func TestResponseSchema(t *testing.T) {
	s := ResponseSchema(sample{}, nil)
	assert.Equal(t, []string{"at", "id", "name", "on", "score", "seq", "tags"}, s["required"])
	props := s["properties"].(map[string]any)
	assert.Equal(t, true, props["tags"].(map[string]any)["nullable"], "a nil slice encodes as null")
	assert.Nil(t, props["labels"].(map[string]any)["nullable"], "omitempty: absent, never null")
	assert.Nil(t, s["additionalProperties"], "responses may grow")
	assert.NotContains(t, props, "Skipped")
	assert.NotContains(t, props, "hidden")
}

func TestSchemaFieldsMustExist(t *testing.T) {
	assert.PanicsWithValue(t, "openapi: fields name no property: nmae, refs[].vendor", func() {
		RequestSchema(sample{}, Fields{"nmae": {Required: true}, "refs[].vendor": {}})
	})
}

// Check fails a document with a write route that has no body schema, or a
// route without a success response; the same routes described pass.
func TestCheck(t *testing.T) {
	h := func(*fiber.Ctx) error { return nil }
	routes := []httpapi.Route{
		{Method: "POST", Path: "/v1/things", Summary: "create", Roles: httpapi.ManageRoles, Handler: h},
		{Method: "GET", Path: "/v1/things/:id", Summary: "one", Roles: httpapi.ReadRoles, Handler: h},
		{Method: "DELETE", Path: "/v1/things/:id", Summary: "delete", Roles: httpapi.ManageRoles, Handler: h},
		{Method: "PUT", Path: "/v1/things/:id", Summary: "replace", Roles: httpapi.ManageRoles, Handler: h},
	}
	doc, err := Build(Info{Title: "t"}, routes, map[string]Operation{
		Key("PUT", "/v1/things/:id"): {Body: map[string]any{"type": "object"},
			Responses: map[int]Response{200: {Description: "ok", Content: JSON(map[string]any{"type": "string"})}}},
	})
	require.NoError(t, err)
	problems, err := Check(doc)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"DELETE /v1/things/{id}: response 200 has no content schema",
		"GET /v1/things/{id}: response 200 has no content schema",
		"POST /v1/things: no request body schema",
		"POST /v1/things: response 200 has no content schema",
		"PUT /v1/things/{id}: request body application/json: an object without properties",
	}, problems)

	thing := ResponseSchema(struct {
		ID string `json:"id"`
	}{}, nil)
	ok := Response{Description: "the thing", Content: JSON(thing)}
	doc, err = Build(Info{Title: "t"}, routes, map[string]Operation{
		Key("POST", "/v1/things"): {Body: RequestSchema(struct {
			Name string `json:"name"`
		}{}, Fields{"name": {Required: true}}), Responses: map[int]Response{201: ok}},
		Key("GET", "/v1/things/:id"):    {Responses: map[int]Response{200: ok}},
		Key("DELETE", "/v1/things/:id"): {Responses: map[int]Response{204: {Description: "deleted"}}},
		Key("PUT", "/v1/things/:id"): {BodyTypes: map[string]map[string]any{"text/csv": {"type": "string"}},
			Responses: map[int]Response{200: ok}},
	})
	require.NoError(t, err)
	problems, err = Check(doc)
	require.NoError(t, err)
	assert.Empty(t, problems)

	// A write route that takes no body says so.
	doc, err = Build(Info{Title: "t"}, routes[:1], map[string]Operation{
		Key("POST", "/v1/things"): {NoBody: true, Responses: map[int]Response{202: ok}}})
	require.NoError(t, err)
	problems, err = Check(doc)
	require.NoError(t, err)
	assert.Empty(t, problems)
}

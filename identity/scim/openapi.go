package scim

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Operations describes the SCIM routes for keyfleet's OpenAPI document in
// general terms: SCIM describes its own resources (RFC 7643; GET
// /scim/v2/Schemas and /ResourceTypes), so bodies are "a SCIM document"
// — an object naming its schemas — rather than a copy of those schemas.
func (s *Service) Operations() map[string]openapi.Operation {
	doc := func(desc string) map[string]any {
		return map[string]any{"type": "object", "description": desc, "required": []string{"schemas"},
			"properties":           map[string]any{"schemas": map[string]any{"type": "array", "minItems": 1, "items": map[string]any{"type": "string"}}},
			"additionalProperties": true}
	}
	body := func(desc string) map[string]map[string]any {
		return map[string]map[string]any{ContentType: doc(desc), fiber.MIMEApplicationJSON: doc(desc)}
	}
	reply := func(desc string) openapi.Response {
		return openapi.Response{Description: desc, Content: map[string]map[string]any{ContentType: doc(desc)}}
	}
	failure := func(desc string) openapi.Response {
		return openapi.Response{Description: desc, Content: map[string]map[string]any{ContentType: doc("a SCIM error (RFC 7644 §3.12)")}}
	}
	ops := map[string]openapi.Operation{}
	for _, r := range s.Routes() {
		sub := strings.TrimPrefix(r.Path, Prefix)
		var op openapi.Operation
		switch {
		case strings.HasSuffix(sub, "/*"):
			op = openapi.Operation{NoSuccess: true, BodyOptional: true,
				BodyTypes: body("ignored"),
				Responses: map[int]openapi.Response{404: failure("no such SCIM endpoint"),
					405: failure("the endpoint exists; Allow lists its methods"), 501: failure("/Me and /Bulk are not implemented")}}
		case strings.HasSuffix(sub, ".search"):
			op = openapi.Operation{BodyTypes: body("a SearchRequest (urn:ietf:params:scim:api:messages:2.0:SearchRequest)"),
				Responses: map[int]openapi.Response{200: reply("a ListResponse")}}
		case r.Method == fiber.MethodPost:
			op = openapi.Operation{BodyTypes: body("the resource (its schemas: GET /scim/v2/Schemas)"),
				Responses: map[int]openapi.Response{201: reply("the created resource (ETag header)"), 409: failure("uniqueness")}}
		case r.Method == fiber.MethodPut:
			op = openapi.Operation{BodyTypes: body("the whole resource"), Headers: []openapi.Param{{Name: "If-Match", In: "header", MaxLen: 256}},
				Responses: map[int]openapi.Response{200: reply("the replaced resource"), 412: failure("If-Match does not match")}}
		case r.Method == fiber.MethodPatch:
			op = openapi.Operation{BodyTypes: body("a PatchOp (urn:ietf:params:scim:api:messages:2.0:PatchOp)"), Headers: []openapi.Param{{Name: "If-Match", In: "header", MaxLen: 256}},
				Responses: map[int]openapi.Response{200: reply("the modified resource"), 412: failure("If-Match does not match")}}
		case r.Method == fiber.MethodDelete:
			op = openapi.Operation{Headers: []openapi.Param{{Name: "If-Match", In: "header", MaxLen: 256}},
				Responses: map[int]openapi.Response{204: {Description: "deleted"}, 404: failure("no such resource")}}
		default:
			op = openapi.Operation{Responses: map[int]openapi.Response{200: reply("a resource or a ListResponse")}}
		}
		ops[openapi.Key(r.Method, r.Path)] = op
	}
	return ops
}

package openapi

import (
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// PathDocument is where the document is served.
const PathDocument = "/v1/openapi.json"

// Document serves the OpenAPI document of the server's route table. Any
// valid token may read it (every route but the health checks needs one).
type Document struct {
	body []byte
}

// Route returns GET /v1/openapi.json.
func (d *Document) Route() httpapi.Route {
	return httpapi.Route{Method: fiber.MethodGet, Path: PathDocument,
		Summary: "This API's OpenAPI 3 document, built from the served route table.",
		Roles:   []httpapi.Role{httpapi.RoleIngest, httpapi.RoleAnalyst, httpapi.RoleResponder, httpapi.RoleManager},
		Handler: d.serve}
}

// Operations describes the document route itself.
func (d *Document) Operations() map[string]Operation {
	return map[string]Operation{Key(fiber.MethodGet, PathDocument): {
		Description: "Generated from the routes the server registered and their parameter declarations " +
			"(the same declarations the handlers validate with). x-roles lists the roles each route admits.",
		Responses: map[int]Response{200: {Description: "the document",
			Content: map[string]map[string]any{"application/json": {"type": "object", "required": []string{"openapi", "paths"},
				"properties": map[string]any{"openapi": map[string]any{"type": "string"}, "info": map[string]any{"type": "object"},
					"paths": map[string]any{"type": "object"}, "components": map[string]any{"type": "object"}}}}}},
	}}
}

// Build builds the document from the final route table.
func (d *Document) Build(info Info, routes []httpapi.Route, ops ...map[string]Operation) error {
	all := map[string]Operation{}
	for _, m := range ops {
		for k, op := range m {
			all[k] = op
		}
	}
	body, err := Build(info, routes, all)
	if err != nil {
		return err
	}
	d.body = body
	return nil
}

func (d *Document) serve(c *fiber.Ctx) error {
	if _, err := Parse(nil, Args(c), time.Now()); err != nil {
		return err
	}
	if d.body == nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "not_ready", "the OpenAPI document is not built yet")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(d.body)
}

package feed

import (
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Operations describes the import route for the OpenAPI document. A
// schema cannot say everything Parse checks (an e-mail address has an @, a
// subject id is pseudonymous, a row names known columns only): 400 names
// the row and field.
func (a *API) Operations() map[string]openapi.Operation {
	str := func(desc string) map[string]any {
		return map[string]any{"type": "string", "maxLength": 512, "description": desc}
	}
	person := map[string]any{"type": "object", "additionalProperties": false,
		"required": []string{"external_id"},
		"properties": map[string]any{
			"external_id":  map[string]any{"type": "string", "minLength": 1, "maxLength": 512, "description": "the HR system's id (stable)"},
			"user_name":    str("default: external_id"),
			"given_name":   str(""),
			"family_name":  str(""),
			"display_name": str(""),
			"email":        str("an e-mail address"),
			"active": map[string]any{"description": "default true",
				"anyOf": []any{map[string]any{"type": "boolean"}, map[string]any{"type": "string", "enum": []string{
					"true", "1", "yes", "y", "active", "false", "0", "no", "n", "inactive"}}}},
			"end_date":   map[string]any{"type": "string", "format": "date-time", "description": "RFC 3339; past it the person is a leaver"},
			"site":       str(""),
			"groups":     map[string]any{"description": "group names (an array, or one string separated by ;)", "anyOf": []any{map[string]any{"type": "array", "items": map[string]any{"type": "string", "maxLength": 512}}, map[string]any{"type": "string", "maxLength": 512}}},
			"subject_id": map[string]any{"type": "string", "maxLength": 128, "description": "the pseudonymous subject id to link (no whitespace, no e-mail address)"},
		}}
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodPost, PathImport): {
			Description: "The whole feed (mode=full: people missing from it leave) or only changes (mode=delta).",
			Params: []openapi.Param{
				{Name: "dry_run", Enum: []string{"true", "false", "1", "0"}, Description: "only plan"},
				{Name: "mode", Enum: []string{ModeFull, ModeDelta}},
				{Name: "source", MaxLen: 64, Description: "the feed's name (audited)"},
				{Name: "format", Enum: []string{FormatCSV, FormatJSON}, Description: "default: from Content-Type"},
			},
			BodyTypes: map[string]map[string]any{
				"application/json":    {"type": "array", "maxItems": MaxPeople, "items": person},
				"text/csv":            {"type": "string", "description": "a header row naming columns of " + PathImport + "'s JSON objects, then one person per row"},
				"multipart/form-data": {"type": "object", "properties": map[string]any{"file": map[string]any{"type": "string", "format": "binary"}}, "required": []string{"file"}},
			},
			Responses: map[int]openapi.Response{200: {Description: "the plan and, unless dry_run, what was applied",
				Content: openapi.JSON(openapi.ResponseSchema(Plan{}, nil))}},
		},
	}
}

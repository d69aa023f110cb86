package alertstore

import (
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

type alertList struct {
	Alerts []Record `json:"alerts"`
	Count  int      `json:"count"`
	Limit  int      `json:"limit"`
}

var alertID = openapi.Param{Name: "id", In: "path", Required: true, MaxLen: 64, Pattern: "^[0-9a-fA-F-]{1,64}$",
	Description: "alert id (UUID)"}

// Operations describes the alert routes for the OpenAPI document.
func (a *API) Operations() map[string]openapi.Operation {
	alert := openapi.Response{Description: "the alert (its newest version) with the responders' actions",
		Content: openapi.JSON(openapi.ResponseSchema(Record{}, nil))}
	notFound := openapi.Response{Description: "no such alert", Content: map[string]map[string]any{
		"application/problem+json": {"$ref": "#/components/schemas/Problem"}}}
	str := func(name, desc string) openapi.Param {
		return openapi.Param{Name: name, MaxLen: 200, AnyText: true, Description: desc}
	}
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, "/v1/alerts"): {
			Params: []openapi.Param{
				{Name: "status", Enum: detect.Statuses}, {Name: "detector", Enum: detect.Detectors},
				{Name: "severity", Enum: detect.Severities},
				str("subject", "subject_id"), str("credential", "credential_id"), str("door", "door_id"), str("site", "site_id"),
				{Name: "from", Type: openapi.TypeTime, MaxLen: 200, Description: "raised at or after"},
				{Name: "to", Type: openapi.TypeTime, MaxLen: 200, Description: "raised before"},
				{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: MaxLimit, Default: "100"},
			},
			Responses: map[int]openapi.Response{200: {Description: "alerts, newest first",
				Content: openapi.JSON(openapi.ResponseSchema(alertList{}, nil))}},
		},
		openapi.Key(fiber.MethodGet, "/v1/alerts/:id"): {Params: []openapi.Param{alertID},
			Responses: map[int]openapi.Response{200: alert, 404: notFound}},
		openapi.Key(fiber.MethodPatch, "/v1/alerts/:id"): {
			Description: "Changes the alert's status with a note (audited; the note's hash is in the audit entry). " +
				"A change the audit log cannot record is not made (503 audit_unavailable).",
			Params: []openapi.Param{alertID},
			Body: openapi.RequestSchema(patchBody{}, openapi.Fields{
				"status": {Enum: detect.Statuses, Required: true},
				"note":   {MaxLength: MaxNote, Description: "why (at most 2000 characters)"},
			}),
			Responses: map[int]openapi.Response{200: alert, 404: notFound},
		},
	}
}

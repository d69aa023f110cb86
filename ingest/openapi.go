package ingest

import (
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// record is one vendor record: its fields are the vendor's (docs/vendors.md
// has each vendor's fields and how they map).
var record = map[string]any{"type": "object", "additionalProperties": map[string]any{},
	"description": "one record in the vendor's own format: a Matter Door Lock cluster event (nodeId, endpointId, " +
		"clusterId 257, eventName, eventNumber, timestampMs, data), a Nuki Web API smartlock log entry or DEVICE_LOGS " +
		"webhook (id, smartlockId, authId, action, trigger, state, date), a Schlage Home webhook (eventId, deviceId, " +
		"time, eventType, data), a Seam webhook (event_id, event_type, device_id, occurred_at ...); see docs/vendors.md"}

// Operations describes the ingest route for the OpenAPI document.
func (h *Handler) Operations() map[string]openapi.Operation {
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodPost, "/v1/ingest/:vendor"): {
			Description: "Queues vendor lock events on lock.events.raw after checking that each record maps to the " +
				"common schema (the normalizer maps them again downstream). One JSON record, a JSON array of records, " +
				"newline-delimited JSON, or, for legacy panels, CSV export lines (time, panel, reader, credential kind, " +
				"credential number, result code). Records that do not map are reported by index (errors) and not " +
				"queued; when none maps the answer is 422 all_records_rejected. Signed webhooks (Nuki, Seam, Schlage) " +
				"need no token once their secret or key is configured.",
			Params: []openapi.Param{{Name: "vendor", In: "path", Required: true, Enum: event.Vendors}},
			Body:   map[string]any{"oneOf": []any{record, map[string]any{"type": "array", "minItems": 1, "items": record}}},
			BodyTypes: map[string]map[string]any{
				"application/x-ndjson": {"type": "string", "description": "one JSON record per line"},
				"text/csv":             {"type": "string", "description": "legacy panel export lines (see docs/vendors.md#legacy)"},
			},
			Responses: map[int]openapi.Response{
				202: {Description: "records queued; rejected ones listed with their index and reason",
					Content: openapi.JSON(openapi.ResponseSchema(Result{}, nil))},
				404: {Description: "no adapter for this vendor", Content: map[string]map[string]any{
					"application/problem+json": {"$ref": "#/components/schemas/Problem"}}},
				413: {Description: "more records than the per-request limit", Content: map[string]map[string]any{
					"application/problem+json": {"$ref": "#/components/schemas/Problem"}}},
				422: {Description: "no record could be mapped (errors lists why, by index)", Content: map[string]map[string]any{
					"application/problem+json": {"$ref": "#/components/schemas/Problem"}}},
			},
		},
	}
}

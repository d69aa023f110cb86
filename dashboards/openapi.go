package dashboards

import (
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

type alertCounts struct {
	Counts []AlertCount `json:"counts"`
	Total  uint64       `json:"total"`
	FromMs int64        `json:"from_ms"`
	ToMs   int64        `json:"to_ms"`
}

type evidence struct {
	AlertID     string         `json:"alert_id"`
	EvidenceIDs []string       `json:"evidence_ids"`
	Events      []event.Access `json:"events"`
	Missing     int            `json:"missing"`
}

type revocations struct {
	Revocations []Revocation `json:"revocations"`
	Count       int          `json:"count"`
}

type requests struct {
	Requests []Request `json:"requests"`
	Count    int       `json:"count"`
}

func ok(desc string, v any) openapi.Response {
	return openapi.Response{Description: desc, Content: openapi.JSON(openapi.ResponseSchema(v, nil))}
}

var (
	timeDoc = func(name, def string) openapi.Param {
		return openapi.Param{Name: name, Type: openapi.TypeTime, MaxLen: 128, Description: name + " of the range (default " + def + ")"}
	}
	limitDoc = func(def string) openapi.Param {
		return openapi.Param{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: 1000, Description: "at most this many (default " + def + ")"}
	}
	alertIDParam = openapi.Param{Name: "id", In: "path", Required: true, MaxLen: 64, Pattern: "^[0-9a-fA-F-]{1,64}$",
		Description: "alert id (UUID)"}
)

// Operations describes the dashboards' routes for the OpenAPI document.
func (d *Dashboards) Operations() map[string]openapi.Operation {
	text := func(ct, desc string) openapi.Response {
		return openapi.Response{Description: desc, Content: map[string]map[string]any{ct: {"type": "string"}}}
	}
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, "/"): {Responses: map[int]openapi.Response{
			200: text("text/html", "the dashboards' single-page shell")}},
		openapi.Key(fiber.MethodGet, "/assets/*"): {
			Params: []openapi.Param{{Name: "path", In: "path", Required: true, MaxLen: 256,
				Description: "app.js, app.css, vendor/uplot.iife.min.js ..."}},
			Responses: map[int]openapi.Response{200: {Description: "the file (JavaScript, CSS ...)",
				Content: map[string]map[string]any{"*/*": {"type": "string", "format": "binary"}}}}},
		openapi.Key(fiber.MethodGet, PathIngestHealth): {
			Description: "Consumer lag per group (group-wide, from Kafka), this instance's records, dead letters and " +
				"inserts per second over the last sampling window, the DLQ rate, and ten minutes of history; fleet sums " +
				"the latest figures every live instance wrote (instances), so with several instances it is the fleet's.",
			Responses: map[int]openapi.Response{200: ok("ingest health", Health{})}},
		openapi.Key(fiber.MethodGet, PathAlertCounts): {
			Params: []openapi.Param{
				{Name: "status", MaxLen: 128, Pattern: "^(open|acknowledged|resolved|false_positive)(,(open|acknowledged|resolved|false_positive))*$",
					Description: "comma-separated statuses (open, acknowledged, resolved, false_positive)"},
				{Name: "site", MaxLen: 128, Description: "only this site's alerts"},
				timeDoc("from", "30 days ago"), timeDoc("to", "now"),
			},
			Responses: map[int]openapi.Response{200: ok("alert counts (current versions) by detector, severity and status", alertCounts{})}},
		openapi.Key(fiber.MethodGet, PathEvidence): {
			Params: []openapi.Param{alertIDParam},
			Responses: map[int]openapi.Response{200: ok("the access events the alert cites, oldest first; missing counts "+
				"cited events not (yet) in the event store", evidence{})}},
		openapi.Key(fiber.MethodGet, PathRevocations): {
			Params: []openapi.Param{timeDoc("from", "7 days ago"), timeDoc("to", "now"),
				{Name: "pending", Type: openapi.TypeBoolean, Description: "only revocations with locks still pending"},
				limitDoc("50")},
			Responses: map[int]openapi.Response{200: ok("recent revocations, newest first, with locks told, confirmed and pending", revocations{})}},
		openapi.Key(fiber.MethodGet, PathSession): {
			Description: "The caller's role, the dashboard pages it may open and the actions it may take (each the " +
				"route it calls admits the role), so the pages offer nothing that would be refused.",
			Responses: map[int]openapi.Response{200: ok("the caller's session", Session{})}},
		openapi.Key(fiber.MethodGet, PathRequests): {
			Params: []openapi.Param{timeDoc("from", "30 days ago"), timeDoc("to", "now"),
				{Name: "status", Enum: []string{"pending", "all"}, Description: "pending (default): requests with items still pending"},
				limitDoc("50")},
			Responses: map[int]openapi.Response{200: ok("provisioning requests, newest first, with their items' status counts", requests{})}},
	}
}

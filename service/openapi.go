package service

import (
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// healthOperations describes serve's own routes: health, metrics, profiles.
func healthOperations() map[string]openapi.Operation {
	status := map[string]any{"type": "object", "required": []string{"status"}, "properties": map[string]any{
		"status": map[string]any{"type": "string"},
		"checks": map[string]any{"type": "object", "additionalProperties": map[string]any{},
			"description": "each dependency (kafka, clickhouse ...) and its state"},
	}}
	text := func(ct, desc string) map[int]openapi.Response {
		return map[int]openapi.Response{200: {Description: desc, Content: map[string]map[string]any{ct: {"type": "string"}}}}
	}
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, "/healthz"): {Responses: map[int]openapi.Response{
			200: {Description: "the process is up", Content: openapi.JSON(status)}}},
		openapi.Key(fiber.MethodGet, "/readyz"): {
			Description: "Ready when Kafka and ClickHouse answer and the migrations are applied; 503 names the dependency that is not.",
			Responses: map[int]openapi.Response{
				200: {Description: "ready", Content: openapi.JSON(status)},
				503: {Description: "not ready: checks names what is not", Content: openapi.JSON(status)}}},
		openapi.Key(fiber.MethodGet, "/metrics"): {Responses: text("text/plain",
			"Prometheus text exposition format (keyfleet_* metrics, Go runtime)")},
		openapi.Key(fiber.MethodGet, "/debug/pprof/*"): {
			Params: []openapi.Param{{Name: "path", In: "path", Required: true, MaxLen: 64,
				Description: "a profile: heap, goroutine, allocs, block, mutex, profile (CPU, ?seconds=), trace, cmdline ..."}},
			Responses: map[int]openapi.Response{200: {Description: "the profile (pprof protobuf) or an HTML index",
				Content: map[string]map[string]any{"*/*": {"type": "string", "format": "binary"}}}}},
	}
}

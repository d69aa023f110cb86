package api

import (
	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/estate"
	"github.com/keyfleet/keyfleet/estate/migrate"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
	"github.com/keyfleet/keyfleet/internal/registry"
)

type lockList struct {
	Locks []registry.Record `json:"locks"`
	Count int               `json:"count"`
	Total int               `json:"total"`
}

type retired struct {
	Retired []registry.Record `json:"retired"`
	Count   int               `json:"count"`
}

func reply(desc string, v any) openapi.Response {
	return openapi.Response{Description: desc, Content: openapi.JSON(openapi.ResponseSchema(v, nil))}
}

// Operations describes the lock registry and estate routes for the OpenAPI
// document: bodies as the handlers decode them (the registry checks what a
// schema cannot: a known vendor's id format, door groups, tiers; 400 names
// the field).
func (a *API) Operations() map[string]openapi.Operation {
	lock := openapi.RequestSchema(LockInput{}, openapi.Fields{
		"vendor":  {Enum: event.Vendors, Description: "required to create; the path's on update"},
		"lock_id": {Description: "the vendor's device id (required to create; the path's on update)"},
		"reason":  {Description: "why (audited)"},
	})
	view := reply("the lock, its capabilities and gaps against its tier", LockView{})
	lockPath := []openapi.Param{{Name: "vendor", In: "path", Required: true, Enum: event.Vendors},
		{Name: "path", In: "path", Required: true, MaxLen: 256, Description: "the lock id"}}
	links := reply("weak links ranked by risk × traffic (plan: critical doors first)", estate.WeakLinkReport{})
	linkParams := []openapi.Param{
		{Name: "days", Type: openapi.TypeInteger, Min: 1, Max: MaxTrafficDays, Description: "days of door traffic to rank by"},
		{Name: "site", MaxLen: 128, Description: "only this site"},
		{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: 10000, Description: "at most this many (default 100)"},
	}
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, PathLocks): {
			Params: []openapi.Param{
				{Name: "vendor", Enum: event.Vendors}, {Name: "site", MaxLen: 128}, {Name: "group", MaxLen: 128},
				{Name: "tier", MaxLen: 8, Description: "risk tier (0: unclassified)"},
				{Name: "retired", Enum: []string{"true", "false", "1", "0"}, Description: "include retired locks"},
				{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: 100000},
			},
			Responses: map[int]openapi.Response{200: reply("registered locks", lockList{})}},
		openapi.Key(fiber.MethodPost, PathLocks): {Body: lock,
			Responses: map[int]openapi.Response{201: view}},
		openapi.Key(fiber.MethodGet, PathLock): {Params: lockPath,
			Responses: map[int]openapi.Response{200: reply("the lock, its assessment and its history", LockView{})}},
		openapi.Key(fiber.MethodPut, PathLock): {Params: lockPath, Body: lock,
			Responses: map[int]openapi.Response{200: view}},
		openapi.Key(fiber.MethodPost, PathRetire): {
			Body: openapi.RequestSchema(RetireInput{}, openapi.Fields{
				"locks":          {Required: true, MinItems: 1, MaxItems: MaxRetire},
				"locks[].vendor": {Enum: event.Vendors},
				"reason":         {Description: "why (audited)"},
			}),
			Responses: map[int]openapi.Response{200: reply("the retired locks", retired{})}},
		openapi.Key(fiber.MethodPost, PathImport): {
			Description: "Every row is checked first (400 lists each bad row with its line), then created, updated or retired.",
			Body:        map[string]any{"type": "array", "minItems": 1, "items": openapi.RequestSchema(registry.Row{}, nil)},
			BodyTypes: map[string]map[string]any{"text/csv": {"type": "string",
				"description": "a header row and one lock per line (the columns of GET /v1/locks:export?format=csv)"}},
			Responses: map[int]openapi.Response{200: reply("how many rows were created, updated, retired, unchanged", ImportResult{})}},
		openapi.Key(fiber.MethodGet, PathExport): {
			Params: []openapi.Param{{Name: "format", Enum: []string{"csv", "json"}},
				{Name: "retired", Enum: []string{"true", "false", "1", "0"}}},
			Responses: map[int]openapi.Response{200: {Description: "the lock registry", Content: map[string]map[string]any{
				"text/csv": {"type": "string"}, "application/json": {"type": "array", "items": openapi.ResponseSchema(registry.Row{}, nil)}}}}},
		openapi.Key(fiber.MethodGet, PathMatrix): {
			Responses: map[int]openapi.Response{200: {Description: "the capability matrix and the risk tiers",
				Content: openapi.JSON(map[string]any{"type": "object", "properties": map[string]any{
					"profiles": map[string]any{"type": "array", "items": map[string]any{}, "nullable": true},
					"tiers":    map[string]any{"type": "array", "items": map[string]any{}, "nullable": true}}})}}},
		openapi.Key(fiber.MethodGet, PathWeakLinks): {Params: linkParams, Responses: map[int]openapi.Response{200: links}},
		openapi.Key(fiber.MethodGet, PathPlan):      {Params: linkParams, Responses: map[int]openapi.Response{200: links}},
		openapi.Key(fiber.MethodPost, PathMigrations): {
			Params: []openapi.Param{{Name: "dry_run", Enum: []string{"true", "false", "1", "0"}, Description: "the plan only"}},
			Body: openapi.RequestSchema(migrate.Request{}, openapi.Fields{
				"from_vendor": {Enum: event.Vendors, Required: true}, "to_vendor": {Enum: event.Vendors, Required: true},
				"locks": {Required: true, MinItems: 1, Description: "each old lock and the lock that replaces it on its door"},
			}),
			Responses: map[int]openapi.Response{200: reply("the plan (dry run)", migrate.Started{}),
				202: reply("started: the credentials move lock by lock", migrate.Started{})}},
		openapi.Key(fiber.MethodGet, PathMigrations): {
			Params: []openapi.Param{{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: 1000}},
			Responses: map[int]openapi.Response{200: {Description: "vendor migrations, newest first",
				Content: openapi.JSON(map[string]any{"type": "object", "properties": map[string]any{
					"migrations": map[string]any{"type": "array", "items": map[string]any{}, "nullable": true},
					"count":      map[string]any{"type": "integer"}}})}}},
		openapi.Key(fiber.MethodGet, PathMigration): {
			Responses: map[int]openapi.Response{200: {Description: "per lock pair the credentials moved and confirmed, the stragglers",
				Content: openapi.JSON(map[string]any{"type": "object", "additionalProperties": map[string]any{}})}}},
	}
}

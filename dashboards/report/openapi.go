package report

import (
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

type storedList struct {
	Reports []Stored `json:"reports"`
	Count   int      `json:"count"`
}

// rendered is a report in every format the route serves.
func rendered(desc string) openapi.Response {
	return openapi.Response{Description: desc, Content: map[string]map[string]any{
		"application/json": openapi.ResponseSchema(Report{}, nil),
		"text/markdown":    {"type": "string"},
		"text/csv":         {"type": "string", "description": "section, week, item, key, value: one value per row"},
		"text/html":        {"type": "string", "description": "a self-contained page with inline SVG charts"},
	}}
}

// weekPattern is an ISO week from 1970 on (W53 exists in some years only;
// a week that has not started is refused by the weekly route).
const weekPattern = `^(19[7-9][0-9]|20[0-9]{2})-W(0[1-9]|[1-4][0-9]|5[0-2])$`

var formatParam = openapi.Param{Name: "format", Enum: Formats, Description: "json (default), md, csv or html"}

// Operations describes the report routes for the OpenAPI document.
func (a *API) Operations() map[string]openapi.Operation {
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, PathWeekly): {
			Description: "Computes the report now: the week's KPIs against the previous four (only weeks the stored " +
				"history covers whole are compared), anomalies by detector, stale credentials, exceptions past their " +
				"end date (the expired_exception detector's check), vendor and lock health.",
			Params: []openapi.Param{
				{Name: "week", MaxLen: 8, Pattern: weekPattern, Description: "ISO week such as 2026-W47 (default: the last " +
					"complete week, or the week in progress when the stored history began after it)"},
				{Name: "site", MaxLen: 128, Description: "limit the access-derived sections to one site"},
				slicesParam,
				formatParam,
			},
			Responses: map[int]openapi.Response{200: rendered("the report")},
		},
		openapi.Key(fiber.MethodGet, PathMonthly): {
			Description: "Computes the monthly review now: the weekly report's sections over a calendar month, its KPIs against " +
				"the previous four months (not stored, not scheduled).",
			Params: []openapi.Param{
				{Name: "month", MaxLen: 7, Pattern: `^(19[7-9][0-9]|20[0-9]{2})-(0[1-9]|1[0-2])$`, Description: "a month such as 2026-11 (default: the last complete month)"},
				{Name: "site", MaxLen: 128, Description: "limit the access-derived sections to one site"},
				slicesParam,
				formatParam,
			},
			Responses: map[int]openapi.Response{200: rendered("the review")},
		},
		openapi.Key(fiber.MethodGet, PathQuarterly): {
			Description: "Computes the quarterly review now: the weekly report's sections over a calendar quarter, its KPIs " +
				"against the previous four quarters (not stored, not scheduled).",
			Params: []openapi.Param{
				{Name: "quarter", MaxLen: 7, Pattern: `^(19[7-9][0-9]|20[0-9]{2})-Q[1-4]$`, Description: "a quarter such as 2026-Q4 (default: the last complete quarter)"},
				{Name: "site", MaxLen: 128, Description: "limit the access-derived sections to one site"},
				slicesParam,
				formatParam,
			},
			Responses: map[int]openapi.Response{200: rendered("the review")},
		},
		openapi.Key(fiber.MethodGet, PathList): {
			Params: []openapi.Param{
				{Name: "site", MaxLen: 128, Description: "only this site's reports"},
				{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: 1000, Default: "100"},
			},
			Responses: map[int]openapi.Response{200: {Description: "stored reports, newest week first",
				Content: openapi.JSON(openapi.ResponseSchema(storedList{}, nil))}},
		},
		openapi.Key(fiber.MethodGet, PathOne): {
			Params: []openapi.Param{{Name: "id", In: "path", Required: true, MaxLen: 200,
				Pattern: `^` + weekPattern[1:len(weekPattern)-1] + `(~[^~]{1,128})?$`, Description: "report id: 2026-W47, or 2026-W47~site-a"}, formatParam},
			Responses: map[int]openapi.Response{200: rendered("the stored report"), 404: {Description: "no such stored report",
				Content: map[string]map[string]any{"application/problem+json": {"$ref": "#/components/schemas/Problem"}}}},
		},
	}
}

// slicesParam picks the report's slice tables.
var slicesParam = openapi.Param{Name: "slices", MaxLen: 256, Pattern: `^[a-z_]+(,[a-z_]+)*$`,
	Description: "the access tables by dimension, comma-separated, in order: " + strings.Join(SliceDimensions, ", ") +
		" (default site, vendor, lock_firmware, os_version; a device or lock dimension no event of the period knows is left out)"}

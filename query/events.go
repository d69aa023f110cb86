package query

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// eventSchema is the JSON schema of one event (the common schema).
var eventSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"event_id":    map[string]any{"type": "string", "format": "uuid"},
		"ts_ms":       map[string]any{"type": "integer", "description": "event time at the lock, epoch ms"},
		"received_ms": map[string]any{"type": "integer"}, "vendor": map[string]any{"type": "string"},
		"site_id": map[string]any{"type": "string"}, "zone_id": map[string]any{"type": "string"},
		"door_id": map[string]any{"type": "string"}, "lock_id": map[string]any{"type": "string"},
		"subject_id": map[string]any{"type": "string"}, "credential_id": map[string]any{"type": "string"},
		"device_id": map[string]any{"type": "string"}, "attested": map[string]any{"type": "string"},
		"action": map[string]any{"type": "string"}, "outcome": map[string]any{"type": "string"},
		"method": map[string]any{"type": "string"}, "reason": map[string]any{"type": "string"},
		"vendor_code": map[string]any{"type": "string"}, "break_glass": map[string]any{"type": "boolean"},
		"raw_ref": map[string]any{"type": "string"},
	},
}

func eventsOp(maxLimit int) openapi.Operation {
	params := append(rangeParams("now-24h"), filterParams()...)
	params = append(params,
		openapi.Param{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: int64(maxLimit), Default: "100",
			Description: "events per page"},
		openapi.Param{Name: "order", Enum: []string{"desc", "asc"}, Default: "desc",
			Description: "desc: newest first; asc: oldest first"},
		openapi.Param{Name: "cursor", MaxLen: 512,
			Description: "next_cursor of the previous page; the page keeps the first page's time range, filters and order"},
	)
	return openapi.Operation{
		Description: "Events in time order (ties broken by event_id), each event once even while " +
			"re-delivered duplicates are not merged yet. Pages are keyset-paginated on (ts_ms, event_id): " +
			"a walk returns every event that existed when it started exactly once, whatever is inserted meanwhile.",
		Params: params,
		Responses: map[int]openapi.Response{200: {Description: "a page of events",
			Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
				"events":      map[string]any{"type": "array", "items": eventSchema},
				"next_cursor": map[string]any{"type": "string", "description": "absent on the last page"},
			}}}}},
	}
}

// cursor is the opaque position of a page: the last event returned, the
// pinned time range, and a digest of the filters and order it belongs to.
type cursor struct {
	V    int    `json:"v"`
	TsMs int64  `json:"t"`
	ID   string `json:"id"`
	From int64  `json:"f"`
	To   int64  `json:"u"`
	Sum  string `json:"s"`
}

func querySum(kind string, sel selection, extra string) string {
	h := sha256.Sum256([]byte(kind + "|" + sel.key() + "|" + extra))
	return hex.EncodeToString(h[:8])
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s, sum string) (cursor, error) {
	bad := httpapi.BadRequest("cursor", "not a cursor of this query (cursors are opaque and belong to one query's filters and order)")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, bad
	}
	var c cursor
	if err := json.Unmarshal(raw, &c); err != nil || c.V != 1 || c.Sum != sum || c.From >= c.To {
		return cursor{}, bad
	}
	if _, err := uuid.Parse(c.ID); err != nil {
		return cursor{}, bad
	}
	return c, nil
}

type eventsPage struct {
	Events     []event.Access `json:"events"`
	NextCursor string         `json:"next_cursor,omitempty"`
}

func (s *Service) handleEvents(c *fiber.Ctx) error {
	v, err := s.parse(c, eventsOp(s.opts.MaxLimit))
	if err != nil {
		return err
	}
	r, err := s.timeRange(v)
	if err != nil {
		return err
	}
	sel, err := scoped(c, selectionOf(v))
	if err != nil {
		return err
	}
	order := v.String("order")
	limit := int(v.Int("limit"))
	sum := querySum("events", sel, order)
	var after *cursor
	if cs := v.String("cursor"); cs != "" {
		cur, err := decodeCursor(cs, sum)
		if err != nil {
			return err
		}
		r = timeRange{from: cur.From, to: cur.To}
		after = &cur
	}
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	src, err := s.plan(ctx, sel)
	if err != nil {
		return s.queryError(PathEvents, err)
	}
	if src.empty {
		return c.JSON(eventsPage{Events: []event.Access{}})
	}
	dir, cmp := "DESC", "<"
	if order == "asc" {
		dir, cmp = "ASC", ">"
	}
	args := r.args(chstorage.Args{"table": src.table, "filters": src.w.fragment(), "dir": dir, "limit": limit + 1})
	if after != nil {
		args["after"] = chstorage.Fragment{SQL: fmt.Sprintf("(ts_ms %s ? OR (ts_ms = ? AND event_id %s toUUID(?)))", cmp, cmp),
			Args: []any{after.TsMs, after.TsMs, after.ID}}
	}
	rows, err := eventsPageSQL.Query(ctx, s.opts.Conn, args)
	if err != nil {
		return s.queryError(PathEvents, err)
	}
	defer rows.Close()
	page := eventsPage{Events: make([]event.Access, 0, min(limit, 256))}
	for rows.Next() {
		var e event.Access
		if err := scanEvent(rows, &e); err != nil {
			return s.queryError(PathEvents, err)
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return s.queryError(PathEvents, err)
	}
	if len(page.Events) > limit {
		page.Events = page.Events[:limit]
		last := page.Events[limit-1]
		page.NextCursor = cursor{V: 1, TsMs: last.TsMs, ID: last.EventID, From: r.from, To: r.to, Sum: sum}.encode()
	}
	c.Set("X-Query-Table", src.table)
	return c.JSON(page)
}

var eventsPageSQL = chstorage.Query("query/events_page")

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

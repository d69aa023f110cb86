package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Timeline item kinds, in their tie-break order.
const (
	kindAccess     = "access"
	kindCredential = "credential"
)

// tableCredentialEvents is the control plane's lifecycle table; the timeline
// includes it when it exists (it is created by the control plane's migrations).
var tableCredentialEvents = chstorage.CredentialEvents.Name

// credentialColumns are the credential_events columns a timeline shows, if
// present; the first four are required for the table to be used.
var credentialColumns = []string{"credential_id", "seq", "ts_ms", "subject_id", "state", "prev_state", "op",
	"device_id", "role", "site_id", "attested", "break_glass", "exception", "reason", "actor", "request_id", "revocation_id"}

var subjectIDParam = openapi.Param{Name: "id", In: "path", Required: true, MaxLen: 128, Description: "pseudonymous subject_id"}

func timelineOp(maxLimit int) openapi.Operation {
	return openapi.Operation{
		Description: "One subject's access events (every vendor) and credential lifecycle records " +
			"(when the control plane's credential_events table exists), newest first, cursor-paginated.",
		Params: append(rangeParams("now-30d"), subjectIDParam,
			openapi.Param{Name: "kind", List: true, Enum: []string{kindAccess, kindCredential},
				Description: "item kinds to include (default all)"},
			openapi.Param{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: int64(maxLimit), Default: "100",
				Description: "items per page"},
			openapi.Param{Name: "cursor", MaxLen: 512, Description: "next_cursor of the previous page"},
		),
		Responses: map[int]openapi.Response{200: {Description: "a page of the timeline",
			Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
				"subject_id": map[string]any{"type": "string"},
				"items": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{
					"kind":  map[string]any{"type": "string", "enum": []string{kindAccess, kindCredential}},
					"ts_ms": map[string]any{"type": "integer"}, "id": map[string]any{"type": "string"},
					"access": eventSchema, "credential": map[string]any{"type": "object"},
				}}},
				"sources":     map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
				"next_cursor": map[string]any{"type": "string"},
			}}}}},
	}
}

type timelineItem struct {
	Kind       string            `json:"kind"`
	TsMs       int64             `json:"ts_ms"`
	ID         string            `json:"id"`
	Access     *event.Access     `json:"access,omitempty"`
	Credential map[string]string `json:"credential,omitempty"`
	seq        uint64
}

// before orders items newest first: ts_ms, then kind, descending. Items of
// one kind keep the order ClickHouse returned (its id order, which the
// cursor's keyset condition uses), so merging uses a stable sort.
func (a timelineItem) before(b timelineItem) bool {
	if a.TsMs != b.TsMs {
		return a.TsMs > b.TsMs
	}
	return a.Kind > b.Kind
}

type timelineCursor struct {
	V    int    `json:"v"`
	TsMs int64  `json:"t"`
	Kind string `json:"k"`
	ID   string `json:"id"`
	From int64  `json:"f"`
	To   int64  `json:"u"`
	Sum  string `json:"s"`
}

func (s *Service) handleTimeline(c *fiber.Ctx) error {
	v, err := s.parse(c, timelineOp(s.opts.MaxLimit))
	if err != nil {
		return err
	}
	r, err := s.timeRange(v)
	if err != nil {
		return err
	}
	subject := v.String("id")
	kinds := v.List("kind")
	if len(kinds) == 0 {
		kinds = []string{kindAccess, kindCredential}
	}
	slices.Sort(kinds)
	limit := int(v.Int("limit"))
	sum := querySum("timeline", selection{"subject": {subject}}, strings.Join(kinds, ","))
	var after *timelineCursor
	if cs := v.String("cursor"); cs != "" {
		cur, err := decodeTimelineCursor(cs, sum)
		if err != nil {
			return err
		}
		r = timeRange{from: cur.From, to: cur.To}
		after = &cur
	}
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	var items []timelineItem
	sources := []string{}
	if slices.Contains(kinds, kindAccess) {
		got, err := s.timelineAccess(ctx, subject, r, after, limit+1)
		if err != nil {
			return s.queryError(PathTimeline, err)
		}
		items = append(items, got...)
		sources = append(sources, tableBySubject)
	}
	if slices.Contains(kinds, kindCredential) {
		got, ok, err := s.timelineCredentials(ctx, subject, r, after, limit+1)
		if err != nil {
			return s.queryError(PathTimeline, err)
		}
		if ok {
			items = append(items, got...)
			sources = append(sources, tableCredentialEvents)
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].before(items[j]) })
	out := struct {
		SubjectID  string         `json:"subject_id"`
		Items      []timelineItem `json:"items"`
		Sources    []string       `json:"sources"`
		NextCursor string         `json:"next_cursor,omitempty"`
	}{SubjectID: subject, Items: items, Sources: sources}
	if len(items) > limit {
		out.Items = items[:limit]
		last := items[limit-1]
		b, _ := json.Marshal(timelineCursor{V: 1, TsMs: last.TsMs, Kind: last.Kind, ID: last.ID, From: r.from, To: r.to, Sum: sum})
		out.NextCursor = base64.RawURLEncoding.EncodeToString(b)
	}
	if out.Items == nil {
		out.Items = []timelineItem{}
	}
	return c.JSON(out)
}

func decodeTimelineCursor(s, sum string) (timelineCursor, error) {
	bad := httpapi.BadRequest("cursor", "not a cursor of this timeline")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return timelineCursor{}, bad
	}
	var c timelineCursor
	if err := json.Unmarshal(raw, &c); err != nil || c.V != 1 || c.Sum != sum || c.From >= c.To ||
		(c.Kind != kindAccess && c.Kind != kindCredential) {
		return timelineCursor{}, bad
	}
	if c.Kind == kindAccess {
		if _, err := uuid.Parse(c.ID); err != nil {
			return timelineCursor{}, bad
		}
	}
	return c, nil
}

// keyset is "strictly after the cursor, newest first" for one source whose
// items all have kind; idCond compares the source's id with the cursor's.
// Without a cursor it is empty (no condition).
func keyset(kind string, cur *timelineCursor, idCond string, idArgs ...any) chstorage.Fragment {
	switch {
	case cur == nil:
		return chstorage.Fragment{}
	case kind < cur.Kind:
		return chstorage.Fragment{SQL: "ts_ms <= ?", Args: []any{cur.TsMs}}
	case kind > cur.Kind:
		return chstorage.Fragment{SQL: "ts_ms < ?", Args: []any{cur.TsMs}}
	}
	return chstorage.Fragment{SQL: "(ts_ms < ? OR (ts_ms = ? AND " + idCond + "))", Args: append([]any{cur.TsMs, cur.TsMs}, idArgs...)}
}

var (
	timelineEventsSQL      = chstorage.Query("query/timeline_events")
	tableColumnsSQL        = chstorage.Query("query/table_columns")
	timelineCredentialsSQL = chstorage.Query("query/timeline_credentials")
)

func (s *Service) timelineAccess(ctx context.Context, subject string, r timeRange, cur *timelineCursor, n int) ([]timelineItem, error) {
	var after chstorage.Fragment
	if cur != nil {
		after = keyset(kindAccess, cur, "event_id < toUUID(?)", cur.ID)
	}
	rows, err := timelineEventsSQL.Query(ctx, s.opts.Conn, r.args(chstorage.Args{"subject": subject, "after": after, "limit": n}))
	if err != nil {
		return nil, fmt.Errorf("timeline events: %w", err)
	}
	defer rows.Close()
	var out []timelineItem
	for rows.Next() {
		e := new(event.Access)
		if err := scanEvent(rows, e); err != nil {
			return nil, fmt.Errorf("timeline events: %w", err)
		}
		out = append(out, timelineItem{Kind: kindAccess, TsMs: e.TsMs, ID: e.EventID, Access: e})
	}
	return out, rows.Err()
}

// credentialTableColumns returns which of credentialColumns the control
// plane's table has (nil when the table does not exist or lacks the basics).
func (s *Service) credentialTableColumns(ctx context.Context) ([]string, error) {
	rows, err := tableColumnsSQL.Query(ctx, s.opts.Conn, chstorage.Args{"table": tableCredentialEvents})
	if err != nil {
		return nil, fmt.Errorf("credential_events columns: %w", err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("credential_events columns: %w", err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("credential_events columns: %w", err)
	}
	var cols []string
	for i, c := range credentialColumns {
		if !have[c] {
			if i < 5 {
				return nil, nil
			}
			continue
		}
		cols = append(cols, c)
	}
	return cols, nil
}

// timelineCredentials reads the subject's credential lifecycle records. Its
// items' ids are credential_id/seq (seq zero-padded so ids sort like the key).
func (s *Service) timelineCredentials(ctx context.Context, subject string, r timeRange, cur *timelineCursor, n int) ([]timelineItem, bool, error) {
	cols, err := s.credentialTableColumns(ctx)
	if err != nil || cols == nil {
		return nil, false, err
	}
	var after chstorage.Fragment
	if cur != nil {
		credID, seq := splitCredentialItemID(cur.ID)
		after = keyset(kindCredential, cur, "(credential_id < ? OR (credential_id = ? AND seq < ?))", credID, credID, seq)
	}
	// The columns the table has (names from credentialColumns, checked
	// against system.columns), each as text.
	sel := make([]string, len(cols))
	for i, c := range cols {
		sel[i] = "toString(" + c + ")"
	}
	rows, err := timelineCredentialsSQL.Query(ctx, s.opts.Conn, chstorage.Args{
		"columns": chstorage.Fragment{SQL: strings.Join(sel, ", ")}, "subject": subject,
		"from_ms": r.from, "to_ms": r.to, "after": after, "limit": n})
	if err != nil {
		return nil, false, fmt.Errorf("timeline credentials: %w", err)
	}
	defer rows.Close()
	var out []timelineItem
	for rows.Next() {
		var it timelineItem
		var credID string
		vals := make([]string, len(cols))
		dst := []any{&it.TsMs, &credID, &it.seq}
		for i := range vals {
			dst = append(dst, &vals[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, false, fmt.Errorf("timeline credentials: %w", err)
		}
		it.Kind = kindCredential
		it.ID = fmt.Sprintf("%s/%020d", credID, it.seq)
		it.Credential = map[string]string{}
		for i, c := range cols {
			it.Credential[c] = vals[i]
		}
		out = append(out, it)
	}
	return out, true, rows.Err()
}

func splitCredentialItemID(id string) (string, uint64) {
	i := strings.LastIndexByte(id, '/')
	if i < 0 {
		return id, 0
	}
	var seq uint64
	_, _ = fmt.Sscan(id[i+1:], &seq)
	return id[:i], seq
}

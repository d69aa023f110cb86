package query

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
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
	kindAlert      = "alert"
	kindCredential = "credential"
)

var timelineKinds = []string{kindAccess, kindAlert, kindCredential}

// tableAlerts is the detectors' alert table (one row per alert version,
// read with FINAL); the timeline includes it when it exists.
const tableAlerts = "alerts"

// tableCredentialEvents is the control plane's lifecycle table; the timeline
// includes it when it exists (it is created by the control plane's migrations).
var tableCredentialEvents = chstorage.CredentialEvents.Name

// credentialColumns are the credential_events columns a timeline shows, if
// present; the first five are required for the table to be used.
var credentialColumns = []string{"credential_id", "seq", "ts_ms", "subject_id", "state", "prev_state", "op",
	"device_id", "role", "site_id", "attested", "break_glass", "exception", "reason", "actor", "request_id", "revocation_id"}

// Types of credential columns that are not strings in the JSON answer.
var (
	credentialInts  = map[string]bool{"seq": true, "ts_ms": true}
	credentialFlags = map[string]bool{"attested": true, "break_glass": true, "exception": true}
)

var credentialSchema = map[string]any{"type": "object", "description": "a credential lifecycle record (a snapshot after one change)",
	"properties": map[string]any{
		"credential_id": map[string]any{"type": "string"}, "seq": map[string]any{"type": "integer"},
		"ts_ms": map[string]any{"type": "integer"}, "subject_id": map[string]any{"type": "string"},
		"state": map[string]any{"type": "string"}, "prev_state": map[string]any{"type": "string"},
		"op": map[string]any{"type": "string"}, "device_id": map[string]any{"type": "string"},
		"role": map[string]any{"type": "string"}, "site_id": map[string]any{"type": "string"},
		"attested": map[string]any{"type": "boolean"}, "break_glass": map[string]any{"type": "boolean"},
		"exception": map[string]any{"type": "boolean"}, "reason": map[string]any{"type": "string"},
		"actor": map[string]any{"type": "string"}, "request_id": map[string]any{"type": "string"},
		"revocation_id": map[string]any{"type": "string"},
	}}

var alertItemSchema = map[string]any{"type": "object", "description": "a detector alert about the subject (its latest version)",
	"properties": map[string]any{
		"alert_id": map[string]any{"type": "string"}, "detector": map[string]any{"type": "string"},
		"severity": map[string]any{"type": "string"}, "status": map[string]any{"type": "string"},
		"credential_id": map[string]any{"type": "string"}, "door_id": map[string]any{"type": "string"},
		"site_id": map[string]any{"type": "string"}, "ts_ms": map[string]any{"type": "integer"},
		"window_start_ms": map[string]any{"type": "integer"}, "window_end_ms": map[string]any{"type": "integer"},
		"observed": map[string]any{"type": "number"}, "threshold": map[string]any{"type": "number"},
		"explanation": map[string]any{"type": "string"}, "suggested_action": map[string]any{"type": "string"},
		"evidence": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
	}}

var subjectIDParam = openapi.Param{Name: "id", In: "path", Required: true, MaxLen: 128, Description: "pseudonymous subject_id"}

func timelineOp(maxLimit int) openapi.Operation {
	return openapi.Operation{
		Description: "One subject's access events (every vendor), detector alerts and credential lifecycle records " +
			"(when the detectors' alerts and the control plane's credential_events tables exist), newest first, " +
			"cursor-paginated. Without from, the subject's whole history: lifecycle records are often older than " +
			"any recent window (a credential issued months ago), and the subject-ordered tables make this cheap.",
		Params: []openapi.Param{
			{Name: "from", Type: openapi.TypeTime,
				Description: "start of the time range (inclusive); default: the subject's whole history"},
			{Name: "to", Type: openapi.TypeTime, Default: "now", Description: "end of the time range (exclusive)"},
			subjectIDParam,
			{Name: "kind", List: true, Enum: timelineKinds, Description: "item kinds to include (default all)"},
			{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: int64(maxLimit), Default: "100",
				Description: "items per page"},
			{Name: "cursor", MaxLen: 512, Description: "next_cursor of the previous page"},
		},
		Responses: map[int]openapi.Response{200: {Description: "a page of the timeline",
			Content: map[string]map[string]any{"application/json": {"type": "object",
				"required": []string{"subject_id", "items", "sources"}, "properties": map[string]any{
					"subject_id": map[string]any{"type": "string"},
					"items": map[string]any{"type": "array", "items": map[string]any{"type": "object",
						"required": []string{"kind", "ts_ms", "id"}, "properties": map[string]any{
							"kind":  map[string]any{"type": "string", "enum": timelineKinds},
							"ts_ms": map[string]any{"type": "integer"}, "id": map[string]any{"type": "string"},
							"access": eventSchema, "alert": alertItemSchema, "credential": credentialSchema,
						}}},
					"sources":     map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
					"next_cursor": map[string]any{"type": "string"},
				}}}}},
	}
}

type timelineItem struct {
	Kind       string         `json:"kind"`
	TsMs       int64          `json:"ts_ms"`
	ID         string         `json:"id"`
	Access     *event.Access  `json:"access,omitempty"`
	Alert      *timelineAlert `json:"alert,omitempty"`
	Credential map[string]any `json:"credential,omitempty"`
	seq        uint64
}

type timelineAlert struct {
	AlertID         string   `json:"alert_id"`
	Detector        string   `json:"detector"`
	Severity        string   `json:"severity"`
	Status          string   `json:"status"`
	CredentialID    string   `json:"credential_id"`
	DoorID          string   `json:"door_id"`
	SiteID          string   `json:"site_id"`
	TsMs            int64    `json:"ts_ms"`
	WindowStartMs   int64    `json:"window_start_ms"`
	WindowEndMs     int64    `json:"window_end_ms"`
	Observed        float64  `json:"observed"`
	Threshold       float64  `json:"threshold"`
	Explanation     string   `json:"explanation"`
	SuggestedAction string   `json:"suggested_action"`
	Evidence        []string `json:"evidence"`
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
	var r timeRange
	if _, ok := v.Time("from"); ok {
		if r, err = s.timeRange(v); err != nil {
			return err
		}
	} else {
		// The whole history: reads are bounded by the subject, not the range.
		to, _ := v.Time("to")
		if r = (timeRange{from: 0, to: to.UnixMilli()}); r.to <= 0 {
			return httpapi.BadRequest("to", "to must be after 1970")
		}
	}
	subject := v.String("id")
	kinds := v.List("kind")
	if len(kinds) == 0 {
		kinds = slices.Clone(timelineKinds)
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
	// A site-scoped caller sees what happened at its sites only.
	sites := httpapi.Caller(c).Sites
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	var items []timelineItem
	sources := []string{}
	if slices.Contains(kinds, kindAccess) {
		got, err := s.timelineAccess(ctx, subject, sites, r, after, limit+1)
		if err != nil {
			return s.queryError(PathTimeline, err)
		}
		items = append(items, got...)
		sources = append(sources, tableBySubject)
	}
	if slices.Contains(kinds, kindAlert) {
		got, ok, err := s.timelineAlerts(ctx, subject, sites, r, after, limit+1)
		if err != nil {
			return s.queryError(PathTimeline, err)
		}
		if ok {
			items = append(items, got...)
			sources = append(sources, tableAlerts)
		}
	}
	if slices.Contains(kinds, kindCredential) {
		got, ok, err := s.timelineCredentials(ctx, subject, sites, r, after, limit+1)
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
		!slices.Contains(timelineKinds, c.Kind) {
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

func (s *Service) timelineAccess(ctx context.Context, subject string, sites []string, r timeRange, cur *timelineCursor, n int) ([]timelineItem, error) {
	var after chstorage.Fragment
	if cur != nil {
		after = keyset(kindAccess, cur, "event_id < toUUID(?)", cur.ID)
	}
	rows, err := timelineEventsSQL.Query(ctx, s.opts.Conn, r.args(chstorage.Args{"subject": subject, "sites": sites, "after": after, "limit": n}))
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
	have, err := s.tableColumns(ctx, tableCredentialEvents)
	if err != nil {
		return nil, err
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
func (s *Service) timelineCredentials(ctx context.Context, subject string, sites []string, r timeRange, cur *timelineCursor, n int) ([]timelineItem, bool, error) {
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
		"columns": chstorage.Fragment{SQL: strings.Join(sel, ", ")}, "subject": subject, "sites": sites,
		"from_s": r.from / 1000, "to_s": ceilDiv(r.to, 1000), "from_ms": r.from, "to_ms": r.to, "after": after, "limit": n})
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
		it.Credential = map[string]any{}
		for i, c := range cols {
			it.Credential[c] = credentialValue(c, vals[i])
		}
		out = append(out, it)
	}
	return out, true, rows.Err()
}

// credentialValue types one column read as text: integers as numbers,
// UInt8 flags as booleans, the rest as strings.
func credentialValue(col, v string) any {
	switch {
	case credentialInts[col]:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return v
		}
		return n
	case credentialFlags[col]:
		return v != "" && v != "0"
	}
	return v
}

var timelineAlertsSQL = chstorage.Query("query/timeline_alerts")

// tableColumns returns the columns a table of the current database has
// (none when it does not exist).
func (s *Service) tableColumns(ctx context.Context, table string) (map[string]bool, error) {
	rows, err := tableColumnsSQL.Query(ctx, s.opts.Conn, chstorage.Args{"table": table})
	if err != nil {
		return nil, fmt.Errorf("%s columns: %w", table, err)
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("%s columns: %w", table, err)
		}
		have[name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s columns: %w", table, err)
	}
	return have, nil
}

// timelineAlerts reads the alerts raised about the subject (the latest
// version of each), when the detectors' table exists. Items are ordered by
// ts_ms, alert_id.
func (s *Service) timelineAlerts(ctx context.Context, subject string, sites []string, r timeRange, cur *timelineCursor, n int) ([]timelineItem, bool, error) {
	cols, err := s.tableColumns(ctx, tableAlerts)
	if err != nil || !cols["alert_id"] {
		return nil, false, err
	}
	var after chstorage.Fragment
	if cur != nil {
		after = keyset(kindAlert, cur, "alert_id < ?", cur.ID)
	}
	rows, err := timelineAlertsSQL.Query(ctx, s.opts.Conn, chstorage.Args{"subject": subject, "sites": sites,
		"from_s": r.from / 1000, "to_s": ceilDiv(r.to, 1000), "from_ms": r.from, "to_ms": r.to, "after": after, "limit": n})
	if err != nil {
		return nil, false, fmt.Errorf("timeline alerts: %w", err)
	}
	defer rows.Close()
	var out []timelineItem
	for rows.Next() {
		a := new(timelineAlert)
		if err := rows.Scan(&a.AlertID, &a.Detector, &a.Severity, &a.Status, &a.CredentialID, &a.DoorID, &a.SiteID,
			&a.TsMs, &a.WindowStartMs, &a.WindowEndMs, &a.Observed, &a.Threshold, &a.Explanation, &a.SuggestedAction,
			&a.Evidence); err != nil {
			return nil, false, fmt.Errorf("timeline alerts: %w", err)
		}
		if a.Evidence == nil {
			a.Evidence = []string{}
		}
		out = append(out, timelineItem{Kind: kindAlert, TsMs: a.TsMs, ID: a.AlertID, Alert: a})
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

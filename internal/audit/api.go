package audit

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Route paths of the audit API.
const (
	PathSearch = "/v1/audit"
	PathExport = "/v1/export/audit"
)

// APIOptions configure the audit API.
type APIOptions struct {
	// VerifyEvery is how long a verification of the whole log is reused
	// for the searches' verification status (default 1 min).
	VerifyEvery time.Duration
	// Timeout bounds a search (default 30 s) and an export (default 10 min).
	Timeout       time.Duration
	ExportTimeout time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// API serves the audit log's search and export to admins and auditors;
// both are audited (audit.search, audit.export).
type API struct {
	store *Store
	opts  APIOptions

	mu       sync.Mutex
	verified *Verification
}

// Verification is the chain's verification status as the searches report
// it: the whole log verified at VerifiedMs (reused for APIOptions.VerifyEvery).
type Verification struct {
	VerifiedMs int64    `json:"verified_ms"`
	OK         bool     `json:"ok"`
	Entries    int      `json:"entries"`
	Unkeyed    int      `json:"unkeyed"`
	Unchecked  int      `json:"unchecked"`
	First      *Finding `json:"first,omitempty"`
	// Chains are the chains' states; an entry of a chain that is not OK
	// may have been tampered with.
	Chains []ChainState `json:"chains"`
	Error  string       `json:"error,omitempty"`
}

// NewAPI returns the audit API.
func NewAPI(store *Store, opts APIOptions) (*API, error) {
	if store == nil {
		return nil, errors.New("audit API: a store is required")
	}
	if opts.VerifyEvery <= 0 {
		opts.VerifyEvery = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.ExportTimeout <= 0 {
		opts.ExportTimeout = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &API{store: store, opts: opts}, nil
}

// Routes returns the audit routes (admin and auditor).
func (a *API) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: fiber.MethodGet, Path: PathSearch, Roles: httpapi.AuditRoles, Handler: a.search,
			Summary: "Search the admin audit log (actor, action prefix, target, from, to; cursor pagination), newest first, with the chain's verification status (audited)."},
		{Method: fiber.MethodGet, Path: PathExport, Roles: httpapi.AuditRoles, Handler: a.export,
			Summary: "Export the admin audit log (format: csv or ndjson; the search's filters), streamed, oldest first within the range (audited)."},
	}
}

var filterParams = []openapi.Param{
	{Name: "actor", Description: "only entries of this actor (token id or name, as recorded)", MaxLen: 200},
	{Name: "action", Description: "only actions starting with this (credential.revoke, exception., token.)", MaxLen: 200},
	{Name: "target", Description: "only entries about this object (a credential id, exception/ex-…, a token id)", MaxLen: 500},
	{Name: "from", Type: openapi.TypeTime, Description: "entries at or after this time"},
	{Name: "to", Type: openapi.TypeTime, Description: "entries before this time"},
}

var searchOp = openapi.Operation{
	Description: "Entries of the hash-chained admin audit log matching the filters, newest first (ts_ms, then chain and seq), " +
		"and the verification status of the whole log (recomputed at most once a minute): ok, the first altered or removed " +
		"entry, each chain's state. Every search is itself audited (audit.search).",
	Params: append(append([]openapi.Param(nil), filterParams...),
		openapi.Param{Name: "limit", Type: openapi.TypeInteger, Default: "100", Min: 1, Max: 1000},
		openapi.Param{Name: "cursor", Description: "next_cursor of the previous page (same filters)", MaxLen: 400}),
}

var exportOp = openapi.Operation{
	Description: "The audit log's entries matching the filters as CSV (chain, seq, ts, actor, actor_name, action, target, " +
		"details as JSON, prev_hash, hash, key_id) or NDJSON (one entry per line), newest first, streamed in pages; " +
		"audited (audit.export) before the first byte.",
	Params: append(append([]openapi.Param(nil), filterParams...),
		openapi.Param{Name: "format", Enum: []string{"csv", "ndjson"}, Default: "ndjson"}),
}

// Operations describes the routes for the OpenAPI document.
func (a *API) Operations() map[string]openapi.Operation {
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodGet, PathSearch): withResponses(searchOp, map[int]openapi.Response{200: {Description: "matching entries and the log's verification",
			Content: openapi.JSON(openapi.ResponseSchema(SearchPage{}, nil))}}),
		openapi.Key(fiber.MethodGet, PathExport): withResponses(exportOp, map[int]openapi.Response{200: {Description: "the entries, streamed",
			Content: map[string]map[string]any{
				"application/x-ndjson": {"type": "string", "description": "one entry per line, as the search returns them"},
				"text/csv":             {"type": "string", "description": strings.Join(exportHead, ",") + " (details as JSON)"},
			}}}),
	}
}

func withResponses(op openapi.Operation, r map[int]openapi.Response) openapi.Operation {
	op.Responses = r
	return op
}

// Search is a validated audit search.
type Search struct {
	Actor, Action, Target string
	FromMs, ToMs          int64
	Limit                 int
	After                 *Cursor
}

// Cursor is the last entry of a page.
type Cursor struct {
	TsMs  int64  `json:"t"`
	Chain string `json:"c"`
	Seq   uint64 `json:"s"`
}

func (c Cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, httpapi.BadRequest("cursor", "invalid cursor")
	}
	var c Cursor
	if err := json.Unmarshal(b, &c); err != nil || c.Seq == 0 {
		return nil, httpapi.BadRequest("cursor", "invalid cursor")
	}
	return &c, nil
}

var searchSQL = chstorage.Query("audit/search")

// Search returns the entries matching s, newest first.
func (s *Store) Search(ctx context.Context, q Search) ([]Row, error) {
	args := chstorage.Args{"actor": q.Actor, "action": q.Action, "target": q.Target, "from_ms": q.FromMs, "to_ms": q.ToMs,
		"limit": uint32(q.Limit)}
	if q.After != nil {
		args["after"], args["after_ts"], args["after_chain"], args["after_seq"] = true, q.After.TsMs, q.After.Chain, q.After.Seq
	}
	rows, err := searchSQL.Query(ctx, s.conn, args)
	if err != nil {
		return nil, fmt.Errorf("search audit log: %w", err)
	}
	defer rows.Close()
	out := []Row{}
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, fmt.Errorf("scan audit log: %w", err)
		}
		r.Details, _ = decodeDetails(r.details)
		if name, ok := r.Details[actorNameKey]; ok {
			r.ActorName = name
			delete(r.Details, actorNameKey)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (a *API) parse(c *fiber.Ctx, op openapi.Operation) (openapi.Values, Search, error) {
	v, err := openapi.Parse(op.Params, openapi.Args(c), a.opts.Now().UTC())
	if err != nil {
		return v, Search{}, err
	}
	q := Search{Actor: v.String("actor"), Action: v.String("action"), Target: v.String("target")}
	if t, ok := v.Time("from"); ok {
		q.FromMs = t.UnixMilli()
	}
	if t, ok := v.Time("to"); ok {
		q.ToMs = t.UnixMilli()
	}
	if q.FromMs > 0 && q.ToMs > 0 && q.ToMs <= q.FromMs {
		return v, q, httpapi.BadRequest("to", "to must be after from")
	}
	return v, q, nil
}

// verification is the cached verification status.
func (a *API) verification(ctx context.Context) Verification {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.opts.Now()
	if a.verified != nil && now.Sub(time.UnixMilli(a.verified.VerifiedMs)) < a.opts.VerifyEvery {
		return *a.verified
	}
	v := Verification{VerifiedMs: now.UnixMilli(), Chains: []ChainState{}}
	rep, err := a.store.Verify(ctx)
	if err != nil {
		v.Error = err.Error() // not cached: the next search tries again
		return v
	}
	v.OK, v.Entries, v.Unkeyed, v.Unchecked, v.First = rep.OK, rep.Entries, rep.Unkeyed, rep.Unchecked, rep.First
	if rep.Chains != nil {
		v.Chains = rep.Chains
	}
	a.verified = &v
	return v
}

func (a *API) record(ctx context.Context, c *fiber.Ctx, action string, q Search, extra map[string]string) error {
	p := httpapi.Caller(c)
	d := map[string]string{"actor": q.Actor, "action": q.Action, "target": q.Target}
	if q.FromMs > 0 {
		d["from_ms"] = strconv.FormatInt(q.FromMs, 10)
	}
	if q.ToMs > 0 {
		d["to_ms"] = strconv.FormatInt(q.ToMs, 10)
	}
	for k, v := range extra {
		d[k] = v
	}
	for k, v := range d {
		if v == "" {
			delete(d, k)
		}
	}
	if err := a.store.Append(ctx, Entry{Actor: p.TokenID, ActorName: p.Name, Action: action, Target: "audit_log",
		Details: d, TsMs: a.opts.Now().UnixMilli()}); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable",
			"the audit log could not record this read, so it was not made")
	}
	return nil
}

// SearchPage is the answer of GET /v1/audit.
type SearchPage struct {
	Entries      []Row        `json:"entries"`
	NextCursor   string       `json:"next_cursor,omitempty"`
	Verification Verification `json:"verification"`
}

func (a *API) search(c *fiber.Ctx) error {
	v, q, err := a.parse(c, searchOp)
	if err != nil {
		return err
	}
	q.Limit = 100
	if v.Has("limit") {
		q.Limit = int(v.Int("limit"))
	}
	if cs := v.String("cursor"); cs != "" {
		if q.After, err = decodeCursor(cs); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
	defer cancel()
	if err := a.record(ctx, c, "audit.search", q, nil); err != nil {
		return err
	}
	page := q
	page.Limit++
	rows, err := a.store.Search(ctx, page)
	if err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "unavailable", err.Error())
	}
	out := SearchPage{Entries: rows}
	if len(rows) > q.Limit {
		out.Entries = rows[:q.Limit]
		last := out.Entries[q.Limit-1]
		out.NextCursor = Cursor{TsMs: last.TsMs, Chain: last.Chain, Seq: last.Seq}.encode()
	}
	out.Verification = a.verification(ctx)
	return c.JSON(out)
}

// exportPage is how many entries an export reads per query.
const exportPage = 5000

var exportHead = []string{"chain", "seq", "ts", "actor", "actor_name", "action", "target", "details", "prev_hash", "hash", "key_id"}

func (a *API) export(c *fiber.Ctx) error {
	v, q, err := a.parse(c, exportOp)
	if err != nil {
		return err
	}
	format := v.String("format")
	if format == "" {
		format = "ndjson"
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.opts.Timeout)
	defer cancel()
	if err := a.record(ctx, c, "audit.export", q, map[string]string{"format": format}); err != nil {
		return err
	}
	ctype, ext := "application/x-ndjson", "ndjson"
	if format == "csv" {
		ctype, ext = "text/csv; charset=utf-8", "csv"
	}
	c.Set(fiber.HeaderContentType, ctype)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="keyfleet-audit.`+ext+`"`)
	c.Set(fiber.HeaderCacheControl, "no-store")
	conn := c.Context().Conn()
	timeout := a.opts.ExportTimeout
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		n, err := a.stream(ctx, w, q, format)
		if err != nil {
			a.opts.Logger.Error("audit export failed mid-stream; closing the connection so the client sees a truncated body",
				"rows", n, "err", err)
			if conn != nil {
				_ = conn.Close()
			}
		}
	})
	return nil
}

// stream writes every entry matching q, page by page.
func (a *API) stream(ctx context.Context, w *bufio.Writer, q Search, format string) (int, error) {
	var cw *csv.Writer
	if format == "csv" {
		cw = csv.NewWriter(w)
		if err := cw.Write(exportHead); err != nil {
			return 0, err
		}
	}
	enc := json.NewEncoder(w)
	n := 0
	q.Limit = exportPage
	for {
		rows, err := a.store.Search(ctx, q)
		if err != nil {
			return n, err
		}
		for _, r := range rows {
			if cw != nil {
				details, err := json.Marshal(r.Details)
				if err != nil {
					return n, err
				}
				if err := cw.Write([]string{r.Chain, strconv.FormatUint(r.Seq, 10), time.UnixMilli(r.TsMs).UTC().Format(time.RFC3339Nano),
					r.Actor, r.ActorName, r.Action, r.Target, string(details), r.PrevHash, r.Hash, r.KeyID}); err != nil {
					return n, err
				}
			} else if err := enc.Encode(r); err != nil {
				return n, err
			}
			n++
		}
		if cw != nil {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return n, err
			}
		}
		if err := w.Flush(); err != nil {
			return n, err
		}
		if len(rows) < q.Limit {
			return n, nil
		}
		last := rows[len(rows)-1]
		q.After = &Cursor{TsMs: last.TsMs, Chain: last.Chain, Seq: last.Seq}
	}
}

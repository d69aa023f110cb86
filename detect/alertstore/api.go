package alertstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/detect"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// API limits.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	MaxNote      = 2000
)

// API serves /v1/alerts.
type API struct {
	store   *Store
	auditor audit.Appender
	timeout time.Duration
}

// NewAPI returns the alert routes' handlers. Status changes are audited
// through auditor before they are written.
func NewAPI(store *Store, auditor audit.Appender) (*API, error) {
	if store == nil || auditor == nil {
		return nil, errors.New("alerts API: store and auditor are required")
	}
	return &API{store: store, auditor: auditor, timeout: 10 * time.Second}, nil
}

// Routes returns the alert routes.
func (a *API) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: fiber.MethodGet, Path: "/v1/alerts", Roles: httpapi.ReadRoles, Handler: a.list, SiteScoped: true,
			Summary: "List alerts, newest first (filters: status, detector, severity, subject, credential, door, site, from, to; limit)."},
		{Method: fiber.MethodGet, Path: "/v1/alerts/:id", Roles: httpapi.ReadRoles, Handler: a.get, SiteScoped: true,
			Summary: "One alert with its evidence, explanation and responder actions."},
		{Method: fiber.MethodPatch, Path: "/v1/alerts/:id", Roles: []httpapi.Role{httpapi.RoleAnalyst, httpapi.RoleResponder}, Handler: a.patch, SiteScoped: true,
			Summary: "Change an alert's status (open, acknowledged, resolved, false_positive) with a note; audited."},
	}
}

var listParams = []string{"status", "detector", "severity", "subject", "credential", "door", "site", "from", "to", "limit"}

// parseTime reads a time the way every other route does (RFC 3339, a date,
// epoch milliseconds, now, now-<duration>).
func parseTime(field, v string) (int64, error) {
	t, err := openapi.ParseTime(v, time.Now())
	if err != nil || t.UnixMilli() <= 0 {
		return 0, httpapi.BadRequest(field, field+" must be an RFC 3339 time, a date (2026-12-01), positive epoch milliseconds or now-<duration>")
	}
	return t.UnixMilli(), nil
}

func (a *API) list(c *fiber.Ctx) error {
	var f Filter
	var perr error
	c.Request().URI().QueryArgs().VisitAll(func(k, v []byte) {
		if perr != nil {
			return
		}
		key, val := string(k), string(v)
		if !slices.Contains(listParams, key) {
			perr = httpapi.BadRequest(key, fmt.Sprintf("unknown filter %q (known: %s)", key, strings.Join(listParams, ", ")))
			return
		}
		if val == "" {
			perr = httpapi.BadRequest(key, key+" must not be empty")
			return
		}
		if utf8.RuneCountInString(val) > 200 {
			perr = httpapi.BadRequest(key, key+" is too long")
			return
		}
		switch key {
		case "status":
			if !slices.Contains(detect.Statuses, val) {
				perr = httpapi.BadRequest(key, "status must be one of "+strings.Join(detect.Statuses, ", "))
			}
			f.Status = val
		case "detector":
			if !slices.Contains(detect.Detectors, val) {
				perr = httpapi.BadRequest(key, "detector must be one of "+strings.Join(detect.Detectors, ", "))
			}
			f.Detector = val
		case "severity":
			if detect.SeverityRank(val) == 0 {
				perr = httpapi.BadRequest(key, "severity must be one of "+strings.Join(detect.Severities, ", "))
			}
			f.Severity = val
		case "subject":
			f.Subject = val
		case "credential":
			f.Credential = val
		case "door":
			f.Door = val
		case "site":
			f.Site = val
		case "from":
			f.FromMs, perr = parseTime(key, val)
		case "to":
			f.ToMs, perr = parseTime(key, val)
		case "limit":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1 || n > MaxLimit {
				perr = httpapi.BadRequest(key, fmt.Sprintf("limit must be an integer in 1..%d", MaxLimit))
			}
			f.Limit = n
		}
	})
	if perr != nil {
		return perr
	}
	if f.FromMs > 0 && f.ToMs > 0 && f.ToMs <= f.FromMs {
		return httpapi.BadRequest("to", "to must be after from")
	}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	if f.Sites, perr = httpapi.Caller(c).SiteFilter(f.Site); perr != nil {
		return perr
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.timeout)
	defer cancel()
	recs, err := a.store.List(ctx, f)
	if err != nil {
		return err
	}
	if recs == nil {
		recs = []Record{}
	}
	return c.JSON(fiber.Map{"alerts": recs, "count": len(recs), "limit": f.Limit})
}

func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f' || r >= 'A' && r <= 'F' || r == '-') {
			return false
		}
	}
	return true
}

func (a *API) get(c *fiber.Ctx) error {
	id, err := httpapi.PathParam(c, "id")
	if err != nil {
		return err
	}
	if !validID(id) {
		return httpapi.BadRequest("id", "id must be an alert id (UUID)")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.timeout)
	defer cancel()
	r, err := a.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !httpapi.Caller(c).InScope(r.SiteID)) {
		return httpapi.NewProblem(fiber.StatusNotFound, "alert_not_found", "no alert "+id)
	}
	if err != nil {
		return err
	}
	return c.JSON(r)
}

type patchBody struct {
	Status string `json:"status"`
	Note   string `json:"note"`
}

func (a *API) patch(c *fiber.Ctx) error {
	id, err := httpapi.PathParam(c, "id")
	if err != nil {
		return err
	}
	if !validID(id) {
		return httpapi.BadRequest("id", "id must be an alert id (UUID)")
	}
	var body patchBody
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		return httpapi.BadRequest("body", "body must be a JSON object {\"status\": ..., \"note\": ...}")
	}
	if !slices.Contains(detect.Statuses, body.Status) {
		return httpapi.BadRequest("status", "status must be one of "+strings.Join(detect.Statuses, ", "))
	}
	if utf8.RuneCountInString(body.Note) > MaxNote || !utf8.ValidString(body.Note) {
		return httpapi.BadRequest("note", fmt.Sprintf("note must be valid UTF-8 of at most %d characters", MaxNote))
	}
	caller := httpapi.Caller(c)
	actor := caller.Name
	if actor == "" {
		actor = caller.TokenID
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), a.timeout)
	defer cancel()
	cur, err := a.store.Get(ctx, id)
	if errors.Is(err, ErrNotFound) || (err == nil && !caller.InScope(cur.SiteID)) {
		return httpapi.NewProblem(fiber.StatusNotFound, "alert_not_found", "no alert "+id)
	}
	if err != nil {
		return err
	}
	// Audit first: a change that cannot be audited is not made.
	sum := sha256.Sum256([]byte(body.Note))
	entry := audit.Entry{
		Actor: actor, Action: "alert.status", Target: id, TsMs: time.Now().UnixMilli(),
		Details: map[string]string{
			"from": cur.Status, "to": body.Status, "detector": cur.Detector, "severity": cur.Severity,
			"token_id": caller.TokenID, "role": string(caller.Role), "note_sha256": hex.EncodeToString(sum[:]),
		},
	}
	if err := a.auditor.Append(ctx, entry); err != nil {
		p := httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable", "the change could not be audited, so it was not made; retry later")
		return errors.Join(p, err)
	}
	rec, _, err := a.store.SetStatus(ctx, id, body.Status, body.Note, actor)
	if err != nil {
		return err
	}
	rec.Actions = cur.Actions
	return c.JSON(rec)
}

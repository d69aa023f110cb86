package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Token API paths.
const (
	PathTokens      = "/v1/tokens"
	PathToken       = "/v1/tokens/:id"
	PathTokenRotate = "/v1/tokens/:id/rotate"
)

// API serves the token routes (admin only). Every change is written to the
// audit log before it is made.
type API struct {
	store *Store
	audit audit.Appender
}

// NewAPI returns the token API.
func NewAPI(store *Store, audit audit.Appender) (*API, error) {
	if store == nil || audit == nil {
		return nil, errors.New("auth: store and audit are required")
	}
	return &API{store: store, audit: audit}, nil
}

// Routes returns the token routes.
func (a *API) Routes() []httpapi.Route {
	return []httpapi.Route{
		{Method: fiber.MethodPost, Path: PathTokens, Summary: "Create an API token; its secret is returned once.",
			Roles: httpapi.AdminOnly, Handler: a.create},
		{Method: fiber.MethodGet, Path: PathTokens, Summary: "List API tokens (never their secrets).",
			Roles: httpapi.AdminOnly, Handler: a.list},
		{Method: fiber.MethodDelete, Path: PathToken, Summary: "Revoke an API token.",
			Roles: httpapi.AdminOnly, Handler: a.revoke},
		{Method: fiber.MethodPost, Path: PathTokenRotate, Summary: "Rotate an API token: a new secret, the old token revoked.",
			Roles: httpapi.AdminOnly, Handler: a.rotate},
	}
}

var tokenSchema = map[string]any{"type": "object", "properties": map[string]any{
	"id": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"},
	"role":       map[string]any{"type": "string", "enum": roleNames()},
	"created_ms": map[string]any{"type": "integer"}, "revoked_ms": map[string]any{"type": "integer"},
	"expires_ms":   map[string]any{"type": "integer", "description": "when the token stops working (absent: never)"},
	"sites":        map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "description": "the sites the token is limited to (absent: every site)"},
	"last_used_ms": map[string]any{"type": "integer"},
}}

func roleNames() []string {
	out := make([]string, len(httpapi.AllRoles))
	for i, r := range httpapi.AllRoles {
		out[i] = string(r)
	}
	return out
}

// Operations describes the token routes for the OpenAPI document.
func (a *API) Operations() map[string]openapi.Operation {
	return map[string]openapi.Operation{
		openapi.Key(fiber.MethodPost, PathTokens): {
			Description: "Creates a token with one role. The secret is in this response only; keyfleet keeps its SHA-256 hash.",
			Body: map[string]any{"type": "object", "required": []string{"name", "role"}, "additionalProperties": false,
				"properties": map[string]any{
					"name": map[string]any{"type": "string", "minLength": 1, "maxLength": maxNameLen, "pattern": openapi.Printable,
						"description": "a label (what or who uses it)"},
					"role": map[string]any{"type": "string", "enum": roleNames()},
					"expires_at": map[string]any{"type": "string", "format": "date-time", "nullable": true,
						"description": "when the token stops working (RFC 3339, in the future, at most 5 years ahead); absent: never"},
					"sites": map[string]any{"type": "array", "items": map[string]any{"type": "string"}, "maxItems": MaxSites,
						"description": "limit the token to these sites (property-scoped; analyst, responder and manager tokens only): " +
							"site-scoped routes show only these sites and refuse writes outside them, fleet-wide routes answer 403 scope_unsupported; absent: every site"},
				}},
			Responses: map[int]openapi.Response{201: {Description: "the token and its secret",
				Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
					"token": tokenSchema, "secret": map[string]any{"type": "string"}}}}}},
		},
		openapi.Key(fiber.MethodGet, PathTokens): {
			Description: "Every token, newest first, with when it was last used.",
			Responses: map[int]openapi.Response{200: {Description: "tokens",
				Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
					"tokens": map[string]any{"type": "array", "items": tokenSchema}}}}}},
		},
		openapi.Key(fiber.MethodDelete, PathToken): {
			Description: "Revokes a token (idempotent). Other instances stop accepting it within seconds. " +
				"The last active admin token cannot be revoked (409 last_admin).",
			Params: []openapi.Param{tokenIDParam},
			Responses: map[int]openapi.Response{200: {Description: "the revoked token",
				Content: map[string]map[string]any{"application/json": tokenSchema}},
				404: {Description: "no such token"}, 409: {Description: "the last active admin token"}},
		},
		openapi.Key(fiber.MethodPost, PathTokenRotate): {
			NoBody: true,
			Description: "Creates a token with the same name, role and expiry and a new secret (returned once), and revokes " +
				"the old one. Audited as token.rotate with both ids.",
			Params: []openapi.Param{tokenIDParam},
			Responses: map[int]openapi.Response{201: {Description: "the new token, its secret and the id it replaces",
				Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
					"token": tokenSchema, "secret": map[string]any{"type": "string"}, "rotated_from": map[string]any{"type": "string"}}}}},
				404: {Description: "no such token"}, 409: {Description: "the token is revoked or expired"}},
		},
	}
}

// maxExpiry bounds how far ahead a token may expire.
const maxExpiry = 5 * 366 * 24 * time.Hour

const maxNameLen = 100

func (a *API) record(ctx context.Context, c *fiber.Ctx, action, target string, details map[string]string) error {
	p := httpapi.Caller(c)
	if err := a.audit.Append(ctx, audit.Entry{Actor: p.TokenID, ActorName: p.Name, Action: action, Target: target,
		Details: details, TsMs: time.Now().UnixMilli()}); err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "audit_unavailable",
			"the audit log could not record this change, so it was not made")
	}
	return nil
}

func (a *API) create(c *fiber.Ctx) error {
	if _, err := openapi.Parse(nil, openapi.Args(c), time.Now()); err != nil {
		return err
	}
	var req struct {
		Name      string       `json:"name"`
		Role      httpapi.Role `json:"role"`
		ExpiresAt *time.Time   `json:"expires_at"`
		Sites     []string     `json:"sites"`
	}
	dec := json.NewDecoder(strings.NewReader(string(c.Body())))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return httpapi.NewProblem(fiber.StatusBadRequest, "invalid_body", "want a JSON object {\"name\": ..., \"role\": ...}: "+err.Error())
	}
	if err := validName(req.Name); err != nil {
		return httpapi.BadRequest("name", err.Error())
	}
	if !httpapi.ValidRole(req.Role) {
		return httpapi.BadRequest("role", fmt.Sprintf("role must be one of %s", strings.Join(roleNames(), ", ")))
	}
	if err := CheckSites(req.Role, req.Sites); err != nil {
		return httpapi.BadRequest("sites", err.Error())
	}
	spec := Spec{Name: req.Name, Role: req.Role, Sites: req.Sites}
	details := map[string]string{"role": string(req.Role), "name": req.Name}
	if len(req.Sites) > 0 {
		details["sites"] = strings.Join(req.Sites, ",")
	}
	if req.ExpiresAt != nil {
		now := a.store.now()
		if !req.ExpiresAt.After(now) || req.ExpiresAt.Sub(now) > maxExpiry {
			return httpapi.BadRequest("expires_at", "expires_at must be in the future and at most 5 years ahead")
		}
		spec.ExpiresMs = req.ExpiresAt.UnixMilli()
		details["expires_at"] = req.ExpiresAt.UTC().Format(time.RFC3339)
	}
	secret, err := NewSecret()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	if err := a.record(ctx, c, "token.create", IDOf(secret), details); err != nil {
		return err
	}
	t, err := a.store.Put(ctx, spec, secret)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"token": t, "secret": secret})
}

// validName checks a token name: 1..100 printable characters.
func validName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("name must be 1 to %d characters", maxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || r == unicode.ReplacementChar {
			return errors.New("name must be printable UTF-8")
		}
	}
	return nil
}

func (a *API) list(c *fiber.Ctx) error {
	if _, err := openapi.Parse(nil, openapi.Args(c), time.Now()); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"tokens": a.store.List()})
}

func (a *API) revoke(c *fiber.Ctx) error {
	v, err := openapi.Parse(a.Operations()[openapi.Key(fiber.MethodDelete, PathToken)].Params, openapi.Args(c), time.Now())
	if err != nil {
		return err
	}
	id := v.String("id")
	t, ok := a.store.Get(id)
	if !ok {
		return httpapi.NewProblem(fiber.StatusNotFound, "token_not_found", "no token has this id")
	}
	if t.RevokedMs != 0 {
		return c.JSON(t)
	}
	if t.Role == httpapi.RoleAdmin && t.Active(a.store.now().UnixMilli()) && a.activeAdmins() <= 1 {
		return httpapi.NewProblem(fiber.StatusConflict, "last_admin",
			"this is the last active admin token; create another admin token first")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	if err := a.record(ctx, c, "token.revoke", id, map[string]string{"role": string(t.Role), "name": t.Name}); err != nil {
		return err
	}
	t, err = a.store.Revoke(ctx, id)
	if err != nil {
		return err
	}
	return c.JSON(t)
}

func (a *API) activeAdmins() int {
	n := 0
	now := a.store.now().UnixMilli()
	for _, t := range a.store.List() {
		if t.Role == httpapi.RoleAdmin && t.Active(now) {
			n++
		}
	}
	return n
}

func (a *API) rotate(c *fiber.Ctx) error {
	v, err := openapi.Parse(a.Operations()[openapi.Key(fiber.MethodPost, PathTokenRotate)].Params, openapi.Args(c), time.Now())
	if err != nil {
		return err
	}
	id := v.String("id")
	old, ok := a.store.Get(id)
	if !ok {
		return httpapi.NewProblem(fiber.StatusNotFound, "token_not_found", "no token has this id")
	}
	if !old.Active(a.store.now().UnixMilli()) {
		return httpapi.NewProblem(fiber.StatusConflict, "token_inactive", "the token is revoked or expired; create a new one instead")
	}
	secret, err := NewSecret()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), 10*time.Second)
	defer cancel()
	if err := a.record(ctx, c, "token.rotate", IDOf(secret), map[string]string{"rotated_from": id,
		"role": string(old.Role), "name": old.Name}); err != nil {
		return err
	}
	t, err := a.store.Rotate(ctx, id, secret)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"token": t, "secret": secret, "rotated_from": id})
}

// tokenIDParam is a token id in a path: tok_ and 16 hex digits (IDOf),
// declared loosely (letters, digits, _ and -) so old ids stay addressable.
var tokenIDParam = openapi.Param{Name: "id", In: "path", Required: true, MaxLen: 64, Pattern: `^[A-Za-z0-9_-]+$`,
	Description: "the token's id (tok_…)"}

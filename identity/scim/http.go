package scim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/scim2/filter-parser/v2"

	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// Prefix is where the service provider is mounted.
const Prefix = "/scim/v2"

// RoleSCIM is the role of identity-provider tokens (httpapi.RoleSCIM).
const RoleSCIM = httpapi.RoleSCIM

// ContentType is the SCIM media type (RFC 7644 §3.1).
const ContentType = "application/scim+json"

// Routes returns the SCIM endpoints, admitted to the scim role (and admin).
// Every answer, errors included, is application/scim+json; methods an
// endpoint does not support answer 405, unknown paths under the prefix 404.
func (s *Service) Routes() []httpapi.Route {
	roles := []httpapi.Role{RoleSCIM}
	var rs []httpapi.Route
	add := func(method, path, summary string, h func(*fiber.Ctx, context.Context) error) {
		rs = append(rs, httpapi.Route{Method: method, Path: Prefix + path, Summary: summary, Roles: roles, Handler: s.handler(h)})
	}
	add(fiber.MethodGet, "/ServiceProviderConfig", "SCIM: the service provider's configuration (RFC 7644 §4).", s.handleSPConfig)
	add(fiber.MethodGet, "/ResourceTypes", "SCIM: the resource types served.", s.handleResourceTypes)
	add(fiber.MethodGet, "/ResourceTypes/:id", "SCIM: one resource type.", s.handleResourceType)
	add(fiber.MethodGet, "/Schemas", "SCIM: the schemas served.", s.handleSchemas)
	add(fiber.MethodGet, "/Schemas/:id", "SCIM: one schema.", s.handleSchema)
	add(fiber.MethodPost, "/.search", "SCIM: search Users and Groups at once (RFC 7644 §3.4.3).", s.handleSearch(nil))
	for _, rt := range s.types {
		add(fiber.MethodGet, rt.Endpoint, "SCIM: list or filter "+rt.Name+"s (filter, sortBy, startIndex, count, attributes).", s.handleList(rt))
		add(fiber.MethodPost, rt.Endpoint, "SCIM: create a "+rt.Name+".", s.handleCreate(rt))
		add(fiber.MethodPost, rt.Endpoint+"/.search", "SCIM: search "+rt.Name+"s with a SearchRequest body.", s.handleSearch(rt))
		add(fiber.MethodGet, rt.Endpoint+"/:id", "SCIM: one "+rt.Name+" (If-None-Match supported).", s.handleGet(rt))
		add(fiber.MethodPut, rt.Endpoint+"/:id", "SCIM: replace a "+rt.Name+" (If-Match supported).", s.handleReplace(rt))
		add(fiber.MethodPatch, rt.Endpoint+"/:id", "SCIM: modify a "+rt.Name+" with a PatchOp (If-Match supported).", s.handlePatch(rt))
		add(fiber.MethodDelete, rt.Endpoint+"/:id", "SCIM: delete a "+rt.Name+" (If-Match supported).", s.handleDelete(rt))
	}
	for _, m := range []string{fiber.MethodGet, fiber.MethodPost, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete} {
		add(m, "/*", "SCIM: anything else under the prefix: 405 (with Allow), 501 (/Me, /Bulk) or 404, as SCIM errors.", s.handleOther)
	}
	return rs
}

// allowed returns the methods a path under the prefix supports (nil: no
// such endpoint); notImplemented tells /Me and /Bulk.
func (s *Service) allowed(path string) (methods []string, notImplemented bool) {
	seg := strings.Split(strings.Trim(strings.TrimPrefix(path, Prefix), "/"), "/")
	is := func(i int, name string) bool { return strings.EqualFold(seg[i], name) }
	get := []string{fiber.MethodGet}
	switch {
	case is(0, "Me") || (len(seg) == 1 && is(0, "Bulk")):
		return nil, true
	case len(seg) == 1 && is(0, "ServiceProviderConfig"), len(seg) <= 2 && (is(0, "ResourceTypes") || is(0, "Schemas")):
		return get, false
	case len(seg) == 1 && is(0, ".search"):
		return []string{fiber.MethodPost}, false
	}
	for _, rt := range s.types {
		if !is(0, strings.TrimPrefix(rt.Endpoint, "/")) {
			continue
		}
		switch {
		case len(seg) == 1:
			return []string{fiber.MethodGet, fiber.MethodPost}, false
		case len(seg) == 2 && seg[1] == ".search":
			return []string{fiber.MethodPost}, false
		case len(seg) == 2:
			return []string{fiber.MethodGet, fiber.MethodPut, fiber.MethodPatch, fiber.MethodDelete}, false
		}
	}
	return nil, false
}

func (s *Service) handleOther(c *fiber.Ctx, _ context.Context) error {
	methods, notImplemented := s.allowed(c.Path())
	switch {
	case notImplemented:
		return errorf(http.StatusNotImplemented, "this endpoint is not implemented")
	case len(methods) > 0:
		c.Set(fiber.HeaderAllow, strings.Join(methods, ", "))
		return errorf(http.StatusMethodNotAllowed, "%s is not supported here (allowed: %s)", c.Method(), strings.Join(methods, ", "))
	}
	return notFound("no such SCIM endpoint")
}

// handler adapts a SCIM handler: a request timeout, and errors written as
// SCIM error documents (unexpected ones logged, answered 500).
func (s *Service) handler(h func(*fiber.Ctx, context.Context) error) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), s.opts.Timeout)
		defer cancel()
		err := h(c, ctx)
		if err == nil {
			return nil
		}
		var se *Error
		if !errors.As(err, &se) {
			s.log.Error("scim request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
			se = &Error{Status: http.StatusInternalServerError, Detail: "internal error"}
		}
		c.Response().Header.Del(fiber.HeaderETag)
		return writeJSON(c, se.Status, se.body())
	}
}

func writeJSON(c *fiber.Ctx, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	c.Status(status)
	c.Set(fiber.HeaderContentType, ContentType)
	return c.Send(b)
}

// base is the URL of /scim/v2 as clients see it.
func (s *Service) base(c *fiber.Ctx) string {
	if s.opts.BaseURL != "" {
		return s.opts.BaseURL
	}
	return c.BaseURL() + Prefix
}

// body decodes a JSON object request body.
func body(c *fiber.Ctx) (map[string]any, error) {
	b := c.Body()
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, badRequest(errInvalidSyntax, "the request needs a JSON body")
	}
	m, err := decodeObject(b)
	if err != nil {
		return nil, badRequest(errInvalidSyntax, "the body is not a JSON object")
	}
	return m, nil
}

func param(c *fiber.Ctx, name string) string {
	v := c.Params(name)
	if u, err := url.PathUnescape(v); err == nil {
		v = u
	}
	return strings.Clone(v)
}

func header(c *fiber.Ctx, name string) string { return strings.Clone(c.Get(name)) }

func (s *Service) handleSPConfig(c *fiber.Ctx, _ context.Context) error {
	return writeJSON(c, http.StatusOK, spConfig(s.base(c), s.opts.MaxResults))
}

func (s *Service) handleResourceTypes(c *fiber.Ctx, _ context.Context) error {
	var items []any
	for _, rt := range s.types {
		items = append(items, describe(rt, s.base(c)))
	}
	return writeJSON(c, http.StatusOK, listResponse(len(items), 1, items))
}

func (s *Service) handleResourceType(c *fiber.Ctx, _ context.Context) error {
	rt := s.typeByName(param(c, "id"))
	if rt == nil {
		return notFound("no such resource type")
	}
	return writeJSON(c, http.StatusOK, describe(rt, s.base(c)))
}

func (s *Service) schemas() []*Schema {
	var out []*Schema
	for _, rt := range s.types {
		out = append(out, rt.Schema)
		for _, e := range rt.Extensions {
			out = append(out, e.Schema)
		}
	}
	return out
}

func (s *Service) handleSchemas(c *fiber.Ctx, _ context.Context) error {
	var items []any
	for _, sc := range s.schemas() {
		items = append(items, describeSchema(sc, s.base(c)))
	}
	return writeJSON(c, http.StatusOK, listResponse(len(items), 1, items))
}

func (s *Service) handleSchema(c *fiber.Ctx, _ context.Context) error {
	id := param(c, "id")
	for _, sc := range s.schemas() {
		if strings.EqualFold(sc.ID, id) {
			return writeJSON(c, http.StatusOK, describeSchema(sc, s.base(c)))
		}
	}
	return notFound("no such schema")
}

// queryList reads the list parameters of a GET.
func queryList(c *fiber.Ctx) (listParams, error) {
	q := func(name string) string { return strings.Clone(c.Query(name)) }
	in := searchRequest{Filter: q("filter"), SortBy: q("sortBy"), SortOrder: q("sortOrder")}
	if v := q("attributes"); v != "" {
		in.Attributes = []string{v}
	}
	if v := q("excludedAttributes"); v != "" {
		in.ExcludedAttributes = []string{v}
	}
	for name, dst := range map[string]**int{"startIndex": &in.StartIndex, "count": &in.Count} {
		v := q(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return listParams{}, badRequest(errInvalidValue, "%s must be an integer", name)
		}
		*dst = &n
	}
	return in.params()
}

// searchRequest is a SearchRequest message (RFC 7644 §3.4.3), also the
// shape GET parameters are read into.
type searchRequest struct {
	Schemas            []string `json:"schemas"`
	Attributes         []string `json:"attributes"`
	ExcludedAttributes []string `json:"excludedAttributes"`
	Filter             string   `json:"filter"`
	SortBy             string   `json:"sortBy"`
	SortOrder          string   `json:"sortOrder"`
	StartIndex         *int     `json:"startIndex"`
	Count              *int     `json:"count"`
}

func (in searchRequest) params() (listParams, error) {
	p := listParams{start: 1, count: -1}
	if in.Filter != "" {
		e, err := parseFilter(in.Filter)
		if err != nil {
			return listParams{}, err
		}
		p.filter = e
	}
	if in.SortBy != "" {
		ap, err := filter.ParseAttrPath([]byte(in.SortBy))
		if err != nil {
			return listParams{}, badRequest(errInvalidPath, "sortBy is not an attribute path")
		}
		p.sortBy = &ap
	}
	switch strings.ToLower(in.SortOrder) {
	case "", "ascending":
	case "descending":
		p.descending = true
	default:
		return listParams{}, badRequest(errInvalidValue, "sortOrder must be ascending or descending")
	}
	if in.StartIndex != nil && *in.StartIndex > 1 {
		p.start = *in.StartIndex
	}
	if in.Count != nil {
		p.count = max(*in.Count, 0)
	}
	proj, err := parseProjection(in.Attributes, in.ExcludedAttributes)
	if err != nil {
		return listParams{}, err
	}
	p.proj = proj
	return p, nil
}

func (s *Service) respondList(c *fiber.Ctx, ctx context.Context, rts []*ResourceType, p listParams) error {
	total, page, err := s.list(ctx, rts, p, s.base(c))
	if err != nil {
		return err
	}
	items := make([]any, 0, len(page))
	for _, l := range page {
		items = append(items, p.proj.apply(l.rt, l.view))
	}
	return writeJSON(c, http.StatusOK, listResponse(total, p.start, items))
}

func (s *Service) handleList(rt *ResourceType) func(*fiber.Ctx, context.Context) error {
	return func(c *fiber.Ctx, ctx context.Context) error {
		p, err := queryList(c)
		if err != nil {
			return err
		}
		return s.respondList(c, ctx, []*ResourceType{rt}, p)
	}
}

// handleSearch serves POST /.search, for one resource type or (rt nil) all.
func (s *Service) handleSearch(rt *ResourceType) func(*fiber.Ctx, context.Context) error {
	return func(c *fiber.Ctx, ctx context.Context) error {
		var in searchRequest
		if len(bytes.TrimSpace(c.Body())) > 0 {
			if err := json.Unmarshal(c.Body(), &in); err != nil {
				return badRequest(errInvalidSyntax, "the body is not a SearchRequest")
			}
		}
		if len(in.Schemas) > 0 && !containsFold(in.Schemas, msgSearchRequest) {
			return badRequest(errInvalidSyntax, "a search body has schema %s", msgSearchRequest)
		}
		p, err := in.params()
		if err != nil {
			return err
		}
		rts := s.types
		if rt != nil {
			rts = []*ResourceType{rt}
		}
		return s.respondList(c, ctx, rts, p)
	}
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}

// respond writes one resource with its ETag, cut to the projection the
// request's attributes/excludedAttributes ask for.
func (s *Service) respond(c *fiber.Ctx, ctx context.Context, rt *ResourceType, r Record, status int) error {
	proj, err := parseProjection(nonEmpty(c.Query("attributes")), nonEmpty(c.Query("excludedAttributes")))
	if err != nil {
		return err
	}
	v, err := s.render(ctx, rt, r, s.base(c))
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderETag, etag(r.Version))
	if status == http.StatusCreated {
		c.Set(fiber.HeaderLocation, location(s.base(c), rt, r.ID))
	}
	return writeJSON(c, status, proj.apply(rt, v))
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{strings.Clone(s)}
}

func (s *Service) handleGet(rt *ResourceType) func(*fiber.Ctx, context.Context) error {
	return func(c *fiber.Ctx, ctx context.Context) error {
		r, err := s.get(ctx, rt, param(c, "id"))
		if err != nil {
			return err
		}
		if inm := header(c, fiber.HeaderIfNoneMatch); inm != "" && etagMatches(inm, r.Version) {
			c.Set(fiber.HeaderETag, etag(r.Version))
			return c.SendStatus(http.StatusNotModified)
		}
		return s.respond(c, ctx, rt, r, http.StatusOK)
	}
}

func (s *Service) handleCreate(rt *ResourceType) func(*fiber.Ctx, context.Context) error {
	return func(c *fiber.Ctx, ctx context.Context) error {
		in, err := body(c)
		if err != nil {
			return err
		}
		r, err := s.create(ctx, rt, in)
		if err != nil {
			return err
		}
		return s.respond(c, ctx, rt, r, http.StatusCreated)
	}
}

func (s *Service) handleReplace(rt *ResourceType) func(*fiber.Ctx, context.Context) error {
	return func(c *fiber.Ctx, ctx context.Context) error {
		in, err := body(c)
		if err != nil {
			return err
		}
		r, err := s.replace(ctx, rt, param(c, "id"), header(c, fiber.HeaderIfMatch), in)
		if err != nil {
			return err
		}
		return s.respond(c, ctx, rt, r, http.StatusOK)
	}
}

func (s *Service) handlePatch(rt *ResourceType) func(*fiber.Ctx, context.Context) error {
	return func(c *fiber.Ctx, ctx context.Context) error {
		var req patchRequest
		if err := json.Unmarshal(c.Body(), &req); err != nil {
			return badRequest(errInvalidSyntax, "the body is not a PatchOp")
		}
		r, err := s.patch(ctx, rt, param(c, "id"), header(c, fiber.HeaderIfMatch), req)
		if err != nil {
			return err
		}
		return s.respond(c, ctx, rt, r, http.StatusOK)
	}
}

func (s *Service) handleDelete(rt *ResourceType) func(*fiber.Ctx, context.Context) error {
	return func(c *fiber.Ctx, ctx context.Context) error {
		if err := s.remove(ctx, rt, param(c, "id"), header(c, fiber.HeaderIfMatch)); err != nil {
			return err
		}
		return c.SendStatus(http.StatusNoContent)
	}
}

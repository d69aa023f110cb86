package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/control/store"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

func (p *API) handleCreate(c *fiber.Ctx) error {
	body := bytes.Clone(c.Body())
	var in control.CredentialRequest
	if err := httpapi.DecodeStrict(body, &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	now := p.opts.Now()
	spec, fe := p.resolve(in, now)
	if fe != nil {
		return fe.problem()
	}
	if !httpapi.Caller(c).InScope(spec.SiteID) {
		return httpapi.OutOfScope("a credential of site " + strconv.Quote(spec.SiteID))
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	if rs, err := p.refusals(ctx, spec); err != nil {
		return unavailable(fmt.Errorf("estate policy: %w", err))
	} else if len(rs) > 0 {
		return refusalProblem(rs)
	}
	return p.provision(c, "single", body, []item{{index: 0, spec: spec, sub: in.SubjectID}}, in.Reason)
}

func (p *API) handleBulk(c *fiber.Ctx) error {
	body := bytes.Clone(c.Body())
	ctype, params, _ := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
	data, kind := body, ctype
	if ctype == "multipart/form-data" {
		fh, err := c.FormFile("file")
		if err != nil {
			return httpapi.BadRequest("file", "multipart upload needs a file field named file")
		}
		f, err := fh.Open()
		if err != nil {
			return httpapi.BadRequest("file", err.Error())
		}
		data, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			return httpapi.BadRequest("file", err.Error())
		}
		kind = fh.Header.Get(fiber.HeaderContentType)
		if strings.HasSuffix(strings.ToLower(fh.Filename), ".csv") {
			kind = "text/csv"
		}
		_ = params
	}
	var items []item
	var err error
	now := p.opts.Now()
	switch {
	case strings.Contains(kind, "csv"):
		items, err = p.parseCSV(data, now)
	case kind == "" || strings.Contains(kind, "json"):
		items, err = p.parseJSONArray(data, now)
	default:
		return httpapi.NewProblem(fiber.StatusUnsupportedMediaType, "unsupported_media_type",
			"send a JSON array (application/json), CSV (text/csv) or a multipart upload with a file field")
	}
	if err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			return fe.problem()
		}
		return httpapi.BadRequest("body", err.Error())
	}
	if len(items) == 0 {
		return httpapi.BadRequest("body", "no credentials in the request")
	}
	if len(items) > p.opts.MaxBulk {
		return httpapi.NewProblem(fiber.StatusRequestEntityTooLarge, "too_many_items",
			fmt.Sprintf("%d items; at most %d per bulk request (split the file)", len(items), p.opts.MaxBulk))
	}
	if caller := httpapi.Caller(c); caller.Scoped() {
		for _, it := range items {
			if it.err == nil && !caller.InScope(it.spec.SiteID) {
				return httpapi.OutOfScope(fmt.Sprintf("item %d (a credential of site %q)", it.index, it.spec.SiteID))
			}
		}
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	if err := p.checkItems(ctx, items); err != nil {
		return err
	}
	return p.provision(c, "bulk", body, items, "")
}

// provision is the common path of single and bulk requests: idempotency,
// back-pressure, audit, status rows, queueing.
func (p *API) provision(c *fiber.Ctx, kind string, body []byte, items []item, reason string) error {
	ctx, cancel := p.ctx(c)
	defer cancel()
	caller := httpapi.Caller(c)
	actor := caller.Actor()
	key := c.Get("Idempotency-Key")
	sum := sha256.Sum256(append([]byte(c.Get(fiber.HeaderContentType)+"\n"), body...))
	bodySHA := hex.EncodeToString(sum[:])
	now := p.opts.Now()

	reqID := uuid.NewString()
	if key != "" {
		if len(key) > 255 {
			return httpapi.BadRequest("Idempotency-Key", "longer than 255 characters")
		}
		reqID = requestID(callerKey(caller), key)
		doc, err := p.findRequest(ctx, reqID)
		if err != nil {
			return unavailable(err)
		}
		if doc != nil {
			if doc.BodySHA != bodySHA {
				p.m.Requests.WithLabelValues(kind, "conflict").Inc()
				return httpapi.NewProblem(fiber.StatusUnprocessableEntity, "idempotency_key_reused",
					"this Idempotency-Key was used with a different request body")
			}
			p.m.Requests.WithLabelValues(kind, "replayed").Inc()
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderLocation, "/v1/requests/"+reqID)
			c.Status(fiber.StatusAccepted)
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(doc.Response)
		}
	}

	// Who may hold a credential first (a subject the identity source does
	// not admit is refused whatever it holds), then one live key per
	// subject + role + device.
	if err := p.verifySubjects(ctx, kind, items); err != nil {
		return err
	}
	if kind != "breakglass" { // emergency access is never held up
		p.refuseDuplicates(items)
		if kind == "single" && items[0].err != nil {
			return items[0].err.problem()
		}
	}

	resp := control.ProvisionResponse{RequestID: reqID, Kind: kind, Status: control.StatusPending, Total: len(items),
		CredentialIDs: make([]string, len(items)), StatusURL: "/v1/requests/" + reqID, CreatedMs: now.UnixMilli()}
	var cmds []control.Command
	var rows []control.ItemRow
	roles := map[string]int{}
	for _, it := range items {
		if it.err != nil {
			idx := it.index
			reasonText := it.err.reason
			if it.line > 0 {
				reasonText = fmt.Sprintf("line %d: %s", it.line, reasonText)
			}
			resp.Failures = append(resp.Failures, control.Failure{Field: it.err.field, Index: &idx, Reason: reasonText})
			rows = append(rows, control.ItemRow{RequestID: reqID, Item: it.index, Status: control.StatusFailed,
				Error: it.err.field + ": " + reasonText})
			continue
		}
		cid := uuid.NewString()
		if key != "" {
			cid = credentialIDFor(reqID, it.index)
		}
		resp.CredentialIDs[it.index] = cid
		spec := it.spec
		cmds = append(cmds, control.Command{CommandID: event.ID("keyfleet-command", cid+"/request"), Op: lifecycle.OpRequest,
			CredentialID: cid, RequestID: reqID, Item: it.index, Actor: actor, Reason: reason,
			TsMs: now.UnixMilli(), Spec: &spec})
		rows = append(rows, control.ItemRow{RequestID: reqID, Item: it.index, CredentialID: cid, Status: control.StatusPending})
		roles[spec.Role]++
	}
	resp.Accepted, resp.Rejected = len(cmds), len(items)-len(cmds)
	if len(cmds) == 0 {
		resp.Status = control.StatusFailed
	}

	// Break-glass is an emergency: never throttled.
	reserved, retry := p.state.Admit(len(cmds))
	if !reserved && kind != "breakglass" {
		p.m.Requests.WithLabelValues(kind, "throttled").Inc()
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(retry/time.Second)))
		pr := httpapi.NewProblem(fiber.StatusTooManyRequests, "queue_full",
			fmt.Sprintf("the provisioning queue is full; retry in %s", retry))
		pr.Extra = map[string]any{"retry_after_s": int(retry / time.Second)}
		return pr
	}
	admitted := true
	defer func() {
		if !admitted && reserved {
			p.state.Release(len(cmds))
		}
	}()

	details := map[string]string{"request_id": reqID, "kind": kind, "items": strconv.Itoa(len(items)),
		"accepted": strconv.Itoa(len(cmds)), "rejected": strconv.Itoa(resp.Rejected), "reason": reason}
	for role, n := range roles {
		details["role."+role] = strconv.Itoa(n)
	}
	target := reqID
	if kind == "single" && len(cmds) == 1 {
		target = cmds[0].CredentialID
		details["subject_id"] = items[0].sub
		details["role"] = items[0].spec.Role
		if items[0].spec.Exception {
			details["exception"] = items[0].spec.ExceptionWhy
		}
	}
	action := "credential.request"
	if kind == "breakglass" {
		action = "breakglass.request"
	}
	if err := p.audit(ctx, actor, action, target, details); err != nil {
		admitted = false
		return unavailable(err)
	}
	if err := store.InsertItems(ctx, p.opts.Conn, now, rows); err != nil {
		admitted = false
		return unavailable(err)
	}
	if len(cmds) > 0 {
		if err := p.state.Publish(ctx, cmds...); err != nil {
			admitted = false
			return unavailable(err)
		}
	}
	doc, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	d := &store.RequestDoc{RequestID: reqID, Kind: kind, KeyHash: hashKey(key), BodySHA: bodySHA, Caller: actor,
		CreatedMs: now.UnixMilli(), Total: len(items), Rejected: resp.Rejected, Response: doc}
	if err := p.saveRequest(ctx, d); err != nil {
		// The commands are queued; a retry with the same key re-queues the
		// same credential ids, which the owner recognizes.
		p.opts.Logger.Warn("request not stored", "err", err)
	}
	p.m.Requests.WithLabelValues(kind, "accepted").Inc()
	c.Set(fiber.HeaderLocation, resp.StatusURL)
	c.Status(fiber.StatusAccepted)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(doc)
}

// refuseDuplicates fails items that would give a subject a second live
// credential of a role on a device (one already live, or an earlier item
// of the request), unless they allow an additional one.
func (p *API) refuseDuplicates(items []item) {
	type key struct{ subject, role, device string }
	seen := map[key]int{}
	for i := range items {
		it := &items[i]
		if it.err != nil || it.spec.AllowAdditional {
			continue
		}
		k := key{it.spec.SubjectID, it.spec.Role, it.spec.DeviceID}
		if j, ok := seen[k]; ok {
			it.err = &fieldError{field: "subject_id", code: "duplicate_credential", status: fiber.StatusConflict,
				reason: fmt.Sprintf("item %d already requests a credential for this subject, role and device "+
					"(set allow_additional to request another)", j)}
			continue
		}
		seen[k] = it.index
		for _, r := range p.state.Subject(k.subject) {
			if lifecycle.IsLive(r.State) && r.Role == k.role && r.DeviceID == k.device {
				pr := duplicateProblem(r.CredentialID)
				it.err = &fieldError{field: "subject_id", code: pr.Code, status: pr.Status, reason: pr.Detail, extra: pr.Extra}
				break
			}
		}
	}
}

// verifySubjects runs Options.VerifySubjects over the items not already
// refused: a refused item fails with the reason (a single or break-glass
// request is answered 422 at once).
func (p *API) verifySubjects(ctx context.Context, kind string, items []item) error {
	if p.opts.VerifySubjects == nil {
		return nil
	}
	var idx []int
	var subjects, roles []string
	for i, it := range items {
		if it.err == nil {
			idx, subjects, roles = append(idx, i), append(subjects, it.spec.SubjectID), append(roles, it.spec.Role)
		}
	}
	if len(idx) == 0 {
		return nil
	}
	refusals, err := p.opts.VerifySubjects(ctx, subjects, roles)
	if err != nil {
		return httpapi.NewProblem(fiber.StatusServiceUnavailable, "identity_unavailable",
			"the identity source could not be asked whether the subject may receive a credential: "+err.Error())
	}
	for j, i := range idx {
		if j < len(refusals) && refusals[j] != "" {
			if kind != "bulk" {
				pr := httpapi.NewProblem(fiber.StatusUnprocessableEntity, "subject_not_verified", refusals[j])
				pr.Field = "subject_id"
				return pr
			}
			items[i].err = bad("subject_id", "%s", refusals[j])
		}
	}
	return nil
}

func hashKey(key string) string {
	if key == "" {
		return ""
	}
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:16])
}

func callerKey(p httpapi.Principal) string {
	if p.TokenID != "" {
		return p.TokenID
	}
	return p.Name
}

func (p *API) findRequest(ctx context.Context, id string) (*store.RequestDoc, error) {
	if d, ok := p.requests.get(id); ok {
		return d, nil
	}
	d, err := store.FindRequest(ctx, p.opts.Conn, id)
	if err != nil || d == nil {
		return nil, err
	}
	p.requests.put(d)
	return d, nil
}

func (p *API) saveRequest(ctx context.Context, d *store.RequestDoc) error {
	if err := store.SaveRequest(ctx, p.opts.Conn, d); err != nil {
		return err
	}
	p.requests.put(d)
	return nil
}

func (p *API) requestStatus(ctx context.Context, id string, withItems bool) (*control.RequestStatus, error) {
	doc, err := p.findRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	items, err := store.Items(ctx, p.opts.Conn, id, -1)
	if err != nil {
		return nil, err
	}
	if doc == nil && len(items) == 0 {
		return nil, nil
	}
	st := &control.RequestStatus{RequestID: id, Counts: map[string]int{}, Total: len(items)}
	if doc != nil {
		st.Kind, st.CreatedMs, st.Total = doc.Kind, doc.CreatedMs, doc.Total
	}
	for _, it := range items {
		st.Counts[it.Status]++
		if it.Status == control.StatusFailed {
			st.Failures = append(st.Failures, it)
		}
	}
	if withItems {
		st.Items = items
	}
	switch {
	case st.Counts[control.StatusPending] > 0 || len(items) < st.Total:
		st.Status = control.StatusPending
	case st.Counts[control.StatusFailed] == len(items):
		st.Status = control.StatusFailed
	case st.Counts[control.StatusFailed] > 0:
		st.Status = "completed_with_failures"
	default:
		st.Status = "completed"
	}
	return st, nil
}

func (p *API) handleRequestStatus(c *fiber.Ctx) error {
	id, err := pathParam(c, "id")
	if err != nil {
		return err
	}
	ctx, cancel := p.ctx(c)
	defer cancel()
	st, err := p.requestStatus(ctx, id, c.QueryBool("items", false))
	if err != nil {
		return unavailable(err)
	}
	if st == nil {
		return httpapi.NewProblem(fiber.StatusNotFound, "request_not_found", "no request "+id)
	}
	return c.JSON(st)
}

// requestCache remembers recent provisioning requests (the durable copy is
// control_requests in ClickHouse).
type requestCache struct {
	mu    sync.Mutex
	max   int
	order []string
	by    map[string]*store.RequestDoc
}

func newRequestCache(n int) *requestCache {
	return &requestCache{max: n, by: map[string]*store.RequestDoc{}}
}

func (c *requestCache) get(id string) (*store.RequestDoc, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.by[id]
	return d, ok
}

func (c *requestCache) put(d *store.RequestDoc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.by[d.RequestID]; !ok {
		c.order = append(c.order, d.RequestID)
	}
	c.by[d.RequestID] = d
	for len(c.order) > c.max {
		delete(c.by, c.order[0])
		c.order = c.order[1:]
	}
}

// requestID is the id of a request made with an Idempotency-Key: the same
// caller and key always give the same id (and credential ids), so even two
// racing retries create each credential once.
func requestID(caller, key string) string { return event.ID("keyfleet-request", caller+"\x00"+key) }

func credentialIDFor(requestID string, item int) string {
	return event.ID("keyfleet-credential", fmt.Sprintf("%s/%d", requestID, item))
}

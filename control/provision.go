package control

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/control/lifecycle"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/normalize"
)

// CredentialRequest is one credential to issue: the body of
// POST /v1/credentials and one item of POST /v1/credentials:bulk.
type CredentialRequest struct {
	SubjectID string `json:"subject_id"`
	Role      string `json:"role"`
	SiteID    string `json:"site_id,omitempty"`
	// DoorGroups are added to the role template's door groups.
	DoorGroups   []string          `json:"door_groups,omitempty"`
	ValidFromMs  int64             `json:"valid_from_ms,omitempty"`
	ValidUntilMs int64             `json:"valid_until_ms,omitempty"`
	DeviceID     string            `json:"device_id,omitempty"`
	Attestation  *AttestationInput `json:"attestation,omitempty"`
	// Refs are the credential's identities on locks, raw; only their keyed
	// hashes are kept.
	Refs   []RefInput `json:"refs,omitempty"`
	Reason string     `json:"reason,omitempty"`
}

// AttestationInput is device-possession evidence as a wallet or app
// provisioning backend sends it.
type AttestationInput struct {
	Format   string `json:"format"`
	Evidence string `json:"evidence"` // base64
}

// AttestationFormats are the accepted evidence formats.
var AttestationFormats = []string{"apple_app_attest", "android_key_attestation", "aliro", "webauthn"}

// RefInput is a vendor user reference (Matter user index, Nuki auth id,
// card number ...). LockID empty: valid on every lock of the vendor.
type RefInput struct {
	Vendor  string `json:"vendor"`
	LockID  string `json:"lock_id,omitempty"`
	UserRef string `json:"user_ref"`
}

// fieldError is a validation failure of one field.
type fieldError struct{ field, reason string }

func (e *fieldError) Error() string { return e.field + ": " + e.reason }

func bad(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, reason: fmt.Sprintf(format, args...)}
}

// validID accepts pseudonymous ids: no whitespace, no e-mail addresses.
func validID(field, v string, required bool) *fieldError {
	switch {
	case v == "" && required:
		return bad(field, "required")
	case len(v) > 128:
		return bad(field, "longer than 128 characters")
	case strings.ContainsAny(v, " \t\r\n"):
		return bad(field, "must not contain whitespace")
	case strings.Contains(v, "@"):
		return bad(field, "looks like an e-mail address; use a pseudonymous id")
	}
	return nil
}

// verifyAttestation checks evidence and returns what is kept of it.
func (p *Plane) verifyAttestation(deviceID string, a *AttestationInput, now time.Time) (*Attestation, *fieldError) {
	if a == nil {
		return nil, nil
	}
	if deviceID == "" {
		return nil, bad("device_id", "required with attestation")
	}
	if !slices.Contains(AttestationFormats, a.Format) {
		return nil, bad("attestation.format", "want one of %s", strings.Join(AttestationFormats, ", "))
	}
	raw, err := base64.StdEncoding.DecodeString(a.Evidence)
	if err != nil || len(raw) == 0 {
		return nil, bad("attestation.evidence", "want non-empty base64")
	}
	if p.opts.VerifyAttestation != nil {
		if err := p.opts.VerifyAttestation(deviceID, *a); err != nil {
			p.m.activations.WithLabelValues("failed").Inc()
			return nil, bad("attestation", "verification failed: %v", err)
		}
	}
	sum := sha256.Sum256(raw)
	return &Attestation{Format: a.Format, DeviceID: deviceID, EvidenceSHA256: hex.EncodeToString(sum[:]),
		VerifiedMs: now.UnixMilli()}, nil
}

// resolve validates a request and resolves it against its role template.
func (p *Plane) resolve(in CredentialRequest, now time.Time) (Spec, *fieldError) {
	if fe := validID("subject_id", in.SubjectID, true); fe != nil {
		return Spec{}, fe
	}
	t, ok := p.templates.get(in.Role)
	if !ok {
		return Spec{}, bad("role", "unknown role %q (want one of %s)", in.Role, strings.Join(Roles, ", "))
	}
	if t.BreakGlass {
		return Spec{}, bad("role", "%s credentials are issued through break-glass (POST /v1/breakglass)", in.Role)
	}
	return p.resolveWith(t, in, now)
}

func (p *Plane) resolveWith(t Template, in CredentialRequest, now time.Time) (Spec, *fieldError) {
	if fe := validID("subject_id", in.SubjectID, true); fe != nil {
		return Spec{}, fe
	}
	if fe := validID("site_id", in.SiteID, false); fe != nil {
		return Spec{}, fe
	}
	if fe := validID("device_id", in.DeviceID, false); fe != nil {
		return Spec{}, fe
	}
	known := p.locks.groups()
	for _, g := range in.DoorGroups {
		if strings.TrimSpace(g) == "" {
			return Spec{}, bad("door_groups", "empty door group")
		}
		if len(known) > 0 && known[g] == 0 {
			return Spec{}, bad("door_groups", "door group %q has no lock in the registry", g)
		}
	}
	groups, why := t.resolveGroups(in.DoorGroups)
	from, until := in.ValidFromMs, in.ValidUntilMs
	switch {
	case from < 0 || until < 0:
		return Spec{}, bad("valid_until_ms", "must not be negative")
	case until != 0 && until <= now.UnixMilli():
		return Spec{}, bad("valid_until_ms", "is in the past")
	case until != 0 && from != 0 && until <= from:
		return Spec{}, bad("valid_until_ms", "must be after valid_from_ms")
	}
	if t.MaxValiditySeconds > 0 {
		start := max(from, now.UnixMilli())
		limit := start + t.MaxValiditySeconds*1000
		if until == 0 {
			until = limit
		} else if until > limit {
			why = strings.TrimPrefix(why+"; validity beyond the "+t.Role+" template's "+
				(time.Duration(t.MaxValiditySeconds)*time.Second).String(), "; ")
		}
	}
	att, fe := p.verifyAttestation(in.DeviceID, in.Attestation, now)
	if fe != nil {
		return Spec{}, fe
	}
	var refs []event.CredentialRef
	for i, r := range in.Refs {
		if !slices.Contains(event.Vendors, r.Vendor) {
			return Spec{}, bad(fmt.Sprintf("refs[%d].vendor", i), "want one of %s", strings.Join(event.Vendors, ", "))
		}
		if r.UserRef == "" {
			return Spec{}, bad(fmt.Sprintf("refs[%d].user_ref", i), "required")
		}
		refs = append(refs, event.CredentialRef{Vendor: r.Vendor, LockID: r.LockID,
			UserRefHash: normalize.RefHash(p.opts.PseudonymKey, r.Vendor, r.UserRef)})
	}
	rule := t.Approval
	if why != "" {
		rule = stricter(rule, ApprovalOne)
	}
	return Spec{SubjectID: in.SubjectID, Role: in.Role, SiteID: in.SiteID, DoorGroups: groups,
		ExtraGroups: in.DoorGroups, Windows: t.Windows, ValidFromMs: from, ValidUntilMs: until,
		DeviceID: in.DeviceID, Attestation: att, Refs: refs, ApprovalRule: rule, Template: t.Version,
		Exception: why != "", ExceptionWhy: why}, nil
}

// requestDoc is a stored provisioning request (control_requests).
type requestDoc struct {
	RequestID string
	Kind      string
	KeyHash   string
	BodySHA   string
	Caller    string
	CreatedMs int64
	Total     int
	Rejected  int
	Response  []byte
}

// ProvisionResponse answers a provisioning request (202). A retry with the
// same Idempotency-Key and body gets this same document again.
type ProvisionResponse struct {
	RequestID string `json:"request_id"`
	Kind      string `json:"kind"`
	Status    string `json:"status"`
	Total     int    `json:"total"`
	Accepted  int    `json:"accepted"`
	Rejected  int    `json:"rejected"`
	// CredentialIDs has one entry per item, "" for a rejected one.
	CredentialIDs []string             `json:"credential_ids"`
	Failures      []httpapi.FieldError `json:"failures,omitempty"`
	StatusURL     string               `json:"status_url"`
	CreatedMs     int64                `json:"created_ms"`
}

// item is one request item after validation.
type item struct {
	index int
	line  int // CSV line (0 for JSON)
	spec  Spec
	err   *fieldError
	sub   string // subject id for audit
}

func (p *Plane) handleCreate(c *fiber.Ctx) error {
	body := bytes.Clone(c.Body())
	var in CredentialRequest
	if err := httpapi.DecodeStrict(body, &in); err != nil {
		return httpapi.BadRequest("body", err.Error())
	}
	now := p.opts.Now()
	spec, fe := p.resolve(in, now)
	if fe != nil {
		return httpapi.BadRequest(fieldName(fe.field), fe.reason)
	}
	return p.provision(c, "single", body, []item{{index: 0, spec: spec, sub: in.SubjectID}}, in.Reason)
}

func (p *Plane) handleBulk(c *fiber.Ctx) error {
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
			return httpapi.BadRequest(fieldName(fe.field), fe.reason)
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
	return p.provision(c, "bulk", body, items, "")
}

func fieldName(f string) string {
	f, _, _ = strings.Cut(f, "[")
	f, _, _ = strings.Cut(f, ".")
	return f
}

func (p *Plane) parseJSONArray(data []byte, now time.Time) ([]item, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("want a JSON array of credential requests: %w", err)
	}
	items := make([]item, len(raw))
	for i, r := range raw {
		items[i].index = i
		var in CredentialRequest
		if err := httpapi.DecodeStrict(r, &in); err != nil {
			items[i].err = bad("body", "%v", err)
			continue
		}
		items[i].sub = in.SubjectID
		items[i].spec, items[i].err = p.resolve(in, now)
	}
	return items, nil
}

// CSVColumns are the columns a bulk CSV may have (a header row names them;
// subject_id and role are required). door_groups are separated by ';',
// valid_from/valid_until are RFC 3339 times or epoch milliseconds.
var CSVColumns = []string{"subject_id", "role", "site_id", "door_groups", "valid_from", "valid_until", "device_id",
	"attestation_format", "attestation_evidence", "vendor", "lock_id", "user_ref", "reason"}

func (p *Plane) parseCSV(data []byte, now time.Time) ([]item, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.TrimLeadingSpace = true
	header, err := r.Read()
	if err != nil {
		return nil, bad("body", "CSV header: %v", err)
	}
	col := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		if !slices.Contains(CSVColumns, h) {
			return nil, bad("body", "unknown CSV column %q (known: %s)", h, strings.Join(CSVColumns, ", "))
		}
		col[h] = i
	}
	for _, req := range []string{"subject_id", "role"} {
		if _, ok := col[req]; !ok {
			return nil, bad("body", "CSV header lacks %s", req)
		}
	}
	var items []item
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			// The file itself is broken (a bare quote ...): refuse it whole.
			return nil, bad("body", "CSV: %v", err)
		}
		line, _ := r.FieldPos(0)
		it := item{index: len(items), line: line}
		get := func(name string) string {
			if i, ok := col[name]; ok && i < len(rec) {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		in := CredentialRequest{SubjectID: get("subject_id"), Role: get("role"), SiteID: get("site_id"),
			DeviceID: get("device_id"), Reason: get("reason")}
		it.sub = in.SubjectID
		if g := get("door_groups"); g != "" {
			for _, s := range strings.Split(g, ";") {
				in.DoorGroups = append(in.DoorGroups, strings.TrimSpace(s))
			}
		}
		if in.ValidFromMs, err = parseTime(get("valid_from")); err != nil {
			it.err = bad("valid_from", "%v", err)
		} else if in.ValidUntilMs, err = parseTime(get("valid_until")); err != nil {
			it.err = bad("valid_until", "%v", err)
		}
		if f := get("attestation_format"); f != "" || get("attestation_evidence") != "" {
			in.Attestation = &AttestationInput{Format: f, Evidence: get("attestation_evidence")}
		}
		if v := get("vendor"); v != "" || get("user_ref") != "" {
			in.Refs = []RefInput{{Vendor: v, LockID: get("lock_id"), UserRef: get("user_ref")}}
		}
		if it.err == nil {
			it.spec, it.err = p.resolve(in, now)
		}
		items = append(items, it)
	}
	return items, nil
}

func parseTime(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		return ms, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, errors.New("want RFC 3339 or epoch milliseconds")
	}
	return t.UnixMilli(), nil
}

// provision is the common path of single and bulk requests: idempotency,
// back-pressure, audit, status rows, queueing.
func (p *Plane) provision(c *fiber.Ctx, kind string, body []byte, items []item, reason string) error {
	ctx, cancel := p.ctx(c)
	defer cancel()
	caller := httpapi.Caller(c)
	actor := actorOf(caller)
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
				p.m.requests.WithLabelValues(kind, "conflict").Inc()
				return httpapi.NewProblem(fiber.StatusUnprocessableEntity, "idempotency_key_reused",
					"this Idempotency-Key was used with a different request body")
			}
			p.m.requests.WithLabelValues(kind, "replayed").Inc()
			c.Set("Idempotent-Replayed", "true")
			c.Set(fiber.HeaderLocation, "/v1/requests/"+reqID)
			c.Status(fiber.StatusAccepted)
			c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
			return c.Send(doc.Response)
		}
	}

	resp := ProvisionResponse{RequestID: reqID, Kind: kind, Status: StatusPending, Total: len(items),
		CredentialIDs: make([]string, len(items)), StatusURL: "/v1/requests/" + reqID, CreatedMs: now.UnixMilli()}
	var cmds []Command
	var rows []itemRow
	roles := map[string]int{}
	for _, it := range items {
		if it.err != nil {
			idx := it.index
			reasonText := it.err.reason
			if it.line > 0 {
				reasonText = fmt.Sprintf("line %d: %s", it.line, reasonText)
			}
			resp.Failures = append(resp.Failures, httpapi.FieldError{Field: it.err.field, Index: &idx, Reason: reasonText})
			rows = append(rows, itemRow{RequestID: reqID, Item: it.index, Status: StatusFailed,
				Error: it.err.field + ": " + reasonText})
			continue
		}
		cid := uuid.NewString()
		if key != "" {
			cid = credentialIDFor(reqID, it.index)
		}
		resp.CredentialIDs[it.index] = cid
		spec := it.spec
		cmds = append(cmds, Command{CommandID: event.ID("keyfleet-command", cid+"/request"), Op: lifecycle.OpRequest,
			CredentialID: cid, RequestID: reqID, Item: it.index, Actor: actor, Reason: reason,
			TsMs: now.UnixMilli(), Spec: &spec})
		rows = append(rows, itemRow{RequestID: reqID, Item: it.index, CredentialID: cid, Status: StatusPending})
		roles[spec.Role]++
	}
	resp.Accepted, resp.Rejected = len(cmds), len(items)-len(cmds)
	if len(cmds) == 0 {
		resp.Status = StatusFailed
	}

	// Break-glass is an emergency: never throttled.
	reserved, retry := p.backlog.admit(len(cmds))
	if !reserved && kind != "breakglass" {
		p.m.requests.WithLabelValues(kind, "throttled").Inc()
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(int(retry/time.Second)))
		pr := httpapi.NewProblem(fiber.StatusTooManyRequests, "queue_full",
			fmt.Sprintf("the provisioning queue is full; retry in %s", retry))
		pr.Extra = map[string]any{"retry_after_s": int(retry / time.Second)}
		return pr
	}
	admitted := true
	defer func() {
		if !admitted && reserved {
			p.backlog.release(len(cmds))
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
	if err := insertItems(ctx, p.opts.Conn, now, rows); err != nil {
		admitted = false
		return unavailable(err)
	}
	if len(cmds) > 0 {
		if err := p.publish(ctx, cmds...); err != nil {
			admitted = false
			return unavailable(err)
		}
	}
	doc, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	d := &requestDoc{RequestID: reqID, Kind: kind, KeyHash: hashKey(key), BodySHA: bodySHA, Caller: actor,
		CreatedMs: now.UnixMilli(), Total: len(items), Rejected: resp.Rejected, Response: doc}
	if err := p.saveRequest(ctx, d); err != nil {
		// The commands are queued; a retry with the same key re-queues the
		// same credential ids, which the owner recognizes.
		p.opts.Logger.Warn("request not stored", "err", err)
	}
	p.m.requests.WithLabelValues(kind, "accepted").Inc()
	c.Set(fiber.HeaderLocation, resp.StatusURL)
	c.Status(fiber.StatusAccepted)
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(doc)
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

func (p *Plane) findRequest(ctx context.Context, id string) (*requestDoc, error) {
	if d, ok := p.requests.get(id); ok {
		return d, nil
	}
	rows, err := p.opts.Conn.Query(ctx, `SELECT request_id, kind, idempotency_key, body_sha256, caller, created_ms,
		total, rejected, response FROM control_requests WHERE request_id = ? LIMIT 1`, id)
	if err != nil {
		return nil, fmt.Errorf("read request: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d requestDoc
		var total, rejected uint32
		var resp string
		if err := rows.Scan(&d.RequestID, &d.Kind, &d.KeyHash, &d.BodySHA, &d.Caller, &d.CreatedMs, &total, &rejected, &resp); err != nil {
			return nil, fmt.Errorf("scan request: %w", err)
		}
		d.Total, d.Rejected, d.Response = int(total), int(rejected), []byte(resp)
		p.requests.put(&d)
		return &d, nil
	}
	return nil, rows.Err()
}

func (p *Plane) saveRequest(ctx context.Context, d *requestDoc) error {
	if err := chstorage.InsertRows(ctx, p.opts.Conn, "control_requests", []string{"request_id", "kind",
		"idempotency_key", "body_sha256", "caller", "ts", "created_ms", "total", "rejected", "response"},
		[]any{d.RequestID, d.Kind, d.KeyHash, d.BodySHA, d.Caller, time.UnixMilli(d.CreatedMs).UTC(), d.CreatedMs,
			uint32(d.Total), uint32(d.Rejected), string(d.Response)}); err != nil {
		return err
	}
	p.requests.put(d)
	return nil
}

// RequestStatus is the status resource of a request (GET /v1/requests/{id}).
type RequestStatus struct {
	RequestID string         `json:"request_id"`
	Kind      string         `json:"kind,omitempty"`
	CreatedMs int64          `json:"created_ms,omitempty"`
	Status    string         `json:"status"` // pending, completed, completed_with_failures, failed
	Total     int            `json:"total"`
	Counts    map[string]int `json:"counts"`
	Failures  []ItemStatus   `json:"failures,omitempty"`
	Items     []ItemStatus   `json:"items,omitempty"`
}

// ItemStatus is one item of a request.
type ItemStatus struct {
	Item         int    `json:"item"`
	CredentialID string `json:"credential_id,omitempty"`
	Status       string `json:"status"`
	Error        string `json:"error,omitempty"`
	Detail       string `json:"detail,omitempty"`
}

func (p *Plane) requestStatus(ctx context.Context, id string, withItems bool) (*RequestStatus, error) {
	doc, err := p.findRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	items, err := p.items(ctx, id, -1)
	if err != nil {
		return nil, err
	}
	if doc == nil && len(items) == 0 {
		return nil, nil
	}
	st := &RequestStatus{RequestID: id, Counts: map[string]int{}, Total: len(items)}
	if doc != nil {
		st.Kind, st.CreatedMs, st.Total = doc.Kind, doc.CreatedMs, doc.Total
	}
	for _, it := range items {
		st.Counts[it.Status]++
		if it.Status == StatusFailed {
			st.Failures = append(st.Failures, it)
		}
	}
	if withItems {
		st.Items = items
	}
	switch {
	case st.Counts[StatusPending] > 0 || len(items) < st.Total:
		st.Status = StatusPending
	case st.Counts[StatusFailed] == len(items):
		st.Status = StatusFailed
	case st.Counts[StatusFailed] > 0:
		st.Status = "completed_with_failures"
	default:
		st.Status = "completed"
	}
	return st, nil
}

// items reads a request's item statuses (one item when item >= 0).
func (p *Plane) items(ctx context.Context, requestID string, item int) ([]ItemStatus, error) {
	q := `SELECT item, argMax(credential_id, version), argMax(status, version), argMax(error, version),
		argMax(detail, version) FROM control_request_items WHERE request_id = ?`
	args := []any{requestID}
	if item >= 0 {
		q += ` AND item = ?`
		args = append(args, uint32(item))
	}
	rows, err := p.opts.Conn.Query(ctx, q+` GROUP BY item ORDER BY item`, args...)
	if err != nil {
		return nil, fmt.Errorf("read request items: %w", err)
	}
	defer rows.Close()
	var out []ItemStatus
	for rows.Next() {
		var it ItemStatus
		var idx uint32
		if err := rows.Scan(&idx, &it.CredentialID, &it.Status, &it.Error, &it.Detail); err != nil {
			return nil, fmt.Errorf("scan request item: %w", err)
		}
		it.Item = int(idx)
		out = append(out, it)
	}
	return out, rows.Err()
}

func (p *Plane) handleRequestStatus(c *fiber.Ctx) error {
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

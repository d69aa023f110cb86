package query

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/httpapi"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// Re-identification: subject_identities maps a pseudonymous subject_id to
// the reference the organisation knows the person by (a directory or HR
// id) and a display name. The event store never holds these. Only admins
// read or write them, and every call is audited — with the subject id and
// the fields touched, never their values (the audit log is not a place for
// personal data either).

// tableSubjectIdentities is migration 0033's table.
var tableSubjectIdentities = chstorage.SubjectIdentities.Name

var (
	identitySQL         = chstorage.Query("query/identity")
	insertIdentitiesSQL = chstorage.Query("query/insert_identities")
	mergeIdentitiesSQL  = chstorage.Query("query/merge_identities")
)

// MaxIdentities bounds one POST /v1/subjects/identities.
const MaxIdentities = 10_000

// maxIdentityField bounds subject_ref and display_name (characters).
const maxIdentityField = 256

// Identity is one row of subject_identities as the API shows and takes it.
type Identity struct {
	SubjectID   string `json:"subject_id"`
	SubjectRef  string `json:"subject_ref"`
	DisplayName string `json:"display_name"`
	UpdatedMs   int64  `json:"updated_ms,omitempty"`
}

var identitySchema = map[string]any{"type": "object", "properties": map[string]any{
	"subject_id": map[string]any{"type": "string"}, "subject_ref": map[string]any{"type": "string"},
	"display_name": map[string]any{"type": "string"}, "updated_ms": map[string]any{"type": "integer"},
}}

var identityOp = openapi.Operation{
	Description: "Re-identification: the organisation's reference for a pseudonymous subject_id " +
		"(subject_identities). Every call is written to the audit log, found or not.",
	Params: []openapi.Param{subjectIDParam},
	Responses: map[int]openapi.Response{
		200: {Description: "the subject's identity", Content: map[string]map[string]any{"application/json": identitySchema}},
		404: {Description: "no identity is recorded for this subject (or it was erased)"}},
}

var putIdentityOp = openapi.Operation{
	Description: "Record (or replace) the organisation's reference and display name for a pseudonymous " +
		"subject_id. Audited with the subject id and the fields set, not their values.",
	Params: []openapi.Param{subjectIDParam},
	Body: map[string]any{"type": "object", "required": []string{"subject_ref"}, "additionalProperties": false,
		"properties": map[string]any{
			"subject_ref": map[string]any{"type": "string", "minLength": 1, "maxLength": maxIdentityField,
				"pattern": openapi.Printable, "description": "the organisation's reference (HR id, directory id)"},
			"display_name": map[string]any{"type": "string", "maxLength": maxIdentityField, "pattern": openapi.Printable,
				"nullable": true},
		}},
	Responses: map[int]openapi.Response{
		200: {Description: "the identity as stored", Content: map[string]map[string]any{"application/json": identitySchema}}},
}

var deleteIdentityOp = openapi.Operation{
	Description: "Erase a subject's identity: a newer empty version replaces it and the table is merged, so " +
		"the old row leaves the active data at once (ClickHouse removes the replaced part files a few " +
		"minutes later). Events stay, pseudonymous. Audited.",
	Params:    []openapi.Param{subjectIDParam},
	Responses: map[int]openapi.Response{204: {Description: "erased (also when none was recorded)"}},
}

var importIdentitiesOp = openapi.Operation{
	Description: fmt.Sprintf("Record up to %d identities at once (a directory or HR sync): a JSON array of "+
		"{subject_id, subject_ref, display_name}. All are validated before any is stored. Audited as one "+
		"entry with the count.", MaxIdentities),
	Body: map[string]any{"type": "array", "minItems": 1, "maxItems": MaxIdentities, "items": map[string]any{"type": "object",
		"required": []string{"subject_id", "subject_ref"}, "additionalProperties": false, "properties": map[string]any{
			"subject_id": map[string]any{"type": "string", "minLength": 1, "maxLength": 128,
				"pattern": `^[^\x00-\x1f\x7f-\x9f ]+$`, "description": "pseudonymous subject id (no spaces)"},
			"subject_ref": map[string]any{"type": "string", "minLength": 1, "maxLength": maxIdentityField,
				"pattern": openapi.Printable},
			"display_name": map[string]any{"type": "string", "maxLength": maxIdentityField, "pattern": openapi.Printable,
				"nullable": true},
		}}},
	Responses: map[int]openapi.Response{200: {Description: "how many were stored",
		Content: map[string]map[string]any{"application/json": {"type": "object", "properties": map[string]any{
			"stored": map[string]any{"type": "integer"}}}}}},
}

func (s *Service) handleIdentity(c *fiber.Ctx) error {
	v, err := s.parse(c, identityOp)
	if err != nil {
		return err
	}
	subject := v.String("id")
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	if err := s.audit(ctx, c, "subject.reidentify", subject, nil); err != nil {
		return err
	}
	out := Identity{SubjectID: subject}
	rows, err := identitySQL.Query(ctx, s.opts.Conn, chstorage.Args{"subject_id": subject})
	if err != nil {
		return s.queryError(PathIdentity, err)
	}
	defer rows.Close()
	found := rows.Next()
	if found {
		if err := rows.Scan(&out.SubjectRef, &out.DisplayName, &out.UpdatedMs); err != nil {
			return s.queryError(PathIdentity, err)
		}
	}
	if err := rows.Err(); err != nil {
		return s.queryError(PathIdentity, err)
	}
	if !found || out.SubjectRef == "" { // an erased identity is an empty newer version
		return httpapi.NewProblem(fiber.StatusNotFound, "identity_not_found", "no identity is recorded for this subject")
	}
	return c.JSON(out)
}

func (s *Service) handlePutIdentity(c *fiber.Ctx) error {
	v, err := s.parse(c, putIdentityOp)
	if err != nil {
		return err
	}
	var body struct {
		SubjectRef  string `json:"subject_ref"`
		DisplayName string `json:"display_name"`
	}
	if err := httpapi.DecodeStrict(c.Body(), &body); err != nil {
		return httpapi.BadRequest("body", `body must be a JSON object {"subject_ref": ..., "display_name": ...}`)
	}
	id := Identity{SubjectID: v.String("id"), SubjectRef: body.SubjectRef, DisplayName: body.DisplayName}
	if err := id.validate(""); err != nil {
		return err
	}
	fields := "subject_ref"
	if id.DisplayName != "" {
		fields += ",display_name"
	}
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	if err := s.audit(ctx, c, "subject.identity.set", id.SubjectID, map[string]string{"fields": fields}); err != nil {
		return err
	}
	id.UpdatedMs = s.opts.Now().UnixMilli()
	if err := s.insertIdentities(ctx, []Identity{id}); err != nil {
		return s.queryError(PathIdentity, err)
	}
	return c.JSON(id)
}

func (s *Service) handleDeleteIdentity(c *fiber.Ctx) error {
	v, err := s.parse(c, deleteIdentityOp)
	if err != nil {
		return err
	}
	subject := v.String("id")
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	if err := s.audit(ctx, c, "subject.identity.erase", subject, nil); err != nil {
		return err
	}
	if err := s.insertIdentities(ctx, []Identity{{SubjectID: subject, UpdatedMs: s.opts.Now().UnixMilli()}}); err != nil {
		return s.queryError(PathIdentity, err)
	}
	// Merging keeps only the newest version of each subject: the erased
	// values leave the active parts now, not at some later merge.
	if err := mergeIdentitiesSQL.Exec(ctx, s.opts.Conn, nil); err != nil {
		return s.queryError(PathIdentity, err)
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (s *Service) handleImportIdentities(c *fiber.Ctx) error {
	var ids []Identity
	if err := httpapi.DecodeStrict(c.Body(), &ids); err != nil {
		return httpapi.BadRequest("body", "body must be a JSON array of {subject_id, subject_ref, display_name}")
	}
	if len(ids) == 0 || len(ids) > MaxIdentities {
		return httpapi.BadRequest("body", fmt.Sprintf("send 1 to %d identities", MaxIdentities))
	}
	now := s.opts.Now().UnixMilli()
	first := make(map[string]int, len(ids))
	for i := range ids {
		at := "[" + strconv.Itoa(i) + "]."
		if err := ids[i].validate(at); err != nil {
			return err
		}
		if ids[i].UpdatedMs != 0 {
			return httpapi.BadRequest(at+"updated_ms", "updated_ms is set by keyfleet")
		}
		// One version per subject and request: two with the same time
		// would leave which one counts to chance.
		if j, dup := first[ids[i].SubjectID]; dup {
			return httpapi.BadRequest(at+"subject_id", fmt.Sprintf("subject_id repeats item %d", j))
		}
		first[ids[i].SubjectID] = i
		ids[i].UpdatedMs = now
	}
	ctx, cancel := s.queryCtx(c.UserContext())
	defer cancel()
	if err := s.audit(ctx, c, "subject.identity.import", tableSubjectIdentities, map[string]string{"count": strconv.Itoa(len(ids))}); err != nil {
		return err
	}
	if err := s.insertIdentities(ctx, ids); err != nil {
		return s.queryError(PathIdentities, err)
	}
	return c.JSON(fiber.Map{"stored": len(ids)})
}

func (s *Service) insertIdentities(ctx context.Context, ids []Identity) error {
	rows := make([][]any, len(ids))
	for i, id := range ids {
		rows[i] = []any{id.SubjectID, id.SubjectRef, id.DisplayName, id.UpdatedMs}
	}
	return insertIdentitiesSQL.Insert(ctx, s.opts.Conn, rows...)
}

// validate checks one identity; prefix names its place in a bulk body.
func (id *Identity) validate(prefix string) error {
	if id.SubjectID == "" || len(id.SubjectID) > 128 || !printable(id.SubjectID) || strings.ContainsRune(id.SubjectID, ' ') {
		return httpapi.BadRequest(prefix+"subject_id", "subject_id must be 1 to 128 printable characters without spaces")
	}
	if id.SubjectRef == "" || !fieldOK(id.SubjectRef) {
		return httpapi.BadRequest(prefix+"subject_ref",
			fmt.Sprintf("subject_ref must be 1 to %d printable characters", maxIdentityField))
	}
	if !fieldOK(id.DisplayName) {
		return httpapi.BadRequest(prefix+"display_name",
			fmt.Sprintf("display_name must be at most %d printable characters", maxIdentityField))
	}
	return nil
}

func fieldOK(v string) bool {
	return utf8.RuneCountInString(v) <= maxIdentityField && printable(v)
}

// printable reports valid UTF-8 without control characters.
func printable(v string) bool {
	if !utf8.ValidString(v) {
		return false
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}

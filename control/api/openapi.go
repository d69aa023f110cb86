package api

import (
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/internal/audit"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi/openapi"
)

// The OpenAPI description of the control plane's routes: request bodies as
// the handlers decode and validate them, responses as they encode them.
// Rules no JSON schema can state (a valid_until in the future, door groups
// the lock registry knows, attestation evidence that verifies, the state a
// credential must be in) are in the descriptions.

// kpiTime is what parseTime reads: epoch milliseconds or RFC 3339.
const kpiTime = `^([0-9]{1,15}|[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$`

// idPattern is what validID accepts: pseudonymous ids, no whitespace, no
// e-mail addresses.
const idPattern = "^[^ \t\r\n@]+$"

var (
	optional = func(desc string) openapi.Field {
		return openapi.Field{Pattern: "^[^ \t\r\n@]*$", MaxLength: 128, Description: desc}
	}
	msField = func(desc string) openapi.Field {
		return openapi.Field{Min: openapi.Num(0), Description: desc}
	}
	nonBlank  = openapi.Field{Pattern: `\S`}
	base64Pat = `^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$`
)

func attestationFields(prefix string, required bool) openapi.Fields {
	return openapi.Fields{
		prefix: {Description: "device-possession evidence as the wallet or app provisioning backend sends it; " +
			"verified against the vendor roots (control/attest) when serve runs with attestation verification"},
		prefix + ".format": {Enum: control.AttestationFormats, Required: required,
			Description: "apple_app_attest (App Attest attestation object), android_key_attestation (Key Attestation " +
				"certificate chain), aliro (Aliro endpoint key attestation), webauthn (WebAuthn attestation object)"},
		prefix + ".evidence": {Pattern: base64Pat, Required: required, Format: "byte",
			Description: "the evidence, standard base64, not empty"},
		prefix + ".device": {Description: "what the wallet/app reports of the phone (each value optional, cut to 64 bytes); " +
			"recorded with the activation (credential device, credential_events) and carried by the credential's access events. " +
			"Android key attestation's hardware-enforced OS version and patch level replace the reported ones " +
			"(device_facts attested; otherwise app_reported)"},
		prefix + ".device.phone_model":    {MaxLength: 256, Description: "e.g. Pixel 9, iPhone 16"},
		prefix + ".device.os_name":        {MaxLength: 256, Description: "e.g. android, ios (lower-cased)"},
		prefix + ".device.os_version":     {MaxLength: 256, Description: "e.g. 16, 18.2"},
		prefix + ".device.os_patch_level": {MaxLength: 256, Description: "security patch level, YYYY-MM"},
		prefix + ".device.app_version":    {MaxLength: 256, Description: "wallet/app version"},
	}
}

func refFields(prefix string) openapi.Fields {
	return openapi.Fields{
		prefix:                 {Description: "the credential's identities on locks (Matter user index, Nuki auth id, card number ...); only keyed hashes are kept"},
		prefix + "[].vendor":   {Enum: event.Vendors, Required: true},
		prefix + "[].user_ref": {MinLength: 1, Required: true, Description: "the vendor's user reference, raw"},
		prefix + "[].lock_id":  {Description: "empty: valid on every lock of the vendor"},
	}
}

func merge(ms ...openapi.Fields) openapi.Fields {
	out := openapi.Fields{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// issuableRoles are the roles POST /v1/credentials takes (break-glass roles
// go through POST /v1/breakglass).
func issuableRoles(ts *control.Templates) (issuable, breakGlass []string) {
	for _, t := range ts.List() {
		if t.BreakGlass {
			breakGlass = append(breakGlass, t.Role)
		} else {
			issuable = append(issuable, t.Role)
		}
	}
	return issuable, breakGlass
}

func credentialRequestSchema(roles []string) map[string]any {
	return openapi.RequestSchema(control.CredentialRequest{}, merge(openapi.Fields{
		"subject_id": {Pattern: idPattern, MaxLength: 128, Required: true,
			Description: "pseudonymous subject id (no whitespace, no e-mail address)"},
		"role":      {Enum: roles, Required: true, Description: "role template (GET /v1/templates); break-glass roles: POST /v1/breakglass"},
		"site_id":   optional("site"),
		"device_id": optional("the phone or wallet the credential is issued to (required with attestation)"),
		"door_groups": {Description: "door groups added to the template's: door groups of the lock registry " +
			"(GET /v1/door-groups); groups beyond the template make the credential an exception (stricter approval)"},
		"door_groups[]": nonBlank,
		"valid_from_ms": msField("start of validity, epoch ms (0: at issue)"),
		"valid_until_ms": msField("end of validity, epoch ms, in the future and after valid_from_ms (0: the template's " +
			"max validity); beyond the template's max validity makes the credential an exception"),
		"reason": {Description: "why (audited)"},
	}, attestationFields("attestation", true), refFields("refs")))
}

// csvSchema describes a bulk CSV upload.
var csvSchema = map[string]any{"type": "string", "description": "CSV with a header row naming its columns (any order): " +
	strings.Join(CSVColumns, ", ") + ". subject_id and role are required; door_groups are separated by ';'; " +
	"valid_from and valid_until are RFC 3339 times or epoch milliseconds; attestation_format/attestation_evidence " +
	"and vendor/lock_id/user_ref give one attestation and one lock reference. A row that fails validation is " +
	"reported in failures (with its line) and the others are queued; a file that is not CSV is refused whole."}

// opBodySchema is the body of POST /v1/credentials/{id}:<op>.
func opBodySchema(op string) map[string]any {
	f := merge(openapi.Fields{
		"reason":    {Description: "why (audited)"},
		"device_id": optional("activate: the device (default: the credential's); device: the new device (required)"),
	}, attestationFields("attestation", true))
	switch op {
	case "device":
		f["device_id"] = openapi.Field{Pattern: idPattern, MaxLength: 128, Required: true, Description: "the new device"}
	case "activate":
		a := f["attestation"]
		a.Required = true
		f["attestation"] = a
	default:
		f["device_id"] = openapi.Field{Description: "accepted and ignored by this operation"}
		f["attestation"] = openapi.Field{Description: "accepted and ignored by this operation"}
		f["attestation.format"] = openapi.Field{}
		f["attestation.evidence"] = openapi.Field{}
	}
	return openapi.RequestSchema(opBody{}, f)
}

type credentialList struct {
	Credentials []*control.Record `json:"credentials"`
	Total       int               `json:"total"`
}

type templateList struct {
	Templates []control.Template `json:"templates"`
}

type templateChange struct {
	Template      control.Template `json:"template"`
	PropagatingTo int              `json:"propagating_to"`
}

type doorGroups struct {
	DoorGroups []struct {
		Group string `json:"group"`
		Locks int    `json:"locks"`
	} `json:"door_groups"`
}

type reviewList struct {
	Reviews []control.Review `json:"reviews"`
}

type reviewDetail struct {
	Review     control.Review        `json:"review"`
	Credential *control.Record       `json:"credential"`
	Events     []control.AccessEvent `json:"events"`
}

type reviewClosed struct {
	CredentialID string `json:"credential_id"`
	Status       string `json:"status"`
	Outcome      string `json:"outcome"`
}

func ok(desc string, v any) openapi.Response {
	return openapi.Response{Description: desc, Content: openapi.JSON(openapi.ResponseSchema(v, nil))}
}

// problem is a documented error response (the body is a problem document).
func problem(desc string) openapi.Response {
	return openapi.Response{Description: desc, Content: map[string]map[string]any{
		"application/problem+json": {"$ref": "#/components/schemas/Problem"}}}
}

var idempotencyKey = openapi.Param{Name: "Idempotency-Key", MaxLen: 255, AllowEmpty: true, AnyText: true,
	Description: "makes the request safe to retry: the same caller and key get the same request id, credential ids " +
		"and answer; the key with another body is 422 idempotency_key_reused"}

// Operations describes the control plane's routes for the OpenAPI document.
func (p *API) Operations() map[string]openapi.Operation {
	roles, bgRoles := issuableRoles(p.state.Templates())
	accepted := ok("queued: the request's id, one credential id per item (\"\" for a rejected item), failures "+
		"with their index (and CSV line); GET status_url follows it", control.ProvisionResponse{})
	queue := problem("the provisioning queue is full (Retry-After)")
	starting := problem("the control plane is rebuilding its state from Kafka (Retry-After); also 503 audit_unavailable")
	opResp := map[int]openapi.Response{
		200: ok("applied: the credential's new record", control.OpResponse{}),
		202: ok("queued and not applied within the wait (status pending), or a revocation whose locks confirm later "+
			"(revocation_url)", control.OpResponse{}),
		404: problem("no such credential"),
		409: problem("the operation is not allowed in the credential's state (current_state), a self- or duplicate " +
			"approval, a device mismatch"),
		503: starting,
	}
	opDesc := map[string]string{
		"approve": "Adds the caller's approval (approvers differ from the requester and from each other; the " +
			"template's approval rule says how many are needed). Body optional.",
		"activate": "Needs device-possession evidence (attestation) for the credential's device (or device_id when " +
			"none was given at request); evidence that does not verify is 422 attestation_failed.",
		"device": "Moves the credential to device_id: the old device's session is revoked; with attestation the new " +
			"device is attested at once, without it the credential waits in pending_activation.",
		"suspend":   "Suspends an active credential: every lock holding it drops it. Body optional.",
		"reinstate": "Reinstates a suspended credential. Body optional.",
		"revoke": "Revokes the credential in layers (entitlement, device session, every lock holding it); 202 with " +
			"revocation_url, where locks confirm. Body optional.",
		"archive": "Archives a revoked credential. Body optional.",
	}
	ops := map[string]openapi.Operation{
		openapi.Key(fiber.MethodPost, "/v1/credentials"): {
			Description: "Requests one credential, resolved against its role template (door groups, windows, max " +
				"validity, approval rule). Validation failures are 400 naming the field; a valid request is queued " +
				"(202) and the owner issues it once the approval rule is met.",
			Body: credentialRequestSchema(roles), Headers: []openapi.Param{idempotencyKey},
			Responses: map[int]openapi.Response{202: accepted, 422: problem("Idempotency-Key reused with another body"),
				429: queue, 503: starting},
		},
		openapi.Key(fiber.MethodPost, `/v1/credentials\:bulk`): {
			Description: "Requests many credentials at once (at most --control-max-bulk items): a JSON array of " +
				"credential requests, a CSV file, or a multipart upload of a CSV (or JSON) file in field file. Items " +
				"are validated one by one: the invalid ones are reported in failures, the rest queued.",
			Body: map[string]any{"type": "array", "minItems": 1, "items": credentialRequestSchema(roles)},
			BodyTypes: map[string]map[string]any{
				"text/csv": csvSchema,
				"multipart/form-data": {"type": "object", "required": []string{"file"}, "properties": map[string]any{
					"file": map[string]any{"type": "string", "format": "binary",
						"description": "a .csv file (columns as for text/csv) or a JSON array"}}},
			},
			Headers: []openapi.Param{idempotencyKey},
			Responses: map[int]openapi.Response{202: accepted, 413: problem("more items than --control-max-bulk"),
				415: problem("neither JSON, CSV nor multipart"), 422: problem("Idempotency-Key reused with another body"),
				429: queue, 503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/credentials"): {
			Params: []openapi.Param{
				{Name: "subject_id", MaxLen: 1024, AllowEmpty: true, AnyText: true, Description: "only this subject's credentials"},
				{Name: "state", Enum: event.States, AllowEmpty: true, Description: "only credentials in this state"},
				{Name: "role", MaxLen: 1024, AllowEmpty: true, AnyText: true, Description: "only this role"},
				{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: 10000, Default: "100"},
			},
			Responses: map[int]openapi.Response{200: ok("current records, by credential id; total counts all matches", credentialList{}),
				503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/credentials/:id"): {
			Responses: map[int]openapi.Response{200: ok("the current record, a summary (who issued it, when, to which "+
				"device, under which approval rule) and every record of its history", control.CredentialView{}),
				404: problem("no such credential"), 503: starting},
		},
		openapi.Key(fiber.MethodPost, `/v1/subjects/:id\:revoke`): {
			Description: "Revokes every live credential of the subject under one revocation id (never throttled).",
			Body:        nullable(opBodySchema("revoke")), BodyOptional: true,
			Responses: map[int]openapi.Response{202: ok("queued; revocation_url shows the locks confirming", control.SubjectRevokeResponse{}),
				404: problem("the subject has no live credential"), 503: starting},
		},
		openapi.Key(fiber.MethodPost, `/v1/devices/:id\:revoke`): {
			Description: "Revokes every live credential on the device (lost or stolen phone) under one revocation id, " +
				"and the device's wallet/app sessions when a session endpoint is configured.",
			Params: []openapi.Param{{Name: "id", In: "path", Required: true, MaxLen: 128, Description: "device id"}},
			Body:   nullable(opBodySchema("revoke")), BodyOptional: true,
			Responses: map[int]openapi.Response{202: ok("queued; revocation_url shows every layer", control.RevokeResponse{}),
				404: problem("the device holds no live credential"), 503: starting},
		},
		openapi.Key(fiber.MethodPost, "/v1/revocations"): {
			Description: "One revocation of many credentials: every live credential of a site (breach), of subjects, " +
				"or the credentials named. Never throttled; audited.",
			Body: openapi.RequestSchema(control.MassRevocation{}, openapi.Fields{
				"scope":            {Required: true, Enum: []string{"site", "subject", "credential"}},
				"site_id":          {MaxLength: 128, Description: "with scope site"},
				"subject_ids":      {MaxItems: 100000, Description: "with scope subject"},
				"subject_ids[]":    {MinLength: 1, MaxLength: 128},
				"credential_ids":   {MaxItems: 100000, Description: "with scope credential"},
				"credential_ids[]": {MinLength: 1, MaxLength: 128},
				"reason":           {Required: true, Pattern: `\S`, Description: "why (audited)"},
			}),
			Responses: map[int]openapi.Response{202: ok("queued; revocation_url shows every layer", control.RevokeResponse{}),
				404: problem("no live credential matches"), 413: problem("more than 100,000 ids"), 503: starting},
		},
		openapi.Key(fiber.MethodPost, "/v1/attestation/challenge"): {
			Description: "A one-time challenge the device must attest (activation, a device change, or a request " +
				"carrying evidence); it expires at expires_ms.",
			Body: openapi.RequestSchema(control.ChallengeRequest{}, openapi.Fields{
				"device_id":     {Required: true, MinLength: 1, MaxLength: 128},
				"credential_id": {MaxLength: 128, Description: "the credential being activated, if any"},
			}),
			Responses: map[int]openapi.Response{200: ok("the challenge (base64) and the evidence formats accepted", control.ChallengeResponse{}),
				503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/drills"): {
			Params: []openapi.Param{
				{Name: "scenario", Enum: control.DrillScenarios},
				{Name: "from", Type: openapi.TypeTime}, {Name: "to", Type: openapi.TypeTime},
				{Name: "limit", Type: openapi.TypeInteger, Min: 1, Max: 1000},
				{Name: "run_id", MaxLen: 128, Description: "one run, with its full report"},
			},
			Responses: map[int]openapi.Response{200: {Description: "drill runs, newest first; with run_id, that run and its report",
				Content: openapi.JSON(map[string]any{"oneOf": []any{openapi.ResponseSchema(drillList{}, nil),
					openapi.ResponseSchema(control.DrillRun{}, nil)}})},
				404: problem("no such drill run")},
		},
		openapi.Key(fiber.MethodPost, "/v1/drills"): {
			Description: "Stores a drill's report (keyfleet drill does); audited.",
			Body: openapi.RequestSchema(control.DrillRun{}, openapi.Fields{
				"run_id":      {Required: true, MinLength: 1, MaxLength: 128},
				"scenario":    {Required: true, Enum: control.DrillScenarios},
				"started_ms":  {Required: true, Min: openapi.Num(1)},
				"finished_ms": {Required: true, Min: openapi.Num(1)},
			}),
			Responses: map[int]openapi.Response{201: ok("stored", drillStored{})},
		},
		openapi.Key(fiber.MethodGet, "/v1/requests/:id"): {
			Params: []openapi.Param{{Name: "items", MaxLen: 1024, AllowEmpty: true, AnyText: true,
				Description: "true (or 1, t) lists every item; any other value does not"}},
			Responses: map[int]openapi.Response{200: ok("pending, completed, completed_with_failures or failed, with "+
				"counts per item status and the failures (why)", control.RequestStatus{}),
				404: problem("no such request"), 503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/revocations/:id"): {
			Responses: map[int]openapi.Response{200: ok("which layers are done, the locks confirmed and those still pending "+
				"(with their age against the SLA)", control.Revocation{}), 404: problem("no such revocation"), 503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/templates"): {
			Responses: map[int]openapi.Response{200: ok("every role template, by role", templateList{}), 503: starting},
		},
		openapi.Key(fiber.MethodPut, "/v1/templates/:role"): {
			Description: "Stores a new version of the role's template (audited) and propagates it to the role's live " +
				"credentials: door groups, windows and validity follow, and the locks are told. The body may repeat " +
				"the role; it must then be the path's. A break-glass role needs approval two.",
			Params: []openapi.Param{{Name: "role", In: "path", Enum: control.Roles, Required: true}},
			Body: func() map[string]any {
				s := openapi.RequestSchema(struct {
					DoorGroups       []string         `json:"door_groups"`
					ExtraGroupPrefix []string         `json:"extra_group_prefixes,omitempty"`
					Windows          []control.Window `json:"windows,omitempty"`
					MaxValidity      int64            `json:"max_validity_s"`
					Approval         string           `json:"approval"`
					BreakGlass       bool             `json:"break_glass,omitempty"`
				}{}, openapi.Fields{
					"door_groups":   {Required: true, MinItems: 1, Description: "door groups the role opens (* for all)"},
					"door_groups[]": nonBlank,
					"extra_group_prefixes": {
						Description: "prefixes of door groups a request may add without making an exception (unit:)"},
					"windows":          {Description: "weekly access windows in the lock's local time (none: any time)"},
					"windows[].days[]": {Enum: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}},
					"windows[].start":  {Pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$", Required: true, Description: "HH:MM"},
					"windows[].end": {Pattern: "^([01][0-9]|2[0-3]):[0-5][0-9]$", Required: true,
						Description: "HH:MM; at or before start: past midnight"},
					"max_validity_s": {Min: openapi.Num(0), Description: "longest validity (0: unbounded)"},
					"approval": {Enum: []string{control.ApprovalAuto, control.ApprovalOne, control.ApprovalTwo}, Required: true,
						Description: "auto (none), one or two approvers (neither the requester)"},
					"break_glass": {Description: "issued only through POST /v1/breakglass; needs approval two"},
				})
				return s
			}(),
			Responses: map[int]openapi.Response{200: ok("the stored template and how many live credentials it propagates to",
				templateChange{}), 503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/door-groups"): {
			Responses: map[int]openapi.Response{200: ok("door groups of the lock registry and their lock counts", doorGroups{}), 503: starting},
		},
		openapi.Key(fiber.MethodPost, "/v1/breakglass"): {
			Description: "Emergency access: bound to a break-glass role (its template's door groups, or a subset), " +
				"bound in time (duration_s from the second approval, at most the template's max validity, expiring " +
				"on its own), approved by two approvers who are not the requester, never throttled, always audited " +
				"and queued for post-event review.",
			Body: openapi.RequestSchema(control.BreakGlassRequest{}, merge(openapi.Fields{
				"subject_id":    {Pattern: idPattern, MaxLength: 128, Required: true, Description: "pseudonymous subject id"},
				"role":          {Enum: bgRoles, Description: "a break-glass role (default emergency_responder)"},
				"site_id":       optional("site"),
				"device_id":     optional("the responder's device (required with attestation)"),
				"door_groups":   {Nullable: true, Description: "a subset of the template's door groups (default, or null: all of them)"},
				"door_groups[]": nonBlank,
				"duration_s": {Required: true, Min: openapi.Num(1), Max: openapi.Num(float64(maxBreakGlass(p.state.Templates(), bgRoles))),
					Description: "how long the access lasts once approved, at most the role template's max validity"},
				"reason": {Required: true, Pattern: `\S`, Description: "what the emergency is"},
			}, attestationFields("attestation", true), refFields("refs"))),
			Responses: map[int]openapi.Response{202: accepted, 422: problem("Idempotency-Key reused with another body"), 503: starting},
			Headers:   []openapi.Param{idempotencyKey},
		},
		openapi.Key(fiber.MethodGet, "/v1/breakglass/reviews"): {
			Params: []openapi.Param{{Name: "status", Enum: []string{"open", "all", control.ReviewInUse, control.ReviewAwaiting,
				control.ReviewClosed}, Default: "open", AllowEmpty: true, Description: "open: in_use and awaiting_review (also when empty)"}},
			Responses: map[int]openapi.Response{200: ok("break-glass credentials and their review status, newest first", reviewList{}), 503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/breakglass/:id/review"): {
			Responses: map[int]openapi.Response{200: ok("the review, the credential and the access events under it", reviewDetail{}),
				404: problem("no such break-glass credential"), 503: starting},
		},
		openapi.Key(fiber.MethodPost, `/v1/breakglass/:id\:review`): {
			Description: "Closes the post-event review of an ended break-glass credential (not by its requester; " +
				"403 self_review). Outcomes: justified, unjustified, inconclusive.",
			Body: openapi.RequestSchema(reviewBody{}, openapi.Fields{
				"outcome": {Enum: []string{"justified", "unjustified", "inconclusive"}, Required: true},
				"note":    {Description: "what the review found"},
			}),
			Responses: map[int]openapi.Response{200: ok("the review is closed", reviewClosed{}),
				404: problem("no such break-glass credential"), 409: problem("the access has not ended yet (current_state)"),
				503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/kpis/credentials"): {
			Params: []openapi.Param{
				{Name: "from", MaxLen: 64, AllowEmpty: true, Pattern: kpiTime,
					Description: "RFC 3339 or epoch ms (default 7 days before to); at most 400 days before to"},
				{Name: "to", MaxLen: 64, AllowEmpty: true, Pattern: kpiTime, Description: "RFC 3339 or epoch ms (default now)"},
				{Name: "sla", MaxLen: 32, AllowEmpty: true, Pattern: `^([0-9]*\.?[0-9]+(ns|us|µs|μs|ms|s|m|h))+$`,
					Description: "pending-lock SLA, a positive Go duration such as 15m (default --revocation-sla)"},
			},
			Responses: map[int]openapi.Response{200: ok("revocation latency, time to issue, activation, exceptions, pending locks",
				control.FleetKPIs{}), 503: starting},
		},
		openapi.Key(fiber.MethodGet, "/v1/audit/verify"): {
			Responses: map[int]openapi.Response{200: ok("ok, entries, every chain's state, the first altered or removed entry",
				audit.Report{}), 501: problem("no verifier configured"), 503: starting},
		},
	}
	for _, op := range []string{"approve", "activate", "device", "suspend", "reinstate", "revoke", "archive"} {
		optional := !slices.Contains([]string{"activate", "device"}, op)
		body := opBodySchema(op)
		if optional {
			body["nullable"] = true // no body, {} and null are alike
		}
		ops[openapi.Key(fiber.MethodPost, `/v1/credentials/:id\:`+op)] = openapi.Operation{
			Description: opDesc[op], Body: body, BodyOptional: optional, Responses: opResp,
		}
	}
	return ops
}

func nullable(s map[string]any) map[string]any {
	s["nullable"] = true
	return s
}

func maxBreakGlass(ts *control.Templates, roles []string) int64 {
	var m int64
	for _, r := range roles {
		if t, ok := ts.Get(r); ok && t.MaxValiditySeconds > m {
			m = t.MaxValiditySeconds
		}
	}
	if m == 0 {
		m = 1 << 40
	}
	return m
}

// drillList is GET /v1/drills's answer.
type drillList struct {
	Drills []control.DrillRun `json:"drills"`
	Count  int                `json:"count"`
}

// drillStored is POST /v1/drills's answer.
type drillStored struct {
	RunID  string `json:"run_id"`
	Stored bool   `json:"stored"`
}

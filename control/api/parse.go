package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/keyfleet/keyfleet/control"
	"github.com/keyfleet/keyfleet/control/attest"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/httpapi"
)

// fieldError is a validation failure of one field: a 400 invalid_<field>,
// or, with a code, a problem of that code and status (an attestation
// refused: 422 attestation_<reason>).
type fieldError struct {
	field, reason string
	code          string
	status        int
	extra         map[string]any
}

// problem is the HTTP problem of a single request's field error.
func (e *fieldError) problem() *httpapi.Problem {
	if e.code == "" {
		return httpapi.BadRequest(fieldName(e.field), e.reason)
	}
	pr := httpapi.NewProblem(e.status, e.code, e.reason)
	pr.Field, pr.Extra = e.field, e.extra
	return pr
}

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

// verifyAttestation checks evidence made for a challenge of this
// credential (credentialID: "" for a request that carries it) and device,
// and returns what is kept of it.
func (p *API) verifyAttestation(credentialID, deviceID string, a *control.AttestationInput, now time.Time) (*control.Attestation, *fieldError) {
	if a == nil {
		return nil, nil
	}
	if deviceID == "" {
		return nil, bad("device_id", "required with attestation")
	}
	if !slices.Contains(control.AttestationFormats, a.Format) {
		return nil, bad("attestation.format", "want one of %s", strings.Join(control.AttestationFormats, ", "))
	}
	raw, err := base64.StdEncoding.DecodeString(a.Evidence)
	if err != nil || len(raw) == 0 {
		return nil, bad("attestation.evidence", "want non-empty base64")
	}
	challenge, err := base64.StdEncoding.DecodeString(a.Challenge)
	if err != nil {
		return nil, bad("attestation.challenge", "want base64 (as POST /v1/attestation/challenge returned it)")
	}
	if p.opts.Attester == nil || p.opts.Challenges == nil {
		p.m.Activations.WithLabelValues("failed").Inc()
		return nil, &fieldError{field: "attestation", code: "attestation_not_configured", status: fiber.StatusNotImplemented,
			reason: "this keyfleet verifies no device attestation (serve's --attest-* roots and apps are not configured): " +
				"evidence cannot be checked, so it is refused"}
	}
	refuse := func(err error) (*control.Attestation, *fieldError) {
		p.m.Activations.WithLabelValues("failed").Inc()
		reason := attest.ReasonOf(err)
		if reason == "" {
			reason = attest.ReasonMalformed
		}
		return nil, &fieldError{field: "attestation", code: "attestation_" + string(reason), status: fiber.StatusUnprocessableEntity,
			reason: err.Error(), extra: map[string]any{"reason": string(reason)}}
	}
	if len(challenge) == 0 {
		return refuse(&attest.Error{Reason: attest.ReasonWrongChallenge,
			Detail: "no challenge: get one from POST /v1/attestation/challenge and have the device attest it"})
	}
	if err := p.opts.Challenges.Check(challenge, credentialID, deviceID, now); err != nil {
		return refuse(err)
	}
	res, err := p.opts.Attester.Verify(a.Format, raw, challenge)
	if err != nil {
		return refuse(err)
	}
	sum := sha256.Sum256(raw)
	return &control.Attestation{Format: a.Format, DeviceID: deviceID, EvidenceSHA256: hex.EncodeToString(sum[:]),
		VerifiedMs: now.UnixMilli(), KeySHA256: res.PublicKeySHA256, SecurityLevel: string(res.SecurityLevel),
		AppID: res.AppID, Type: res.AttestationType, Device: deviceFacts(a.Device, res)}, nil
}

// maxDeviceField bounds each app-reported device value.
const maxDeviceField = 64

// deviceFacts is what an activation records of the phone: the app's report,
// with the OS version and patch level the evidence proves (Android key
// attestation) in place of the reported ones. nil when nothing is known.
func deviceFacts(in *control.DeviceInput, res *attest.Result) *event.Device {
	var d event.Device
	if in != nil {
		clip := func(s string) string {
			s = strings.TrimSpace(s)
			if len(s) > maxDeviceField {
				s = s[:maxDeviceField]
			}
			return strings.ToValidUTF8(s, "")
		}
		d = event.Device{PhoneModel: clip(in.PhoneModel), OSName: strings.ToLower(clip(in.OSName)),
			OSVersion: clip(in.OSVersion), OSPatchLevel: clip(in.OSPatchLevel), AppVersion: clip(in.AppVersion)}
	}
	if res != nil && res.OSVersion != "" {
		d.OSName, d.OSVersion, d.OSPatchLevel, d.Facts = "android", res.OSVersion, res.OSPatchLevel, event.DeviceAttested
	}
	if d == (event.Device{}) {
		return nil
	}
	if d.Facts == "" {
		d.Facts = event.DeviceAppReported
	}
	return &d
}

// resolve validates a request and resolves it against its role template.
func (p *API) resolve(in control.CredentialRequest, now time.Time) (control.Spec, *fieldError) {
	if fe := validID("subject_id", in.SubjectID, true); fe != nil {
		return control.Spec{}, fe
	}
	t, ok := p.state.Templates().Get(in.Role)
	if !ok {
		return control.Spec{}, bad("role", "unknown role %q (want one of %s)", in.Role, strings.Join(control.Roles, ", "))
	}
	if t.BreakGlass {
		return control.Spec{}, bad("role", "%s credentials are issued through break-glass (POST /v1/breakglass)", in.Role)
	}
	return p.resolveWith(t, in, now)
}

func (p *API) resolveWith(t control.Template, in control.CredentialRequest, now time.Time) (control.Spec, *fieldError) {
	if fe := validID("subject_id", in.SubjectID, true); fe != nil {
		return control.Spec{}, fe
	}
	if fe := validID("site_id", in.SiteID, false); fe != nil {
		return control.Spec{}, fe
	}
	if fe := validID("device_id", in.DeviceID, false); fe != nil {
		return control.Spec{}, fe
	}
	known := p.state.DoorGroups()
	for _, g := range in.DoorGroups {
		if strings.TrimSpace(g) == "" {
			return control.Spec{}, bad("door_groups", "empty door group")
		}
		if len(known) > 0 && known[g] == 0 {
			return control.Spec{}, bad("door_groups", "door group %q has no lock in the registry", g)
		}
	}
	sites := p.state.Sites()
	if in.SiteID != "" && len(sites) > 0 && sites[in.SiteID] == 0 {
		names := make([]string, 0, len(sites))
		for s := range sites {
			names = append(names, s)
		}
		slices.Sort(names)
		if len(names) > 10 {
			names = append(names[:10], "...")
		}
		return control.Spec{}, bad("site_id", "unknown site %q: the lock registry has no lock there (sites: %s)",
			in.SiteID, strings.Join(names, ", "))
	}
	groups, why := t.ResolveGroups(in.DoorGroups)
	if len(sites) > 0 && len(p.state.LocksFor(in.SiteID, groups)) == 0 {
		where := "the registry"
		if in.SiteID != "" {
			where = "site " + in.SiteID
		}
		return control.Spec{}, bad("door_groups", "no lock of %s is in door groups %s: the credential would open nothing",
			where, strings.Join(groups, ", "))
	}
	from, until := in.ValidFromMs, in.ValidUntilMs
	switch {
	case from < 0 || until < 0:
		return control.Spec{}, bad("valid_until_ms", "must not be negative")
	case until != 0 && until <= now.UnixMilli():
		return control.Spec{}, bad("valid_until_ms", "is in the past")
	case until != 0 && from != 0 && until <= from:
		return control.Spec{}, bad("valid_until_ms", "must be after valid_from_ms")
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
	att, fe := p.verifyAttestation("", in.DeviceID, in.Attestation, now)
	if fe != nil {
		return control.Spec{}, fe
	}
	var refs []event.CredentialRef
	for i, r := range in.Refs {
		if !slices.Contains(event.Vendors, r.Vendor) {
			return control.Spec{}, bad(fmt.Sprintf("refs[%d].vendor", i), "want one of %s", strings.Join(event.Vendors, ", "))
		}
		if r.UserRef == "" {
			return control.Spec{}, bad(fmt.Sprintf("refs[%d].user_ref", i), "required")
		}
		refs = append(refs, event.CredentialRef{Vendor: r.Vendor, LockID: r.LockID,
			UserRefHash: event.RefHash(p.opts.PseudonymKey, r.Vendor, r.UserRef)})
	}
	rule := t.Approval
	if why != "" {
		rule = control.Stricter(rule, control.ApprovalOne)
	}
	return control.Spec{SubjectID: in.SubjectID, Role: in.Role, SiteID: in.SiteID, DoorGroups: groups,
		ExtraGroups: in.DoorGroups, Windows: t.Windows, ValidFromMs: from, ValidUntilMs: until,
		DeviceID: in.DeviceID, Attestation: att, Refs: refs, ApprovalRule: rule, Template: t.Version,
		Exception: why != "", ExceptionWhy: why, AllowAdditional: in.AllowAdditional}, nil
}

// item is one request item after validation.
type item struct {
	index int
	line  int // CSV line (0 for JSON)
	spec  control.Spec
	err   *fieldError
	sub   string // subject id for audit
}

func fieldName(f string) string {
	f, _, _ = strings.Cut(f, "[")
	f, _, _ = strings.Cut(f, ".")
	return f
}

func (p *API) parseJSONArray(data []byte, now time.Time) ([]item, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("want a JSON array of credential requests: %w", err)
	}
	items := make([]item, len(raw))
	for i, r := range raw {
		items[i].index = i
		var in control.CredentialRequest
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
	"attestation_format", "attestation_evidence", "attestation_challenge", "vendor", "lock_id", "user_ref", "reason",
	"allow_additional"}

func (p *API) parseCSV(data []byte, now time.Time) ([]item, error) {
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
		in := control.CredentialRequest{SubjectID: get("subject_id"), Role: get("role"), SiteID: get("site_id"),
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
			in.Attestation = &control.AttestationInput{Format: f, Evidence: get("attestation_evidence"),
				Challenge: get("attestation_challenge")}
		}
		switch v := strings.ToLower(get("allow_additional")); v {
		case "", "false", "no", "0":
		case "true", "yes", "1":
			in.AllowAdditional = true
		default:
			if it.err == nil {
				it.err = bad("allow_additional", "want true or false, not %q", v)
			}
		}
		if v := get("vendor"); v != "" || get("user_ref") != "" {
			in.Refs = []control.RefInput{{Vendor: v, LockID: get("lock_id"), UserRef: get("user_ref")}}
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

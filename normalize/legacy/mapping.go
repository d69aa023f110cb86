package legacy

import "github.com/keyfleet/keyfleet/normalize"

// The result codes and credential kinds of the legacy panels' CSV export and
// what each becomes. The adapter maps through these tables and
// docs/vendors.md is rendered from them.
var (
	results = normalize.NewTable([]normalize.Mapping{
		{Field: "result", Code: "GRANTED", Name: "access granted", Action: "unlock", Outcome: "granted"},
		{Field: "result", Code: "DENIED_INVALID", Name: "unknown or invalid credential", Action: "access_denied", Outcome: "denied", Reason: "invalid_credential"},
		{Field: "result", Code: "DENIED_REVOKED", Name: "credential revoked", Action: "access_denied", Outcome: "denied", Reason: "revoked"},
		{Field: "result", Code: "DENIED_EXPIRED", Name: "credential expired", Action: "access_denied", Outcome: "denied", Reason: "expired"},
		{Field: "result", Code: "DENIED_SCHEDULE", Name: "outside the credential's schedule", Action: "access_denied", Outcome: "denied", Reason: "outside_schedule"},
		{Field: "result", Code: "FORCED", Name: "door forced open", Action: "door_forced", Outcome: "info"},
		{Field: "result", Code: "HELD_OPEN", Name: "door held open", Action: "door_ajar", Outcome: "info"},
		{Field: "result", Code: "TAMPER", Name: "reader or panel tamper", Action: "tamper", Outcome: "info"},
	})
	kinds = normalize.NewTable([]normalize.Mapping{
		{Field: "kind", Code: "CARD", Name: "card (OSDP reader)", Method: "card"},
		{Field: "kind", Code: "PIN", Name: "PIN on the reader's keypad", Method: "pin"},
	})
)

// Mappings implements normalize.Documented.
func (Adapter) Mappings() []normalize.Mapping {
	var all []normalize.Mapping
	for _, t := range []*normalize.Table{results, kinds} {
		all = append(all, t.Rows()...)
	}
	return all
}

// About implements normalize.Described.
func (Adapter) About() normalize.About {
	return normalize.About{
		Input: "One CSV line of an older card/PIN panel's export (OSDP readers behind a panel): `time,panel,reader,kind,number,result`, " +
			"six plain (unquoted) fields; kind and number may be empty for door events (FORCED, HELD_OPEN, TAMPER). " +
			"The header line `time,panel,reader,kind,number,result` produces no event. " +
			"In the raw envelope the line is carried as a JSON string.",
		Example:    `2026-11-20T08:15:02Z,PANEL-7,READER-3,CARD,00123456,GRANTED`,
		LockID:     "`<panel>/<reader>`. Both required.",
		EventID:    "no vendor event id: UUIDv5 of the line's SHA-256 fingerprint (an identical line re-delivered gets the same id).",
		Time:       "`time` (RFC 3339). Required.",
		UserRef:    "`number`, the card or PIN number: it is only ever stored as its keyed hash; vendor_code and errors never carry it.",
		VendorCode: "`<result>/<kind>` (never the number).",
		Dimensions: "CSV lines carry panel and reader ids only: `lock_model` and `lock_firmware` come from the lock registry; " +
			"card and PIN panels have no phone, so phone dimensions are empty unless the credential's activation record names one.",
		Notes: []string{
			"A result outside the table is action other, outcome info; a kind outside the table is method unknown; both kept in vendor_code.",
			"A field with a control character (NUL, ESC, a tab inside it: anything below 0x20 or DEL once the whitespace around the field is trimmed) makes the line malformed_payload, never an unknown result.",
		},
	}
}

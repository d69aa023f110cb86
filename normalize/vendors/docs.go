package vendors

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/keyfleet/keyfleet/normalize"
)

// Docs renders docs/vendors.md from the adapters' own mapping tables and
// descriptions, so the documentation cannot drift from the code (a test
// fails when the file differs; go test ./normalize/vendors -update rewrites it).
func Docs() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from the adapters' mapping tables by `go test ./normalize/vendors -update`. Do not edit. -->\n\n")
	b.WriteString("# Vendor mappings\n\n")
	b.WriteString("Every vendor payload is normalized into one common access-event schema (see the shared design brief for the fields). " +
		"This page is rendered from the tables the adapters map through.\n\n")
	b.WriteString("Common rules:\n\n")
	b.WriteString("- An event type or code outside a table is not an error: the event is kept with action `other` (or the field left at its default) and the vendor's code in `vendor_code`.\n")
	b.WriteString("- Malformed input (not parseable, no device id, no parseable time, wrong field types) is rejected with a reason code " +
		"(`malformed_payload`, `missing_field`, `bad_field`, `bad_time`) and goes to `lock.events.dlq`; error messages carry byte offsets and JSON types, never payload values.\n")
	b.WriteString("- `user ref` is the vendor's reference to who acted. It is never stored: the normalizer looks up its keyed hash " +
		"(`event.RefHash`, HMAC-SHA256 with the pseudonym key) in the registry to fill `subject_id`, `credential_id` and `device_id`, then drops it. " +
		"Names, emails and card numbers in payloads are never copied to any output field.\n")
	b.WriteString("- `site_id`, `zone_id`, `door_id` come from the lock registry by (vendor, lock_id). `method` defaults to `unknown`, `attested` to `unknown`.\n")
	b.WriteString("- `event_id` is `event.ID(vendor, vendor event id)` (UUIDv5), so a re-delivered event deduplicates; " +
		"without a vendor event id it is derived from the SHA-256 of the payload bytes.\n")
	b.WriteString("- Device and lock dimensions (`lock_model`, `lock_firmware`, `phone_model`, `os_name`, `os_version`, `app_version`, empty when unknown): " +
		"what the payload reports wins; a lock's model and firmware the payload lacks come from the lock registry by (vendor, lock_id); " +
		"the phone's come from the resolved credential's activation record (control: app-reported, with the OS version and patch level " +
		"replaced by attested ones when Android key attestation proves them) when the event's device is the credential's device. " +
		"None of the five formats carries the phone's model, OS or app version.\n")
	b.WriteString("- In a table, an empty cell means the row does not set that field.\n\n")
	adapters := Adapters()
	for _, name := range Names() {
		a, ok := adapters[name]
		if !ok {
			continue
		}
		fmt.Fprintf(&b, "## %s\n\n", name)
		if d, ok := a.(normalize.Described); ok {
			about := d.About()
			fmt.Fprintf(&b, "- input: %s\n", about.Input)
			fmt.Fprintf(&b, "- lock_id: %s\n", about.LockID)
			fmt.Fprintf(&b, "- event_id: %s\n", about.EventID)
			fmt.Fprintf(&b, "- ts_ms: %s\n", about.Time)
			fmt.Fprintf(&b, "- user ref: %s\n", about.UserRef)
			fmt.Fprintf(&b, "- vendor_code: %s\n", about.VendorCode)
			if about.Dimensions != "" {
				fmt.Fprintf(&b, "- device and lock dimensions: %s\n", about.Dimensions)
			}
			for _, n := range about.Notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
			fmt.Fprintf(&b, "\nExample:\n\n```\n%s\n```\n\n", about.Example)
		}
		if d, ok := a.(normalize.Documented); ok {
			b.WriteString("| vendor field | code | vendor name | action | outcome | method | reason |\n")
			b.WriteString("|---|---|---|---|---|---|---|\n")
			for _, m := range d.Mappings() {
				fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n",
					cell(m.Field), cell(m.Code), cell(m.Name), cell(m.Action), cell(m.Outcome), cell(m.Method), cell(m.Reason))
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

func cell(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

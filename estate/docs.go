package estate

import (
	"bytes"
	"fmt"
	"strings"
)

// Docs renders docs/capabilities.md from the policy (the shipped one in the
// repository), so the documentation cannot drift from the matrix: a test
// fails when the file differs and go test ./estate -update rewrites it.
func (p Policy) Docs() []byte {
	var b bytes.Buffer
	b.WriteString("<!-- Generated from estate.DefaultPolicy by `go test ./estate -update`. Do not edit. -->\n\n")
	b.WriteString("# Lock capabilities and risk tiers\n\n")
	b.WriteString("Which lock can enforce what, which doors need what, and which doors are the weak links. " +
		"The practitioners' guide keyfleet follows asks to map capabilities before migrating, to assign risk tiers, " +
		"to put sensitive doors only on hardware that can do what the policy needs, and to upgrade critical doors first. " +
		"This page is rendered from the shipped matrix and tiers (package `estate`).\n\n")
	b.WriteString("- A lock is judged by the row of its vendor and model whose firmware rule its firmware meets; " +
		"of several, the most specific (highest minimum). Firmware rules are `>= VERSION` (dotted numbers) or empty (any firmware).\n")
	b.WriteString("- An unknown model, or a firmware no row covers, falls back to the vendor's default row (model `*`), " +
		"which claims nothing any model of the vendor lacks; the result says it fell back and why.\n")
	b.WriteString("- A JSON configuration (`{\"profiles\": [...], \"tiers\": [...]}`, fields as in the tables below) replaces a row " +
		"with the same vendor, model and firmware minimum whole, or adds it; tiers are replaced by number. Unknown fields are errors.\n")
	b.WriteString("- Revocation delays are the worst case while the lock is reachable as designed (for a lock that syncs on a schedule, " +
		"the sync period); an offline lock stays pending, which the per-lock acks show. No vendor publishes them as numbers: " +
		"the shipped values are assumed and should be replaced by measured ack latencies.\n")
	b.WriteString("- `cost` is a relative cost of fitting the model to a door, used only to pick the cheapest upgrade; set it from your own quotes.\n\n")

	b.WriteString("## Capability matrix\n\n")
	b.WriteString("| vendor | model | firmware | schedules (windows) | offline validation | expiring keys | revocation typical / worst " +
		"| remote unlock | emergency unlock | attestation | audit | battery | online | cost |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range p.Matrix {
		fw := r.Firmware
		if fw == "" {
			fw = "any"
		}
		sched := "no"
		if r.Windows > 0 {
			sched = fmt.Sprintf("yes (%d)", r.Windows)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s / %s | %s | %s | `%s` | `%s` | %s | %s | %d |\n",
			r.Vendor, code(r.Model), code(fw), sched, yes(r.OfflineValidation), yes(r.ExpiringKeys),
			r.RevocationTypical, r.RevocationWorst, yes(r.RemoteUnlock), yes(r.EmergencyUnlock),
			r.Attestation, r.Audit, yes(r.BatteryTelemetry), yes(r.OnlineTelemetry), r.Cost)
	}
	b.WriteString("\nColumns: schedules = weekly windows per credential enforced at the lock; offline validation = the lock decides without its cloud; " +
		"expiring keys = an end date enforced at the lock; emergency unlock = held open for everyone on command or alarm; " +
		"attestation `device_key` = the lock verifies the phone's attested key (Aliro, Home Key), `app_token` = a vendor app or controller token, " +
		"`none` = card/PIN; audit `who` = records name the user, `credential` = only the credential.\n\n")
	b.WriteString("### Sources\n\n")
	b.WriteString("Every row names the public document its values come from; what no public document gives is marked assumed.\n\n")
	b.WriteString("| row | source | note |\n|---|---|---|\n")
	for _, r := range p.Matrix {
		fmt.Fprintf(&b, "| %s | %s | %s |\n", code(r.Name()), cell(r.Source), cell(r.Note))
	}

	b.WriteString("\n## Risk tiers\n\n")
	b.WriteString("| tier | name | doors | max revocation | schedules | expiring keys | audit who | attestation | offline validation | weight |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range p.Tiers {
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", t.Tier, t.Name, t.Doors, t.MaxRevocation,
			yes(t.Schedules), yes(t.ExpiringKeys), yes(t.AuditWho), yes(t.Attestation), yes(t.OfflineValidation), t.Weight)
	}
	b.WriteString("\nA lock whose tier is not recorded (`tier` 0, e.g. from an old registry file) is judged as the least critical tier " +
		"and counted apart in the weak-link report.\n")

	b.WriteString("\n## Gaps and their severity\n\n")
	b.WriteString("A gap is one thing a door's tier or a grant needs that the lock cannot do (`capability`, `need`, `have`, `severity`); one per capability, the most severe.\n\n")
	b.WriteString("| capability | when | severity |\n|---|---|---|\n")
	for _, row := range [][3]string{
		{CapRevocation, "worst revocation delay over the tier's SLA", "high; critical from 10× the SLA"},
		{CapAttestation, "the tier needs a verified device key", "high with an app token, critical with none"},
		{CapSchedules, "the tier needs schedules and the lock has none", "high"},
		{CapSchedules, "the grant has more windows than the lock enforces", "medium"},
		{CapAudit, "the tier needs records of who", "medium with credential only, high with none"},
		{CapOffline, "the tier needs the lock to decide without its cloud", "medium"},
		{CapExpiry, "the tier needs expiring keys", "medium"},
		{CapExpiry, "the grant expires and the lock cannot enforce it", "low; medium when the worst revocation delay is over the SLA"},
	} {
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", row[0], row[1], row[2])
	}

	b.WriteString("\n## Grant-time policy\n\n")
	b.WriteString("When a credential is requested (`POST /v1/credentials`, each item of `POST /v1/credentials:bulk`) or a role template changes " +
		"(`PUT /v1/templates/{role}`), every lock the grant would reach is checked. The grant is refused (422, problem code `capability_missing`, " +
		"naming each lock, its door and tier, and the missing capability) when a lock:\n\n")
	fmt.Fprintf(&b, "- revokes slower than its tier's SLA (`%s`): every grant must be revocable within it;\n", CapRevocation)
	fmt.Fprintf(&b, "- cannot enforce the grant's weekly windows and its tier demands schedules (`%s`);\n", CapSchedules)
	fmt.Fprintf(&b, "- cannot enforce the key's end date and its tier demands expiring keys (`%s`).\n\n", CapExpiry)
	b.WriteString("Other gaps do not refuse a grant: they make the door a weak link (below), and the grant carries what the lock can enforce. " +
		"A refusal can only be lifted by a recorded exception (`POST /v1/exceptions`, docs/api.md): a lock, policy or credential " +
		"exception in force whose scope covers the lock (site, door, vendor and lock id, the subject or role, and the capability; a field " +
		"left out matches any) lets the grant through; the refusal says so when none does. Break-glass access is never refused by the estate policy: it is carried with " +
		"weaker enforcement where the locks need it and audited like every break-glass grant.\n")

	b.WriteString("\n## What a grant carries\n\n")
	fmt.Fprintf(&b, "- Windows go to the lock only when it enforces all of them (`schedule: %s`); otherwise they are dropped, "+
		"the lock opens at any time within the validity and the off-schedule detector flags use afterwards (`schedule: %s`). "+
		"keyfleet never narrows a grant to the windows that fit.\n", EnforcedAtLock, DetectOnly)
	fmt.Fprintf(&b, "- An expiry is enforced by the lock (`expiry: %s`) or by keyfleet revoking at the end (`expiry: %s`, late by up to the worst revocation delay).\n",
		EnforcedAtLock, ByRevocation)
	b.WriteString("- `weaker: true` when anything the grant asks for is not enforced at the lock: the grant's record must say so " +
		"(the credential's `weaker` list names each such lock and how its windows and end date are enforced instead), and the lock " +
		"command carries only what the lock enforces (no windows, no end date where the lock cannot keep them).\n")

	b.WriteString("\n## Weak links and the upgrade plan\n\n")
	b.WriteString("- A weak link is a door whose tier demands more than its lock can do. Risk = tier weight × the sum of its gaps' severities " +
		"(low 1, medium 2, high 3, critical 4) × (uses of the door in the window + 1); ranked highest first, ties by tier, site, door, vendor, lock.\n")
	b.WriteString("- The upgrade is the cheapest row that closes every gap: a newer firmware rule of the lock's own model (cost 0) before any replacement; " +
		"among replacements the lowest `cost`, the lock's own vendor first among equals. Default rows are never proposed; " +
		"a door no row can fix says so.\n")
	b.WriteString("- The plan upgrades critical doors first: tier 1 before tier 2 before tier 3, by risk within a tier.\n")
	return b.Bytes()
}

func yes(v bool) string {
	if v {
		return "yes"
	}
	return "no"
}

func code(s string) string { return "`" + cell(s) + "`" }

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

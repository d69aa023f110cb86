package estate

import "time"

const (
	sec    = Duration(time.Second)
	minute = Duration(time.Minute)
	hour   = Duration(time.Hour)
)

// Public sources the shipped rows cite. Values no public document gives are
// marked "assumed" in the row's source.
const (
	srcMatterCluster = "Matter Door Lock cluster 0x0101: LockDoor/UnlockDoor mandatory; WeekDay/YearDay schedules " +
		"and Aliro (ALIRO feature, credential types AliroCredentialIssuerKey…) optional features " +
		"(https://github.com/project-chip/connectedhomeip/pull/31144; https://matter-survey.org/de/cluster/0x0101/version/1.5)"
	srcMatterSchedules = "certified locks ship WDSCH and YDSCH, e.g. Aqara U400 " +
		"(https://github.com/orgs/home-assistant/discussions/4684)"
	srcAliro = "Aliro reader configuration on the Door Lock cluster (Apple Matter framework, setAliroReaderConfig, " +
		"https://developer.apple.com/documentation/matter/mtrbaseclusterdoorlock/setaliroreaderconfigwith(_:completion:))"
	srcNukiTime = "Nuki: access can be time restricted (weekdays, time of day) and date restricted " +
		"(https://docs.nuki.io/guide/overview/how-to/); Web API auth fields allowedWeekDays, allowedFromTime, " +
		"allowedUntilTime, allowedUntilDate: one window per authorization " +
		"(https://developer.nuki.io/t/web-api-example-create-a-key-for-your-nuki-smart-lock/55)"
	srcNuki4 = "Nuki 4th generation: Matter over Thread plus Wi-Fi on the Pro " +
		"(https://developer.nuki.io/t/smart-lock-wifi-thread-mqtt-connection-troubleshooting-faq/26353/3)"
	srcSchlageSchedule = "Schlage Home app: Always, Recurring and Temporary code schedules on Encode series " +
		"(https://schlage-res.zendesk.com/hc/en-us/articles/37993787219988-How-to-Schedule-Codes-in-the-Schlage-Home-App)"
	srcSchlageAPI = "Schlage Home API: commands answer 202 and report through CommandStatusUpdated webhooks; " +
		"battery and connectivity events (https://developer.allegion.com/en/products/schlage-home/schlage-home-api-v2.html)"
	srcSeamCodes = "Seam access codes: a time-bound code is programmed at starts_at and removed at ends_at " +
		"(https://www.seam.co/docs/low-level-apis/smart-locks/access-codes); capability flags per device " +
		"(https://github.com/seamapi/api-docs/blob/main/docs/capability-guides/device-and-system-capabilities.md)"
	srcOSDP = "SIA OSDP: reader-to-panel protocol, Secure Channel protects the reader link only (http://www.osdp-connect.com/); " +
		"nightly ACL sync and CSV export as the keyfleet legacy adapter reads them"
)

// DefaultMatrix is the shipped capability matrix: one conservative default
// row per vendor and realistic models of the five vendors keyfleet reads.
// Revocation delays are nowhere published as numbers; they are assumed
// (the worst case while the lock is reachable as designed) and meant to be
// replaced by the estate's measured per-lock ack latencies.
func DefaultMatrix() Matrix {
	return Matrix{}.Merge(
		// matter
		Profile{Vendor: "matter", Model: DefaultModel, Capabilities: Capabilities{
			RevocationTypical: 5 * sec, RevocationWorst: minute, RemoteUnlock: true,
			Attestation: AttestNone, Audit: AuditCredential, OnlineTelemetry: true},
			Source: srcMatterCluster + "; conservative: only the mandatory commands assumed; revocation delays assumed",
			Note:   "Any Matter Door Lock: schedules, Aliro and the Power Source cluster are optional, so none is assumed."},
		Profile{Vendor: "matter", Model: "door-lock", Capabilities: Capabilities{
			Windows: 2, OfflineValidation: true, ExpiringKeys: true, RevocationTypical: 5 * sec, RevocationWorst: minute,
			RemoteUnlock: true, EmergencyUnlock: true, Attestation: AttestAppToken, Audit: AuditWho,
			BatteryTelemetry: true, OnlineTelemetry: true},
			Cost:   2,
			Source: srcMatterCluster + "; " + srcMatterSchedules + "; windows per user (NumberOfWeekDaySchedulesSupportedPerUser) assumed 2; passage mode and revocation delays assumed",
			Note: "A Matter Door Lock with week-day and year-day schedules (FeatureMap WDSCH, YDSCH) and PIN/RFID users stored on the lock; " +
				"phones open it through a controller app, so the lock does not verify a phone key."},
		Profile{Vendor: "matter", Model: "door-lock-aliro", Capabilities: Capabilities{
			Windows: 2, OfflineValidation: true, ExpiringKeys: true, RevocationTypical: 5 * sec, RevocationWorst: minute,
			RemoteUnlock: true, EmergencyUnlock: true, Attestation: AttestDeviceKey, Audit: AuditWho,
			BatteryTelemetry: true, OnlineTelemetry: true},
			Cost:   3,
			Source: srcMatterCluster + "; " + srcAliro + "; windows per user assumed 2; passage mode and revocation delays assumed",
			Note:   "A Matter 1.4+ Door Lock with the Aliro feature: the lock verifies the phone's Aliro endpoint key (NFC, or BLE+UWB)."},
		// nuki
		Profile{Vendor: "nuki", Model: DefaultModel, Capabilities: Capabilities{
			OfflineValidation: true, RevocationTypical: 30 * sec, RevocationWorst: hour,
			Attestation: AttestAppToken, Audit: AuditWho, BatteryTelemetry: true},
			Source: srcNukiTime + "; conservative: no remote access without a bridge assumed; revocation delays assumed",
			Note:   "Any Nuki smart lock: Bluetooth app keys are checked by the lock; remote access may need a bridge."},
		Profile{Vendor: "nuki", Model: "smart-lock-3-pro", Capabilities: Capabilities{
			Windows: 1, OfflineValidation: true, ExpiringKeys: true, RevocationTypical: 10 * sec, RevocationWorst: 15 * minute,
			RemoteUnlock: true, EmergencyUnlock: true, Attestation: AttestAppToken, Audit: AuditWho,
			BatteryTelemetry: true, OnlineTelemetry: true},
			Cost:   2,
			Source: srcNukiTime + "; enforcement of time limits at the lock, hold-open on remote unlock and revocation delays assumed",
			Note:   "Nuki Smart Lock 3.0 Pro: built-in Wi-Fi; app keys are vendor app key pairs, not attested device keys."},
		Profile{Vendor: "nuki", Model: "smart-lock-4-pro", Capabilities: Capabilities{
			Windows: 1, OfflineValidation: true, ExpiringKeys: true, RevocationTypical: 10 * sec, RevocationWorst: 15 * minute,
			RemoteUnlock: true, EmergencyUnlock: true, Attestation: AttestAppToken, Audit: AuditWho,
			BatteryTelemetry: true, OnlineTelemetry: true},
			Cost:   2,
			Source: srcNukiTime + "; " + srcNuki4 + "; enforcement of time limits at the lock, hold-open on remote unlock and revocation delays assumed",
			Note:   "Nuki Smart Lock Pro (4th generation): Wi-Fi or Thread; same authorization model as the 3.0 Pro."},
		// schlage
		Profile{Vendor: "schlage", Model: DefaultModel, Capabilities: Capabilities{
			OfflineValidation: true, RevocationTypical: 30 * sec, RevocationWorst: hour,
			Attestation: AttestNone, Audit: AuditCredential, BatteryTelemetry: true},
			Source: srcSchlageAPI + "; conservative: keypad codes only assumed; revocation delays assumed",
			Note:   "Any Schlage Home lock: keypad access codes checked by the lock."},
		Profile{Vendor: "schlage", Model: "encode-plus", Capabilities: Capabilities{
			Windows: 1, OfflineValidation: true, ExpiringKeys: true, RevocationTypical: 30 * sec, RevocationWorst: 15 * minute,
			RemoteUnlock: true, EmergencyUnlock: true, Attestation: AttestDeviceKey, Audit: AuditCredential,
			BatteryTelemetry: true, OnlineTelemetry: true},
			Cost: 3,
			Source: srcSchlageSchedule + "; " + srcSchlageAPI + "; Apple Home Key over NFC: no vendor page found, assumed from third-party " +
				"(https://lifenovation.com/articles/pick-the-right-schlage-smart/); schedules enforced at the lock and revocation delays assumed",
			Note: "Schlage Encode Plus (BE499WB): Wi-Fi and Thread, Apple Home Key; webhook events name the accessor and its access type " +
				"(e.g. AppleHomeNFC), which identifies the credential rather than the person."},
		// seam
		Profile{Vendor: "seam", Model: DefaultModel, Capabilities: Capabilities{
			RevocationTypical: minute, RevocationWorst: hour, Attestation: AttestNone, Audit: AuditNone, OnlineTelemetry: true},
			Source: srcSeamCodes + "; conservative: nothing the device may lack assumed; revocation delays assumed",
			Note:   "Any lock behind Seam: what it can do depends on the brand behind the aggregator (see its capability flags)."},
		Profile{Vendor: "seam", Model: "generic-keypad-lock", Capabilities: Capabilities{
			OfflineValidation: true, RevocationTypical: minute, RevocationWorst: hour,
			Attestation: AttestNone, Audit: AuditCredential, BatteryTelemetry: true, OnlineTelemetry: true},
			Cost:   2,
			Source: srcSeamCodes + "; remote unlock taken as absent (per-device can_remotely_unlock); revocation delays assumed",
			Note: "A keypad lock connected through Seam: codes live on the lock, but time-bound codes are added and removed by Seam's cloud, " +
				"so neither windows nor expiry are enforced at the lock."},
		// legacy
		Profile{Vendor: "legacy", Model: DefaultModel, Capabilities: Capabilities{
			OfflineValidation: true, RevocationTypical: 12 * hour, RevocationWorst: 24 * hour,
			Attestation: AttestNone, Audit: AuditCredential},
			Source: srcOSDP + "; conservative: nightly sync, no schedules assumed",
			Note:   "Any legacy card/PIN panel: decides locally from the ACL it last received."},
		Profile{Vendor: "legacy", Model: "osdp-panel", Capabilities: Capabilities{
			Windows: 4, OfflineValidation: true, RevocationTypical: 12 * hour, RevocationWorst: 24 * hour,
			EmergencyUnlock: true, Attestation: AttestNone, Audit: AuditCredential},
			Cost:   4,
			Source: srcOSDP + "; revocation = the nightly sync period; panel time zones (4 per credential) and fire release assumed",
			Note:   "Card/PIN panel behind OSDP readers with a nightly ACL sync: a revoked card keeps working until the next sync."},
		Profile{Vendor: "legacy", Model: "osdp-panel", Firmware: ">= 2.0", Capabilities: Capabilities{
			Windows: 4, OfflineValidation: true, RevocationTypical: minute, RevocationWorst: 15 * minute,
			EmergencyUnlock: true, Attestation: AttestNone, Audit: AuditCredential, OnlineTelemetry: true},
			Cost:   4,
			Source: "assumed: an example firmware rule for a panel that takes host-pushed ACL changes; replace with your panel's release notes",
			Note:   "The same panel on a firmware that accepts ACL changes pushed from the host instead of the nightly file."},
	)
}

// DefaultTiers are the shipped risk tiers.
func DefaultTiers() Tiers {
	return Tiers{
		{Tier: 1, Name: "critical", Doors: "building entrances, server and plant rooms, pharmacies",
			MaxRevocation: 15 * minute, Schedules: true, ExpiringKeys: true, AuditWho: true, Attestation: true, OfflineValidation: true, Weight: 9},
		{Tier: 2, Name: "restricted", Doors: "staff-only areas, units",
			MaxRevocation: hour, Schedules: true, ExpiringKeys: true, AuditWho: true, Weight: 3},
		{Tier: 3, Name: "amenity", Doors: "amenity doors (gym, laundry, roof terrace)",
			MaxRevocation: 24 * hour, Weight: 1},
	}
}

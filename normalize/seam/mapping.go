package seam

import "github.com/keyfleet/keyfleet/normalize"

// The Seam event types and lock methods and what each becomes. The adapter
// maps through these tables and docs/vendors.md is rendered from them.
var (
	eventTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "event_type", Code: "lock.unlocked", Name: "lock unlocked", Action: "unlock", Outcome: "granted"},
		{Field: "event_type", Code: "lock.locked", Name: "lock locked", Action: "lock", Outcome: "granted"},
		{Field: "event_type", Code: "lock.access_denied", Name: "access denied", Action: "access_denied", Outcome: "denied", Reason: "unknown"},
		{Field: "event_type", Code: "access_code.created", Name: "access code created", Action: "credential_added", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "access_code.set_on_device", Name: "access code programmed on the lock", Action: "credential_added", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "access_code.scheduled_on_device", Name: "access code scheduled on the lock", Action: "credential_added", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "access_code.changed", Name: "access code changed", Action: "credential_modified", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "access_code.deleted", Name: "access code deleted", Action: "credential_removed", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "access_code.removed_from_device", Name: "access code removed from the lock", Action: "credential_removed", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "access_code.failed_to_set_on_device", Name: "access code could not be programmed", Action: "credential_added", Outcome: "error", Method: "pin", Reason: "unknown"},
		{Field: "event_type", Code: "access_code.failed_to_remove_from_device", Name: "access code could not be removed", Action: "credential_removed", Outcome: "error", Method: "pin", Reason: "unknown"},
		{Field: "event_type", Code: "access_code.delay_in_setting_on_device", Name: "access code programming delayed", Action: "other", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "access_code.delay_in_removing_from_device", Name: "access code removal delayed", Action: "other", Outcome: "info", Method: "pin"},
		{Field: "event_type", Code: "device.connected", Name: "device connected", Action: "online", Outcome: "info"},
		{Field: "event_type", Code: "device.disconnected", Name: "device disconnected", Action: "offline", Outcome: "info"},
		{Field: "event_type", Code: "device.low_battery", Name: "low battery", Action: "battery_low", Outcome: "info"},
		{Field: "event_type", Code: "device.tampered", Name: "tampered", Action: "tamper", Outcome: "info"},
		{Field: "event_type", Code: "device.door_opened", Name: "door opened", Action: "door_opened", Outcome: "info"},
		{Field: "event_type", Code: "device.door_closed", Name: "door closed", Action: "door_closed", Outcome: "info"},
	})
	methods = normalize.NewTable([]normalize.Mapping{
		{Field: "method", Code: "keycode", Name: "keypad code", Method: "pin"},
		{Field: "method", Code: "manual", Name: "by hand (thumbturn, key)", Method: "mechanical"},
		{Field: "method", Code: "automatic", Name: "auto lock", Method: "auto"},
		{Field: "method", Code: "remote", Name: "remote (app)", Method: "app_remote"},
		{Field: "method", Code: "seamapi", Name: "Seam API call", Method: "app_remote"},
		{Field: "method", Code: "mobile_key", Name: "mobile key", Method: "phone_ble"},
		{Field: "method", Code: "unknown", Name: "not reported", Method: "unknown"},
	})
)

// Mappings implements normalize.Documented.
func (Adapter) Mappings() []normalize.Mapping {
	var all []normalize.Mapping
	for _, t := range []*normalize.Table{eventTypes, methods} {
		all = append(all, t.Rows()...)
	}
	return all
}

// About implements normalize.Described.
func (Adapter) About() normalize.About {
	return normalize.About{
		Input: "A Seam-style aggregator webhook event `{event_id, event_type, device_id, workspace_id, created_at, occurred_at, method, access_code_id, ...}`.",
		Example: `{"event_id":"4d1b6c8e-2f0a-4c1e-9b7d-5a6e7f8091a2","event_type":"lock.unlocked","device_id":"9f0e1d2c-3b4a-5968-7a6b-5c4d3e2f1a0b",` +
			`"workspace_id":"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9","created_at":"2026-11-20T08:15:03.000Z","occurred_at":"2026-11-20T08:15:02.000Z",` +
			`"method":"keycode","access_code_id":"c0ffee00-1111-2222-3333-444455556666"}`,
		LockID:     "`device_id`. Required.",
		EventID:    "UUIDv5 of `event_id`; without one the payload fingerprint.",
		Time:       "`occurred_at` (RFC 3339), else `created_at`. Required.",
		UserRef:    "`access_code_id`, else `acs_credential_id`, else `user_identity_id`.",
		VendorCode: "the event_type, plus `/<method>` when the event has one.",
		Dimensions: "Events name the device, not its model or firmware (properties of the Seam device object): `lock_model` and `lock_firmware` come from the lock registry. " +
			"Events carry nothing of the phone: phone dimensions come from the credential's activation record.",
		Notes: []string{
			"The method of a lock event comes from `method`; access_code.* events are pin.",
			"An event_type outside the table (access_code.*, device.*, ... not listed) is action other, outcome info, with the type in vendor_code; " +
				"a method outside the table is method unknown.",
		},
	}
}

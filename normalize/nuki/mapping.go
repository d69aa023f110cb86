package nuki

import "github.com/keyfleet/keyfleet/normalize"

// The codes of a Nuki Web API smartlock log entry and what each becomes.
// The adapter maps through these tables and docs/vendors.md is rendered
// from them.
//
// Sources, checked 2026-12: the Nuki Web API's SmartlockLog model (swagger
// of api.nuki.io: action, trigger 0..7/253/254/255, state 0..10/224..226/
// 254/255 plus the states of source=3 with trigger=253, source 0..3); the
// Nuki Bluetooth API (trigger 0x00 "system" is a command over Bluetooth,
// 0x01 manual, 0x02 button, 0x03 automatic, 0x06 auto lock); the Nuki MQTT
// API 1.3 lockActionEvent examples ("Auto-Unlock via App from Auth-ID
// 54322: 1,0,54322,0,1": the app's unlock over Bluetooth is trigger 0 with
// the user's authorization).
var (
	actions = normalize.NewTable([]normalize.Mapping{
		{Field: "action", Code: "1", Name: "unlock", Action: "unlock", Outcome: "granted"},
		{Field: "action", Code: "2", Name: "lock", Action: "lock", Outcome: "granted"},
		{Field: "action", Code: "3", Name: "unlatch", Action: "unlatch", Outcome: "granted"},
		{Field: "action", Code: "4", Name: "lock 'n' go", Action: "lock", Outcome: "granted"},
		{Field: "action", Code: "5", Name: "lock 'n' go with unlatch", Action: "unlatch", Outcome: "granted"},
		{Field: "action", Code: "6", Name: "full lock", Action: "lock", Outcome: "granted"},
		{Field: "action", Code: "11", Name: "restore reset to default setting", Action: "tamper", Outcome: "info"},
		{Field: "action", Code: "208", Name: "door warning ajar", Action: "door_ajar", Outcome: "info"},
		{Field: "action", Code: "209", Name: "door warning status mismatch", Action: "other", Outcome: "info"},
		{Field: "action", Code: "224", Name: "doorbell recognition (Opener)", Action: "other", Outcome: "info"},
		{Field: "action", Code: "240", Name: "door opened", Action: "door_opened", Outcome: "info"},
		{Field: "action", Code: "241", Name: "door closed", Action: "door_closed", Outcome: "info"},
		{Field: "action", Code: "242", Name: "door sensor jammed", Action: "lock_jammed", Outcome: "error", Reason: "jammed"},
		{Field: "action", Code: "243", Name: "firmware update", Action: "other", Outcome: "info"},
		{Field: "action", Code: "250", Name: "door log enabled", Action: "other", Outcome: "info"},
		{Field: "action", Code: "251", Name: "door log disabled", Action: "other", Outcome: "info"},
		{Field: "action", Code: "252", Name: "initialization", Action: "other", Outcome: "info"},
		{Field: "action", Code: "253", Name: "calibration", Action: "other", Outcome: "info"},
		{Field: "action", Code: "254", Name: "log enabled", Action: "other", Outcome: "info"},
		{Field: "action", Code: "255", Name: "log disabled", Action: "other", Outcome: "info"},
	})
	// The trigger of a lock operation. "system" is the lock's Bluetooth
	// command path: with an authorization (authId, or accountUserId) it is a
	// phone — the Nuki app unlocking over Bluetooth, the most common phone
	// unlock — and systemNoAuth applies without one.
	triggers = normalize.NewTable([]normalize.Mapping{
		{Field: "trigger", Code: "0", Name: "system: a Bluetooth command naming an authorization (the Nuki app)", Method: "phone_ble"},
		{Field: "trigger", Code: "1", Name: "manual (key or thumbturn)", Method: "mechanical"},
		{Field: "trigger", Code: "2", Name: "button", Method: "button"},
		{Field: "trigger", Code: "3", Name: "automatic (time control)", Method: "schedule"},
		{Field: "trigger", Code: "4", Name: "web", Method: "app_remote"},
		{Field: "trigger", Code: "5", Name: "app", Method: "phone_ble"},
		{Field: "trigger", Code: "6", Name: "auto lock", Method: "auto"},
		{Field: "trigger", Code: "7", Name: "accessory (Nuki Fob: a key token with its own authorization)", Method: "card"},
		{Field: "trigger", Code: "253", Name: "keypad error", Method: "pin"},
		{Field: "trigger", Code: "254", Name: "nuki mode", Method: "unknown"},
		{Field: "trigger", Code: "255", Name: "keypad", Method: "pin"},
	})
	systemNoAuth = normalize.NewTable([]normalize.Mapping{
		{Field: "trigger, no authId", Code: "0", Name: "system: a Bluetooth command naming no authorization", Method: "unknown"},
	})
	// sources refine the trigger.
	sources = normalize.NewTable([]normalize.Mapping{
		{Field: "source", Code: "0", Name: "default"},
		{Field: "source", Code: "1", Name: "keypad code", Method: "pin"},
		{Field: "source", Code: "2", Name: "fingerprint", Method: "biometric"},
		{Field: "source", Code: "3", Name: "tap to unlock (a phone tapped on the lock, NFC)", Method: "phone_nfc"},
	})
	// autoUnlock=true on an unlock: the app unlocked on approach (phone
	// proximity over Bluetooth).
	autoUnlock = normalize.NewTable([]normalize.Mapping{
		{Field: "autoUnlock", Code: "true", Name: "auto unlock (geofence)", Method: "phone_ble"},
	})
	// A completion state other than success turns the attempted action into
	// an error or a denial.
	states = normalize.NewTable([]normalize.Mapping{
		{Field: "state", Code: "0", Name: "success"},
		{Field: "state", Code: "1", Name: "motor blocked", Outcome: "error", Reason: "jammed"},
		{Field: "state", Code: "2", Name: "canceled", Outcome: "error", Reason: "unknown"},
		{Field: "state", Code: "3", Name: "too recent", Outcome: "error", Reason: "unknown"},
		{Field: "state", Code: "4", Name: "busy", Outcome: "error", Reason: "unknown"},
		{Field: "state", Code: "5", Name: "low motor voltage", Outcome: "error", Reason: "insufficient_battery"},
		{Field: "state", Code: "6", Name: "clutch failure", Outcome: "error", Reason: "jammed"},
		{Field: "state", Code: "7", Name: "motor power failure", Outcome: "error", Reason: "insufficient_battery"},
		{Field: "state", Code: "8", Name: "incomplete", Outcome: "error", Reason: "unknown"},
		{Field: "state", Code: "9", Name: "rejected", Action: "access_denied", Outcome: "denied", Reason: "unknown"},
		{Field: "state", Code: "10", Name: "rejected night mode", Action: "access_denied", Outcome: "denied", Reason: "outside_schedule"},
		{Field: "state", Code: "224", Name: "invalid code", Action: "access_denied", Outcome: "denied", Method: "pin", Reason: "invalid_credential"},
		{Field: "state", Code: "225", Name: "invalid fingerprint", Action: "access_denied", Outcome: "denied", Method: "biometric", Reason: "invalid_credential"},
		{Field: "state", Code: "226", Name: "invalid NFC tag", Action: "access_denied", Outcome: "denied", Method: "card", Reason: "invalid_credential"},
		{Field: "state", Code: "254", Name: "other error", Outcome: "error", Reason: "unknown"},
		{Field: "state", Code: "255", Name: "unknown error", Outcome: "error", Reason: "unknown"},
	})
	// A tap to unlock that failed (trigger 253 "keypad error" with source 3)
	// reports states of its own; state 0 is not a success there.
	tapStates = normalize.NewTable([]normalize.Mapping{
		{Field: "state, tap to unlock error", Code: "0", Name: "access document revoked", Action: "access_denied", Outcome: "denied", Reason: "revoked"},
		{Field: "state, tap to unlock error", Code: "1", Name: "send NFC failed", Outcome: "error", Reason: "unknown"},
		{Field: "state, tap to unlock error", Code: "2", Name: "control flow", Outcome: "error", Reason: "unknown"},
		{Field: "state, tap to unlock error", Code: "3", Name: "command time expired", Outcome: "error", Reason: "unknown"},
		{Field: "state, tap to unlock error", Code: "7", Name: "invalid data content", Outcome: "error", Reason: "unknown"},
		{Field: "state, tap to unlock error", Code: "37", Name: "invalid access rights", Action: "access_denied", Outcome: "denied", Reason: "invalid_credential"},
		{Field: "state, tap to unlock error", Code: "255", Name: "unknown", Outcome: "error", Reason: "unknown"},
	})
)

// Trigger and source of a failed tap to unlock, whose states are tapStates.
const (
	triggerKeypadError = 253
	sourceTapToUnlock  = 3
)

// Mappings implements normalize.Documented.
func (Adapter) Mappings() []normalize.Mapping {
	var all []normalize.Mapping
	for _, t := range []*normalize.Table{actions, states, tapStates, triggers, systemNoAuth, sources, autoUnlock} {
		all = append(all, t.Rows()...)
	}
	return all
}

// About implements normalize.Described.
func (Adapter) About() normalize.About {
	return normalize.About{
		Input: "A Nuki Web API smartlock log entry `{id, smartlockId, deviceType, authId, name, action, trigger, state, autoUnlock, date, source}`, " +
			"or the DEVICE_LOGS webhook around one: `{\"feature\":\"DEVICE_LOGS\",\"smartlockLog\":{...}}`. " +
			"Webhooks of other features (DEVICE_STATUS, DEVICE_AUTHS, ...) are not access events and produce no event.",
		Example: `{"id":"6566e1b0c3a4f22e5c0d9b17","smartlockId":17171717,"deviceType":4,"authId":"6566dd0ec3a4f22e5c0d9a01",` +
			`"name":"Front door app","action":1,"trigger":5,"state":0,"autoUnlock":false,"date":"2026-11-20T08:15:02.000Z","source":0}`,
		LockID:     "`smartlockId` in decimal. Required.",
		EventID:    "UUIDv5 of the log entry's `id`; without one the payload fingerprint.",
		Time:       "`date` (RFC 3339). Required.",
		UserRef:    "`authId` (the lock authorization that acted; `accountUserId` when there is no authId). `name` is dropped: it is a person's or device's name.",
		VendorCode: "`action=<a> trigger=<t> state=<s>`, plus ` source=<n>` when not 0.",
		Dimensions: "`deviceType` is a device family (0 Smart Lock 1.0/2.0, 2 Opener, 3 Smart Door, 4 Smart Lock 3.0 and later), not a model, and log entries carry no firmware: " +
			"`lock_model` and `lock_firmware` come from the lock registry. Log entries carry nothing of the phone (`authId` names an authorization): " +
			"phone dimensions come from the credential's activation record.",
		Notes: []string{
			"The method comes from trigger, then source (keypad code, fingerprint, tap to unlock), then autoUnlock, then the state (an invalid code is pin, ...).",
			"Trigger 0 (system) is the Bluetooth command path: with an authorization (authId or accountUserId) it is the Nuki app on a phone (phone_ble), without one the method is unknown.",
			"A state other than 0 keeps the attempted action with outcome error, except the rejections, which become access_denied.",
			"Trigger 253 with source 3 is a failed tap to unlock: its state has its own codes (state 0 is \"access document revoked\", a denial).",
			"An action outside the table is action other, outcome info, with the codes in vendor_code.",
		},
	}
}

package schlage

import "github.com/keyfleet/keyfleet/normalize"

// The Schlage Home webhook codes and what each becomes. The adapter maps
// through these tables and docs/vendors.md is rendered from them.
var (
	eventTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "eventType", Code: "DeviceLockStateChanged", Name: "lock state changed (see data.lockState)"},
		{Field: "eventType", Code: "AccessCodeUsed", Name: "access code used", Action: "unlock", Outcome: "granted", Method: "pin"},
		{Field: "eventType", Code: "InvalidAccessCodeAttempted", Name: "invalid access code", Action: "access_denied", Outcome: "denied", Method: "pin", Reason: "invalid_credential"},
		{Field: "eventType", Code: "DeviceAlarmTriggered", Name: "alarm (see data.alarmType)", Action: "tamper", Outcome: "info"},
		{Field: "eventType", Code: "DeviceBatteryLevelChanged", Name: "battery level changed (see data.batteryLevel)", Action: "other", Outcome: "info"},
		{Field: "eventType", Code: "DeviceConnectivityStateChanged", Name: "connectivity changed (see data.connectivityState)", Action: "other", Outcome: "info"},
		{Field: "eventType", Code: "DeviceKeypadLockedOut", Name: "keypad locked out after wrong codes", Action: "access_denied", Outcome: "denied", Method: "pin", Reason: "invalid_credential"},
		{Field: "eventType", Code: "CommandStatusUpdated", Name: "remote command status", Action: "other", Outcome: "info", Method: "app_remote"},
	})
	lockStates = normalize.NewTable([]normalize.Mapping{
		{Field: "data.lockState", Code: "Unlocked", Name: "unlocked", Action: "unlock", Outcome: "granted"},
		{Field: "data.lockState", Code: "Locked", Name: "locked", Action: "lock", Outcome: "granted"},
		{Field: "data.lockState", Code: "Jammed", Name: "jammed", Action: "lock_jammed", Outcome: "error", Reason: "jammed"},
		{Field: "data.lockState", Code: "0", Name: "unlocked", Action: "unlock", Outcome: "granted"},
		{Field: "data.lockState", Code: "1", Name: "locked", Action: "lock", Outcome: "granted"},
		{Field: "data.lockState", Code: "2", Name: "jammed", Action: "lock_jammed", Outcome: "error", Reason: "jammed"},
	})
	accessTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "data.accessor.accessType", Code: "VirtualKey", Name: "Schlage app mobile key", Method: "phone_ble"},
		{Field: "data.accessor.accessType", Code: "AccessCode", Name: "keypad access code", Method: "pin"},
		{Field: "data.accessor.accessType", Code: "AutoRelock", Name: "auto relock", Method: "auto"},
		{Field: "data.accessor.accessType", Code: "Thumbturn", Name: "thumbturn", Method: "mechanical"},
		{Field: "data.accessor.accessType", Code: "UnlockButton", Name: "unlock button", Method: "button"},
		{Field: "data.accessor.accessType", Code: "LockButton", Name: "lock button", Method: "button"},
		{Field: "data.accessor.accessType", Code: "ScheduledLock", Name: "scheduled lock", Method: "schedule"},
		{Field: "data.accessor.accessType", Code: "AppleHome", Name: "Apple Home (remote)", Method: "app_remote"},
		{Field: "data.accessor.accessType", Code: "AppleHomeNFC", Name: "Apple Home Key (wallet NFC)", Method: "wallet"},
		{Field: "data.accessor.accessType", Code: "AccessTypeUnavailable", Name: "not reported", Method: "unknown"},
	})
	alarmTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "data.alarmType", Code: "Tamper", Name: "tamper", Action: "tamper", Outcome: "info"},
		{Field: "data.alarmType", Code: "ForcedEntry", Name: "forced entry", Action: "door_forced", Outcome: "info"},
		{Field: "data.alarmType", Code: "Activity", Name: "activity", Action: "other", Outcome: "info"},
	})
	connectivityStates = normalize.NewTable([]normalize.Mapping{
		{Field: "data.connectivityState", Code: "Online", Name: "online", Action: "online", Outcome: "info"},
		{Field: "data.connectivityState", Code: "Offline", Name: "offline", Action: "offline", Outcome: "info"},
	})
	batteryLevels = normalize.NewTable([]normalize.Mapping{
		{Field: "data.batteryLevel", Code: "<=20", Name: "20 % or less", Action: "battery_low", Outcome: "info"},
	})
)

// lowBattery is the battery level (percent) at or below which a level change is battery_low.
const lowBattery = 20

// Mappings implements normalize.Documented.
func (Adapter) Mappings() []normalize.Mapping {
	var all []normalize.Mapping
	for _, t := range []*normalize.Table{eventTypes, lockStates, accessTypes, alarmTypes, connectivityStates, batteryLevels} {
		all = append(all, t.Rows()...)
	}
	return all
}

// About implements normalize.Described.
func (Adapter) About() normalize.About {
	return normalize.About{
		Input: "A Schlage Home webhook event `{eventId, trigger, deviceId, time, eventType, data, version}`; " +
			"`data` carries `lockState` and `accessor{id, accessType}` for lock-state changes, `accessCodeId` for access-code events, " +
			"`connectivityState` for connectivity changes, `batteryLevel` for battery changes, `alarmType` for alarms.",
		Example: `{"eventId":"0b7e4c1a-6c55-4f7e-9d7c-2f1e0f0a9b11","trigger":"Device","deviceId":"a1b2c3d4e5f6","time":"2026-11-20T08:15:02.123Z",` +
			`"eventType":"DeviceLockStateChanged","data":{"lockState":"Unlocked","accessor":{"id":"7f6e5d4c","accessType":"AppleHomeNFC"}},"version":"1.0"}`,
		LockID:     "`deviceId`. Required.",
		EventID:    "UUIDv5 of `eventId`; without one the payload fingerprint.",
		Time:       "`time` (RFC 3339). Required.",
		UserRef:    "`data.accessor.id`, else `data.accessCodeId`.",
		VendorCode: "the eventType, plus `/<lockState>/<accessType>`, `/<alarmType>`, `/<connectivityState>` or `/<batteryLevel>` where the event has them.",
		Dimensions: "Webhook events carry neither the lock's model nor its firmware (attributes of the Schlage device resource, not of events): " +
			"`lock_model` and `lock_firmware` come from the lock registry. `accessType` AppleHome/AppleHomeNFC says the key is in Apple Wallet, not which phone: " +
			"phone dimensions come from the credential's activation record.",
		Notes: []string{
			"DeviceLockStateChanged maps through data.lockState (string names or 0/1/2); the accessor's accessType sets the method.",
			"A lockState, accessType, alarmType or connectivityState outside the table keeps the event (action other, or method unknown) with the value in vendor_code.",
			"DeviceBatteryLevelChanged is battery_low at 20 % or less, otherwise other.",
		},
	}
}

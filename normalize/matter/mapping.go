package matter

import "github.com/keyfleet/keyfleet/normalize"

// The enums of the Matter Door Lock cluster and what each becomes. These
// tables are the mapping: the adapter reads them and docs/vendors.md is
// rendered from them.
var (
	lockOperationTypes = []normalize.Mapping{
		{Field: "LockOperation.lockOperationType", Code: "0", Name: "Lock", Action: "lock", Outcome: "granted"},
		{Field: "LockOperation.lockOperationType", Code: "1", Name: "Unlock", Action: "unlock", Outcome: "granted"},
		{Field: "LockOperation.lockOperationType", Code: "2", Name: "NonAccessUserEvent", Action: "other", Outcome: "info"},
		{Field: "LockOperation.lockOperationType", Code: "3", Name: "ForcedUserEvent", Action: "emergency_unlock", Outcome: "granted"},
		{Field: "LockOperation.lockOperationType", Code: "4", Name: "Unlatch", Action: "unlatch", Outcome: "granted"},
	}
	operationSources = []normalize.Mapping{
		{Field: "operationSource", Code: "0", Name: "Unspecified", Method: "unknown"},
		{Field: "operationSource", Code: "1", Name: "Manual", Method: "mechanical"},
		{Field: "operationSource", Code: "2", Name: "ProprietaryRemote", Method: "app_remote"},
		{Field: "operationSource", Code: "3", Name: "Keypad", Method: "pin"},
		{Field: "operationSource", Code: "4", Name: "Auto", Method: "auto"},
		{Field: "operationSource", Code: "5", Name: "Button", Method: "button"},
		{Field: "operationSource", Code: "6", Name: "Schedule", Method: "schedule"},
		{Field: "operationSource", Code: "7", Name: "Remote", Method: "app_remote"},
		{Field: "operationSource", Code: "8", Name: "RFID", Method: "card"},
		{Field: "operationSource", Code: "9", Name: "Biometric", Method: "biometric"},
		{Field: "operationSource", Code: "10", Name: "Aliro", Method: "aliro"},
	}
	credentialTypes = []normalize.Mapping{
		{Field: "credentials.credentialType", Code: "0", Name: "ProgrammingPIN", Method: "pin"},
		{Field: "credentials.credentialType", Code: "1", Name: "PIN", Method: "pin"},
		{Field: "credentials.credentialType", Code: "2", Name: "RFID", Method: "card"},
		{Field: "credentials.credentialType", Code: "3", Name: "Fingerprint", Method: "biometric"},
		{Field: "credentials.credentialType", Code: "4", Name: "FingerVein", Method: "biometric"},
		{Field: "credentials.credentialType", Code: "5", Name: "Face", Method: "biometric"},
		{Field: "credentials.credentialType", Code: "6", Name: "AliroCredentialIssuerKey", Method: "aliro"},
		{Field: "credentials.credentialType", Code: "7", Name: "AliroEvictableEndpointKey", Method: "aliro"},
		{Field: "credentials.credentialType", Code: "8", Name: "AliroNonEvictableEndpointKey", Method: "aliro"},
	}
	operationErrors = []normalize.Mapping{
		{Field: "LockOperationError.operationError", Code: "0", Name: "Unspecified", Reason: "unknown"},
		{Field: "LockOperationError.operationError", Code: "1", Name: "InvalidCredential", Reason: "invalid_credential"},
		{Field: "LockOperationError.operationError", Code: "2", Name: "DisabledUserDenied", Reason: "disabled_user"},
		{Field: "LockOperationError.operationError", Code: "3", Name: "Restricted", Reason: "outside_schedule"},
		{Field: "LockOperationError.operationError", Code: "4", Name: "InsufficientBattery", Reason: "insufficient_battery"},
	}
	alarmCodes = []normalize.Mapping{
		{Field: "DoorLockAlarm.alarmCode", Code: "0", Name: "LockJammed", Action: "lock_jammed", Outcome: "error", Reason: "jammed"},
		{Field: "DoorLockAlarm.alarmCode", Code: "1", Name: "LockFactoryReset", Action: "tamper", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "3", Name: "LockRadioPowerCycled", Action: "other", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "4", Name: "WrongCodeEntryLimit", Action: "access_denied", Outcome: "denied", Reason: "invalid_credential"},
		{Field: "DoorLockAlarm.alarmCode", Code: "5", Name: "FrontEsceutcheonRemoved", Action: "tamper", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "6", Name: "DoorForcedOpen", Action: "door_forced", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "7", Name: "DoorAjar", Action: "door_ajar", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "8", Name: "ForcedUser", Action: "emergency_unlock", Outcome: "info"},
	}
	doorStates = []normalize.Mapping{
		{Field: "DoorStateChange.doorState", Code: "0", Name: "DoorOpen", Action: "door_opened", Outcome: "info"},
		{Field: "DoorStateChange.doorState", Code: "1", Name: "DoorClosed", Action: "door_closed", Outcome: "info"},
		{Field: "DoorStateChange.doorState", Code: "2", Name: "DoorJammed", Action: "lock_jammed", Outcome: "error", Reason: "jammed"},
		{Field: "DoorStateChange.doorState", Code: "3", Name: "DoorForcedOpen", Action: "door_forced", Outcome: "info"},
		{Field: "DoorStateChange.doorState", Code: "4", Name: "DoorUnspecifiedError", Action: "other", Outcome: "error", Reason: "unknown"},
		{Field: "DoorStateChange.doorState", Code: "5", Name: "DoorAjar", Action: "door_ajar", Outcome: "info"},
	}
	dataOperationTypes = []normalize.Mapping{
		{Field: "LockUserChange.dataOperationType", Code: "0", Name: "Add", Action: "credential_added", Outcome: "info"},
		{Field: "LockUserChange.dataOperationType", Code: "1", Name: "Clear", Action: "credential_removed", Outcome: "info"},
		{Field: "LockUserChange.dataOperationType", Code: "2", Name: "Modify", Action: "credential_modified", Outcome: "info"},
	}
)

// Mappings implements normalize.Documented.
func (Adapter) Mappings() []normalize.Mapping {
	var all []normalize.Mapping
	for _, t := range [][]normalize.Mapping{lockOperationTypes, operationSources, credentialTypes,
		operationErrors, alarmCodes, doorStates, dataOperationTypes} {
		all = append(all, t...)
	}
	return all
}

package matter

import "github.com/keyfleet/keyfleet/normalize"

// The enums of the Matter Door Lock cluster and what each becomes. These
// tables are the mapping: the adapter reads them and docs/vendors.md is
// rendered from them.
var (
	lockOperationTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "LockOperation.lockOperationType", Code: "0", Name: "Lock", Action: "lock", Outcome: "granted"},
		{Field: "LockOperation.lockOperationType", Code: "1", Name: "Unlock", Action: "unlock", Outcome: "granted"},
		{Field: "LockOperation.lockOperationType", Code: "2", Name: "NonAccessUserEvent", Action: "other", Outcome: "info"},
		{Field: "LockOperation.lockOperationType", Code: "3", Name: "ForcedUserEvent", Action: "emergency_unlock", Outcome: "granted"},
		{Field: "LockOperation.lockOperationType", Code: "4", Name: "Unlatch", Action: "unlatch", Outcome: "granted"},
	})
	// A refused operation (LockOperationError) keeps the operation type in
	// vendor_code; what it becomes depends on whether it was a lock.
	failedOperations = normalize.NewTable([]normalize.Mapping{
		{Field: "LockOperationError.lockOperationType", Code: "0", Name: "Lock", Action: "lock", Outcome: "error"},
		{Field: "LockOperationError.lockOperationType", Code: "1", Name: "Unlock", Action: "access_denied", Outcome: "denied"},
		{Field: "LockOperationError.lockOperationType", Code: "2", Name: "NonAccessUserEvent", Action: "access_denied", Outcome: "denied"},
		{Field: "LockOperationError.lockOperationType", Code: "3", Name: "ForcedUserEvent", Action: "access_denied", Outcome: "denied"},
		{Field: "LockOperationError.lockOperationType", Code: "4", Name: "Unlatch", Action: "access_denied", Outcome: "denied"},
	})
	operationSources = normalize.NewTable([]normalize.Mapping{
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
	})
	credentialTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "credentials.credentialType", Code: "0", Name: "ProgrammingPIN", Method: "pin"},
		{Field: "credentials.credentialType", Code: "1", Name: "PIN", Method: "pin"},
		{Field: "credentials.credentialType", Code: "2", Name: "RFID", Method: "card"},
		{Field: "credentials.credentialType", Code: "3", Name: "Fingerprint", Method: "biometric"},
		{Field: "credentials.credentialType", Code: "4", Name: "FingerVein", Method: "biometric"},
		{Field: "credentials.credentialType", Code: "5", Name: "Face", Method: "biometric"},
		{Field: "credentials.credentialType", Code: "6", Name: "AliroCredentialIssuerKey", Method: "aliro"},
		{Field: "credentials.credentialType", Code: "7", Name: "AliroEvictableEndpointKey", Method: "aliro"},
		{Field: "credentials.credentialType", Code: "8", Name: "AliroNonEvictableEndpointKey", Method: "aliro"},
	})
	operationErrors = normalize.NewTable([]normalize.Mapping{
		{Field: "LockOperationError.operationError", Code: "0", Name: "Unspecified", Reason: "unknown"},
		{Field: "LockOperationError.operationError", Code: "1", Name: "InvalidCredential", Reason: "invalid_credential"},
		{Field: "LockOperationError.operationError", Code: "2", Name: "DisabledUserDenied", Reason: "disabled_user"},
		{Field: "LockOperationError.operationError", Code: "3", Name: "Restricted", Reason: "outside_schedule"},
		{Field: "LockOperationError.operationError", Code: "4", Name: "InsufficientBattery", Reason: "insufficient_battery"},
	})
	alarmCodes = normalize.NewTable([]normalize.Mapping{
		{Field: "DoorLockAlarm.alarmCode", Code: "0", Name: "LockJammed", Action: "lock_jammed", Outcome: "error", Reason: "jammed"},
		{Field: "DoorLockAlarm.alarmCode", Code: "1", Name: "LockFactoryReset", Action: "tamper", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "3", Name: "LockRadioPowerCycled", Action: "other", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "4", Name: "WrongCodeEntryLimit", Action: "access_denied", Outcome: "denied", Method: "pin", Reason: "invalid_credential"},
		{Field: "DoorLockAlarm.alarmCode", Code: "5", Name: "FrontEsceutcheonRemoved", Action: "tamper", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "6", Name: "DoorForcedOpen", Action: "door_forced", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "7", Name: "DoorAjar", Action: "door_ajar", Outcome: "info"},
		{Field: "DoorLockAlarm.alarmCode", Code: "8", Name: "ForcedUser", Action: "emergency_unlock", Outcome: "info"},
	})
	doorStates = normalize.NewTable([]normalize.Mapping{
		{Field: "DoorStateChange.doorState", Code: "0", Name: "DoorOpen", Action: "door_opened", Outcome: "info"},
		{Field: "DoorStateChange.doorState", Code: "1", Name: "DoorClosed", Action: "door_closed", Outcome: "info"},
		{Field: "DoorStateChange.doorState", Code: "2", Name: "DoorJammed", Action: "lock_jammed", Outcome: "error", Reason: "jammed"},
		{Field: "DoorStateChange.doorState", Code: "3", Name: "DoorForcedOpen", Action: "door_forced", Outcome: "info"},
		{Field: "DoorStateChange.doorState", Code: "4", Name: "DoorUnspecifiedError", Action: "other", Outcome: "error", Reason: "unknown"},
		{Field: "DoorStateChange.doorState", Code: "5", Name: "DoorAjar", Action: "door_ajar", Outcome: "info"},
	})
	dataOperationTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "LockUserChange.dataOperationType", Code: "0", Name: "Add", Action: "credential_added", Outcome: "info"},
		{Field: "LockUserChange.dataOperationType", Code: "1", Name: "Clear", Action: "credential_removed", Outcome: "info"},
		{Field: "LockUserChange.dataOperationType", Code: "2", Name: "Modify", Action: "credential_modified", Outcome: "info"},
	})
	// The kind of data a LockUserChange touched sets the method when it is a
	// credential kind (schedules and users leave the operation source's).
	lockDataTypes = normalize.NewTable([]normalize.Mapping{
		{Field: "LockUserChange.lockDataType", Code: "0", Name: "Unspecified"},
		{Field: "LockUserChange.lockDataType", Code: "1", Name: "ProgrammingCode", Method: "pin"},
		{Field: "LockUserChange.lockDataType", Code: "2", Name: "UserIndex"},
		{Field: "LockUserChange.lockDataType", Code: "3", Name: "WeekDaySchedule"},
		{Field: "LockUserChange.lockDataType", Code: "4", Name: "YearDaySchedule"},
		{Field: "LockUserChange.lockDataType", Code: "5", Name: "HolidaySchedule"},
		{Field: "LockUserChange.lockDataType", Code: "6", Name: "PIN", Method: "pin"},
		{Field: "LockUserChange.lockDataType", Code: "7", Name: "RFID", Method: "card"},
		{Field: "LockUserChange.lockDataType", Code: "8", Name: "Fingerprint", Method: "biometric"},
		{Field: "LockUserChange.lockDataType", Code: "9", Name: "FingerVein", Method: "biometric"},
		{Field: "LockUserChange.lockDataType", Code: "10", Name: "Face", Method: "biometric"},
		{Field: "LockUserChange.lockDataType", Code: "11", Name: "AliroCredentialIssuerKey", Method: "aliro"},
		{Field: "LockUserChange.lockDataType", Code: "12", Name: "AliroEvictableEndpointKey", Method: "aliro"},
		{Field: "LockUserChange.lockDataType", Code: "13", Name: "AliroNonEvictableEndpointKey", Method: "aliro"},
	})
)

// Mappings implements normalize.Documented.
func (Adapter) Mappings() []normalize.Mapping {
	var all []normalize.Mapping
	for _, t := range []*normalize.Table{lockOperationTypes, failedOperations, operationErrors, operationSources,
		credentialTypes, alarmCodes, doorStates, dataOperationTypes, lockDataTypes} {
		all = append(all, t.Rows()...)
	}
	return all
}

// About implements normalize.Described.
func (Adapter) About() normalize.About {
	return normalize.About{
		Input: "A Matter Door Lock cluster (0x0101) event as a controller or bridge exports it: " +
			"`{nodeId, endpointId, clusterId, eventName, eventNumber, timestampMs, priority, data}`; " +
			"`data` per event: LockOperation `{lockOperationType, operationSource, userIndex, fabricIndex, sourceNode, credentials[{credentialType, credentialIndex}]}`, " +
			"LockOperationError (the same plus `operationError`), DoorLockAlarm `{alarmCode}`, DoorStateChange `{doorState}`, " +
			"LockUserChange `{lockDataType, dataOperationType, operationSource, userIndex, dataIndex}`. " +
			"`clusterId`, when present, must be 257. A controller may attach the node's Basic Information cluster (0x0028) " +
			"as `basicInformation{productName, softwareVersionString}`.",
		Example: `{"nodeId":"0x1A2B3C4D","endpointId":1,"clusterId":257,"eventName":"LockOperation","eventNumber":4711,` +
			`"timestampMs":1764230400123,"priority":"info","data":{"lockOperationType":1,"operationSource":10,"userIndex":3,` +
			`"fabricIndex":1,"credentials":[{"credentialType":7,"credentialIndex":2}]}}`,
		LockID:  "`nodeId`, with `/<endpointId>` appended when the endpoint is not 1 (a bridge exposing several locks). Required.",
		EventID: "UUIDv5 of `nodeId#eventNumber`; without `eventNumber` the payload fingerprint.",
		Time:    "`timestampMs` (epoch milliseconds). Required.",
		UserRef: "`data.userIndex` (the lock's user slot).",
		VendorCode: "`LockOperation/<type>/<source>`, `LockOperationError/<type>/<source>/err<error>`, " +
			"`DoorLockAlarm.alarmCode=<n>`, `DoorStateChange.doorState=<n>`, `LockUserChange/<op>/type<dataType>`, or the unknown event name.",
		Notes: []string{
			"eventName LockOperation maps through lockOperationType; LockOperationError through its lockOperationType (refused) and operationError; " +
				"DoorLockAlarm through alarmCode; DoorStateChange through doorState; LockUserChange through dataOperationType. " +
				"Any other eventName is action other, outcome info, with the name as vendor_code.",
			"A credential type is more precise than the operation source: an RFID read of an Aliro key is method aliro.",
			"An enum value outside the table (a newer spec revision) keeps the event as action other with the code in vendor_code.",
		},
		Dimensions: "`lock_model` from `basicInformation.productName`, `lock_firmware` from `basicInformation.softwareVersionString` " +
			"(the node's own report, current after an OTA update; each cut to 64 bytes); without them the lock registry's model and firmware. " +
			"Door Lock events carry nothing of the phone: phone dimensions come from the credential's activation record.",
	}
}

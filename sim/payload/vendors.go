package payload

import (
	"strconv"
	"time"
)

// Matter Door Lock cluster codes used here (Matter 1.3, cluster 0x0101).
var matterSources = map[string]int{
	MethodButton: 5, MethodManual: 1, MethodAuto: 4, MethodSchedule: 6, MethodAppRemote: 7,
	MethodPIN: 3, MethodCard: 8, MethodAliro: 10, MethodPhoneNFC: 10, MethodPhoneBLE: 10, MethodWallet: 10,
}

// credential types: PIN 1, RFID 2, AliroEvictableEndpointKey 7.
var matterCredentialTypes = map[string]int{
	MethodPIN: 1, MethodCard: 2, MethodAliro: 7, MethodPhoneNFC: 7, MethodPhoneBLE: 7, MethodWallet: 7,
}

var matterErrors = map[string]int{
	ReasonInvalid: 1, ReasonRevoked: 1, ReasonDisabled: 2, ReasonSchedule: 3, ReasonExpired: 3,
}

func (e *Encoder) matter(dst []byte, o *Occurrence) []byte {
	l := o.Lock
	n, ok := e.matterEvent[l.MatterNode]
	if !ok {
		// A node's event numbers only grow, across runs too (a Matter
		// node persists its counter): the first is taken from the clock
		// of the node's first event, 16 per millisecond, so a later run
		// never reuses an earlier run's numbers, which identify events
		// (event_id is derived from nodeId#eventNumber).
		n = uint64(max(o.TsMs, 0))*16 + uint64(e.r.IntN(16))
	}
	e.matterEvent[l.MatterNode] = n + 1
	name, priority := "LockOperation", "info"
	switch o.Op {
	case OpDenied:
		name = "LockOperationError"
	case OpDoorOpened, OpDoorClosed, OpDoorAjar:
		name, priority = "DoorStateChange", "critical"
	case OpDoorForced, OpJammed, OpTamper, OpKeypadLockout:
		name, priority = "DoorLockAlarm", "critical"
	case OpUserAdded, OpUserRemoved:
		name = "LockUserChange"
	}
	dst = append(dst, `{"nodeId":`...)
	dst = appendString(dst, l.MatterNode)
	dst = appendInt(dst, "endpointId", int64(max(1, l.MatterEndpoint)))
	dst = append(dst, `,"clusterId":257`...)
	dst = appendField(dst, "eventName", name)
	dst = append(dst, `,"eventNumber":`...)
	dst = strconv.AppendUint(dst, n, 10)
	dst = appendInt(dst, "timestampMs", o.TsMs)
	dst = appendField(dst, "priority", priority)
	dst = append(dst, `,"data":{`...)
	userIndex := func(dst []byte) []byte {
		if o.UserRef == "" {
			return append(dst, `,"userIndex":null`...)
		}
		return append(append(dst, `,"userIndex":`...), o.UserRef...)
	}
	switch o.Op {
	case OpUnlock, OpUnlatch, OpLock, OpDenied:
		opType := 1
		switch o.Op {
		case OpUnlatch:
			opType = 4
		case OpLock:
			opType = 0
		}
		src, ok := matterSources[o.Method]
		if !ok {
			src = 0
		}
		dst = append(dst, `"lockOperationType":`...)
		dst = strconv.AppendInt(dst, int64(opType), 10)
		dst = appendInt(dst, "operationSource", int64(src))
		if o.Op == OpDenied {
			code, ok := matterErrors[o.Reason]
			if !ok {
				code = 0
			}
			dst = appendInt(dst, "operationError", int64(code))
		}
		dst = userIndex(dst)
		if o.UserRef != "" {
			dst = append(dst, `,"fabricIndex":1`...)
		} else {
			dst = append(dst, `,"fabricIndex":null`...)
		}
		if o.Method == MethodAppRemote {
			// A remote command names the controller node that sent it.
			dst = appendInt(dst, "sourceNode", int64(0x10000+e.r.IntN(0xffff)))
		} else {
			dst = append(dst, `,"sourceNode":null`...)
		}
		if ct, ok := matterCredentialTypes[o.Method]; ok && o.UserRef != "" {
			dst = append(dst, `,"credentials":[{"credentialType":`...)
			dst = strconv.AppendInt(dst, int64(ct), 10)
			dst = append(dst, `,"credentialIndex":`...)
			dst = append(dst, o.UserRef...)
			dst = append(dst, `}]`...)
		} else {
			dst = append(dst, `,"credentials":null`...)
		}
	case OpDoorOpened, OpDoorClosed, OpDoorAjar:
		state := map[Op]int{OpDoorOpened: 0, OpDoorClosed: 1, OpDoorAjar: 5}[o.Op]
		dst = append(dst, `"doorState":`...)
		dst = strconv.AppendInt(dst, int64(state), 10)
	case OpDoorForced, OpJammed, OpTamper, OpKeypadLockout:
		// LockJammed 0, WrongCodeEntryLimit 4, FrontEsceutcheonRemoved 5, DoorForcedOpen 6
		code := map[Op]int{OpJammed: 0, OpKeypadLockout: 4, OpTamper: 5, OpDoorForced: 6}[o.Op]
		dst = append(dst, `"alarmCode":`...)
		dst = strconv.AppendInt(dst, int64(code), 10)
	case OpUserAdded, OpUserRemoved:
		opType := 0 // Add
		if o.Op == OpUserRemoved {
			opType = 1 // Clear
		}
		dst = append(dst, `"lockDataType":2,"dataOperationType":`...) // UserIndex
		dst = strconv.AppendInt(dst, int64(opType), 10)
		dst = append(dst, `,"operationSource":7`...) // Remote
		dst = userIndex(dst)
		dst = append(dst, `,"fabricIndex":1,"sourceNode":1`...)
		if o.UserRef != "" {
			dst = append(append(dst, `,"dataIndex":`...), o.UserRef...)
		}
	}
	return append(dst, "}}"...)
}

// Nuki Web API smartlock log codes.
// nukiTriggers: a phone's unlock over Bluetooth logs as trigger 0 (system)
// naming the app's authorization, a tap to unlock as trigger 0 with source
// 3; the fob (accessory) stands in for cards.
var nukiTriggers = map[string]int{
	MethodPhoneBLE: 0, MethodAliro: 0, MethodWallet: 0, MethodPhoneNFC: 0, MethodManual: 1, MethodButton: 2,
	MethodAppRemote: 4, MethodAuto: 6, MethodCard: 7, MethodPIN: 255, MethodSchedule: 3,
}

func (e *Encoder) nuki(dst []byte, o *Occurrence) []byte {
	l := o.Lock
	action, state := 1, 0
	trigger, ok := nukiTriggers[o.Method]
	if !ok {
		trigger = 0
	}
	switch o.Op {
	case OpUnlatch:
		action = 3
	case OpLock:
		action = 2
	case OpDenied:
		switch {
		case o.Reason == ReasonSchedule:
			state = 10 // rejected night mode
		case NamesUser("nuki", o.Reason):
			state = 9 // rejected
		case o.Method == MethodPIN:
			state = 224 // invalid code
		default:
			state = 226 // invalid NFC tag
		}
	case OpDoorOpened:
		action, trigger = 240, 0
	case OpDoorClosed:
		action, trigger = 241, 0
	case OpDoorAjar:
		action, trigger = 208, 0
	case OpJammed:
		action, trigger, state = 2, 6, 1 // auto lock, motor blocked
	}
	deviceType := 4 // Smart Lock 3.0/4.0
	if l.NukiID%3 == 0 {
		deviceType = 0 // Smart Lock 1.0/2.0
	}
	// Log ids are MongoDB ObjectIds: 4 bytes of seconds, 8 random bytes.
	id := make([]byte, 0, 24)
	id = appendHex(id, uint64(o.TsMs/1000), 8)
	id = appendHex(id, e.r.Uint64(), 16)
	// About a third arrive as DEVICE_LOGS webhooks, the rest are polled
	// from the Web API's log.
	wrapped := e.r.IntN(3) == 0
	if wrapped {
		dst = append(dst, `{"feature":"DEVICE_LOGS","smartlockLog":`...)
	}
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, string(id))
	dst = appendInt(dst, "smartlockId", l.NukiID)
	dst = appendInt(dst, "deviceType", int64(deviceType))
	authID, name := o.UserRef, o.UserName
	if o.Op >= OpDoorOpened || (o.Op == OpDenied && !NamesUser("nuki", o.Reason)) {
		authID, name = "", ""
	}
	if o.Method == MethodAuto || o.Method == MethodButton || o.Method == MethodManual {
		authID, name = "", ""
	}
	dst = appendField(dst, "authId", authID)
	dst = appendField(dst, "name", name)
	dst = appendInt(dst, "action", int64(action))
	dst = appendInt(dst, "trigger", int64(trigger))
	dst = appendInt(dst, "state", int64(state))
	// Some app unlocks are the app's auto unlock on approach.
	if o.Op == OpUnlock && o.Method == MethodPhoneBLE && e.r.IntN(5) == 0 {
		dst = append(dst, `,"autoUnlock":true`...)
	} else {
		dst = append(dst, `,"autoUnlock":false`...)
	}
	dst = appendField(dst, "date", isoMs(o.TsMs))
	source := 0
	switch o.Method {
	case MethodPIN:
		source = 1 // keypad code
	case MethodPhoneNFC:
		source = 3 // tap to unlock
	}
	dst = appendInt(dst, "source", int64(source))
	if wrapped {
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendDigits(dst []byte, v uint64, digits int) []byte {
	var buf [20]byte
	for i := digits - 1; i >= 0; i-- {
		buf[i] = byte('0' + v%10)
		v /= 10
	}
	return append(dst, buf[:digits]...)
}

func appendHex(dst []byte, v uint64, digits int) []byte {
	const hexd = "0123456789abcdef"
	for i := digits - 1; i >= 0; i-- {
		dst = append(dst, hexd[(v>>(uint(i)*4))&0xf])
	}
	return dst
}

// Schlage Home accessor types by method.
var schlageAccess = map[string]string{
	MethodPhoneBLE: "VirtualKey", MethodAppRemote: "VirtualKey", MethodWallet: "AppleHomeNFC",
	MethodPhoneNFC: "AppleHomeNFC", MethodAliro: "AppleHomeNFC", MethodManual: "Thumbturn",
	MethodButton: "UnlockButton", MethodAuto: "AutoRelock", MethodSchedule: "ScheduledLock",
}

func (e *Encoder) schlage(dst []byte, o *Occurrence) []byte {
	l := o.Lock
	eventType := "DeviceLockStateChanged"
	trigger := "Device"
	switch {
	case o.Op == OpDenied:
		eventType = "InvalidAccessCodeAttempted"
	case (o.Op == OpUnlock || o.Op == OpUnlatch) && o.Method == MethodPIN:
		eventType = "AccessCodeUsed"
	case o.Op == OpTamper || o.Op == OpDoorForced:
		eventType = "DeviceAlarmTriggered"
	case o.Op == OpBatteryLow:
		eventType = "DeviceBatteryLevelChanged"
	case o.Op == OpOffline || o.Op == OpOnline:
		eventType, trigger = "DeviceConnectivityStateChanged", "Cloud"
	case o.Op == OpKeypadLockout:
		eventType = "DeviceKeypadLockedOut"
	}
	if o.Method == MethodAppRemote {
		trigger = "Cloud"
	}
	dst = append(dst, `{"eventId":`...)
	dst = appendString(dst, e.uuid())
	dst = appendField(dst, "trigger", trigger)
	dst = appendField(dst, "deviceId", l.DeviceUUID)
	dst = appendField(dst, "time", isoMs(o.TsMs))
	dst = appendField(dst, "eventType", eventType)
	dst = append(dst, `,"data":{`...)
	switch eventType {
	case "DeviceLockStateChanged":
		state := "Unlocked"
		switch o.Op {
		case OpLock:
			state = "Locked"
		case OpJammed:
			state = "Jammed"
		}
		dst = append(dst, `"lockState":`...)
		dst = appendString(dst, state)
		if o.Op != OpJammed {
			access, ok := schlageAccess[o.Method]
			if !ok {
				access = "AccessTypeUnavailable"
			}
			if o.Op == OpLock && o.Method == MethodButton {
				access = "LockButton"
			}
			id := o.UserRef
			switch access {
			case "AutoRelock", "Thumbturn", "UnlockButton", "LockButton", "ScheduledLock":
				id = "" // nobody presented a key
			}
			dst = append(dst, `,"accessor":{"id":`...)
			dst = appendString(dst, id)
			dst = appendField(dst, "accessType", access)
			dst = append(dst, '}')
		}
	case "AccessCodeUsed":
		dst = append(dst, `"accessCodeId":`...)
		dst = appendString(dst, o.UserRef)
		dst = append(dst, `,"lockState":"Unlocked"`...)
	case "InvalidAccessCodeAttempted":
		dst = append(dst, `"lockState":"Locked"`...)
	case "DeviceAlarmTriggered":
		if o.Op == OpDoorForced {
			dst = append(dst, `"alarmType":"ForcedEntry"`...)
		} else {
			dst = append(dst, `"alarmType":"Tamper"`...)
		}
	case "DeviceBatteryLevelChanged":
		dst = append(dst, `"batteryLevel":`...)
		dst = strconv.AppendInt(dst, int64(o.Battery), 10)
	case "DeviceConnectivityStateChanged":
		state := "Online"
		if o.Op == OpOffline {
			state = "Offline"
		}
		dst = append(dst, `"connectivityState":`...)
		dst = appendString(dst, state)
	case "DeviceKeypadLockedOut":
		dst = append(dst, `"lockedOut":true`...)
	}
	return append(dst, `},"version":"1.0"}`...)
}

// Seam lock event methods by attempt method.
var seamMethods = map[string]string{
	MethodPIN: "keycode", MethodManual: "manual", MethodButton: "manual", MethodAuto: "automatic",
	MethodAppRemote: "remote", MethodPhoneBLE: "mobile_key", MethodSchedule: "automatic",
}

// Seam device events.
var seamDeviceEvents = map[Op]string{
	OpOffline: "device.disconnected", OpOnline: "device.connected", OpBatteryLow: "device.low_battery",
	OpTamper: "device.tampered", OpDoorOpened: "device.door_opened", OpDoorClosed: "device.door_closed",
}

func (e *Encoder) seam(dst []byte, o *Occurrence) []byte {
	l := o.Lock
	ws, ok := e.workspace[l.Site]
	if !ok {
		ws = e.uuid()
		e.workspace[l.Site] = ws
		e.account[l.Site] = e.uuid()
	}
	eventType := "lock.unlocked"
	switch o.Op {
	case OpLock:
		eventType = "lock.locked"
	case OpDenied:
		eventType = "lock.access_denied"
	}
	method, ok := seamMethods[o.Method]
	if !ok {
		method = "unknown"
	}
	if t, ok := seamDeviceEvents[o.Op]; ok {
		eventType, method = t, ""
	}
	received := o.ReceivedMs
	if received < o.TsMs {
		received = o.TsMs
	}
	dst = append(dst, `{"event_id":`...)
	dst = appendString(dst, e.uuid())
	dst = appendField(dst, "event_type", eventType)
	dst = appendField(dst, "device_id", l.DeviceUUID)
	dst = appendField(dst, "workspace_id", ws)
	dst = appendField(dst, "connected_account_id", e.account[l.Site])
	dst = appendField(dst, "created_at", isoMs(received))
	dst = appendField(dst, "occurred_at", isoMs(o.TsMs))
	if method != "" {
		dst = appendField(dst, "method", method)
	}
	if o.UserRef != "" {
		if o.Method == MethodPIN {
			dst = appendField(dst, "access_code_id", o.UserRef)
		} else {
			dst = appendField(dst, "user_identity_id", o.UserRef)
		}
	}
	return append(dst, '}')
}

// Legacy panel result codes by denial reason.
var legacyDenied = map[string]string{
	ReasonInvalid: "DENIED_INVALID", ReasonRevoked: "DENIED_REVOKED", ReasonDisabled: "DENIED_REVOKED",
	ReasonExpired: "DENIED_EXPIRED", ReasonSchedule: "DENIED_SCHEDULE",
}

// legacy writes a panel CSV line: time,panel,reader,kind,number,result.
func (e *Encoder) legacy(dst []byte, o *Occurrence) []byte {
	l := o.Lock
	dst = time.Unix(o.TsMs/1000, 0).UTC().AppendFormat(dst, "2006-01-02T15:04:05Z")
	dst = append(dst, ',')
	dst = append(dst, l.Panel...)
	dst = append(dst, ',')
	dst = append(dst, l.Reader...)
	dst = append(dst, ',')
	result := ""
	switch o.Op {
	case OpUnlock, OpUnlatch:
		result = "GRANTED"
	case OpDenied:
		result = legacyDenied[o.Reason]
		if result == "" {
			result = "DENIED_INVALID"
		}
	case OpDoorForced:
		result = "FORCED"
	case OpDoorAjar:
		result = "HELD_OPEN"
	case OpTamper:
		result = "TAMPER"
	}
	switch o.Op {
	case OpUnlock, OpUnlatch, OpDenied:
		kind := "CARD"
		if o.Method == MethodPIN {
			kind = "PIN"
		}
		dst = append(dst, kind...)
		dst = append(dst, ',')
		if o.UserRef == "" {
			// A card or code the panel does not know still has a number.
			if kind == "PIN" {
				dst = appendDigits(dst, uint64(e.r.IntN(1_000_000)), 6)
			} else {
				dst = appendDigits(dst, uint64(e.r.IntN(100_000_000)), 8)
			}
		}
		dst = append(dst, o.UserRef...)
	default:
		dst = append(dst, ',')
	}
	dst = append(dst, ',')
	return append(dst, result...)
}

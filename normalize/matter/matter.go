// Package matter normalizes Matter Door Lock cluster (0x0101) events as a
// controller or bridge exports them:
//
//	{"nodeId":"0x1A2B3C4D","endpointId":1,"clusterId":257,"eventName":"LockOperation",
//	 "eventNumber":4711,"timestampMs":1764230400123,"priority":"info","data":{...}}
//
// The lock id is the node id, with "/<endpoint>" appended when the lock is
// not on endpoint 1 (a bridge exposing several locks). The vendor event id is
// nodeId+eventNumber; the user reference is the Matter user index.
package matter

import (
	"encoding/json"
	"strconv"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
)

// Vendor is this adapter's vendor name.
const Vendor = "matter"

// DoorLockCluster is the Matter cluster id of Door Lock.
const DoorLockCluster = 0x0101

// Adapter maps Matter Door Lock events.
type Adapter struct{}

var (
	_ normalize.Adapter    = Adapter{}
	_ normalize.Documented = Adapter{}
)

type credential struct {
	CredentialType  *int `json:"credentialType"`
	CredentialIndex *int `json:"credentialIndex"`
}

type data struct {
	LockOperationType *int         `json:"lockOperationType"`
	OperationSource   *int         `json:"operationSource"`
	UserIndex         *int         `json:"userIndex"`
	FabricIndex       *int         `json:"fabricIndex"`
	SourceNode        *uint64      `json:"sourceNode"`
	Credentials       []credential `json:"credentials"`
	OperationError    *int         `json:"operationError"`
	AlarmCode         *int         `json:"alarmCode"`
	DoorState         *int         `json:"doorState"`
	LockDataType      *int         `json:"lockDataType"`
	DataOperationType *int         `json:"dataOperationType"`
	DataIndex         *int         `json:"dataIndex"`
}

type payload struct {
	NodeID      string  `json:"nodeId"`
	EndpointID  *int    `json:"endpointId"`
	ClusterID   *int    `json:"clusterId"`
	EventName   string  `json:"eventName"`
	EventNumber *uint64 `json:"eventNumber"`
	TimestampMs int64   `json:"timestampMs"`
	Priority    string  `json:"priority"`
	Data        data    `json:"data"`
}

// Normalize implements normalize.Adapter.
func (Adapter) Normalize(dst []event.Access, raw []byte) ([]event.Access, error) {
	var p payload
	if err := json.Unmarshal(raw, &p); err != nil {
		return dst, normalize.Errorf(normalize.ReasonMalformed, "matter event: %v", jsonProblem(err))
	}
	if p.NodeID == "" {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "matter event has no nodeId")
	}
	if p.ClusterID != nil && *p.ClusterID != DoorLockCluster {
		return dst, normalize.Errorf(normalize.ReasonBadField, "clusterId %d is not Door Lock (257)", *p.ClusterID)
	}
	if p.TimestampMs <= 0 {
		return dst, normalize.Errorf(normalize.ReasonBadTime, "matter event has no timestampMs")
	}
	if p.EventName == "" {
		return dst, normalize.Errorf(normalize.ReasonMissingField, "matter event has no eventName")
	}
	e := event.Access{
		TsMs:     p.TimestampMs,
		LockID:   lockID(p),
		Attested: "unknown",
	}
	if p.EventNumber != nil {
		e.EventID = event.ID(Vendor, p.NodeID+"#"+strconv.FormatUint(*p.EventNumber, 10))
	}
	d := &p.Data
	if d.UserIndex != nil {
		e.UserRef = strconv.Itoa(*d.UserIndex)
	}
	var err error
	switch p.EventName {
	case "LockOperation":
		err = lockOperation(&e, d, false)
	case "LockOperationError":
		err = lockOperation(&e, d, true)
	case "DoorLockAlarm":
		err = apply(&e, "DoorLockAlarm.alarmCode", d.AlarmCode, alarmCodes)
	case "DoorStateChange":
		err = apply(&e, "DoorStateChange.doorState", d.DoorState, doorStates)
	case "LockUserChange":
		err = lockUserChange(&e, d)
	default:
		e.Action, e.Outcome, e.VendorCode = "other", "info", p.EventName
	}
	if err != nil {
		return dst, err
	}
	if e.VendorCode == "" {
		e.VendorCode = p.EventName
	}
	return append(dst, e), nil
}

func lockID(p payload) string {
	if p.EndpointID == nil || *p.EndpointID <= 1 {
		return p.NodeID
	}
	return p.NodeID + "/" + strconv.Itoa(*p.EndpointID)
}

func lockOperation(e *event.Access, d *data, failed bool) error {
	name := "LockOperation"
	if failed {
		name = "LockOperationError"
	}
	if d.LockOperationType == nil {
		return normalize.Errorf(normalize.ReasonMissingField, "%s has no lockOperationType", name)
	}
	if err := apply(e, "LockOperation.lockOperationType", d.LockOperationType, lockOperationTypes); err != nil {
		return err
	}
	e.VendorCode = name + "/" + strconv.Itoa(*d.LockOperationType)
	if d.OperationSource != nil {
		e.VendorCode += "/" + strconv.Itoa(*d.OperationSource)
		if m, ok := find(operationSources, *d.OperationSource); ok {
			e.Method = m.Method
		}
	}
	// A credential type is more precise than the operation source (an RFID
	// read may be an Aliro phone tap).
	for _, c := range d.Credentials {
		if c.CredentialType == nil {
			continue
		}
		if m, ok := find(credentialTypes, *c.CredentialType); ok && m.Method != "" {
			e.Method = m.Method
		}
	}
	if !failed {
		return nil
	}
	// The operation was attempted and refused.
	if *d.LockOperationType == 0 {
		e.Action, e.Outcome = "lock", "error"
	} else {
		e.Action, e.Outcome = "access_denied", "denied"
	}
	e.Reason = "unknown"
	if d.OperationError != nil {
		e.VendorCode += "/err" + strconv.Itoa(*d.OperationError)
		if m, ok := find(operationErrors, *d.OperationError); ok {
			e.Reason = m.Reason
		}
	}
	return nil
}

func lockUserChange(e *event.Access, d *data) error {
	if err := apply(e, "LockUserChange.dataOperationType", d.DataOperationType, dataOperationTypes); err != nil {
		return err
	}
	if d.OperationSource != nil {
		if m, ok := find(operationSources, *d.OperationSource); ok {
			e.Method = m.Method
		}
	}
	e.VendorCode = "LockUserChange/" + strconv.Itoa(*d.DataOperationType)
	if d.LockDataType != nil {
		e.VendorCode += "/type" + strconv.Itoa(*d.LockDataType)
	}
	return nil
}

// apply maps a required enum field through its table; an unknown value is
// kept as action=other (a newer spec revision), a missing one is an error.
func apply(e *event.Access, field string, v *int, table []normalize.Mapping) error {
	if v == nil {
		return normalize.Errorf(normalize.ReasonMissingField, "%s is missing", field)
	}
	m, ok := find(table, *v)
	if !ok {
		e.Action, e.Outcome = "other", "info"
		e.VendorCode = field + "=" + strconv.Itoa(*v)
		return nil
	}
	e.Action, e.Outcome, e.Reason = m.Action, m.Outcome, m.Reason
	if m.Method != "" {
		e.Method = m.Method
	}
	e.VendorCode = field + "=" + m.Code
	return nil
}

func find(table []normalize.Mapping, code int) (normalize.Mapping, bool) {
	c := strconv.Itoa(code)
	for _, m := range table {
		if m.Code == c {
			return m, true
		}
	}
	return normalize.Mapping{}, false
}

// jsonProblem describes a decoding error without quoting payload values.
func jsonProblem(err error) string {
	switch e := err.(type) {
	case *json.SyntaxError:
		return "invalid JSON at byte " + strconv.FormatInt(e.Offset, 10)
	case *json.UnmarshalTypeError:
		return "field " + e.Field + " has the wrong type (" + e.Value + ")"
	default:
		return "invalid JSON"
	}
}

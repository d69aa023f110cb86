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
	"unicode/utf8"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/jsonscan"
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
	_ normalize.Described  = Adapter{}
)

// Event names.
const (
	evLockOperation      = "LockOperation"
	evLockOperationError = "LockOperationError"
	evDoorLockAlarm      = "DoorLockAlarm"
	evDoorStateChange    = "DoorStateChange"
	evLockUserChange     = "LockUserChange"
)

var eventNames = []string{evLockOperation, evLockOperationError, evDoorLockAlarm, evDoorStateChange, evLockUserChange}

// record is the part of a payload the adapter reads. Its JSON tags let the
// differential test decode it with encoding/json.
type record struct {
	NodeID      string       `json:"nodeId"`
	EndpointID  jsonscan.Int `json:"endpointId"`
	ClusterID   jsonscan.Int `json:"clusterId"`
	EventName   string       `json:"eventName"`
	EventNumber jsonscan.Int `json:"eventNumber"`
	TimestampMs jsonscan.Int `json:"timestampMs"`
	Data        data         `json:"data"`
	// BasicInformation is the node's Basic Information cluster (0x0028)
	// as a controller attaches it: the lock's model and firmware.
	BasicInformation basicInformation `json:"basicInformation"`
}

// basicInformation holds the Basic Information attributes the adapter reads.
type basicInformation struct {
	ProductName           string `json:"productName"`           // 0x0003
	SoftwareVersionString string `json:"softwareVersionString"` // 0x000A
}

// maxDimension bounds a lock model or firmware string taken from a payload.
const maxDimension = 64

type data struct {
	LockOperationType jsonscan.Int `json:"lockOperationType"`
	OperationSource   jsonscan.Int `json:"operationSource"`
	UserIndex         jsonscan.Int `json:"userIndex"`
	Credentials       credentials  `json:"credentials"`
	OperationError    jsonscan.Int `json:"operationError"`
	AlarmCode         jsonscan.Int `json:"alarmCode"`
	DoorState         jsonscan.Int `json:"doorState"`
	LockDataType      jsonscan.Int `json:"lockDataType"`
	DataOperationType jsonscan.Int `json:"dataOperationType"`
}

type credential struct {
	CredentialType jsonscan.Int `json:"credentialType"`
}

// credentials keeps, of a credentials list, what the mapping uses: the type
// of the last credential whose type is in the table (a lock reports the
// credential it matched last).
type credentials struct {
	Type jsonscan.Int
}

func (c *credentials) add(cr credential) {
	if cr.CredentialType.Set {
		if _, ok := credentialTypes.Int(cr.CredentialType.V); ok {
			c.Type = cr.CredentialType
		}
	}
}

// UnmarshalJSON is the encoding/json reading (for the differential test).
func (c *credentials) UnmarshalJSON(b []byte) error {
	var list []credential
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	if list != nil {
		*c = credentials{}
	}
	for _, cr := range list {
		c.add(cr)
	}
	return nil
}

// Normalize implements normalize.Adapter.
func (Adapter) Normalize(dst []event.Access, raw []byte) ([]event.Access, error) {
	var rec record
	if err := decode(raw, &rec); err != nil {
		return dst, normalize.DecodeError("matter event", err)
	}
	e, err := mapRecord(&rec)
	if err != nil {
		return dst, err
	}
	return append(dst, e), nil
}

func decode(raw []byte, rec *record) error {
	var r jsonscan.Reader
	r.Reset(raw)
	if _, err := r.Object(func(key []byte) error {
		switch string(key) {
		case "nodeId":
			return r.ReadString(&rec.NodeID)
		case "endpointId":
			return r.ReadInt(&rec.EndpointID)
		case "clusterId":
			return r.ReadInt(&rec.ClusterID)
		case "eventName":
			return r.ReadString(&rec.EventName, eventNames...)
		case "eventNumber":
			return r.ReadInt(&rec.EventNumber)
		case "timestampMs":
			return r.ReadInt(&rec.TimestampMs)
		case "data":
			_, err := r.Object(func(key []byte) error { return decodeData(&r, key, &rec.Data) })
			return err
		case "basicInformation":
			_, err := r.Object(func(key []byte) error {
				switch string(key) {
				case "productName":
					return r.ReadString(&rec.BasicInformation.ProductName)
				case "softwareVersionString":
					return r.ReadString(&rec.BasicInformation.SoftwareVersionString)
				}
				return r.Skip()
			})
			return err
		default:
			return r.Skip()
		}
	}); err != nil {
		return err
	}
	return r.Finish()
}

func decodeData(r *jsonscan.Reader, key []byte, d *data) error {
	switch string(key) {
	case "lockOperationType":
		return r.ReadInt(&d.LockOperationType)
	case "operationSource":
		return r.ReadInt(&d.OperationSource)
	case "userIndex":
		return r.ReadInt(&d.UserIndex)
	case "operationError":
		return r.ReadInt(&d.OperationError)
	case "alarmCode":
		return r.ReadInt(&d.AlarmCode)
	case "doorState":
		return r.ReadInt(&d.DoorState)
	case "lockDataType":
		return r.ReadInt(&d.LockDataType)
	case "dataOperationType":
		return r.ReadInt(&d.DataOperationType)
	case "credentials":
		var list credentials
		ok, err := r.Array(func() error {
			var c credential
			_, err := r.Object(func(key []byte) error {
				if string(key) == "credentialType" {
					return r.ReadInt(&c.CredentialType)
				}
				return r.Skip()
			})
			list.add(c)
			return err
		})
		if ok {
			d.Credentials = list
		}
		return err
	default:
		return r.Skip()
	}
}

// mapRecord maps a decoded payload to its event.
func mapRecord(p *record) (event.Access, error) {
	if p.NodeID == "" {
		return event.Access{}, normalize.Errorf(normalize.ReasonMissingField, "matter event has no nodeId")
	}
	if p.ClusterID.Set && p.ClusterID.V != DoorLockCluster {
		return event.Access{}, normalize.Errorf(normalize.ReasonBadField, "clusterId is not Door Lock (257)")
	}
	if !p.TimestampMs.Set || p.TimestampMs.V <= 0 {
		return event.Access{}, normalize.Errorf(normalize.ReasonBadTime, "matter event has no timestampMs")
	}
	if p.EventName == "" {
		return event.Access{}, normalize.Errorf(normalize.ReasonMissingField, "matter event has no eventName")
	}
	if p.EndpointID.Set && p.EndpointID.V < 0 {
		return event.Access{}, normalize.Errorf(normalize.ReasonBadField, "endpointId is negative")
	}
	if p.EventNumber.Set && p.EventNumber.V < 0 {
		return event.Access{}, normalize.Errorf(normalize.ReasonBadField, "eventNumber is negative")
	}
	var buf [64]byte
	e := event.Access{
		TsMs:     p.TimestampMs.V,
		LockID:   lockID(p),
		Attested: "unknown",
		// The node's own report of its model and firmware (current after
		// an OTA update, unlike a registry entry).
		LockModel:    clip(p.BasicInformation.ProductName),
		LockFirmware: clip(p.BasicInformation.SoftwareVersionString),
	}
	if p.EventNumber.Set {
		e.EventID = event.IDBytes(Vendor, strconv.AppendInt(append(append(buf[:0], p.NodeID...), '#'), p.EventNumber.V, 10))
	}
	d := &p.Data
	if d.UserIndex.Set {
		e.UserRef = strconv.FormatInt(d.UserIndex.V, 10)
	}
	var code []byte
	var err error
	switch p.EventName {
	case evLockOperation:
		code, err = lockOperation(buf[:0], &e, d, false)
	case evLockOperationError:
		code, err = lockOperation(buf[:0], &e, d, true)
	case evDoorLockAlarm:
		code, err = apply(buf[:0], &e, "DoorLockAlarm.alarmCode", d.AlarmCode, alarmCodes)
	case evDoorStateChange:
		code, err = apply(buf[:0], &e, "DoorStateChange.doorState", d.DoorState, doorStates)
	case evLockUserChange:
		code, err = lockUserChange(buf[:0], &e, d)
	default:
		e.Action, e.Outcome, e.VendorCode = "other", "info", p.EventName
		return e, nil
	}
	if err != nil {
		return event.Access{}, err
	}
	e.VendorCode = string(code)
	return e, nil
}

func lockID(p *record) string {
	if !p.EndpointID.Set || p.EndpointID.V <= 1 {
		return p.NodeID
	}
	return p.NodeID + "/" + strconv.FormatInt(p.EndpointID.V, 10)
}

func lockOperation(code []byte, e *event.Access, d *data, failed bool) ([]byte, error) {
	name := evLockOperation
	table := lockOperationTypes
	if failed {
		name, table = evLockOperationError, failedOperations
	}
	if !d.LockOperationType.Set {
		return nil, normalize.Errorf(normalize.ReasonMissingField, "%s has no lockOperationType", name)
	}
	if m, ok := table.Int(d.LockOperationType.V); ok {
		m.Apply(e)
	} else if failed {
		e.Action, e.Outcome = "access_denied", "denied"
	} else {
		e.Action, e.Outcome = "other", "info"
	}
	code = append(code, name...)
	code = normalize.AppendInt(append(code, '/'), d.LockOperationType.V)
	if d.OperationSource.Set {
		code = normalize.AppendInt(append(code, '/'), d.OperationSource.V)
		if m, ok := operationSources.Int(d.OperationSource.V); ok {
			e.Method = m.Method
		}
	}
	// A credential type is more precise than the operation source (an RFID
	// read may be an Aliro phone tap).
	if c := d.Credentials.Type; c.Set {
		if m, ok := credentialTypes.Int(c.V); ok {
			e.Method = m.Method
		}
	}
	if !failed {
		return code, nil
	}
	e.Reason = "unknown"
	if d.OperationError.Set {
		code = normalize.AppendInt(append(code, "/err"...), d.OperationError.V)
		if m, ok := operationErrors.Int(d.OperationError.V); ok {
			e.Reason = m.Reason
		}
	}
	return code, nil
}

func lockUserChange(code []byte, e *event.Access, d *data) ([]byte, error) {
	code, err := apply(code, e, "LockUserChange.dataOperationType", d.DataOperationType, dataOperationTypes)
	if err != nil {
		return nil, err
	}
	if d.OperationSource.Set {
		if m, ok := operationSources.Int(d.OperationSource.V); ok {
			e.Method = m.Method
		}
	}
	code = normalize.AppendInt(append(code[:0], "LockUserChange/"...), d.DataOperationType.V)
	if d.LockDataType.Set {
		code = normalize.AppendInt(append(code, "/type"...), d.LockDataType.V)
		if m, ok := lockDataTypes.Int(d.LockDataType.V); ok && m.Method != "" {
			e.Method = m.Method
		}
	}
	return code, nil
}

// apply maps a required enum field through its table; an unknown value is
// kept as action=other (a newer spec revision), a missing one is an error.
func apply(code []byte, e *event.Access, field string, v jsonscan.Int, table *normalize.Table) ([]byte, error) {
	if !v.Set {
		return nil, normalize.Errorf(normalize.ReasonMissingField, "%s is missing", field)
	}
	if m, ok := table.Int(v.V); ok {
		m.Apply(e)
	} else {
		e.Action, e.Outcome = "other", "info"
	}
	code = append(code, field...)
	return normalize.AppendInt(append(code, '='), v.V), nil
}

// clip bounds a payload string kept as a dimension (at a UTF-8 boundary).
func clip(s string) string {
	if len(s) <= maxDimension {
		return s
	}
	s = s[:maxDimension]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}

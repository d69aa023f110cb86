package matter

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/normalize"
	"github.com/keyfleet/keyfleet/normalize/internal/adaptertest"
)

func payload(name, data string) string {
	return `{"nodeId":"0x1A2B3C4D","endpointId":1,"clusterId":257,"eventName":"` + name +
		`","eventNumber":4711,"timestampMs":1764230400123,"priority":"info","data":` + data + `}`
}

var cases = []adaptertest.Case{
	{Name: "unlock by aliro phone", Payload: payload("LockOperation", `{"lockOperationType":1,"operationSource":10,"userIndex":3,"fabricIndex":1,"sourceNode":12345,"credentials":[{"credentialType":7,"credentialIndex":2}]}`)},
	{Name: "unlock rfid read of an aliro key", Payload: payload("LockOperation", `{"lockOperationType":1,"operationSource":8,"userIndex":4,"credentials":[{"credentialType":6,"credentialIndex":1}]}`)},
	{Name: "lock by keypad pin", Payload: payload("LockOperation", `{"lockOperationType":0,"operationSource":3,"userIndex":12,"credentials":[{"credentialType":1,"credentialIndex":5}]}`)},
	{Name: "auto relock", Payload: payload("LockOperation", `{"lockOperationType":0,"operationSource":4,"userIndex":null,"credentials":null}`)},
	{Name: "unlatch remote", Payload: payload("LockOperation", `{"lockOperationType":4,"operationSource":7,"userIndex":1,"fabricIndex":2,"sourceNode":99}`)},
	{Name: "forced user event", Payload: payload("LockOperation", `{"lockOperationType":3,"operationSource":3,"userIndex":9}`)},
	{Name: "non-access user event", Payload: payload("LockOperation", `{"lockOperationType":2,"operationSource":5}`)},
	{Name: "unknown operation type", Payload: payload("LockOperation", `{"lockOperationType":42,"operationSource":77}`)},
	{Name: "denied invalid credential", Payload: payload("LockOperationError", `{"lockOperationType":1,"operationSource":8,"operationError":1,"credentials":[{"credentialType":2,"credentialIndex":9}]}`)},
	{Name: "denied disabled user", Payload: payload("LockOperationError", `{"lockOperationType":1,"operationSource":3,"operationError":2,"userIndex":7}`)},
	{Name: "denied restricted", Payload: payload("LockOperationError", `{"lockOperationType":1,"operationSource":10,"operationError":3,"userIndex":7}`)},
	{Name: "lock failed low battery", Payload: payload("LockOperationError", `{"lockOperationType":0,"operationSource":7,"operationError":4}`)},
	{Name: "denied unknown error", Payload: payload("LockOperationError", `{"lockOperationType":1,"operationError":99}`)},
	{Name: "denied without error code", Payload: payload("LockOperationError", `{"lockOperationType":4}`)},
	{Name: "alarm jammed", Payload: payload("DoorLockAlarm", `{"alarmCode":0}`)},
	{Name: "alarm wrong code limit", Payload: payload("DoorLockAlarm", `{"alarmCode":4}`)},
	{Name: "alarm door forced", Payload: payload("DoorLockAlarm", `{"alarmCode":6}`)},
	{Name: "alarm unknown code", Payload: payload("DoorLockAlarm", `{"alarmCode":2}`)},
	{Name: "door opened", Payload: payload("DoorStateChange", `{"doorState":0}`)},
	{Name: "door ajar", Payload: payload("DoorStateChange", `{"doorState":5}`)},
	{Name: "user added pin", Payload: payload("LockUserChange", `{"lockDataType":6,"dataOperationType":0,"operationSource":7,"userIndex":5,"dataIndex":3}`)},
	{Name: "user cleared", Payload: payload("LockUserChange", `{"lockDataType":2,"dataOperationType":1,"operationSource":2,"userIndex":5,"dataIndex":5}`)},
	{Name: "schedule modified", Payload: payload("LockUserChange", `{"lockDataType":3,"dataOperationType":2,"operationSource":7,"userIndex":5}`)},
	{Name: "unknown event name", Payload: payload("LockUserCredentialLimitReached", `{}`)},
	{Name: "bridge endpoint 3", Payload: `{"nodeId":"0xBEEF","endpointId":3,"clusterId":257,"eventName":"LockOperation","eventNumber":1,"timestampMs":1764230400123,"data":{"lockOperationType":1,"operationSource":5}}`},
	{Name: "no event number", Payload: `{"nodeId":"0xBEEF","eventName":"DoorStateChange","timestampMs":1764230400123,"data":{"doorState":1}}`},
	{Name: "escaped strings and unknown members", Payload: `{"nodeId":"0x\u0041B","extra":{"nested":[1,2,{"x":"y"}]},"eventName":"Door\u0053tateChange","timestampMs":1764230400123,"data":{"doorState":3,"future":true}}`},
	{Name: "error not json", Payload: `{"nodeId":"0x1A2B"`},
	{Name: "error trailing garbage", Payload: payload("DoorStateChange", `{"doorState":1}`) + "x"},
	{Name: "error no node id", Payload: `{"eventName":"DoorStateChange","timestampMs":1764230400123,"data":{"doorState":1}}`},
	{Name: "error node id number", Payload: `{"nodeId":123,"eventName":"DoorStateChange","timestampMs":1764230400123,"data":{"doorState":1}}`},
	{Name: "error other cluster", Payload: `{"nodeId":"0x1","clusterId":6,"eventName":"DoorStateChange","timestampMs":1764230400123,"data":{"doorState":1}}`},
	{Name: "error no time", Payload: `{"nodeId":"0x1","eventName":"DoorStateChange","data":{"doorState":1}}`},
	{Name: "error time string", Payload: `{"nodeId":"0x1","eventName":"DoorStateChange","timestampMs":"2026-01-01","data":{"doorState":1}}`},
	{Name: "error time fraction", Payload: `{"nodeId":"0x1","eventName":"DoorStateChange","timestampMs":1764230400123.5,"data":{"doorState":1}}`},
	{Name: "error no event name", Payload: `{"nodeId":"0x1","timestampMs":1764230400123,"data":{"doorState":1}}`},
	{Name: "error missing enum", Payload: payload("DoorLockAlarm", `{}`)},
	{Name: "error missing operation type", Payload: payload("LockOperation", `{"operationSource":1}`)},
	{Name: "error data not object", Payload: payload("LockOperation", `[1,2]`)},
	{Name: "error user index string", Payload: payload("LockOperation", `{"lockOperationType":1,"userIndex":"alice@example.com"}`), Secrets: []string{"alice"}},
	{Name: "error negative event number", Payload: `{"nodeId":"0x1","eventName":"DoorStateChange","eventNumber":-1,"timestampMs":1764230400123,"data":{"doorState":1}}`},
	{Name: "error top level array", Payload: `[]`},
	{Name: "error empty", Payload: ``},
}

func TestGolden(t *testing.T) { adaptertest.Golden(t, Vendor, Adapter{}, cases) }

func TestTable(t *testing.T) { adaptertest.CheckTable(t, Adapter{}) }

func TestEveryMappingRow(t *testing.T) {
	adaptertest.Rows(t, Vendor, Adapter{}, func(m normalize.Mapping) (string, bool) {
		c := m.Code
		switch m.Field {
		case "LockOperation.lockOperationType":
			return payload("LockOperation", `{"lockOperationType":`+c+`}`), true
		case "LockOperationError.lockOperationType":
			return payload("LockOperationError", `{"lockOperationType":`+c+`}`), true
		case "LockOperationError.operationError":
			return payload("LockOperationError", `{"lockOperationType":1,"operationError":`+c+`}`), true
		case "operationSource":
			return payload("LockOperation", `{"lockOperationType":1,"operationSource":`+c+`}`), true
		case "credentials.credentialType":
			return payload("LockOperation", `{"lockOperationType":1,"operationSource":0,"credentials":[{"credentialType":`+c+`}]}`), true
		case "DoorLockAlarm.alarmCode":
			return payload("DoorLockAlarm", `{"alarmCode":`+c+`}`), true
		case "DoorStateChange.doorState":
			return payload("DoorStateChange", `{"doorState":`+c+`}`), true
		case "LockUserChange.dataOperationType":
			return payload("LockUserChange", `{"dataOperationType":`+c+`}`), true
		case "LockUserChange.lockDataType":
			return payload("LockUserChange", `{"dataOperationType":0,"lockDataType":`+c+`}`), true
		}
		return "", false
	})
}

func TestEventIDs(t *testing.T) {
	n := adaptertest.Normalizer(Vendor, Adapter{})
	id := func(p string) string {
		events, _, err := adaptertest.Run(n, Vendor, p)
		if err != nil || len(events) != 1 {
			t.Fatalf("%s: %v", p, err)
		}
		return events[0].EventID
	}
	a := id(payload("DoorStateChange", `{"doorState":1}`))
	if a != event.ID(Vendor, "0x1A2B3C4D#4711") {
		t.Fatalf("event id %s is not event.ID(matter, nodeId#eventNumber)", a)
	}
	if b := id(payload("DoorStateChange", `{"doorState":0}`)); b != a {
		t.Fatalf("same node and event number, different ids: %s %s", a, b)
	}
	other := `{"nodeId":"0x1A2B3C4D","eventName":"DoorStateChange","eventNumber":4712,"timestampMs":1764230400123,"data":{"doorState":1}}`
	if b := id(other); b == a {
		t.Fatalf("different event numbers, same id %s", a)
	}
}

func reference(raw []byte) ([]event.Access, error) {
	var rec record
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, normalize.DecodeError("matter event", err)
	}
	e, err := mapRecord(&rec)
	if err != nil {
		return nil, err
	}
	return []event.Access{e}, nil
}

func TestDifferential(t *testing.T) {
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			adaptertest.Differential(t, Adapter{}, reference, record{}, []byte(c.Payload))
		})
	}
}

func FuzzAdapter(f *testing.F) {
	adaptertest.Seed(f, cases)
	f.Fuzz(func(t *testing.T, payload []byte) {
		adaptertest.Fuzz(t, Vendor, Adapter{}, payload)
		adaptertest.Differential(t, Adapter{}, reference, record{}, payload)
	})
}

// benchPayload is a typical ~300-byte LockOperation.
var benchPayload = []byte(payload("LockOperation", `{"lockOperationType":1,"operationSource":10,"userIndex":3,"fabricIndex":1,"sourceNode":1311768467463790320,"credentials":[{"credentialType":7,"credentialIndex":2}]}`))

func BenchmarkAdapter(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	var dst []event.Access
	for b.Loop() {
		var err error
		dst, err = Adapter{}.Normalize(dst[:0], benchPayload)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkReferenceEncodingJSON(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		if _, err := reference(benchPayload); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func ExampleAdapter() {
	events, err := Adapter{}.Normalize(nil, benchPayload)
	fmt.Println(len(events), err, events[0].Action, events[0].Method, events[0].LockID, events[0].UserRef)
	// Output: 1 <nil> unlock aliro 0x1A2B3C4D 3
}

package bus

import (
	"time"

	"github.com/segmentio/kafka-go"
)

// Dead-letter header names. A dead-lettered record keeps its original key and
// value bytes unchanged; why it was rejected travels in these headers.
const (
	HeaderReason = "keyfleet-reason" // short stable code, e.g. malformed_payload
	HeaderError  = "keyfleet-error"  // human-readable error message
	HeaderVendor = "keyfleet-vendor"
	HeaderSource = "keyfleet-source" // topic/partition/offset of the original record
	HeaderStage  = "keyfleet-stage"  // which part rejected it: normalize, clickhouse
)

// DeadLetter describes a rejected record.
type DeadLetter struct {
	Vendor string
	Reason string
	Error  string
	Source string
	Stage  string
	TsMs   int64 // when it was rejected
	Key    []byte
	Value  []byte
}

// Message encodes the dead letter as a Kafka message for the DLQ topic.
func (d DeadLetter) Message() kafka.Message {
	return kafka.Message{
		Key:   d.Key,
		Value: d.Value,
		Time:  time.UnixMilli(d.TsMs),
		Headers: []kafka.Header{
			{Key: HeaderReason, Value: []byte(d.Reason)},
			{Key: HeaderError, Value: []byte(d.Error)},
			{Key: HeaderVendor, Value: []byte(d.Vendor)},
			{Key: HeaderSource, Value: []byte(d.Source)},
			{Key: HeaderStage, Value: []byte(d.Stage)},
		},
	}
}

// ParseDeadLetter reads a DLQ message back.
func ParseDeadLetter(m kafka.Message) DeadLetter {
	d := DeadLetter{Key: m.Key, Value: m.Value, TsMs: m.Time.UnixMilli()}
	for _, h := range m.Headers {
		switch h.Key {
		case HeaderReason:
			d.Reason = string(h.Value)
		case HeaderError:
			d.Error = string(h.Value)
		case HeaderVendor:
			d.Vendor = string(h.Value)
		case HeaderSource:
			d.Source = string(h.Value)
		case HeaderStage:
			d.Stage = string(h.Value)
		}
	}
	return d
}

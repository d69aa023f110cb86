package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/internal/event"
)

// AccessColumns are the access_events columns of the common schema
// (0001), in order.
var AccessColumns = []string{
	"event_id", "ts", "ts_ms", "received_ms", "vendor", "site_id", "zone_id", "door_id",
	"lock_id", "subject_id", "credential_id", "device_id", "attested", "action", "outcome",
	"method", "reason", "vendor_code", "break_glass", "raw_ref", "inserted_ms",
}

// DimensionColumns are the device and lock dimension columns (0130,
// event.Dimensions), which the writer fills after AccessColumns.
var DimensionColumns = []string{"lock_model", "lock_firmware", "phone_model", "os_name", "os_version", "app_version"}

// writerColumns are the columns the writer fills, in order.
var writerColumns = append(append([]string(nil), AccessColumns...), DimensionColumns...)

// AccessRows turns access events (access.events records, or events the
// Ingest stage normalized) into the columns of access_events or of its
// subject-ordered copy.
type AccessRows struct {
	table    string
	inserted *prometheus.CounterVec
	now      func() time.Time
	// window bounds ts_ms: what the normalizer refused must not reach
	// ClickHouse from another producer either (ts is a DateTime, which
	// wraps after 2106).
	window event.TimeWindow

	eventID                                       []uuid.UUID
	ts                                            []time.Time
	tsMs, receivedMs, insertedMs                  []int64
	vendor, site, zone, door, lock                []string
	subject, credential, device, attested, action []string
	outcome, method, reason, vendorCode, rawRef   []string
	lockModel, lockFirmware, phoneModel           []string
	osName, osVersion, appVersion                 []string
	breakGlass                                    []uint8
	byVendor                                      map[string]int
	ev                                            event.Access
}

var _ Rows = (*AccessRows)(nil)

// NewAccessRows returns an empty batch. inserted counts stored events by
// vendor (keyfleet_pipeline_events_inserted_total).
func NewAccessRows(inserted *prometheus.CounterVec) *AccessRows {
	return &AccessRows{table: chstorage.AccessEvents.Name, inserted: inserted, now: time.Now,
		window: event.DefaultTimeWindow, byVendor: map[string]int{}}
}

// NewSubjectRows returns an empty batch for access_events_by_subject, the
// copy ordered by subject (it holds the events that have a subject).
func NewSubjectRows() *AccessRows {
	return &AccessRows{table: chstorage.AccessEventsBySubject.Name, now: time.Now,
		window: event.DefaultTimeWindow, byVendor: map[string]int{}}
}

// WithTimeWindow sets the accepted event times (default
// event.DefaultTimeWindow); a record outside is a bad record whose error
// wraps event.ErrTimeOutOfRange.
func (r *AccessRows) WithTimeWindow(w event.TimeWindow) *AccessRows {
	if w != (event.TimeWindow{}) {
		r.window = w
	}
	return r
}

// PartitionOf is row i's partition of access_events and its copies
// (toYYYYMM(ts)).
func (r *AccessRows) PartitionOf(i int) uint32 {
	y, m, _ := r.ts[i].UTC().Date()
	return uint32(y*100 + int(m))
}

func (r *AccessRows) Table() string     { return r.table }
func (r *AccessRows) Columns() []string { return writerColumns }
func (r *AccessRows) Len() int          { return len(r.eventID) }

// Append decodes one access.events record.
func (r *AccessRows) Append(m kafka.Message) error {
	if err := event.Decode(m.Value, &r.ev); err != nil {
		return fmt.Errorf("decode access event: %w", err)
	}
	if r.ev.RawRef == "" {
		r.ev.RawRef = bus.RawRef(m)
	}
	return r.AppendEvent(&r.ev)
}

// AppendEvent appends one event (the strings are kept, not copied). An
// error means the event can never be stored: an event_id that is not a
// UUID, or an event time outside the window.
func (r *AccessRows) AppendEvent(e *event.Access) error {
	id, err := uuid.Parse(e.EventID)
	if err != nil {
		return fmt.Errorf("event_id %q: %w", e.EventID, err)
	}
	if err := r.window.Check(e.TsMs, r.now().UnixMilli()); err != nil {
		return fmt.Errorf("ts_ms: %w", err)
	}
	r.eventID = append(r.eventID, id)
	r.ts = append(r.ts, time.Unix(e.TsMs/1000, 0).UTC())
	r.tsMs = append(r.tsMs, e.TsMs)
	r.receivedMs = append(r.receivedMs, e.ReceivedMs)
	r.vendor = append(r.vendor, e.Vendor)
	r.site = append(r.site, e.SiteID)
	r.zone = append(r.zone, e.ZoneID)
	r.door = append(r.door, e.DoorID)
	r.lock = append(r.lock, e.LockID)
	r.subject = append(r.subject, e.SubjectID)
	r.credential = append(r.credential, e.CredentialID)
	r.device = append(r.device, e.DeviceID)
	r.attested = append(r.attested, e.Attested)
	r.action = append(r.action, e.Action)
	r.outcome = append(r.outcome, e.Outcome)
	r.method = append(r.method, e.Method)
	r.reason = append(r.reason, e.Reason)
	r.vendorCode = append(r.vendorCode, e.VendorCode)
	var bg uint8
	if e.BreakGlass {
		bg = 1
	}
	r.breakGlass = append(r.breakGlass, bg)
	r.rawRef = append(r.rawRef, e.RawRef)
	r.lockModel = append(r.lockModel, e.LockModel)
	r.lockFirmware = append(r.lockFirmware, e.LockFirmware)
	r.phoneModel = append(r.phoneModel, e.PhoneModel)
	r.osName = append(r.osName, e.OSName)
	r.osVersion = append(r.osVersion, e.OSVersion)
	r.appVersion = append(r.appVersion, e.AppVersion)
	r.byVendor[e.Vendor]++
	return nil
}

// Data returns the columns; inserted_ms is stamped now, just before the insert.
func (r *AccessRows) Data() []any {
	now := r.now().UnixMilli()
	r.insertedMs = r.insertedMs[:0]
	for range r.eventID {
		r.insertedMs = append(r.insertedMs, now)
	}
	return []any{
		r.eventID, r.ts, r.tsMs, r.receivedMs, r.vendor, r.site, r.zone, r.door,
		r.lock, r.subject, r.credential, r.device, r.attested, r.action, r.outcome,
		r.method, r.reason, r.vendorCode, r.breakGlass, r.rawRef, r.insertedMs,
		r.lockModel, r.lockFirmware, r.phoneModel, r.osName, r.osVersion, r.appVersion,
	}
}

// Stored counts the batch's events by vendor.
func (r *AccessRows) Stored() {
	if r.inserted == nil {
		return
	}
	for v, n := range r.byVendor {
		r.inserted.WithLabelValues(v).Add(float64(n))
	}
}

// Reset empties the batch, keeping its memory.
func (r *AccessRows) Reset() {
	r.eventID = r.eventID[:0]
	r.ts = r.ts[:0]
	r.tsMs = r.tsMs[:0]
	r.receivedMs = r.receivedMs[:0]
	for _, col := range []*[]string{&r.vendor, &r.site, &r.zone, &r.door, &r.lock,
		&r.subject, &r.credential, &r.device, &r.attested, &r.action, &r.outcome,
		&r.method, &r.reason, &r.vendorCode, &r.rawRef, &r.lockModel, &r.lockFirmware,
		&r.phoneModel, &r.osName, &r.osVersion, &r.appVersion} {
		clear(*col)
		*col = (*col)[:0]
	}
	r.breakGlass = r.breakGlass[:0]
	clear(r.byVendor)
}

// DeadLetterRows turns lock.events.dlq records into dead_letters rows.
type DeadLetterRows struct {
	ts                                     []time.Time
	tsMs                                   []int64
	vendor, reason, errMsg, source, digest []string
	size                                   []uint32
}

var _ Rows = (*DeadLetterRows)(nil)

func (r *DeadLetterRows) Table() string { return "dead_letters" }
func (r *DeadLetterRows) Columns() []string {
	return []string{"ts", "ts_ms", "vendor", "reason", "error", "source", "payload_size", "payload_sha256"}
}
func (r *DeadLetterRows) Len() int { return len(r.ts) }

// Append never fails: every dead letter can be stored. The payload itself
// stays in the DLQ topic (it may hold raw personal data); the table keeps its
// size and SHA-256 so a row can be matched to the original.
func (r *DeadLetterRows) Append(m kafka.Message) error {
	d := bus.ParseDeadLetter(m)
	if d.TsMs <= 0 {
		d.TsMs = time.Now().UnixMilli()
	}
	r.ts = append(r.ts, time.UnixMilli(d.TsMs).UTC())
	r.tsMs = append(r.tsMs, d.TsMs)
	r.vendor = append(r.vendor, d.Vendor)
	r.reason = append(r.reason, d.Reason)
	r.errMsg = append(r.errMsg, d.Error)
	r.source = append(r.source, d.Source)
	sum := sha256.Sum256(d.Value)
	r.size = append(r.size, uint32(len(d.Value)))
	r.digest = append(r.digest, hex.EncodeToString(sum[:]))
	return nil
}

func (r *DeadLetterRows) Data() []any {
	return []any{r.ts, r.tsMs, r.vendor, r.reason, r.errMsg, r.source, r.size, r.digest}
}

func (r *DeadLetterRows) Stored() {}

func (r *DeadLetterRows) Reset() { *r = DeadLetterRows{} }

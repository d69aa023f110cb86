// Package normalize maps vendor lock events to keyfleet's common schema.
//
// Each vendor has an Adapter in its own package (normalize/matter, ...): a pure
// function from one payload to zero or more events or an *Error. The
// Normalizer around the adapters fills what no vendor knows (event ids when
// the vendor has none, site/door from the lock registry, subject and
// credential from the credential registry) and checks every event against the
// schema. Stage runs it on Kafka: lock.events.raw in, access.events and
// lock.events.dlq out.
package normalize

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/registry"
)

// Adapter maps one vendor's payloads.
type Adapter interface {
	// Normalize appends the events of one payload to dst. Adapters set every
	// schema field they can read from the payload (LockID, TsMs, Action,
	// Outcome, Method, Reason, VendorCode, DeviceID, Attested, EventID when the
	// vendor has an event id) and UserRef, the vendor's reference to who acted.
	// Malformed input returns an *Error.
	Normalize(dst []event.Access, payload []byte) ([]event.Access, error)
}

// Error is a payload an adapter cannot map. Reason is a short stable code
// (it becomes the DLQ reason and a metric label); Err says what was wrong,
// without echoing raw personal data from the payload.
type Error struct {
	Reason string
	Err    error
}

// Reason codes of Error.
const (
	ReasonMalformed     = "malformed_payload"  // not parseable at all
	ReasonMissingField  = "missing_field"      // a required field is absent
	ReasonBadField      = "bad_field"          // a field has the wrong type or value
	ReasonBadTime       = "bad_time"           // no parseable event time
	ReasonUnknownVendor = "unknown_vendor"     // no adapter for the envelope's vendor
	ReasonBadEnvelope   = "malformed_envelope" // the raw record is not an envelope
	ReasonSchema        = "schema_violation"   // the adapter produced an invalid event
)

func (e *Error) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given reason.
func Errorf(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf returns the reason code of err (ReasonMalformed if it has none).
func ReasonOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonMalformed
}

// Registry resolves vendor references to keyfleet's own ids. It is consumed
// here and implemented by internal/registry.
type Registry interface {
	// Lock returns where a lock is installed.
	Lock(vendor, lockID string) (registry.LockInfo, bool)
	// Credential returns whose credential a vendor user reference is on a
	// lock; refHash is the reference's RefHash.
	Credential(vendor, lockID, refHash string) (registry.CredentialInfo, bool)
}

// Normalizer runs adapters and completes their events.
type Normalizer struct {
	adapters map[string]Adapter
	registry Registry
	key      []byte
	macs     sync.Pool // of *refMAC: keyed HMAC states, reused (event.RefHash is on the hot path)

	refMu   sync.RWMutex
	refSeen map[refKey]string // recent event.RefHash results (a fleet has a bounded set of user refs)
}

type refKey struct{ vendor, ref string }

// refCacheSize bounds the event.RefHash cache; it is emptied when full.
const refCacheSize = 1 << 16

// New returns a normalizer over the given adapters (by vendor name). registry
// may be nil. pseudonymKey keys event.RefHash.
func New(adapters map[string]Adapter, registry Registry, pseudonymKey []byte) *Normalizer {
	return &Normalizer{adapters: adapters, registry: registry, key: pseudonymKey}
}

// Vendors returns the vendors the normalizer has adapters for, sorted.
func (n *Normalizer) Vendors() []string {
	out := make([]string, 0, len(n.adapters))
	for v := range n.adapters {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

// Has reports whether a vendor has an adapter.
func (n *Normalizer) Has(vendor string) bool {
	_, ok := n.adapters[vendor]
	return ok
}

// Normalize maps one vendor payload and appends its events to dst.
// receivedMs is when keyfleet received it; rawRef where it came from.
func (n *Normalizer) Normalize(dst []event.Access, vendor string, receivedMs int64, rawRef string, payload []byte) ([]event.Access, error) {
	a, ok := n.adapters[vendor]
	if !ok {
		return dst, Errorf(ReasonUnknownVendor, "no adapter for vendor %q", vendor)
	}
	start := len(dst)
	out, err := a.Normalize(dst, payload)
	if err != nil {
		var nerr *Error
		if !errors.As(err, &nerr) {
			err = &Error{Reason: ReasonMalformed, Err: err}
		}
		return dst[:start], err
	}
	var fingerprint string
	for i := start; i < len(out); i++ {
		e := &out[i]
		e.Vendor = vendor
		e.ReceivedMs = receivedMs
		e.RawRef = rawRef
		if e.EventID == "" {
			// The vendor gave no event id: derive it from the payload bytes,
			// so a re-delivered payload gets the same id.
			if fingerprint == "" {
				sum := sha256.Sum256(payload)
				fingerprint = "sha256:" + hex.EncodeToString(sum[:])
			}
			e.EventID = event.ID(vendor, fingerprint+"#"+strconv.Itoa(i-start))
		}
		if len(e.VendorCode) > MaxVendorCode {
			e.VendorCode = truncate(e.VendorCode, MaxVendorCode)
		}
		n.resolve(e)
		if err := Check(e); err != nil {
			return dst[:start], err
		}
	}
	return out, nil
}

func (n *Normalizer) resolve(e *event.Access) {
	ref := e.UserRef
	e.UserRef = ""
	if e.Attested == "" {
		e.Attested = "unknown"
	}
	if e.Method == "" {
		e.Method = "unknown"
	}
	if n.registry == nil {
		return
	}
	if l, ok := n.registry.Lock(e.Vendor, e.LockID); ok {
		e.SiteID, e.ZoneID, e.DoorID = l.SiteID, l.ZoneID, l.DoorID
		if e.LockModel == "" && e.LockFirmware == "" {
			e.LockModel, e.LockFirmware = l.LockModel, l.LockFirmware
		}
	}
	if ref == "" {
		return
	}
	if c, ok := n.registry.Credential(e.Vendor, e.LockID, n.refHash(e.Vendor, ref)); ok {
		e.SubjectID, e.CredentialID = c.SubjectID, c.CredentialID
		if e.DeviceID == "" {
			e.DeviceID = c.DeviceID
		}
		e.BreakGlass = e.BreakGlass || c.BreakGlass
		if e.PhoneModel == "" && e.OSName == "" && e.OSVersion == "" && e.AppVersion == "" && e.DeviceID == c.DeviceID {
			e.PhoneModel, e.OSName, e.OSVersion, e.AppVersion = c.PhoneModel, c.OSName, c.OSVersion, c.AppVersion
		}
	}
}

// refMAC is a reusable keyed HMAC with its buffers.
type refMAC struct {
	h   hash.Hash
	in  []byte
	sum [sha256.Size]byte
	hex [32]byte
}

// refHash is RefHash(n.key, vendor, ref), cached and without allocations.
func (n *Normalizer) refHash(vendor, ref string) string {
	k := refKey{vendor, ref}
	n.refMu.RLock()
	h, ok := n.refSeen[k]
	n.refMu.RUnlock()
	if ok {
		return h
	}
	h = n.computeRefHash(vendor, ref)
	n.refMu.Lock()
	if len(n.refSeen) >= refCacheSize || n.refSeen == nil {
		n.refSeen = make(map[refKey]string, 1024)
	}
	n.refSeen[k] = h
	n.refMu.Unlock()
	return h
}

func (n *Normalizer) computeRefHash(vendor, ref string) string {
	m, _ := n.macs.Get().(*refMAC)
	if m == nil {
		m = &refMAC{h: hmac.New(sha256.New, n.key)}
	} else {
		m.h.Reset()
	}
	m.in = append(append(append(m.in[:0], vendor...), 0), ref...)
	m.h.Write(m.in)
	hex.Encode(m.hex[:], m.h.Sum(m.sum[:0])[:16])
	s := string(m.hex[:])
	n.macs.Put(m)
	return s
}

// Check validates an event against the common schema's enums and required fields.
func Check(e *event.Access) error {
	switch {
	case e.LockID == "":
		return Errorf(ReasonMissingField, "no lock/device id")
	case e.TsMs <= 0:
		return Errorf(ReasonBadTime, "no event time")
	case !event.Valid(event.Actions, e.Action):
		return Errorf(ReasonSchema, "action %q is not in the schema", e.Action)
	case !event.Valid(event.Outcomes, e.Outcome):
		return Errorf(ReasonSchema, "outcome %q is not in the schema", e.Outcome)
	case !event.Valid(event.Methods, e.Method):
		return Errorf(ReasonSchema, "method %q is not in the schema", e.Method)
	case e.Reason != "" && !event.Valid(event.Reasons, e.Reason):
		return Errorf(ReasonSchema, "reason %q is not in the schema", e.Reason)
	case !event.Valid(event.Attestations, e.Attested):
		return Errorf(ReasonSchema, "attested %q is not in the schema", e.Attested)
	}
	return nil
}

// Mapping is one row of a vendor's mapping table: a vendor code and the
// common-schema values it becomes. Adapters keep their tables as []Mapping
// and map through them, so the documentation rendered from the same tables
// (docs/vendors.md) cannot drift from the code. Empty fields are "not set by
// this code" (taken from another field of the payload, or the default).
type Mapping struct {
	Field   string `json:"field"` // the vendor field, e.g. "LockOperation.lockOperationType"
	Code    string `json:"code"`  // the vendor value, e.g. "1"
	Name    string `json:"name"`  // the vendor's name for it, e.g. "Unlock"
	Action  string `json:"action,omitempty"`
	Outcome string `json:"outcome,omitempty"`
	Method  string `json:"method,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Documented is implemented by adapters that publish their mapping table.
type Documented interface {
	Mappings() []Mapping
}

// MaxVendorCode bounds vendor_code: vendors' codes are short, and an unknown
// event type is copied from the payload as is.
const MaxVendorCode = 256

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	for n > 0 && n < len(s) && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

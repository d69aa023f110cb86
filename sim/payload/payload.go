// Package payload renders what happens at a simulated lock as the vendor
// payload that lock's vendor really sends: Matter Door Lock cluster events,
// Nuki Web API smartlock log entries, Schlage Home webhook events, Seam
// webhook events and legacy panel CSV lines, in exactly the shapes keyfleet's
// normalizer adapters accept (see normalize/*).
//
// Encoding is deterministic: an Encoder seeded the same way, fed the same
// occurrences in the same order, writes the same bytes (event ids and
// counters included).
package payload

import (
	"math/rand/v2"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/keyfleet/keyfleet/sim/fleet"
)

// Op is what happened at a lock, in vendor-neutral terms.
type Op uint8

// Ops.
const (
	OpUnlock        Op = iota // access granted, bolt retracted
	OpUnlatch                 // access granted, latch pulled
	OpLock                    // locked (by a person, a button or auto-relock)
	OpDenied                  // access attempt refused (Reason says why)
	OpDoorOpened              // door sensor: opened
	OpDoorClosed              // door sensor: closed
	OpDoorForced              // door opened without an unlock
	OpDoorAjar                // door held open too long
	OpJammed                  // bolt jammed
	OpTamper                  // housing removed, panel tamper switch
	OpBatteryLow              // battery below threshold
	OpOffline                 // lost its connection to the vendor cloud
	OpOnline                  // reconnected
	OpUserAdded               // a credential was provisioned to the lock
	OpUserRemoved             // a credential was removed from the lock
	OpKeypadLockout           // too many wrong codes: keypad locked out
)

var opNames = [...]string{"unlock", "unlatch", "lock", "denied", "door_opened", "door_closed", "door_forced",
	"door_ajar", "jammed", "tamper", "battery_low", "offline", "online", "user_added", "user_removed", "keypad_lockout"}

func (o Op) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "op" + strconv.Itoa(int(o))
}

// Methods of an attempt, in the common schema's terms.
const (
	MethodAliro     = "aliro"
	MethodPhoneNFC  = "phone_nfc"
	MethodPhoneBLE  = "phone_ble"
	MethodWallet    = "wallet"
	MethodAppRemote = "app_remote"
	MethodPIN       = "pin"
	MethodCard      = "card"
	MethodButton    = "button"
	MethodManual    = "mechanical"
	MethodAuto      = "auto"
	MethodSchedule  = "schedule"
)

// Denial reasons, in the common schema's terms.
const (
	ReasonInvalid  = "invalid_credential"
	ReasonRevoked  = "revoked"
	ReasonExpired  = "expired"
	ReasonSchedule = "outside_schedule"
	ReasonDisabled = "disabled_user"
	// ReasonUnknown: a lock that holds the key refuses it without saying
	// why (a Nuki "rejected", a Matter unspecified operation error): the
	// simulator's planted regression (sim.Regression).
	ReasonUnknown = "unknown"
)

// Occurrence is one thing that happened at a lock.
type Occurrence struct {
	Lock   *fleet.Lock
	TsMs   int64
	Op     Op
	Method string // how the attempt was made (for OpUnlock, OpUnlatch, OpLock, OpDenied)
	// UserRef is the vendor's reference to who acted (fleet.UserRef); empty
	// when the lock does not know the person.
	UserRef string
	// UserName is the display name vendor apps keep for the user (Nuki logs carry it).
	UserName string
	Reason   string // for OpDenied
	Battery  int    // percent, for OpBatteryLow
	// ReceivedMs is when the vendor cloud received it (Seam's created_at).
	ReceivedMs int64
}

// Encoder renders occurrences as vendor payloads.
type Encoder struct {
	r           *rand.Rand
	matterEvent map[string]uint64 // next event number per node
	workspace   map[int]string    // Seam workspace per site
	account     map[int]string    // Seam connected account per site
}

// NewEncoder returns an encoder whose ids derive from seed.
func NewEncoder(seed uint64) *Encoder {
	return &Encoder{
		r:           rand.New(rand.NewPCG(seed, 0x7061796c6f6164)),
		matterEvent: map[string]uint64{},
		workspace:   map[int]string{},
		account:     map[int]string{},
	}
}

// Encode appends the payload of o to dst. ok is false when the lock's vendor
// does not report this kind of occurrence (a Schlage lock does not tell
// anyone about a phone it refused; legacy panels have no door sensor
// events), and nothing is appended.
func (e *Encoder) Encode(dst []byte, o *Occurrence) (out []byte, ok bool) {
	if !Reported(o) {
		return dst, false
	}
	switch o.Lock.Vendor {
	case "matter":
		return e.matter(dst, o), true
	case "nuki":
		return e.nuki(dst, o), true
	case "schlage":
		return e.schlage(dst, o), true
	case "seam":
		return e.seam(dst, o), true
	case "legacy":
		return e.legacy(dst, o), true
	}
	return dst, false
}

// Reports says whether a vendor reports an occurrence of op made with method.
func Reports(vendor string, op Op, method string) bool {
	switch vendor {
	case "matter":
		switch op {
		case OpBatteryLow, OpOffline, OpOnline:
			return false
		}
		return true
	case "nuki":
		switch op {
		case OpUnlock, OpUnlatch, OpLock, OpDoorOpened, OpDoorClosed, OpDoorAjar, OpJammed:
			return true
		case OpDenied:
			// A phone whose authorization is gone cannot even talk to the
			// lock; only keypad and NFC refusals are logged.
			return method == MethodPIN || method == MethodCard || method == MethodPhoneNFC
		}
		return false
	case "schlage":
		switch op {
		case OpUnlock, OpUnlatch, OpLock, OpJammed, OpTamper, OpDoorForced, OpBatteryLow, OpOffline, OpOnline, OpKeypadLockout:
			return true
		case OpDenied:
			return method == MethodPIN
		}
		return false
	case "seam":
		switch op {
		case OpUnlock, OpUnlatch, OpLock, OpDenied, OpOffline, OpOnline, OpBatteryLow, OpTamper, OpDoorOpened, OpDoorClosed:
			return true
		}
		return false
	case "legacy":
		switch op {
		case OpUnlock, OpUnlatch, OpDenied:
			return method == MethodCard || method == MethodPIN || method == MethodPhoneNFC || method == MethodWallet
		case OpDoorForced, OpDoorAjar, OpTamper:
			return true
		}
		return false
	}
	return false
}

// NamesUser reports whether a vendor's record of a refused attempt says
// who tried: a panel reads the card number whatever it decides; a lock
// that still holds the user but refuses (schedule, expiry, disabled) names
// them, except Schlage, whose refusal events carry no accessor; a
// credential the lock does not hold (unknown or revoked) cannot be named.
func NamesUser(vendor, reason string) bool {
	switch {
	case vendor == "legacy":
		return true
	case vendor == "schlage":
		return false
	}
	return reason != ReasonInvalid && reason != ReasonRevoked
}

// Reported is Reports for one occurrence: a Nuki lock logs a refused phone
// only when it holds the phone's authorization (and refuses it by schedule
// or expiry).
func Reported(o *Occurrence) bool {
	if o.Lock.Vendor == "nuki" && o.Op == OpDenied && o.Method != MethodPIN && o.Method != MethodCard && o.Method != MethodPhoneNFC {
		return NamesUser("nuki", o.Reason)
	}
	return Reports(o.Lock.Vendor, o.Op, o.Method)
}

// PhoneMethods are the ways a phone key is presented at a lock of each vendor.
var PhoneMethods = map[string][]string{
	"matter":  {MethodAliro, MethodAliro, MethodAliro, MethodAppRemote},
	"nuki":    {MethodPhoneBLE, MethodPhoneBLE, MethodPhoneBLE, MethodAppRemote},
	"schlage": {MethodPhoneBLE, MethodWallet, MethodWallet},
	"seam":    {MethodPhoneBLE, MethodPhoneBLE, MethodAppRemote},
	"legacy":  {MethodCard}, // mobile card emulation: the panel reads a card number
}

func (e *Encoder) uuid() string {
	var b [16]byte
	for i := range b {
		b[i] = byte(e.r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	const digits = "0123456789abcdef"
	j := 0
	for i, c := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			s[j] = '-'
			j++
		}
		s[j], s[j+1] = digits[c>>4], digits[c&0xf]
		j += 2
	}
	return string(s[:])
}

func isoMs(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z")
}

// appendString appends s as a JSON string.
func appendString(dst []byte, s string) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', digits[c>>4], digits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, `\ufffd`...)
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

func appendField(dst []byte, name, v string) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return appendString(dst, v)
}

func appendInt(dst []byte, name string, v int64) []byte {
	dst = append(dst, ',', '"')
	dst = append(dst, name...)
	dst = append(dst, '"', ':')
	return strconv.AppendInt(dst, v, 10)
}

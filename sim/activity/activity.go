// Package activity is the life of a simulated fleet over time: who comes and
// goes through which door when (daily and weekly rhythms, crews at work,
// move-ins), credential lifecycle changes (issue, device upgrades,
// suspensions, revocations) and injected anomalies with their ground-truth
// labels. A Generator yields it as a time-ordered stream of Items; what the
// locks make of each attempt (granted or not) is decided downstream, by the
// simulated gateways' access lists.
//
// The stream is a pure function of the fleet, the seed and the window: the
// same inputs give the same items.
package activity

import (
	"math"
	"math/rand/v2"
	"sort"

	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/payload"
)

// Kind is the kind of an Item.
type Kind uint8

// Item kinds.
const (
	// KindAttempt: a person presents a key (phone, card emulation or keypad
	// code) at a lock. Cred is -1 for someone the fleet does not know.
	KindAttempt Kind = iota
	// KindLockEvent: the lock reports something on its own (door forced,
	// held open, jammed, a button or thumbturn operation).
	KindLockEvent
	// KindChange: a credential lifecycle change, with the gateway command
	// the control plane pushes for it.
	KindChange
)

// Label types: exactly the detector names of `keyfleet detect`.
const (
	LabelUnlockBurst       = "unlock_burst"
	LabelUnattestedDevice  = "unattested_device_change"
	LabelUseAfterRevocaton = "use_after_revocation"
	LabelDeniedStorm       = "denied_storm"
	LabelDoorForced        = "door_forced"
)

// LabelTypes lists every label type.
var LabelTypes = []string{LabelUnlockBurst, LabelUnattestedDevice, LabelUseAfterRevocaton, LabelDeniedStorm, LabelDoorForced}

// NoLabel marks an item that belongs to no scenario label.
const NoLabel = -1

// NoDevice marks an attempt with no phone and no code (lock events).
const NoDevice = -2

// Item is one thing that happens in the fleet.
type Item struct {
	TsMs   int64
	Kind   Kind
	Lock   int32
	Cred   int32 // -1: unknown person / none
	Device int16 // device index, fleet.PINDevice for a keypad code, NoDevice
	Op     payload.Op
	Method string
	// Deny forces a refusal with this reason (a mistyped code, a phone that
	// was not read); empty lets the lock's access list decide.
	Deny string
	// Label is the scenario label this item is evidence of (NoLabel if none).
	Label  int32
	Change *Change
}

// Change is a credential lifecycle change.
type Change struct {
	Cred int
	// State is the lifecycle state recorded (event.State*); empty pushes
	// the command without a new record (a re-sent revocation).
	State    string
	Device   int // device the credential is bound to afterwards
	Attested bool
	Reason   string
	// ValidUntilMs of the credential (guests).
	ValidUntilMs int64
	// Command is the gateway command pushed to the credential's locks
	// ("revoke", "grant") or empty.
	Command string
	// Locks the command goes to (nil: every lock the credential is entitled to).
	Locks []int
	// Lose lists locks whose gateway loses the command.
	Lose map[int]bool
}

// Labels (backtest.Label, the labels file's JSON lines) mark injected
// anomalies. StartMs and EndMs are the event times of the first and last
// record that is evidence of it:
//   - unlock_burst: the burst's unlocks (subject, credential; no door);
//   - unattested_device_change: granted uses from a device the credential
//     was not last attested on, until a fresh attestation (door of the
//     first use; a gap of a day starts a new label);
//   - use_after_revocation: granted uses after a revocation the lock had
//     not applied (door of the first use; a day's gap starts a new label);
//   - denied_storm: the refusals at one door (door; no subject);
//   - door_forced: the forced-door report (door; start = end).
//
// Anomalies whose evidence no lock reported (or fell outside the window)
// get no label. Benign busy crews, move-ins, attested phone upgrades,
// refusals after move-outs and expiries are never labelled.

// Rates are anomalies per day per 1000 subjects.
type Rates struct {
	Burst, SubtleBurst, DeviceSwitch, ClonedDevice, UseAfterRevocation, DeniedStorm, DoorForced float64
}

// DefaultRates give a two-week, 2000-subject run a couple of dozen of each.
var DefaultRates = Rates{Burst: 0.5, SubtleBurst: 0.25, DeviceSwitch: 0.3, ClonedDevice: 0.2,
	UseAfterRevocation: 0.35, DeniedStorm: 0.5, DoorForced: 0.5}

// Options configure a Generator.
type Options struct {
	Fleet   *fleet.Fleet
	Seed    uint64
	StartMs int64
	// EndMs ends the stream (0: never).
	EndMs int64
	// Rates of injected anomalies (DefaultRates when zero), scaled by
	// AnomalyScale (1 when zero); NoAnomalies injects none.
	Rates        Rates
	AnomalyScale float64
	NoAnomalies  bool
}

const (
	minute = int64(60_000)
	hour   = 60 * minute
	day    = 24 * hour
)

// credState is a credential's life so far, as planned.
type credState struct {
	activeFrom   int64 // normal activity from here (math.MinInt64: from before the start)
	revokedAt    int64 // no normal activity from here (math.MaxInt64: never)
	suspended    [][2]int64
	switches     [][2]int64 // (time, device index) device the person carries from then
	nextDevice   int        // next unused spare device
	validUntilMs int64
	movedIn      bool
}

// Generator yields a fleet's items in time order.
type Generator struct {
	o       Options
	f       *fleet.Fleet
	creds   []credState
	labels  []backtest.Label
	initial []Item
	buf     []Item
	pos     int
	day     int64 // next day (days since the epoch) to plan
	// planned holds items planned for later days (scripted follow-ups).
	later []Item
	r     *rand.Rand // current day's generator
	// The days (since the epoch) the scenarios' newcomers start: the new
	// crew on the 4th day of the window, the new building opens on the 6th.
	crewDay, buildingDay int64
}

// Scenario start days, counted from the window's first day.
const (
	crewStartDay    = 3
	buildingOpenDay = 5
)

// New returns a generator.
func New(o Options) *Generator {
	if o.Rates == (Rates{}) {
		o.Rates = DefaultRates
	}
	if o.AnomalyScale == 0 {
		o.AnomalyScale = 1
	}
	if o.NoAnomalies {
		o.AnomalyScale = 0
	}
	g := &Generator{o: o, f: o.Fleet, creds: make([]credState, len(o.Fleet.Credentials))}
	r := rand.New(rand.NewPCG(o.Seed, 0x696e6974))
	var initial []Item
	for c := range g.creds {
		cs := &g.creds[c]
		cs.activeFrom, cs.revokedAt, cs.nextDevice = math.MinInt64, math.MaxInt64, 1
		cs.switches = [][2]int64{{math.MinInt64, 0}}
		cred := &g.f.Credentials[c]
		subj := &g.f.Subjects[cred.Subject]
		if g.f.Newcomer(cred.Subject) {
			cs.activeFrom = math.MaxInt64 // starts on its scenario's day
			continue
		}
		if cred.Role == fleet.RoleGuest && r.Float64() < 0.4 {
			cs.validUntilMs = o.StartMs + int64((0.5+19.5*r.Float64())*float64(day))
		}
		if subj.Incoming {
			cs.activeFrom = math.MaxInt64
			continue
		}
		// Issued some time before the simulation starts.
		issued := o.StartMs - int64((2+400*r.Float64())*float64(day))
		initial = append(initial,
			Item{TsMs: issued, Kind: KindChange, Label: NoLabel, Change: &Change{Cred: c, State: "issued", Attested: true, ValidUntilMs: cs.validUntilMs}},
			Item{TsMs: issued + minute + r.Int64N(10*minute), Kind: KindChange, Label: NoLabel, Change: &Change{Cred: c, State: "active", Attested: true, ValidUntilMs: cs.validUntilMs}})
	}
	sortItems(initial)
	g.initial = initial
	g.day = floorDiv(o.StartMs, day)
	g.crewDay, g.buildingDay = g.day+crewStartDay, g.day+buildingOpenDay
	return g
}

// Initial returns the lifecycle records of the credentials that exist when
// the window starts (issued and activated before it): what a registration
// tells the credential authority.
func (g *Generator) Initial() []Item { return g.initial }

// Provisioned reports whether a credential is on its locks at the start.
func (g *Generator) Provisioned(c int) bool {
	return !g.f.Subjects[g.f.Credentials[c].Subject].Incoming
}

// ValidUntil is a credential's expiry (0: none) as provisioned at the start.
func (g *Generator) ValidUntil(c int) int64 { return g.creds[c].validUntilMs }

// Labels returns the scenario labels, indexed by Item.Label. Their times are
// filled in downstream from the events actually emitted.
func (g *Generator) Labels() []backtest.Label { return g.labels }

// Next returns the next item, or false when the window is over.
func (g *Generator) Next() (Item, bool) {
	for g.pos >= len(g.buf) {
		dayStart := g.day * day
		if g.o.EndMs > 0 && dayStart >= g.o.EndMs {
			return Item{}, false
		}
		g.buf, g.pos = g.buf[:0], 0
		g.planDay(g.day)
		g.day++
	}
	it := g.buf[g.pos]
	g.pos++
	return it, true
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func sortItems(items []Item) {
	sort.SliceStable(items, func(i, j int) bool { return items[i].TsMs < items[j].TsMs })
}

// planDay plans one UTC day and keeps what falls inside the window.
func (g *Generator) planDay(d int64) {
	g.r = rand.New(rand.NewPCG(g.o.Seed, uint64(d)*0x9E3779B97F4A7C15+1))
	start := d * day
	p := &planner{g: g, dayStart: start, wd: int((d + 4) % 7)} // 1970-01-01 was a Thursday
	// Items planned on earlier days for this one.
	keep := g.later[:0]
	for _, it := range g.later {
		if it.TsMs < start+day {
			p.items = append(p.items, it)
		} else {
			keep = append(keep, it)
		}
	}
	g.later = keep
	p.lifecycle()
	p.anomalies()
	p.routines()
	p.lockNoise()
	p.scenarios() // last: the base estate's plan is the same without them
	sortItems(p.items)
	for _, it := range p.items {
		if it.TsMs < g.o.StartMs || (g.o.EndMs > 0 && it.TsMs >= g.o.EndMs) {
			continue
		}
		if it.TsMs >= start+day {
			g.later = append(g.later, it)
			continue
		}
		g.buf = append(g.buf, it)
	}
}

// active reports whether a credential's holder goes about their routine at t.
func (g *Generator) active(c int, t int64) bool {
	cs := &g.creds[c]
	if t < cs.activeFrom || t >= cs.revokedAt {
		return false
	}
	for _, s := range cs.suspended {
		if t >= s[0] && t < s[1] {
			return false
		}
	}
	return true
}

// device is the device a credential's holder carries at t.
func (g *Generator) device(c int, t int64) int {
	sw := g.creds[c].switches
	d := 0
	for _, s := range sw {
		if s[0] <= t {
			d = int(s[1])
		}
	}
	return d
}

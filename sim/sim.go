// Package sim runs a simulated fleet: it registers the fleet with the
// credential authority, plays the fleet's activity (sim/activity)
// against the simulated lock gateways (sim/locks) — every attempt
// is granted or refused by the access list the lock holds at that moment —
// and writes what the locks report as vendor payloads
// (sim/payload) to its sinks: Kafka's lock.events.raw and
// credential.events, and/or a replay file for `keyfleet detect --replay`.
// Ground truth of injected anomalies goes to a labels file.
//
// Time runs in one of three ways:
//   - backfill: a window of history, as fast as possible or paced by a speedup;
//   - real time at the fleet's natural pace (event time = wall time);
//   - real time at a target rate of records per second: the fleet's days are
//     compressed so records come at that rate, each stamped with the wall
//     time it is written at.
package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/internal/event"
	gw "github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/internal/registry"
	"github.com/keyfleet/keyfleet/sim/activity"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
	"github.com/keyfleet/keyfleet/sim/payload"
)

// Registration is what the fleet tells the credential authority before its
// events flow: every lock and vendor user reference (registry file format),
// and the lifecycle records of the credentials that exist at the start.
type Registration struct {
	Registry registry.File
	Records  []event.Credential
	// Fleet, when Registry is empty, is the fleet whose registry
	// (fleet.Registry) registrars read; the simulator leaves Registry
	// empty (at a million people it is gigabytes).
	Fleet *fleet.Fleet
}

// Registrar is the credential authority the simulator registers the fleet
// with and reports lifecycle changes to: today a registry file plus
// credential.events records (see FileRegistrar, RecordRegistrar); later the
// control plane's bulk API.
type Registrar interface {
	Register(ctx context.Context, r *Registration) error
	// Change reports one lifecycle change (revocation, suspension, device change).
	Change(ctx context.Context, rec *event.Credential) error
}

// Sink receives the records the locks report and the lifecycle records, in
// time order.
type Sink interface {
	Raw(ctx context.Context, r *RawRecord) error
	Credential(ctx context.Context, rec *event.Credential) error
	Close(ctx context.Context) error
}

// RawRecord is one vendor record.
type RawRecord struct {
	Key      string // the lock id (vendor device id)
	Envelope event.Raw
	Payload  []byte // the bare vendor payload (Envelope.Payload may be its JSON string form)
	// Expect is what the simulation knows about the record, for checks.
	Expect Expect
}

// Expect is the simulation's ground truth of one record.
type Expect struct {
	TsMs      int64 // event time
	Op        payload.Op
	Granted   bool
	SubjectID string // set when the lock knows who it was
}

// Mode is how simulated time relates to the wall clock.
type Mode int

// Modes.
const (
	ModeBackfill Mode = iota // a window of history
	ModeNatural              // real time, the fleet's own pace
	ModeRate                 // real time, compressed to a target rate
)

func (m Mode) String() string {
	return [...]string{"backfill", "natural", "rate"}[m]
}

// Options configure a Simulator.
type Options struct {
	Fleet *fleet.Fleet
	Seed  uint64
	// PseudonymKey keys the user reference hashes of credential records.
	PseudonymKey []byte
	Mode         Mode
	// StartMs..EndMs is the simulated window (EndMs 0: open, real time only).
	StartMs, EndMs int64
	// Rate is the target records per second (ModeRate).
	Rate float64
	// Speedup paces a backfill: simulated time runs this many times faster
	// than the wall clock (0: as fast as possible).
	Speedup float64
	// Duration (real time) and Count (any mode; raw records) stop the run early.
	Duration time.Duration
	Count    int64

	Rates        activity.Rates
	AnomalyScale float64
	NoAnomalies  bool
	// Gateways decide access. When nil the simulator builds its own from
	// Profiles; pass a Set shared with a locks.Runner to let commands from
	// lock.commands change what locks decide.
	Gateways *locks.Set
	Profiles map[string]locks.Profile

	// Regression is the planted regression (on unless Off or NoAnomalies).
	Regression Regression

	Registrar Registrar
	Sinks     []Sink
	Logger    *slog.Logger
	Now       func() time.Time
	// Progress, when set, is called about every ProgressEvery with the stats so far.
	Progress      func(Stats)
	ProgressEvery time.Duration
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Fleet == nil {
		errs = append(errs, errors.New("fleet is required"))
	}
	if len(o.PseudonymKey) == 0 {
		errs = append(errs, errors.New("pseudonym key is required"))
	}
	switch o.Mode {
	case ModeBackfill:
		if o.EndMs <= o.StartMs {
			errs = append(errs, errors.New("backfill needs a window (end after start)"))
		}
		if o.Speedup < 0 {
			errs = append(errs, errors.New("speedup must not be negative"))
		}
	case ModeRate:
		if o.Rate <= 0 || math.IsInf(o.Rate, 0) || math.IsNaN(o.Rate) {
			errs = append(errs, errors.New("rate must be positive"))
		}
		fallthrough
	case ModeNatural:
		if o.Duration <= 0 && o.Count <= 0 && o.EndMs <= 0 {
			errs = append(errs, errors.New("real time needs a duration or a count to stop by itself"))
		}
	default:
		errs = append(errs, fmt.Errorf("unknown mode %d", o.Mode))
	}
	if o.Count < 0 {
		errs = append(errs, errors.New("count must not be negative"))
	}
	return errors.Join(errs...)
}

// Simulator plays a fleet's activity.
type Simulator struct {
	o   Options
	f   *fleet.Fleet
	gen *activity.Generator
	set *locks.Set
	enc *payload.Encoder
	r   *rand.Rand // delays, follow-up timing

	pending recordHeap
	seq     uint64
	buf     []byte

	// lifecycle as the locks' owners know it
	state       []string         // per credential: last recorded state
	attestedDev []int            // per credential: last attested device (-1 none)
	scenario    []backtest.Label // the generator's labels, same indexes
	generic     []backtest.Label // labels of granted uses found by groundTruth
	open        map[labelKey]int // generic labels still being extended
	cmdSeq      uint64

	lastLegacy map[int]legacyLine // last line queued per legacy panel reader

	stats      Stats
	queued     int64 // records queued (written or pending)
	wallStart  time.Time
	lastT      int64
	nextConnMs int64

	regression regressionState
}

type labelKey struct {
	typ  string
	cred int
}

// New returns a simulator.
func New(o Options) (*Simulator, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	f := o.Fleet
	gen := activity.New(activity.Options{Fleet: f, Seed: o.Seed, StartMs: o.StartMs, EndMs: o.EndMs,
		Rates: o.Rates, AnomalyScale: o.AnomalyScale, NoAnomalies: o.NoAnomalies})
	set := o.Gateways
	if set == nil {
		set = locks.NewSet(locks.SetOptions{Fleet: f, Profiles: o.Profiles, Seed: o.Seed, OriginMs: o.StartMs,
			Provision: true, Skip: func(c int) bool { return !gen.Provisioned(c) },
			Validity: gen.ValidUntil})
	}
	s := &Simulator{
		o: o, f: f, gen: gen, set: set,
		// Vendor ids (Seam, Schlage, Nuki) come from the encoder's random
		// stream: seeded with the start too, so that two runs of one fleet
		// (a backfill, then live traffic) never share an event id.
		enc:         payload.NewEncoder(o.Seed ^ uint64(o.StartMs)),
		r:           rand.New(rand.NewPCG(o.Seed, 0x73696d)),
		state:       make([]string, len(f.Credentials)),
		attestedDev: make([]int, len(f.Credentials)),
		open:        map[labelKey]int{},
		lastLegacy:  map[int]legacyLine{},
	}
	for i := range s.attestedDev {
		s.attestedDev[i] = -1
	}
	s.regression = regressionState{plant: o.Regression, updated: make([]int64, len(f.Credentials))}
	s.regression.plant.defaults(&o)
	if o.NoAnomalies {
		s.regression.plant.Off = true
	}
	s.stats.init(o, f)
	return s, nil
}

// Run registers the fleet and plays its activity until the window, the
// duration or the count is exhausted, or ctx ends (then what was produced
// so far is flushed). It returns the run's statistics and labels.
func (s *Simulator) Run(ctx context.Context) (Stats, []backtest.Label, error) {
	s.wallStart = s.o.Now()
	reg := &Registration{Fleet: s.f}
	for _, it := range s.gen.Initial() {
		rec := s.record(it.Change, it.TsMs)
		reg.Records = append(reg.Records, rec)
		s.observeRecord(&rec)
	}
	if s.o.Registrar != nil {
		if err := s.o.Registrar.Register(ctx, reg); err != nil {
			return s.stats, nil, fmt.Errorf("register fleet: %w", err)
		}
	}
	for i := range reg.Records {
		for _, sink := range s.o.Sinks {
			if err := sink.Credential(ctx, &reg.Records[i]); err != nil {
				return s.stats, nil, err
			}
		}
	}
	s.o.Logger.Info("fleet registered", "sites", len(s.f.Sites), "locks", len(s.f.Locks),
		"subjects", len(s.f.Subjects), "credential_records", len(reg.Records))

	err := s.loop(ctx)
	// Flush what is pending, even after cancellation.
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	// Nothing after the window (follow-ups of a backfill's last attempts);
	// in real time, follow-ups of the last attempts (door closed, relock)
	// but not connectivity changes queued minutes ahead.
	last := s.lastT + int64(time.Minute/time.Millisecond)
	if s.o.Mode == ModeBackfill {
		last = s.o.EndMs - 1
	}
	if ferr := s.flush(flushCtx, last); ferr != nil && err == nil {
		err = ferr
	}
	for _, sink := range s.o.Sinks {
		if cerr := sink.Close(flushCtx); cerr != nil && err == nil {
			err = cerr
		}
	}
	all := append(append([]backtest.Label(nil), s.scenario...), s.generic...)
	s.stats.finish(s.o.Now().Sub(s.wallStart), all, s.set)
	labels := make([]backtest.Label, 0, len(all))
	for _, l := range all {
		if l.StartMs > 0 {
			labels = append(labels, l)
		}
	}
	sort.SliceStable(labels, func(i, j int) bool { return labels[i].StartMs < labels[j].StartMs })
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = nil // stopped by the caller: a normal end
	}
	return s.stats, labels, err
}

func (s *Simulator) loop(ctx context.Context) error {
	lastProgress := s.o.Now()
	for {
		if s.o.Count > 0 && s.queued >= s.o.Count {
			return nil
		}
		if s.o.Duration > 0 && s.o.Mode != ModeBackfill && s.o.Now().Sub(s.wallStart) >= s.o.Duration {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		it, ok := s.gen.Next()
		if !ok {
			if s.o.Mode == ModeNatural {
				// Real time lasts until the window ends, writing what is due.
				_, err := s.clock(ctx, s.o.EndMs)
				return err
			}
			return nil
		}
		t, err := s.clock(ctx, it.TsMs)
		if err != nil {
			return err
		}
		s.stats.simTime(it.TsMs)
		s.connectivity(t)
		if err := s.flush(ctx, t); err != nil {
			return err
		}
		// Scenario labels are copied in as the generator creates them.
		for scenario := s.gen.Labels(); len(s.scenario) < len(scenario); {
			s.scenario = append(s.scenario, scenario[len(s.scenario)])
		}
		s.process(&it, t)
		if s.o.Progress != nil && s.o.Now().Sub(lastProgress) >= s.o.ProgressEvery {
			lastProgress = s.o.Now()
			s.o.Progress(s.stats)
		}
	}
}

// clock maps an item's simulated time to the time it happens at (and waits
// for it in real time).
func (s *Simulator) clock(ctx context.Context, simMs int64) (int64, error) {
	var t int64
	switch s.o.Mode {
	case ModeBackfill:
		t = simMs
		if s.o.Speedup > 0 {
			due := s.wallStart.Add(time.Duration(float64(simMs-s.o.StartMs) / s.o.Speedup * float64(time.Millisecond)))
			if err := sleepUntil(ctx, s.o.Now, due); err != nil {
				return 0, err
			}
		}
	case ModeNatural:
		t = simMs
		// Write queued follow-ups (door closed, relock) when they happen,
		// not when the next attempt comes.
		for s.pending.Len() > 0 && s.pending[0].ts < simMs {
			due := s.pending[0].ts
			if err := sleepUntil(ctx, s.o.Now, time.UnixMilli(due)); err != nil {
				return 0, err
			}
			if err := s.flush(ctx, due); err != nil {
				return 0, err
			}
		}
		if err := sleepUntil(ctx, s.o.Now, time.UnixMilli(simMs)); err != nil {
			return 0, err
		}
	case ModeRate:
		due := s.wallStart.Add(time.Duration(float64(s.queued) / s.o.Rate * float64(time.Second)))
		if err := sleepUntil(ctx, s.o.Now, due); err != nil {
			return 0, err
		}
		t = s.o.Now().UnixMilli()
	}
	if t < s.lastT {
		t = s.lastT
	}
	s.lastT = t
	return t, nil
}

func sleepUntil(ctx context.Context, now func() time.Time, due time.Time) error {
	d := due.Sub(now())
	if d <= 0 {
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// process turns one item into records (queued by time).
func (s *Simulator) process(it *activity.Item, t int64) {
	s.rollout(t)
	switch it.Kind {
	case activity.KindAttempt:
		s.attempt(it, t)
	case activity.KindLockEvent:
		l := &s.f.Locks[it.Lock]
		occ := payload.Occurrence{Lock: l, TsMs: t, Op: it.Op, Method: it.Method, Battery: 8 + s.r.IntN(12)}
		if ts, ok := s.queueAt(occ, -1, Expect{Op: it.Op}); ok && it.Label >= 0 {
			s.extendLabel(int(it.Label), ts, l.DoorID)
		}
	case activity.KindChange:
		s.change(it.Change, t)
	}
}

func (s *Simulator) attempt(it *activity.Item, t int64) {
	f := s.f
	l := &f.Locks[it.Lock]
	c := int(it.Cred)
	role := "unknown"
	var d locks.Decision
	switch {
	case it.Deny != "":
		d = locks.Decision{Reason: it.Deny}
	case c < 0:
		d = locks.Decision{Reason: payload.ReasonInvalid}
	default:
		// The people's days run on the simulated clock (compressed in
		// rate mode): so do their credentials' schedules.
		d = s.set.DecideAt(l.LockID, f.Credentials[c].ID, t, it.TsMs)
		if d.Granted && s.regressed(c, int(it.Device), int(it.Lock), t) {
			d = regressionDecision
			s.stats.RegressionDenials++
		}
	}
	if c >= 0 {
		role = f.Credentials[c].Role
	}
	op := it.Op
	if !d.Granted {
		op = payload.OpDenied
	} else if op == payload.OpDenied {
		op = payload.OpUnlock
	}
	occ := payload.Occurrence{Lock: l, TsMs: t, Op: op, Method: it.Method, Reason: d.Reason}
	exp := Expect{Op: op, Granted: d.Granted}
	if c >= 0 && int(it.Device) != activity.NoDevice {
		if d.Granted || payload.NamesUser(l.Vendor, d.Reason) {
			occ.UserRef = f.UserRef(c, int(it.Device), l.Vendor)
			occ.UserName = f.Subjects[f.Credentials[c].Subject].Name
			exp.SubjectID = f.Subjects[f.Credentials[c].Subject].ID
		}
	}
	s.stats.attempt(role, t, d.Granted)
	ts, visible := s.queueAt(occ, c, exp)
	if visible && it.Label >= 0 {
		s.extendLabel(int(it.Label), ts, "")
	}
	if !d.Granted {
		return
	}
	if visible && c >= 0 {
		s.groundTruth(it, c, ts, l, d)
	}
	// What a door with a sensor and auto-relock reports after a granted unlock.
	after := t
	if l.DoorSensor {
		opened := t + 1500 + s.r.Int64N(2500)
		closed := opened + 4000 + s.r.Int64N(15000)
		s.queue(payload.Occurrence{Lock: l, TsMs: opened, Op: payload.OpDoorOpened}, c, Expect{Op: payload.OpDoorOpened})
		s.queue(payload.Occurrence{Lock: l, TsMs: closed, Op: payload.OpDoorClosed}, c, Expect{Op: payload.OpDoorClosed})
		after = closed
	}
	if l.AutoRelock {
		relock := max(after+1000, t+8000) + s.r.Int64N(5000)
		s.queue(payload.Occurrence{Lock: l, TsMs: relock, Op: payload.OpLock, Method: payload.MethodAuto}, c,
			Expect{Op: payload.OpLock, Granted: true})
	}
}

// groundTruth labels granted uses that detectors must catch whatever the
// scenario that caused them: use after a revocation the lock had not
// applied (the simulation's own revocations, or any removal the control
// plane sent on lock.commands), and use from a device the credential was
// never attested on.
func (s *Simulator) groundTruth(it *activity.Item, c int, t int64, l *fleet.Lock, d locks.Decision) {
	if d.RevokeRequestedMs > 0 && (s.state[c] == event.StateRevoked || d.RevokeExternal) {
		s.extendGeneric(activity.LabelUseAfterRevocaton, c, t, l.DoorID)
	}
	if dev := int(it.Device); dev >= 0 && dev != s.attestedDev[c] {
		s.extendGeneric(activity.LabelUnattestedDevice, c, t, l.DoorID)
	}
}

// extendGeneric extends the open label of a credential, or opens one; a
// gap of more than a day starts a new label.
func (s *Simulator) extendGeneric(typ string, c int, t int64, door string) {
	k := labelKey{typ, c}
	if i, ok := s.open[k]; ok && t-s.generic[i].EndMs <= int64(24*time.Hour/time.Millisecond) {
		s.generic[i].EndMs = t
		return
	}
	cred := &s.f.Credentials[c]
	s.generic = append(s.generic, backtest.Label{Type: typ, SubjectID: s.f.Subjects[cred.Subject].ID,
		CredentialID: cred.ID, DoorID: door, StartMs: t, EndMs: t})
	s.open[k] = len(s.generic) - 1
}

func (s *Simulator) extendLabel(i int, t int64, door string) {
	l := &s.scenario[i]
	if l.StartMs == 0 || t < l.StartMs {
		l.StartMs = t
	}
	if t > l.EndMs {
		l.EndMs = t
	}
	if l.DoorID == "" && door != "" && l.Type != activity.LabelUnlockBurst {
		l.DoorID = door
	}
}

// change records a lifecycle change and pushes its command to the gateways.
func (s *Simulator) change(ch *activity.Change, t int64) {
	f := s.f
	cred := &f.Credentials[ch.Cred]
	if ch.State != "" {
		rec := s.record(ch, t)
		s.push(pendingRecord{ts: t, cred: &rec})
	}
	if ch.Command == "" {
		return
	}
	held := ch.Locks
	if held == nil {
		held = f.Access(ch.Cred)
	}
	s.cmdSeq++
	revocation := ""
	if ch.Command == gw.CommandRevoke {
		revocation = event.ID("keyfleet-simulator", "revocation/"+strconv.FormatUint(s.o.Seed, 10)+"/"+strconv.FormatUint(s.cmdSeq, 10))
	}
	dev := ch.Device
	for _, li := range held {
		l := &f.Locks[li]
		s.cmdSeq++
		cmd := gw.Command{
			CommandID: event.ID("keyfleet-simulator", "command/"+strconv.FormatUint(s.o.Seed, 10)+"/"+strconv.FormatUint(s.cmdSeq, 10)),
			Type:      ch.Command, Vendor: l.Vendor, LockID: l.LockID, CredentialID: cred.ID,
			SubjectID: f.Subjects[cred.Subject].ID, RevocationID: revocation, ValidUntilMs: ch.ValidUntilMs, IssuedMs: t,
		}
		applied := s.set.Submit(cmd, t, locks.SubmitOptions{Lose: ch.Lose[li], Schedule: cred.Schedule, NoAck: true})
		s.stats.Commands[ch.Command]++
		if applied == locks.Never {
			s.stats.CommandsLost++
			continue
		}
		if l.Vendor == "matter" {
			// The lock reports the user slot change once it applied it.
			d := dev
			if d < 0 {
				d = s.curDevice(ch.Cred)
			}
			op := payload.OpUserAdded
			if ch.Command == gw.CommandRevoke {
				op = payload.OpUserRemoved
			}
			s.queue(payload.Occurrence{Lock: l, TsMs: applied, Op: op, UserRef: f.UserRef(ch.Cred, d, "matter")}, ch.Cred,
				Expect{Op: op})
		}
	}
}

// curDevice is the device of a credential's last bound record.
func (s *Simulator) curDevice(c int) int {
	if d := s.attestedDev[c]; d >= 0 {
		return d
	}
	return 0
}

func (s *Simulator) record(ch *activity.Change, t int64) event.Credential {
	dev := ch.Device
	if ch.State == event.StateIssued || ch.State == event.StateActive {
		if dev < 0 {
			dev = 0
		}
	}
	rec := s.f.Record(s.o.PseudonymKey, ch.Cred, dev, ch.State, ch.Attested, t)
	rec.Reason = ch.Reason
	rec.ValidUntilMs = ch.ValidUntilMs
	s.updatedDevice(ch.Cred, &rec)
	return rec
}

// observeRecord updates what the simulation knows about a credential from a
// record it emits.
func (s *Simulator) observeRecord(rec *event.Credential) {
	c := s.credIndex(rec.CredentialID)
	if c < 0 {
		return
	}
	s.state[c] = rec.State
	if rec.Attested && rec.DeviceID != "" {
		for d, dev := range s.f.Credentials[c].Devices {
			if dev.ID == rec.DeviceID {
				s.attestedDev[c] = d
			}
		}
		delete(s.open, labelKey{activity.LabelUnattestedDevice, c})
	}
	s.stats.Changes[rec.State]++
}

func (s *Simulator) credIndex(id string) int {
	// cred-NNNNNN, numbered from 1 in fleet order
	if len(id) > 5 {
		if n, err := strconv.Atoi(id[5:]); err == nil && n >= 1 && n <= len(s.f.Credentials) && s.f.Credentials[n-1].ID == id {
			return n - 1
		}
	}
	return -1
}

// queue encodes nothing yet: it checks the vendor reports the occurrence
// and queues it by time. It reports whether a record will be written.
func (s *Simulator) queue(occ payload.Occurrence, cred int, exp Expect) bool {
	_, ok := s.queueAt(occ, cred, exp)
	return ok
}

// queueAt is queue, also returning the record's event time (legacy panels
// log whole seconds).
func (s *Simulator) queueAt(occ payload.Occurrence, cred int, exp Expect) (int64, bool) {
	if !payload.Reported(&occ) {
		return 0, false
	}
	if occ.Lock.Vendor == "legacy" {
		if occ.TsMs%1000 != 0 {
			// Panels log whole seconds; rounding up keeps records in time order.
			occ.TsMs += 1000 - occ.TsMs%1000
		}
		// Two identical lines in one second would be one event (legacy
		// lines have no event id): a panel that logs the same card twice
		// logs it a second apart.
		sig := legacyLine{occ.TsMs, occ.Op, occ.Method, occ.UserRef, occ.Reason}
		for s.lastLegacy[occ.Lock.Index] == sig {
			occ.TsMs += 1000
			sig.ts = occ.TsMs
		}
		s.lastLegacy[occ.Lock.Index] = sig
	}
	exp.TsMs = occ.TsMs
	s.queued++
	s.push(pendingRecord{ts: occ.TsMs, occ: occ, cred: nil, credIdx: cred, expect: exp})
	return occ.TsMs, true
}

func (s *Simulator) push(r pendingRecord) {
	s.seq++
	r.seq = s.seq
	heap.Push(&s.pending, r)
}

// flush writes every queued record up to t, in time order.
func (s *Simulator) flush(ctx context.Context, t int64) error {
	for s.pending.Len() > 0 && s.pending[0].ts <= t {
		r := heap.Pop(&s.pending).(pendingRecord)
		if r.cred != nil {
			s.observeRecord(r.cred)
			if s.o.Registrar != nil {
				if err := s.o.Registrar.Change(ctx, r.cred); err != nil {
					return fmt.Errorf("report credential change: %w", err)
				}
			}
			for _, sink := range s.o.Sinks {
				if err := sink.Credential(ctx, r.cred); err != nil {
					return err
				}
			}
			continue
		}
		if err := s.writeRaw(ctx, &r); err != nil {
			return err
		}
	}
	return nil
}

func (s *Simulator) writeRaw(ctx context.Context, r *pendingRecord) error {
	l := r.occ.Lock
	received := r.ts
	if s.o.Mode == ModeBackfill {
		// The record reaches keyfleet when the vendor cloud forwards it, or
		// when an offline lock reconnects.
		if online, back := s.set.Online(l.LockID, r.ts); !online {
			received = back
		}
		received += deliveryDelay(s.r, l.Vendor)
	} else if now := s.o.Now().UnixMilli(); now > received {
		received = now
	}
	r.occ.ReceivedMs = received
	var ok bool
	s.buf, ok = s.enc.Encode(s.buf[:0], &r.occ)
	if !ok {
		return nil
	}
	p := s.buf
	rec := RawRecord{Key: l.LockID, Envelope: event.NewRaw(l.Vendor, received, p), Payload: p, Expect: r.expect}
	for _, sink := range s.o.Sinks {
		if err := sink.Raw(ctx, &rec); err != nil {
			return err
		}
	}
	s.stats.record(l.Vendor, r.occ.Op, r.credIdx, s.f, r.ts)
	return nil
}

// deliveryDelay is how long a vendor takes to forward a record.
func deliveryDelay(r *rand.Rand, vendor string) int64 {
	switch vendor {
	case "legacy":
		return 5_000 + r.Int64N(55_000) // panel export batches
	case "matter":
		return 100 + r.Int64N(900)
	default:
		return 200 + int64(r.ExpFloat64()*600)
	}
}

// connectivity queues the locks' offline/online reports due before t.
func (s *Simulator) connectivity(t int64) {
	const step = int64(10 * time.Minute / time.Millisecond)
	if s.nextConnMs == 0 {
		s.nextConnMs = t - t%step
	}
	for s.nextConnMs <= t+step {
		for _, tr := range s.set.Transitions(s.nextConnMs, s.nextConnMs+step) {
			l, ok := s.f.LockByID(tr.LockID)
			if !ok {
				continue
			}
			op := payload.OpOffline
			if tr.Online {
				op = payload.OpOnline
			}
			s.queue(payload.Occurrence{Lock: l, TsMs: max(tr.AtMs, s.lastT), Op: op}, -1, Expect{Op: op})
		}
		s.nextConnMs += step
	}
}

type legacyLine struct {
	ts                      int64
	op                      payload.Op
	method, userRef, reason string
}

type pendingRecord struct {
	ts      int64
	seq     uint64
	occ     payload.Occurrence
	cred    *event.Credential
	credIdx int
	expect  Expect
}

type recordHeap []pendingRecord

func (h recordHeap) Len() int { return len(h) }
func (h recordHeap) Less(i, j int) bool {
	if h[i].ts != h[j].ts {
		return h[i].ts < h[j].ts
	}
	return h[i].seq < h[j].seq
}
func (h recordHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *recordHeap) Push(x any)   { *h = append(*h, x.(pendingRecord)) }
func (h *recordHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = pendingRecord{}
	*h = old[:len(old)-1]
	return x
}

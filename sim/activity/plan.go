package activity

import (
	"math"
	"math/rand/v2"
	"slices"

	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/internal/event"
	"github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/payload"
)

// planner plans one day.
type planner struct {
	g        *Generator
	dayStart int64
	wd       int // weekday, 0 = Sunday
	items    []Item
}

func (p *planner) rnd() *rand.Rand { return p.g.r }
func (p *planner) weekend() bool   { return p.wd == 0 || p.wd == 6 }

// at is a time of the planned day, m minutes after midnight (may run into
// the next day).
func (p *planner) at(m float64) int64 {
	return p.dayStart + int64(m*float64(minute)) + p.rnd().Int64N(60_000)
}

func (p *planner) jitter(mean, sd float64) float64 { return mean + p.rnd().NormFloat64()*sd }

func (p *planner) uniform(a, b float64) float64 { return a + (b-a)*p.rnd().Float64() }

func poisson(r *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	// Knuth for small lambda; normal approximation beyond.
	if lambda > 30 {
		return max(0, int(math.Round(lambda+r.NormFloat64()*math.Sqrt(lambda))))
	}
	l, k, q := math.Exp(-lambda), 0, 1.0
	for {
		q *= r.Float64()
		if q <= l {
			return k
		}
		k++
	}
}

func (p *planner) pick(locks []int) int {
	if len(locks) == 0 {
		return -1
	}
	return locks[p.rnd().IntN(len(locks))]
}

// attempt plans credential c presenting its key at lock at t.
func (p *planner) attempt(t int64, c, lock int, label int32) {
	if lock < 0 {
		return
	}
	p.attemptWith(t, c, p.g.device(c, t), lock, label, "")
}

func (p *planner) attemptWith(t int64, c, dev, lock int, label int32, deny string) {
	f := p.g.f
	l := &f.Locks[lock]
	cred := &f.Credentials[c]
	subj := &f.Subjects[cred.Subject]
	r := p.rnd()
	method := ""
	if cred.HasPIN && l.Keypad && subj.Habit.PrefersPIN {
		dev, method = fleet.PINDevice, payload.MethodPIN
	} else {
		ms := payload.PhoneMethods[l.Vendor]
		method = ms[r.IntN(len(ms))]
	}
	op := payload.OpUnlock
	if l.Kind == fleet.KindEntrance && (l.Vendor == "nuki" || (l.Vendor == "matter" && r.IntN(2) == 0)) {
		op = payload.OpUnlatch
	}
	if deny == "" && label == NoLabel && r.Float64() < 0.012 {
		// The phone was not read or the code mistyped; the person tries again.
		p.items = append(p.items, Item{TsMs: t - 3000 - r.Int64N(12000), Kind: KindAttempt, Lock: int32(lock),
			Cred: int32(c), Device: int16(dev), Op: payload.OpDenied, Method: method, Deny: payload.ReasonInvalid, Label: NoLabel})
	}
	if deny != "" {
		op = payload.OpDenied
	}
	p.items = append(p.items, Item{TsMs: t, Kind: KindAttempt, Lock: int32(lock), Cred: int32(c), Device: int16(dev),
		Op: op, Method: method, Deny: deny, Label: label})
}

func (p *planner) lockEvent(t int64, lock int, op payload.Op, method string, label int32) {
	p.items = append(p.items, Item{TsMs: t, Kind: KindLockEvent, Lock: int32(lock), Cred: -1, Device: NoDevice,
		Op: op, Method: method, Label: label})
}

func (p *planner) change(t int64, ch *Change) {
	p.items = append(p.items, Item{TsMs: t, Kind: KindChange, Cred: int32(ch.Cred), Lock: -1, Device: NoDevice, Label: NoLabel, Change: ch})
}

func (p *planner) newLabel(typ string, c, lock int, subtle bool) int32 {
	f := p.g.f
	l := backtest.Label{Type: typ, Subtle: subtle}
	if c >= 0 {
		l.CredentialID = f.Credentials[c].ID
		l.SubjectID = f.Subjects[f.Credentials[c].Subject].ID
	}
	if lock >= 0 {
		l.DoorID = f.Locks[lock].DoorID
	}
	p.g.labels = append(p.g.labels, l)
	return int32(len(p.g.labels) - 1)
}

// --- lifecycle -------------------------------------------------------------

func (p *planner) lifecycle() {
	g, f, r := p.g, p.g.f, p.rnd()
	moveIn := 0.04
	if p.weekend() {
		moveIn *= 1.8
	}
	if dom := dayOfMonth(p.dayStart); dom <= 3 {
		moveIn *= 2.5 // leases start at the beginning of the month
	}
	for c := range f.Credentials[:f.Base.Credentials] { // newcomers: scenarios()
		cred := &f.Credentials[c]
		subj := &f.Subjects[cred.Subject]
		cs := &g.creds[c]
		x := r.Float64()
		switch {
		case subj.Incoming && !cs.movedIn:
			if x < moveIn {
				p.moveIn(c, p.at(p.uniform(9*60, 12*60)))
			}
			continue
		case !g.active(c, p.dayStart):
			continue
		case cred.Role == fleet.RoleResident && x < 0.0015:
			p.moveOut(c)
			continue
		case cred.Role == fleet.RoleContractor && !p.weekend() && x < 0.015:
			t := p.at(p.uniform(17*60, 18*60+30))
			p.revoke(c, t, "contract ended", nil)
			continue
		}
		y := r.Float64()
		switch {
		case y < 0.0015 && cs.nextDevice < len(cred.Devices):
			// A new phone, attested when it was enrolled.
			p.switchDevice(c, p.at(p.uniform(8*60, 22*60)), true)
		case y > 0.9997:
			t := p.at(p.uniform(8*60, 20*60))
			back := t + int64(p.uniform(1, 48)*float64(hour))
			p.suspend(c, t, back)
		}
	}
}

func dayOfMonth(ms int64) int {
	// civil-from-days (Howard Hinnant), enough for the day of month.
	z := floorDiv(ms, day) + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	return int(doy - (153*mp+2)/5 + 1)
}

func (p *planner) moveIn(c int, t int64) {
	g, f := p.g, p.g.f
	cs := &g.creds[c]
	cs.movedIn = true
	cs.activeFrom = t + 30*minute
	p.change(t, &Change{Cred: c, State: event.StateIssued, Device: 0, Attested: true, Command: gateway.CommandGrant})
	p.change(t+2*minute+p.rnd().Int64N(minute), &Change{Cred: c, State: event.StateActive, Device: 0, Attested: true})
	// Moving day: many trips through the entrance and the unit door.
	subj := &f.Subjects[f.Credentials[c].Subject]
	site := &f.Sites[subj.Site]
	n := 15 + p.rnd().IntN(21)
	for i := 0; i < n; i++ {
		tt := cs.activeFrom + int64(p.uniform(0, 8*60)*float64(minute))
		lock := site.Entrances[subj.Habit.Entrance]
		if i%2 == 1 {
			lock = subj.UnitLock
		}
		p.attempt(tt, c, lock, NoLabel)
	}
	// The entrance door is propped open now and then.
	for i := 0; i < 1+p.rnd().IntN(3); i++ {
		lock := site.Entrances[subj.Habit.Entrance]
		if payload.Reports(f.Locks[lock].Vendor, payload.OpDoorAjar, "") {
			p.lockEvent(cs.activeFrom+int64(p.uniform(0, 8*60)*float64(minute)), lock, payload.OpDoorAjar, "", NoLabel)
		}
	}
}

func (p *planner) moveOut(c int) {
	g, f := p.g, p.g.f
	subj := &f.Subjects[f.Credentials[c].Subject]
	site := &f.Sites[subj.Site]
	for i := 0; i < 5+p.rnd().IntN(11); i++ {
		p.attempt(p.at(p.uniform(10*60, 16*60)), c, site.Entrances[subj.Habit.Entrance], NoLabel)
	}
	t := p.at(p.uniform(17*60, 19*60))
	p.revoke(c, t, "moved out", nil)
	if p.rnd().Float64() < 0.2 {
		// Forgot the key no longer works.
		tt := t + int64(p.uniform(20, 72)*float64(hour))
		lock := site.Entrances[subj.Habit.Entrance]
		p.attemptWith(tt, c, g.device(c, t), lock, NoLabel, "")
	}
}

func (p *planner) revoke(c int, t int64, reason string, lose map[int]bool) {
	p.g.creds[c].revokedAt = t
	p.change(t, &Change{Cred: c, State: event.StateRevoked, Device: -1, Reason: reason,
		Command: gateway.CommandRevoke, Lose: lose})
}

func (p *planner) suspend(c int, from, until int64) {
	cs := &p.g.creds[c]
	cs.suspended = append(cs.suspended, [2]int64{from, until})
	p.change(from, &Change{Cred: c, State: event.StateSuspended, Device: -1, Reason: "reported lost phone",
		Command: gateway.CommandRevoke})
	p.change(until, &Change{Cred: c, State: event.StateActive, Device: p.g.device(c, from), Attested: true,
		Reason: "phone found", Command: gateway.CommandGrant})
}

// switchDevice moves credential c to its next spare phone at t.
func (p *planner) switchDevice(c int, t int64, attested bool) int {
	cs := &p.g.creds[c]
	dev := cs.nextDevice
	cs.nextDevice++
	cs.switches = append(cs.switches, [2]int64{t, int64(dev)})
	reason := "device upgrade"
	if !attested {
		reason = "device change"
	}
	p.change(t, &Change{Cred: c, State: event.StateActive, Device: dev, Attested: attested, Reason: reason})
	return dev
}

// --- anomalies -------------------------------------------------------------

func (p *planner) count(rate float64) int {
	g := p.g
	return poisson(p.rnd(), rate*g.o.AnomalyScale*float64(g.f.Base.Subjects)/1000)
}

// pickCred picks an active credential of the base estate (by its holder's
// role weights) that satisfies ok.
func (p *planner) pickCred(t int64, weights map[string]float64, ok func(c int) bool) int {
	f, r := p.g.f, p.rnd()
	for try := 0; try < 200; try++ {
		c := r.IntN(f.Base.Credentials)
		w := weights[f.Credentials[c].Role]
		if w == 0 || r.Float64() > w || !p.g.active(c, t) || !p.g.active(c, t+3*day) {
			continue
		}
		if ok == nil || ok(c) {
			return c
		}
	}
	return -1
}

func (p *planner) anomalyTime() int64 {
	if p.rnd().Float64() < 0.35 {
		return p.at(p.uniform(0, 5*60)) // night
	}
	return p.at(p.uniform(8*60, 22*60))
}

func (p *planner) anomalies() {
	rt := p.g.o.Rates
	for i := p.count(rt.Burst); i > 0; i-- {
		p.burst(false)
	}
	for i := p.count(rt.SubtleBurst); i > 0; i-- {
		p.burst(true)
	}
	for i := p.count(rt.DeviceSwitch); i > 0; i-- {
		p.unattestedSwitch()
	}
	for i := p.count(rt.ClonedDevice); i > 0; i-- {
		p.clonedDevice()
	}
	for i := p.count(rt.UseAfterRevocation); i > 0; i-- {
		p.useAfterRevocation()
	}
	for i := p.count(rt.DeniedStorm); i > 0; i-- {
		p.deniedStorm()
	}
	for i := p.count(rt.DoorForced); i > 0; i-- {
		p.doorForced()
	}
}

var burstRoles = map[string]float64{fleet.RoleResident: 1, fleet.RoleConcierge: 1, fleet.RoleStaff: 1,
	fleet.RoleContractor: 0.6, fleet.RoleGuest: 0.3}

// burst: a key opens far more doors in a short window than its holder ever
// does (a shared or stolen phone, someone casing the building).
func (p *planner) burst(subtle bool) {
	f, r := p.g.f, p.rnd()
	t := p.anomalyTime()
	c := p.pickCred(t, burstRoles, func(c int) bool {
		acc := f.Access(c)
		if len(acc) < 4 {
			return false
		}
		// Prefer keys that open service doors (over-provisioned residents,
		// staff): "a resident who opens 12 service doors in 30 minutes".
		return subtle || len(acc) >= 8 || r.Float64() < 0.3
	})
	if c < 0 {
		return
	}
	acc := append([]int(nil), f.Access(c)...)
	r.Shuffle(len(acc), func(i, j int) { acc[i], acc[j] = acc[j], acc[i] })
	var n int
	var window float64
	if subtle {
		n, window = 6+r.IntN(4), p.uniform(45, 75)
	} else {
		n, window = 12+r.IntN(14), p.uniform(15, 40)
	}
	label := p.newLabel(LabelUnlockBurst, c, -1, subtle)
	for i := 0; i < n; i++ {
		tt := t + int64(window*float64(minute)*float64(i)/float64(n)) + r.Int64N(30_000)
		p.attempt(tt, c, acc[i%len(acc)], label)
	}
}

// unattestedSwitch: a credential moves to a new phone without a fresh
// attestation; it is attested only a day or more later.
func (p *planner) unattestedSwitch() {
	f := p.g.f
	t := p.at(p.uniform(7*60, 22*60))
	c := p.pickCred(t, map[string]float64{fleet.RoleResident: 1, fleet.RoleStaff: 1, fleet.RoleConcierge: 1,
		fleet.RoleContractor: 1, fleet.RoleMaintenance: 0.5, fleet.RoleCleaning: 0.5},
		func(c int) bool { return p.g.creds[c].nextDevice < len(f.Credentials[c].Devices) })
	if c < 0 {
		return
	}
	dev := p.switchDevice(c, t, false)
	later := t + int64(p.uniform(24, 72)*float64(hour))
	p.change(later, &Change{Cred: c, State: event.StateActive, Device: dev, Attested: true, Reason: "attested"})
}

// clonedDevice: a copy of the key on a phone it was never issued to is used
// a few times while its owner keeps using the real one.
func (p *planner) clonedDevice() {
	f, r := p.g.f, p.rnd()
	t := p.anomalyTime()
	c := p.pickCred(t, map[string]float64{fleet.RoleResident: 1, fleet.RoleStaff: 1, fleet.RoleConcierge: 1,
		fleet.RoleMaintenance: 1, fleet.RoleCleaning: 1, fleet.RoleContractor: 1},
		func(c int) bool {
			return p.g.creds[c].nextDevice < len(f.Credentials[c].Devices) && len(f.Access(c)) >= 2
		})
	if c < 0 {
		return
	}
	cs := &p.g.creds[c]
	dev := cs.nextDevice
	cs.nextDevice++ // never used by the owner
	acc := f.Access(c)
	for i := 0; i < 2+r.IntN(4); i++ {
		tt := t + int64(p.uniform(0, 12)*float64(hour))
		p.attemptPhone(tt, c, dev, acc[r.IntN(len(acc))])
	}
}

// attemptPhone is an attempt with a given phone (never a keypad code).
func (p *planner) attemptPhone(t int64, c, dev, lock int) {
	l := &p.g.f.Locks[lock]
	ms := payload.PhoneMethods[l.Vendor]
	p.items = append(p.items, Item{TsMs: t, Kind: KindAttempt, Lock: int32(lock), Cred: int32(c), Device: int16(dev),
		Op: payload.OpUnlock, Method: ms[p.rnd().IntN(len(ms))], Label: NoLabel})
}

// useAfterRevocation: a credential is revoked, one gateway (a legacy panel
// when the holder uses one) loses the revocation, and the holder keeps
// using that door until the revocation is re-sent days later.
func (p *planner) useAfterRevocation() {
	f, r := p.g.f, p.rnd()
	t := p.at(p.uniform(9*60, 19*60))
	c := p.pickCred(t, map[string]float64{fleet.RoleContractor: 1, fleet.RoleStaff: 1, fleet.RoleResident: 0.4,
		fleet.RoleCleaning: 1, fleet.RoleMaintenance: 1, fleet.RoleConcierge: 1}, func(c int) bool { return len(f.Access(c)) >= 2 })
	if c < 0 {
		return
	}
	acc := f.Access(c)
	var legacy []int
	for _, l := range acc {
		if f.Locks[l].Vendor == "legacy" {
			legacy = append(legacy, l)
		}
	}
	door := p.pick(legacy)
	if door < 0 {
		door = acc[r.IntN(len(acc))]
	}
	reasons := []string{"contract ended", "employment ended", "moved out", "access withdrawn"}
	p.revoke(c, t, reasons[r.IntN(len(reasons))], map[int]bool{door: true})
	dev := p.g.device(c, t)
	uses := 1 + r.IntN(4)
	last := t
	for i := 0; i < uses; i++ {
		tt := t + int64(p.uniform(2, 60)*float64(hour))
		m := (tt - p.dayStart) % day / minute
		if m < 7*60 { // people come by in the daytime
			tt += (8*60 - m) * minute
		}
		p.items = append(p.items, Item{TsMs: tt, Kind: KindAttempt, Lock: int32(door), Cred: int32(c), Device: int16(dev),
			Op: payload.OpUnlock, Method: payload.PhoneMethods[f.Locks[door].Vendor][0], Label: NoLabel})
		last = max(last, tt)
		if r.Float64() < 0.4 {
			// and tries another door, which has applied the revocation
			other := acc[r.IntN(len(acc))]
			if other != door {
				p.attemptWith(tt+int64(p.uniform(1, 10)*float64(minute)), c, dev, other, NoLabel, "")
			}
		}
	}
	// Operations notice the lock still pending and push the revocation again.
	p.change(last+int64(p.uniform(6, 48)*float64(hour)), &Change{Cred: c, Command: gateway.CommandRevoke, Locks: []int{door}, Device: -1})
}

// deniedStorm: someone tries one door again and again with codes or cards it
// does not know.
func (p *planner) deniedStorm() {
	f, r := p.g.f, p.rnd()
	site := &f.Sites[r.IntN(f.Base.Sites)]
	var cands []int
	for _, group := range [][]int{site.Entrances, site.Garages, site.Amenities, site.Services, site.Units} {
		for _, l := range group {
			if _, m := stormMethod(&f.Locks[l]); m != "" {
				cands = append(cands, l)
			}
		}
		if len(cands) > 0 && r.Float64() < 0.7 {
			break
		}
	}
	lock := p.pick(cands)
	if lock < 0 {
		return
	}
	l := &f.Locks[lock]
	t := p.anomalyTime()
	n := 8 + r.IntN(23)
	window := p.uniform(3, 15)
	label := p.newLabel(LabelDeniedStorm, -1, lock, false)
	_, method := stormMethod(l)
	for i := 0; i < n; i++ {
		tt := t + int64(window*float64(minute)*float64(i)/float64(n)) + r.Int64N(2000)
		p.items = append(p.items, Item{TsMs: tt, Kind: KindAttempt, Lock: int32(lock), Cred: -1, Device: NoDevice,
			Op: payload.OpDenied, Method: method, Deny: payload.ReasonInvalid, Label: label})
		if i == 5 && method == payload.MethodPIN && (l.Vendor == "schlage" || l.Vendor == "matter") {
			p.lockEvent(tt+500, lock, payload.OpKeypadLockout, "", label)
		}
	}
}

// stormMethod is how a stranger hammers a lock whose refusals are reported.
func stormMethod(l *fleet.Lock) (ok bool, method string) {
	switch {
	case l.Keypad && payload.Reports(l.Vendor, payload.OpDenied, payload.MethodPIN):
		return true, payload.MethodPIN
	case l.Vendor == "legacy":
		return true, payload.MethodCard
	case payload.Reports(l.Vendor, payload.OpDenied, payload.PhoneMethods[l.Vendor][0]):
		return true, payload.PhoneMethods[l.Vendor][0]
	}
	return false, ""
}

// doorForced: a door is opened without anyone unlocking it.
func (p *planner) doorForced() {
	f, r := p.g.f, p.rnd()
	site := &f.Sites[r.IntN(f.Base.Sites)]
	var cands []int
	for _, l := range site.Locks {
		if payload.Reports(f.Locks[l].Vendor, payload.OpDoorForced, "") {
			cands = append(cands, l)
		}
	}
	lock := p.pick(cands)
	if lock < 0 {
		return
	}
	t := p.anomalyTime()
	label := p.newLabel(LabelDoorForced, -1, lock, false)
	p.lockEvent(t, lock, payload.OpDoorForced, "", label)
	if l := &f.Locks[lock]; l.DoorSensor && payload.Reports(l.Vendor, payload.OpDoorClosed, "") {
		p.lockEvent(t+int64(p.uniform(20, 180)*1000), lock, payload.OpDoorClosed, "", NoLabel)
	}
}

// --- routines --------------------------------------------------------------

func (p *planner) routines() {
	f := p.g.f
	for s := range f.Subjects[:f.Base.Subjects] { // newcomers: scenarios()
		p.dailyRoutine(&f.Subjects[s])
	}
	p.emergencies()
}

// dailyRoutine plans subj's day by its role.
func (p *planner) dailyRoutine(subj *fleet.Subject) {
	// Checked again per attempt: a change today (move-out at 17:00) ends
	// the routine from then on.
	if c := subj.Credential; !p.g.active(c, p.dayStart) && !p.g.active(c, p.dayStart+day-1) {
		return
	}
	switch subj.Role {
	case fleet.RoleResident:
		p.resident(subj)
	case fleet.RoleGuest:
		p.guest(subj)
	case fleet.RoleContractor:
		p.contractor(subj)
	case fleet.RoleMaintenance:
		p.maintenance(subj)
	case fleet.RoleCleaning:
		p.cleaning(subj)
	case fleet.RoleConcierge:
		p.concierge(subj)
	case fleet.RoleStaff:
		p.staff(subj)
	case fleet.RoleInspection:
		p.inspection(subj)
	}
}

// routine plans an attempt of subj's routine, if the holder is active then.
func (p *planner) routine(t int64, subj *fleet.Subject, lock int) {
	if lock >= 0 && p.g.active(subj.Credential, t) {
		p.attempt(t, subj.Credential, lock, NoLabel)
	}
}

func (p *planner) arrival(t int64, subj *fleet.Subject) {
	f := p.g.f
	site := &f.Sites[subj.Site]
	door := site.Entrances[subj.Habit.Entrance]
	if subj.Habit.HasCar && len(site.Garages) > 0 && p.rnd().Float64() < 0.85 && f.Allowed(subj.Credential, site.Garages[0]) {
		door = site.Garages[0]
	} else if p.rnd().Float64() < 0.15 {
		door = p.pick(site.Entrances)
	}
	p.routine(t, subj, door)
}

func (p *planner) homecoming(t int64, subj *fleet.Subject) {
	p.arrival(t, subj)
	p.routine(t+int64(p.uniform(1, 4)*float64(minute)), subj, subj.UnitLock)
}

func (p *planner) resident(subj *fleet.Subject) {
	h, r, site := &subj.Habit, p.rnd(), &p.g.f.Sites[subj.Site]
	act := h.Activity
	if p.weekend() || !h.WorksAway {
		// Home days: errands and outings spread over the day.
		n := poisson(r, 1.4*act)
		for i := 0; i < n; i++ {
			p.homecoming(p.at(p.uniform(10*60, 20*60)), subj)
		}
	} else {
		leave := p.jitter(float64(h.LeaveMin), 20)
		if r.Float64() < 0.4 {
			p.lockEvent(p.at(leave), subj.UnitLock, payload.OpLock, payload.MethodButton, NoLabel)
		}
		p.homecoming(p.at(p.jitter(float64(h.ReturnMin), 45)), subj)
		for i := poisson(r, 0.5*act); i > 0; i-- {
			p.homecoming(p.at(p.uniform(18*60+30, 21*60+30)), subj)
		}
	}
	amenity := h.Amenity
	if p.weekend() {
		amenity *= 1.6
	}
	if r.Float64() < amenity && len(site.Amenities) > 0 {
		var t int64
		switch {
		case p.weekend():
			t = p.at(p.uniform(9*60, 20*60))
		case r.Float64() < 0.3:
			t = p.at(p.uniform(6*60+15, 7*60+30))
		default:
			t = p.at(p.uniform(18*60+30, 22*60))
		}
		p.routine(t, subj, p.pick(site.Amenities))
		p.routine(t+int64(p.uniform(30, 90)*float64(minute)), subj, subj.UnitLock)
	}
	night := 0.04
	if h.NightOwl {
		night = 0.3
	}
	if p.weekend() {
		night *= 1.8
	}
	if r.Float64() < night {
		p.homecoming(p.at(p.uniform(23*60, 26*60+30)), subj)
	}
}

func (p *planner) guest(subj *fleet.Subject) {
	r := p.rnd()
	visit := 0.3
	if p.weekend() {
		visit = 0.5
	}
	site := &p.g.f.Sites[subj.Site]
	if cs := &p.g.creds[subj.Credential]; cs.validUntilMs > 0 && cs.validUntilMs < p.dayStart {
		// The pass has expired; now and then it still gets tried.
		if r.Float64() < 0.1 {
			p.attempt(p.at(p.uniform(10*60, 20*60)), subj.Credential, site.Entrances[subj.Habit.Entrance], NoLabel)
		}
		return
	}
	if r.Float64() >= visit*subj.Habit.Activity {
		return
	}
	t := p.at(p.jitter(float64(subj.Habit.LeaveMin), 120))
	p.routine(t, subj, site.Entrances[subj.Habit.Entrance])
	p.routine(t+int64(p.uniform(1, 3)*float64(minute)), subj, subj.UnitLock)
	if r.Float64() < 0.35 {
		t2 := t + int64(p.uniform(2, 6)*float64(hour))
		p.routine(t2, subj, site.Entrances[subj.Habit.Entrance])
		p.routine(t2+int64(p.uniform(1, 3)*float64(minute)), subj, subj.UnitLock)
	}
}

func (p *planner) contractor(subj *fleet.Subject) {
	h, r := &subj.Habit, p.rnd()
	if !h.Works(p.wd) || r.Float64() < 0.15 {
		return
	}
	f := p.g.f
	site := &f.Sites[subj.Site]
	start := p.jitter(float64(h.LeaveMin), 20)
	if r.Float64() < 0.04 {
		// Too early: outside the credential's schedule; waits and retries.
		p.routine(p.at(p.uniform(6*60+10, 6*60+55)), subj, site.Entrances[h.Entrance])
		start = p.uniform(7*60, 7*60+15)
	}
	p.arrival(p.at(start), subj)
	acc := f.Access(subj.Credential)
	n := 3 + r.IntN(6)
	end := p.jitter(float64(h.ReturnMin), 30)
	for i := 0; i < n; i++ {
		lock := acc[r.IntN(len(acc))]
		p.routine(p.at(p.uniform(start+10, end)), subj, lock)
	}
	if r.Float64() < 0.5 {
		p.routine(p.at(p.uniform(12*60+30, 13*60+30)), subj, site.Entrances[h.Entrance])
	}
}

func (p *planner) maintenance(subj *fleet.Subject) {
	h, r := &subj.Habit, p.rnd()
	f := p.g.f
	site := &f.Sites[subj.Site]
	inspection := site.Index%5 + 1 // a weekday per site
	isInspector := p.isFirstOfRole(subj)
	if !h.Works(p.wd) {
		if r.Float64() < 0.08 { // on call: one emergency job
			t := p.at(p.uniform(0, 24*60))
			p.arrival(t, subj)
			p.routine(t+int64(p.uniform(3, 10)*float64(minute)), subj, p.pick(site.Services))
			p.routine(t+int64(p.uniform(10, 20)*float64(minute)), subj, p.pick(site.Units))
		}
		return
	}
	start := p.jitter(float64(h.LeaveMin), 15)
	p.arrival(p.at(start), subj)
	tm := start + 15
	if isInspector && p.wd == inspection {
		// Weekly inspection round: a large part of the unit doors in a morning.
		units := append([]int(nil), site.Units...)
		r.Shuffle(len(units), func(i, j int) { units[i], units[j] = units[j], units[i] })
		k := len(units) * (30 + r.IntN(30)) / 100
		for _, u := range units[:k] {
			tm += p.uniform(2, 5)
			p.routine(p.at(tm), subj, u)
		}
	}
	orders := 3 + r.IntN(5)
	for i := 0; i < orders && tm < float64(h.ReturnMin); i++ {
		tm += p.uniform(10, 40)
		p.routine(p.at(tm), subj, p.pick(site.Services))
		for j := r.IntN(3); j >= 0; j-- {
			tm += p.uniform(3, 15)
			p.routine(p.at(tm), subj, p.pick(site.Units))
		}
		if r.Float64() < 0.3 {
			tm += p.uniform(5, 20)
			p.routine(p.at(tm), subj, p.pick(site.Amenities))
		}
		tm += p.uniform(15, 60)
	}
}

// isFirstOfRole reports whether subj is the first of its role at its site.
func (p *planner) isFirstOfRole(subj *fleet.Subject) bool {
	f := p.g.f
	for i := subj.Index - 1; i >= 0 && f.Subjects[i].Site == subj.Site; i-- {
		if f.Subjects[i].Role == subj.Role {
			return false
		}
	}
	return true
}

func (p *planner) cleaning(subj *fleet.Subject) {
	h, r := &subj.Habit, p.rnd()
	if !h.Works(p.wd) {
		return
	}
	site := &p.g.f.Sites[subj.Site]
	tm := p.jitter(float64(h.LeaveMin), 15)
	p.routine(p.at(tm), subj, site.Entrances[h.Entrance])
	// The round: every amenity, some service rooms, a run of unit doors.
	for _, l := range site.Amenities {
		tm += p.uniform(6, 15)
		p.routine(p.at(tm), subj, l)
	}
	for i := 0; i < 2+r.IntN(2); i++ {
		tm += p.uniform(4, 12)
		p.routine(p.at(tm), subj, p.pick(site.Services))
	}
	start := r.IntN(len(site.Units))
	n := 6 + r.IntN(9)
	for i := 0; i < n; i++ {
		tm += p.uniform(3, 9)
		p.routine(p.at(tm), subj, site.Units[(start+i)%len(site.Units)])
	}
}

func (p *planner) concierge(subj *fleet.Subject) {
	h, r := &subj.Habit, p.rnd()
	if !h.Works(p.wd) {
		return
	}
	f := p.g.f
	site := &f.Sites[subj.Site]
	from, until := float64(h.LeaveMin), float64(h.ReturnMin)
	p.arrival(p.at(from-p.uniform(5, 15)), subj)
	mailroom := site.Services[0]
	for i := 10 + r.IntN(16); i > 0; i-- {
		p.routine(p.at(p.uniform(from, until)), subj, mailroom)
	}
	// Buzzing visitors and couriers in from the desk.
	for i := 4 + r.IntN(10); i > 0; i-- {
		t := p.at(p.uniform(from, until))
		lock := p.pick(site.Entrances)
		if p.g.active(subj.Credential, t) {
			p.items = append(p.items, Item{TsMs: t, Kind: KindAttempt, Lock: int32(lock), Cred: int32(subj.Credential),
				Device: int16(p.g.device(subj.Credential, t)), Op: payload.OpUnlock, Method: payload.MethodAppRemote, Label: NoLabel})
		}
	}
	for i := r.IntN(3); i > 0; i-- {
		p.routine(p.at(p.uniform(from, until)), subj, p.pick(site.Amenities))
	}
}

func (p *planner) staff(subj *fleet.Subject) {
	h, r := &subj.Habit, p.rnd()
	if !h.Works(p.wd) || r.Float64() < 0.08 {
		return
	}
	site := &p.g.f.Sites[subj.Site]
	start := p.jitter(float64(h.LeaveMin+60), 20)
	p.arrival(p.at(start), subj)
	office := site.Services[len(site.Services)-1]
	for i := 2 + r.IntN(3); i > 0; i-- {
		p.routine(p.at(p.uniform(start+5, float64(h.ReturnMin))), subj, office)
	}
	for i := 1 + r.IntN(3); i > 0; i-- {
		p.routine(p.at(p.uniform(start+5, float64(h.ReturnMin))), subj, p.pick(site.Services))
	}
	for i := r.IntN(3); i > 0; i-- {
		p.routine(p.at(p.uniform(start+5, float64(h.ReturnMin))), subj, p.pick(site.Amenities))
	}
}

// emergencies: now and then responders come with break-glass keys.
func (p *planner) emergencies() {
	f, r := p.g.f, p.rnd()
	for s := range f.Sites[:f.Base.Sites] {
		if r.Float64() >= 0.05 {
			continue
		}
		var responders []int
		for i := range f.Subjects {
			if f.Subjects[i].Site == s && f.Subjects[i].Role == fleet.RoleEmergency {
				responders = append(responders, i)
			}
		}
		if len(responders) == 0 {
			continue
		}
		subj := &f.Subjects[responders[r.IntN(len(responders))]]
		site := &f.Sites[s]
		t := p.at(p.uniform(0, 24*60))
		p.routine(t, subj, p.pick(site.Entrances))
		for i := 1 + r.IntN(4); i > 0; i-- {
			t += int64(p.uniform(1, 6) * float64(minute))
			lock := p.pick(site.Units)
			if r.Float64() < 0.3 {
				lock = p.pick(site.Services)
			}
			p.routine(t, subj, lock)
		}
	}
}

// --- lock noise ------------------------------------------------------------

func (p *planner) lockNoise() {
	f, r := p.g.f, p.rnd()
	for i := range f.Locks {
		l := &f.Locks[i]
		if i >= f.Base.Locks && p.dayStart/day < p.g.buildingDay {
			continue // the new building's locks before it opens (they come last)
		}
		x := r.Float64()
		switch {
		case x < 0.002:
			if payload.Reports(l.Vendor, payload.OpJammed, "") {
				p.lockEvent(p.at(p.uniform(6*60, 23*60)), i, payload.OpJammed, "", NoLabel)
			}
		case x < 0.0025:
			if payload.Reports(l.Vendor, payload.OpTamper, "") {
				p.lockEvent(p.at(p.uniform(0, 24*60)), i, payload.OpTamper, "", NoLabel)
			}
		case x < 0.012:
			if payload.Reports(l.Vendor, payload.OpBatteryLow, "") {
				p.items = append(p.items, Item{TsMs: p.at(p.uniform(0, 24*60)), Kind: KindLockEvent, Lock: int32(i), Cred: -1,
					Device: NoDevice, Op: payload.OpBatteryLow, Label: NoLabel})
			}
		case x < 0.03:
			if l.DoorSensor && payload.Reports(l.Vendor, payload.OpDoorAjar, "") {
				p.lockEvent(p.at(p.uniform(7*60, 22*60)), i, payload.OpDoorAjar, "", NoLabel)
			}
		case x < 0.05:
			// A mechanical key or the inside thumbturn.
			if payload.Reports(l.Vendor, payload.OpUnlock, payload.MethodManual) {
				p.lockEvent(p.at(p.uniform(7*60, 22*60)), i, payload.OpUnlock, payload.MethodManual, NoLabel)
			}
		}
	}
}

// --- scenarios: newcomers (fleet.Scenarios) ---------------------------------

// scenarios plans the newcomers' days, after everything else, so that the
// base estate's plan is the same with or without them: the new crew is
// issued its keys on crewDay and starts its rounds, the new building opens
// on buildingDay (staff and crews that morning, residents and guests move in
// over its first four days). Each scenario plants labelled unlock bursts a
// few days in.
func (p *planner) scenarios() {
	g, f := p.g, p.g.f
	d := p.dayStart / day
	for s := f.Base.Subjects; s < len(f.Subjects); s++ {
		subj := &f.Subjects[s]
		c := subj.Credential
		cs := &g.creds[c]
		switch subj.Cohort {
		case fleet.CohortNewCrew:
			if d == g.crewDay && !cs.movedIn {
				p.issue(c, p.at(p.uniform(7*60, 7*60+20)))
			}
		case fleet.CohortNewBuilding:
			if d < g.buildingDay || cs.movedIn {
				break
			}
			switch subj.Role {
			case fleet.RoleResident, fleet.RoleGuest:
				if d-g.buildingDay >= int64(subj.Index%4) {
					p.moveIn(c, p.at(p.uniform(9*60, 12*60)))
				}
			default:
				p.issue(c, p.at(p.uniform(5*60, 6*60)))
			}
		}
		p.dailyRoutine(subj)
	}
	if crew := p.cohort(fleet.CohortNewCrew, fleet.RoleInspection); len(crew) > 0 {
		// Its phone opens three dozen doors at night (stolen, or shared).
		for i, at := range []int64{g.crewDay + 2, g.crewDay + 5} {
			if d == at {
				c := crew[(i*3+1)%len(crew)]
				doors := append(append([]int(nil), f.Sites[f.Subjects[f.Credentials[c].Subject].Site].Units...), f.Sites[0].Services...)
				p.plantBurst(c, p.at(p.uniform(60, 180)), doors, 30+p.rnd().IntN(11), p.uniform(35, 50), fleet.CohortNewCrew)
			}
		}
	}
	if staff := p.cohort(fleet.CohortNewBuilding, fleet.RoleConcierge, fleet.RoleStaff); len(staff) > 0 {
		// A concierge's or staff key tried at every door it opens, twice.
		for i, at := range []int64{g.buildingDay + 2, g.buildingDay + 5} {
			if d == at {
				c := staff[i%len(staff)]
				acc := f.Access(c)
				p.plantBurst(c, p.at(p.uniform(8*60, 22*60)), append(append([]int(nil), acc...), acc...), min(2*len(acc), 12+p.rnd().IntN(10)), p.uniform(15, 40), fleet.CohortNewBuilding)
			}
		}
	}
}

// cohort returns the credentials of a cohort's members of the given roles.
func (p *planner) cohort(cohort string, roles ...string) []int {
	f := p.g.f
	var out []int
	for s := f.Base.Subjects; s < len(f.Subjects); s++ {
		if subj := &f.Subjects[s]; subj.Cohort == cohort && slices.Contains(roles, subj.Role) {
			out = append(out, subj.Credential)
		}
	}
	return out
}

// issue puts a newcomer's key on its locks at t: issued, then active.
func (p *planner) issue(c int, t int64) {
	cs := &p.g.creds[c]
	cs.movedIn = true
	cs.activeFrom = t + 30*minute
	p.change(t, &Change{Cred: c, State: event.StateIssued, Device: 0, Attested: true, Command: gateway.CommandGrant})
	p.change(t+2*minute+p.rnd().Int64N(minute), &Change{Cred: c, State: event.StateActive, Device: 0, Attested: true})
}

// plantBurst: credential c tries n of doors (in order) within window
// minutes from t, labelled as an unlock burst of scenario.
func (p *planner) plantBurst(c int, t int64, doors []int, n int, window float64, scenario string) {
	if !p.g.active(c, t) || len(doors) == 0 {
		return
	}
	label := p.newLabel(LabelUnlockBurst, c, -1, false)
	p.g.labels[label].Scenario = scenario
	for i := 0; i < n; i++ {
		tt := t + int64(window*float64(minute)*float64(i)/float64(n)) + p.rnd().Int64N(30_000)
		p.attempt(tt, c, doors[i%len(doors)], label)
	}
}

// inspection: the new crew checks every unit's smoke detector, side by
// side: it meets in the lobby at 08:00 and the members spread over the
// building, each a run of 12 to 20 unit doors at the day's pace (the same
// for the crew, give or take a little), then a service room.
func (p *planner) inspection(subj *fleet.Subject) {
	h, r := &subj.Habit, p.rnd()
	if !h.Works(p.wd) {
		return
	}
	site := &p.g.f.Sites[subj.Site]
	crew := p.cohort(subj.Cohort, subj.Role)
	k := slices.Index(crew, subj.Credential)
	d := int(p.dayStart / day)
	pace := 2.5 + float64(d%7)*0.25 // minutes per door, the crew's of the day
	tm := p.jitter(8*60, 3)
	p.routine(p.at(tm-5), subj, site.Entrances[h.Entrance])
	start := (k*len(site.Units)/max(1, len(crew)) + d*7) % len(site.Units)
	for i, n := 0, 12+r.IntN(9); i < n; i++ {
		tm += pace * p.uniform(0.9, 1.1)
		p.routine(p.at(tm), subj, site.Units[(start+i)%len(site.Units)])
	}
	p.routine(p.at(tm+p.uniform(5, 15)), subj, p.pick(site.Services))
}

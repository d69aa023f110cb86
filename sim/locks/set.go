// Package locks simulates lock gateways (vendor clouds, Matter bridges,
// legacy panels): each lock holds its own access list, applies commands from
// lock.commands after a per-vendor latency (later still if the lock is
// offline, never if the gateway loses the command), acknowledges them on
// lock.acks with the list's ACL version, and decides access from the list it
// actually holds. The gateways keep internal/gateway's contract: a command
// id is applied once (a re-send is acknowledged again), an older seq never
// undoes a newer one, acl_push replaces the list, and a lock coming back
// online reports it (Runner). A Set is the state of every simulated lock;
// Runner connects a Set to Kafka.
//
// Times are epoch milliseconds on whatever clock the caller runs: the wall
// clock for live gateways, the simulated clock for a backfill.
package locks

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	gw "github.com/keyfleet/keyfleet/internal/gateway"
	"github.com/keyfleet/keyfleet/sim/fleet"
)

// Profile is how one vendor's gateways behave.
type Profile struct {
	// Latency is log-normal: median LatencyMedian, log-space sigma LatencySpread
	// (capped at 20 × the median).
	LatencyMedian time.Duration
	LatencySpread float64
	// OfflineFraction of the locks are offline at any time; an offline spell
	// lasts OfflineMean on average (exponential).
	OfflineFraction float64
	OfflineMean     time.Duration
	// MissRate is the chance a command is lost: never applied, never acked.
	MissRate float64
}

// DefaultProfiles: cloud vendors answer in a few hundred milliseconds,
// Matter bridges in about a second, legacy panels in tens of seconds (and now
// and then lose a command).
func DefaultProfiles() map[string]Profile {
	return map[string]Profile{
		"nuki":    {LatencyMedian: 250 * time.Millisecond, LatencySpread: 0.4, OfflineFraction: 0.01, OfflineMean: 30 * time.Minute},
		"schlage": {LatencyMedian: 350 * time.Millisecond, LatencySpread: 0.4, OfflineFraction: 0.01, OfflineMean: 30 * time.Minute},
		"seam":    {LatencyMedian: 450 * time.Millisecond, LatencySpread: 0.35, OfflineFraction: 0.01, OfflineMean: 30 * time.Minute},
		"matter":  {LatencyMedian: time.Second, LatencySpread: 0.3, OfflineFraction: 0.015, OfflineMean: 20 * time.Minute},
		"legacy":  {LatencyMedian: 25 * time.Second, LatencySpread: 0.45, OfflineFraction: 0.03, OfflineMean: time.Hour, MissRate: 0.02},
	}
}

// ParseProfiles applies overrides like
// "legacy.latency=30s,legacy.offline=0.05,legacy.miss=0.1,nuki.spread=0.5,matter.offline-mean=5m"
// to base (a copy is returned).
func ParseProfiles(base map[string]Profile, spec string) (map[string]Profile, error) {
	out := make(map[string]Profile, len(base))
	for k, v := range base {
		out[k] = v
	}
	for _, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		vendor, field, ok2 := strings.Cut(key, ".")
		if !ok || !ok2 {
			return nil, fmt.Errorf("gateway profile %q: want vendor.field=value", part)
		}
		p, known := out[vendor]
		if !known {
			return nil, fmt.Errorf("gateway profile %q: unknown vendor %q", part, vendor)
		}
		var err error
		switch field {
		case "latency":
			p.LatencyMedian, err = time.ParseDuration(val)
		case "spread":
			p.LatencySpread, err = strconv.ParseFloat(val, 64)
		case "offline":
			p.OfflineFraction, err = strconv.ParseFloat(val, 64)
		case "offline-mean":
			p.OfflineMean, err = time.ParseDuration(val)
		case "miss":
			p.MissRate, err = strconv.ParseFloat(val, 64)
		default:
			return nil, fmt.Errorf("gateway profile %q: unknown field %q (latency, spread, offline, offline-mean, miss)", part, field)
		}
		if err != nil {
			return nil, fmt.Errorf("gateway profile %q: %w", part, err)
		}
		if p.LatencyMedian < 0 || p.LatencySpread < 0 || p.OfflineFraction < 0 || p.OfflineFraction >= 1 ||
			p.MissRate < 0 || p.MissRate > 1 || p.OfflineMean < 0 {
			return nil, fmt.Errorf("gateway profile %q: value out of range", part)
		}
		out[vendor] = p
	}
	return out, nil
}

// Never is the applied time of a command that is never applied.
const Never int64 = math.MaxInt64

// Entry is one credential on one lock's access list.
type Entry struct {
	Schedule     *fleet.Schedule
	ValidFromMs  int64
	ValidUntilMs int64
	// Windows are a control-plane grant's weekly windows (the simulated
	// locks keep UTC as their local time).
	Windows []gw.Window
}

// change is one command's effect on one credential at one lock.
type change struct {
	requestedMs int64
	appliedMs   int64 // Never when lost
	present     bool  // on the list afterwards
	entry       Entry
	external    bool // sent on lock.commands (not by the simulation itself)
}

type span struct{ from, until int64 }

type lockState struct {
	id        string
	vendor    string
	r         *rand.Rand
	acl       map[string][]change // credential id → history (requested order)
	busyUntil int64
	offline   []span // generated offline spells, sorted
	horizon   int64  // offline spells are generated up to here
	forced    []span
	// done are the command ids applied (→ when), to apply each once; order
	// remembers them oldest first, to bound done.
	done  map[string]int64
	order []string
	seq   map[string]uint64 // credential id → highest seq applied
}

// maxDone bounds the command ids a lock remembers.
const maxDone = 4096

// Set is the state of every simulated lock. It is safe for concurrent use.
type Set struct {
	mu       sync.Mutex
	profiles map[string]Profile
	locks    map[string]*lockState
	originMs int64
	keepAcks bool
	acks     ackHeap
	seq      uint64
	stats    map[string]*VendorStats
	// dropOffline: a command for an offline lock is lost (not held by the
	// gateway until the lock is back).
	dropOffline bool
}

// maxDelays bounds the delays kept per vendor for statistics.
const maxDelays = 200_000

// VendorStats count one vendor's commands.
type VendorStats struct {
	Commands int
	Applied  int
	Lost     int
	Failed   int
	// Repeats are commands acknowledged again without effect (an id applied
	// before, or an older seq than the lock's).
	Repeats int
	// DelaysMs are the injected delays (applied − received) of applied commands.
	DelaysMs []int64
}

// SetOptions configure a Set.
type SetOptions struct {
	Fleet    *fleet.Fleet
	Profiles map[string]Profile // DefaultProfiles() when nil
	Seed     uint64
	// OriginMs is where offline schedules start (locks are online before).
	OriginMs int64
	// KeepAcks queues acks for DueAcks (live gateways); a backfill needs none.
	KeepAcks bool
	// Provision puts each lock's entitled credentials on it from the start;
	// skip returns true for credentials to leave off (residents who have not
	// moved in yet).
	Provision bool
	Skip      func(cred int) bool
	// Validity returns a provisioned credential's expiry (0: none).
	Validity func(cred int) int64
	// DropOffline loses the commands sent to an offline lock instead of
	// holding them until it reconnects (only re-sends and the acl_push on
	// reconnect bring it up to date).
	DropOffline bool
}

// NewSet returns the gateways of a fleet.
func NewSet(o SetOptions) *Set {
	if o.Profiles == nil {
		o.Profiles = DefaultProfiles()
	}
	s := &Set{profiles: o.Profiles, locks: map[string]*lockState{}, originMs: o.OriginMs,
		keepAcks: o.KeepAcks, stats: map[string]*VendorStats{}, dropOffline: o.DropOffline}
	f := o.Fleet
	for i := range f.Locks {
		l := &f.Locks[i]
		ls := &lockState{
			id: l.LockID, vendor: l.Vendor, acl: map[string][]change{}, horizon: o.OriginMs,
			r:    rand.New(rand.NewPCG(o.Seed, uint64(i)*0x9E3779B97F4A7C15+0x6761746577)),
			done: map[string]int64{}, seq: map[string]uint64{},
		}
		if p := s.profiles[l.Vendor]; p.OfflineFraction > 0 && ls.r.Float64() < p.OfflineFraction {
			// Offline at the origin: back after an exponential spell.
			back := o.OriginMs + int64(ls.r.ExpFloat64()*float64(p.OfflineMean.Milliseconds()))
			ls.offline = append(ls.offline, span{o.OriginMs, back})
			ls.horizon = back
		}
		if o.Provision {
			for _, c := range f.ACL(i) {
				if o.Skip != nil && o.Skip(c) {
					continue
				}
				cred := &f.Credentials[c]
				e := Entry{Schedule: cred.Schedule}
				if o.Validity != nil {
					e.ValidUntilMs = o.Validity(c)
				}
				ls.acl[cred.ID] = []change{{requestedMs: math.MinInt64, appliedMs: math.MinInt64, present: true, entry: e}}
			}
		}
		s.locks[l.LockID] = ls
	}
	return s
}

// Decision is a lock's answer to an access attempt.
type Decision struct {
	Granted bool
	Reason  string // why not: invalid_credential, revoked, expired, outside_schedule
	// RevokeRequestedMs is set when access was granted although a removal of
	// the credential had been requested (not yet applied, or lost): the
	// ground truth of use after revocation.
	RevokeRequestedMs int64
	// RevokeExternal: that removal came over lock.commands (the control
	// plane), not from the simulation's own lifecycle.
	RevokeExternal bool
}

// Decide answers an attempt of credential credID at lock lockID at atMs
// from the access list the lock holds at that moment.
func (s *Set) Decide(lockID, credID string, atMs int64) Decision {
	return s.DecideAt(lockID, credID, atMs, atMs)
}

// DecideAt is Decide for a simulated world whose clock reads localMs while
// commands reach the locks at atMs: in rate mode the fleet's days are
// compressed, so the simulation's own schedules and validity periods (its
// credentials' Schedule, the expiries it provisioned) are judged on the
// simulated clock, and commands from the control plane (their windows and
// validity) on the wall clock they were sent on.
func (s *Set) DecideAt(lockID, credID string, atMs, localMs int64) Decision {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, ok := s.locks[lockID]
	if !ok {
		return Decision{Reason: "invalid_credential"}
	}
	hist := ls.acl[credID]
	present, removed := false, false
	var entry Entry
	var pendingRemoval int64
	external, entryExternal := false, false
	for _, ch := range hist {
		if ch.requestedMs > atMs {
			break
		}
		if ch.appliedMs <= atMs {
			if !ch.present && present {
				removed = true
			}
			present, entry, entryExternal = ch.present, ch.entry, ch.external
			if present {
				removed = false
			}
		}
		if !ch.present {
			if ch.appliedMs > atMs {
				pendingRemoval, external = ch.requestedMs, ch.external
			}
		} else if ch.appliedMs <= atMs {
			pendingRemoval, external = 0, false
		}
	}
	valid := localMs
	if entryExternal {
		valid = atMs
	}
	switch {
	case !present && removed:
		return Decision{Reason: "revoked"}
	case !present:
		return Decision{Reason: "invalid_credential"}
	case entry.ValidUntilMs > 0 && valid >= entry.ValidUntilMs:
		return Decision{Reason: "expired"}
	case entry.ValidFromMs > 0 && valid < entry.ValidFromMs:
		return Decision{Reason: "outside_schedule"}
	}
	local := time.UnixMilli(localMs).UTC()
	if !entry.Schedule.Allows(int(local.Weekday()), local.Hour()*60+local.Minute()) ||
		!gw.Allowed(entry.Windows, time.UnixMilli(atMs).UTC()) {
		return Decision{Reason: "outside_schedule"}
	}
	return Decision{Granted: true, RevokeRequestedMs: pendingRemoval, RevokeExternal: external}
}

// SubmitOptions modify one Submit.
type SubmitOptions struct {
	Lose     bool // the gateway loses this command (scenario-injected)
	Schedule *fleet.Schedule
	// NoAck applies the command without queueing an ack (commands the
	// simulation itself issues, which no control plane waits for).
	NoAck bool
}

// Submit hands a command to its lock's gateway, received at receivedMs. It
// returns when the lock applies it (Never if the command is lost). A
// command id the lock applied before, or a grant/revoke whose seq is older
// than the credential's last on the lock, changes nothing and is
// acknowledged again.
func (s *Set) Submit(cmd gw.Command, receivedMs int64, o SubmitOptions) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, ok := s.locks[cmd.LockID]
	st := s.stat(cmd.Vendor)
	st.Commands++
	if !ok {
		st.Failed++
		s.queueAck(cmd, receivedMs, receivedMs, gw.AckFailed, "unknown lock", "")
		return receivedMs
	}
	st = s.stat(ls.vendor)
	p := s.profiles[ls.vendor]
	if at, dup := ls.done[cmd.CommandID]; dup && cmd.CommandID != "" {
		return s.repeat(ls, st, cmd, receivedMs, at, o)
	}
	if cmd.Seq > 0 && cmd.Type != gw.CommandACLPush && cmd.Seq < ls.seq[cmd.CredentialID] {
		return s.repeat(ls, st, cmd, receivedMs, receivedMs, o)
	}
	lost := o.Lose || (p.MissRate > 0 && ls.r.Float64() < p.MissRate)
	start := receivedMs
	if back, offline := ls.offlineAt(p, start); offline {
		start = back
		lost = lost || s.dropOffline
	}
	latency := p.LatencyMedian.Milliseconds()
	if p.LatencySpread > 0 && latency > 0 {
		latency = int64(math.Min(float64(latency)*math.Exp(ls.r.NormFloat64()*p.LatencySpread), float64(20*latency)))
	}
	applied := max(start, ls.busyUntil) + max(1, latency)
	if lost {
		applied = Never
		st.Lost++
	} else {
		ls.busyUntil = applied
		st.Applied++
		if len(st.DelaysMs) < maxDelays {
			st.DelaysMs = append(st.DelaysMs, applied-receivedMs)
		}
	}
	entry := Entry{Schedule: o.Schedule, ValidFromMs: cmd.ValidFromMs, ValidUntilMs: cmd.ValidUntilMs, Windows: cmd.Windows}
	ext := !o.NoAck
	switch cmd.Type {
	case gw.CommandRevoke:
		ls.record(cmd.CredentialID, change{requestedMs: receivedMs, appliedMs: applied, external: ext})
	case gw.CommandGrant:
		if entry.Schedule == nil {
			entry.Schedule = ls.schedule(cmd.CredentialID) // a re-grant keeps the credential's schedule
		}
		ls.record(cmd.CredentialID, change{requestedMs: receivedMs, appliedMs: applied, present: true, entry: entry, external: ext})
	case gw.CommandACLPush:
		s.push(ls, cmd, receivedMs, applied, ext, lost)
	default:
		st.Failed++
		s.queueAck(cmd, receivedMs, receivedMs, gw.AckFailed, "unknown command type", "")
		return receivedMs
	}
	if !lost {
		if cmd.CommandID != "" {
			ls.remember(cmd.CommandID, applied)
		}
		if cmd.Seq > 0 && cmd.Type != gw.CommandACLPush {
			ls.seq[cmd.CredentialID] = cmd.Seq
		}
		if !o.NoAck {
			s.queueAck(cmd, receivedMs, applied, gw.AckApplied, "", ls.version(applied))
		}
	}
	return applied
}

// repeat acknowledges a command without applying it (again, or
// superseded), once the lock got to it.
func (s *Set) repeat(ls *lockState, st *VendorStats, cmd gw.Command, receivedMs, appliedMs int64, o SubmitOptions) int64 {
	st.Repeats++
	at := max(receivedMs, appliedMs)
	if back, offline := ls.offlineAt(s.profiles[ls.vendor], at); offline {
		at = back
	}
	at = max(at, ls.busyUntil) + 1
	if !o.NoAck {
		s.queueAck(cmd, receivedMs, at, gw.AckApplied, "", ls.version(at))
	}
	return at
}

// push applies an acl_push: its entries are on the lock afterwards (an
// entry older than the credential's last change stays as the lock has it),
// every other credential is removed.
func (s *Set) push(ls *lockState, cmd gw.Command, receivedMs, applied int64, ext, lost bool) {
	entries := map[string]gw.ACLEntry{}
	for _, id := range cmd.ACL {
		entries[id] = gw.ACLEntry{CredentialID: id, ValidFromMs: cmd.ValidFromMs, ValidUntilMs: cmd.ValidUntilMs, Windows: cmd.Windows}
	}
	for _, e := range cmd.Entries {
		entries[e.CredentialID] = e
	}
	var gone []string
	for id := range ls.acl {
		if _, keep := entries[id]; !keep && ls.presentAt(id, Never-1) {
			gone = append(gone, id)
		}
	}
	sort.Strings(gone)
	for _, id := range gone {
		ls.record(id, change{requestedMs: receivedMs, appliedMs: applied, external: ext})
	}
	ids := make([]string, 0, len(entries))
	for id := range entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		e := entries[id]
		if e.Seq > 0 && e.Seq < ls.seq[id] {
			continue // the lock has a newer change of this credential
		}
		entry := Entry{Schedule: ls.schedule(id), ValidFromMs: e.ValidFromMs, ValidUntilMs: e.ValidUntilMs, Windows: e.Windows}
		ls.record(id, change{requestedMs: receivedMs, appliedMs: applied, present: true, entry: entry, external: ext})
		if !lost && e.Seq > 0 {
			ls.seq[id] = e.Seq
		}
	}
}

func (ls *lockState) remember(id string, applied int64) {
	if _, ok := ls.done[id]; !ok {
		ls.order = append(ls.order, id)
	}
	ls.done[id] = applied
	if len(ls.order) > maxDone {
		for _, old := range ls.order[:len(ls.order)-maxDone] {
			delete(ls.done, old)
		}
		ls.order = append(ls.order[:0:0], ls.order[len(ls.order)-maxDone:]...)
	}
}

// schedule is the schedule of a credential's latest entry on the lock.
func (ls *lockState) schedule(credID string) *fleet.Schedule {
	h := ls.acl[credID]
	for i := len(h) - 1; i >= 0; i-- {
		if h[i].present && h[i].entry.Schedule != nil {
			return h[i].entry.Schedule
		}
	}
	return nil
}

// presentAt reports whether a credential is on the lock's list at atMs.
func (ls *lockState) presentAt(credID string, atMs int64) bool {
	present := false
	for _, ch := range ls.acl[credID] {
		if ch.appliedMs <= atMs {
			present = ch.present
		}
	}
	return present
}

// version is the lock's ACL version at atMs (gateway.ACLVersion of the
// credentials on its list).
func (ls *lockState) version(atMs int64) string {
	ids := make([]string, 0, len(ls.acl))
	for id := range ls.acl {
		if ls.presentAt(id, atMs) {
			ids = append(ids, id)
		}
	}
	return gw.ACLVersion(ids)
}

// ACL returns the credentials on a lock's list at atMs, sorted, and the
// list's version.
func (s *Set) ACL(lockID string, atMs int64) ([]string, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, ok := s.locks[lockID]
	if !ok {
		return nil, gw.ACLVersion(nil)
	}
	var ids []string
	for id := range ls.acl {
		if ls.presentAt(id, atMs) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, gw.ACLVersion(ids)
}

func (ls *lockState) record(credID string, ch change) {
	h := ls.acl[credID]
	// Keep the history short: changes applied long before this one no
	// longer matter once a newer one is applied.
	if len(h) > 8 {
		h = append(h[:0:0], h[len(h)-4:]...)
	}
	ls.acl[credID] = append(h, ch)
}

func (s *Set) stat(vendor string) *VendorStats {
	st, ok := s.stats[vendor]
	if !ok {
		st = &VendorStats{}
		s.stats[vendor] = st
	}
	return st
}

// Stats returns a copy of the per-vendor command statistics.
func (s *Set) Stats() map[string]VendorStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]VendorStats, len(s.stats))
	for v, st := range s.stats {
		c := *st
		c.DelaysMs = append([]int64(nil), st.DelaysMs...)
		out[v] = c
	}
	return out
}

func (s *Set) queueAck(cmd gw.Command, receivedMs, appliedMs int64, status, errText, version string) {
	if !s.keepAcks {
		return
	}
	s.seq++
	heap.Push(&s.acks, pendingAck{seq: s.seq, ack: gw.Ack{
		CommandID: cmd.CommandID, RevocationID: cmd.RevocationID, Type: cmd.Type, Vendor: cmd.Vendor,
		LockID: cmd.LockID, CredentialID: cmd.CredentialID, Status: status, Error: errText,
		ReceivedMs: receivedMs, AppliedMs: appliedMs, ACLVersion: version, ExpectedACLVersion: cmd.ACLVersion,
		Attempt: cmd.Attempt,
	}})
}

// DueAcks removes and returns the acks of commands applied by nowMs.
func (s *Set) DueAcks(nowMs int64) []gw.Ack {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []gw.Ack
	for s.acks.Len() > 0 && s.acks[0].ack.AppliedMs <= nowMs {
		out = append(out, heap.Pop(&s.acks).(pendingAck).ack)
	}
	return out
}

// PendingAcks is how many applied-in-the-future acks are queued.
func (s *Set) PendingAcks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.acks.Len()
}

// ForceOffline takes a lock offline from fromMs until untilMs.
func (s *Set) ForceOffline(lockID string, fromMs, untilMs int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, ok := s.locks[lockID]
	if !ok {
		return fmt.Errorf("unknown lock %q", lockID)
	}
	ls.forced = append(ls.forced, span{fromMs, untilMs})
	return nil
}

// BringOnline ends a lock's forced offline spell at atMs (it reconnects
// then, and Reconnects reports it).
func (s *Set) BringOnline(lockID string, atMs int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, ok := s.locks[lockID]
	if !ok {
		return fmt.Errorf("unknown lock %q", lockID)
	}
	for i, sp := range ls.forced {
		if atMs >= sp.from && atMs < sp.until {
			ls.forced[i].until = atMs
		}
	}
	return nil
}

// Online reports whether a lock is connected at atMs and, if not, when it
// reconnects.
func (s *Set) Online(lockID string, atMs int64) (online bool, backMs int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ls, ok := s.locks[lockID]
	if !ok {
		return true, atMs
	}
	back, offline := ls.offlineAt(s.profiles[ls.vendor], atMs)
	return !offline, back
}

// Transition is a lock going offline or coming back.
type Transition struct {
	LockID string
	AtMs   int64
	Online bool
}

// Transitions lists the connectivity changes of every lock in [fromMs, toMs),
// ordered by time.
func (s *Set) Transitions(fromMs, toMs int64) []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Transition
	for id, ls := range s.locks {
		ls.extend(s.profiles[ls.vendor], toMs)
		for _, sp := range ls.forced {
			if sp.from >= fromMs && sp.from < toMs {
				out = append(out, Transition{id, sp.from, false})
			}
			if sp.until >= fromMs && sp.until < toMs {
				out = append(out, Transition{id, sp.until, true})
			}
		}
		for _, sp := range ls.offline {
			if sp.from >= fromMs && sp.from < toMs && sp.from > s.originMs {
				out = append(out, Transition{id, sp.from, false})
			}
			if sp.until >= fromMs && sp.until < toMs {
				out = append(out, Transition{id, sp.until, true})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].AtMs != out[j].AtMs {
			return out[i].AtMs < out[j].AtMs
		}
		return out[i].LockID < out[j].LockID
	})
	return out
}

// Reconnects returns the status reports (type status, status online, with
// the lock's ACL version) of the locks that came back online in
// [fromMs, toMs), in time order.
func (s *Set) Reconnects(fromMs, toMs int64) []gw.Ack {
	var out []gw.Ack
	for _, tr := range s.Transitions(fromMs, toMs) {
		if !tr.Online {
			continue
		}
		s.mu.Lock()
		ls := s.locks[tr.LockID]
		out = append(out, gw.Ack{Type: gw.TypeStatus, Status: gw.StatusOnline, Vendor: ls.vendor, LockID: ls.id,
			ReceivedMs: tr.AtMs, AppliedMs: tr.AtMs, ACLVersion: ls.version(tr.AtMs)})
		s.mu.Unlock()
	}
	return out
}

// offlineAt reports whether the lock is offline at t and when it is back.
func (ls *lockState) offlineAt(p Profile, t int64) (backMs int64, offline bool) {
	for _, sp := range ls.forced {
		if t >= sp.from && t < sp.until {
			return sp.until, true
		}
	}
	ls.extend(p, t+1)
	i := sort.Search(len(ls.offline), func(i int) bool { return ls.offline[i].until > t })
	if i < len(ls.offline) && ls.offline[i].from <= t {
		return ls.offline[i].until, true
	}
	return t, false
}

// extend generates offline spells up to t: online spells average
// mean × (1−f)/f, so a fraction f of the time is spent offline.
func (ls *lockState) extend(p Profile, t int64) {
	if p.OfflineFraction <= 0 || p.OfflineMean <= 0 {
		return
	}
	meanOff := float64(p.OfflineMean.Milliseconds())
	meanOn := meanOff * (1 - p.OfflineFraction) / p.OfflineFraction
	for ls.horizon < t {
		from := ls.horizon + 1 + int64(ls.r.ExpFloat64()*meanOn)
		until := from + 1 + int64(ls.r.ExpFloat64()*meanOff)
		ls.offline = append(ls.offline, span{from, until})
		ls.horizon = until
	}
	// Forget spells long past to bound memory over long runs.
	if len(ls.offline) > 64 {
		ls.offline = append(ls.offline[:0:0], ls.offline[len(ls.offline)-16:]...)
	}
}

type pendingAck struct {
	seq uint64
	ack gw.Ack
}

type ackHeap []pendingAck

func (h ackHeap) Len() int { return len(h) }
func (h ackHeap) Less(i, j int) bool {
	if h[i].ack.AppliedMs != h[j].ack.AppliedMs {
		return h[i].ack.AppliedMs < h[j].ack.AppliedMs
	}
	return h[i].seq < h[j].seq
}
func (h ackHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *ackHeap) Push(x any)   { *h = append(*h, x.(pendingAck)) }
func (h *ackHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

package detect

import (
	"errors"
	"math"
	"sort"
	"time"

	"github.com/keyfleet/keyfleet/internal/event"
)

const dayMs = 24 * 60 * 60 * 1000

// Options configure an Engine.
type Options struct {
	// Lateness is how far behind the newest event time the watermark trails:
	// suppression windows and held-open timers close only once the watermark
	// passes them, so events up to Lateness out of order still count.
	Lateness time.Duration
	// BatchChecks makes the engine run the batch checks (stale_credential,
	// expired_exception) itself whenever the watermark crosses their period,
	// using the last uses it has seen. Replays set it; `keyfleet serve` runs
	// them from detect/batch with last uses from ClickHouse instead.
	BatchChecks bool
	// Metrics, when set, counts suppressed repeats.
	Metrics *Metrics
}

// Engine runs every stream detector over access events and credential
// records, keyed by subject, credential and door. It is not safe for
// concurrent use; callers serialize (detect/stream holds a mutex).
//
// Each method appends the alerts it raises to dst and returns it.
type Engine struct {
	rules *Rules
	opts  Options

	subjects map[string]*subjectState
	creds    map[string]*credState
	doors    map[string]*doorState
	roles    map[string]*roleStats
	peers    map[string]*roleStats // role at site: today's peaks (unlock_burst's peers)

	open      map[string]*openAlert
	nextSweep int64

	firstTs   int64 // first access event time (start of the learning period)
	maxTs     int64
	watermark int64
	nextBatch int64
	heldOpen  map[string]*doorState // doors currently open (held-open timers)

	scratch  map[string]struct{}
	lockNums map[lockKey]uint32 // entitled locks' numbers (Entitle)
	names    names              // doors, sites and subjects of grants
	credIDs  []string           // sorted ids of creds (rebuilt when creds grows)

	dirty   map[string]struct{} // subjects whose baseline changed since DirtyBaselines
	learned bool                // baselines were restored: no cold-start learning period
	replay  bool                // SetReplay: events already seen before a restart

	zone      *time.Location            // off_schedule's default time zone (nil: fixed offset)
	siteZones map[string]*time.Location // off_schedule's per-site time zones
}

// NewEngine returns an engine for rules.
func NewEngine(rules *Rules, opts Options) (*Engine, error) {
	if rules == nil {
		return nil, errors.New("detect: rules are required")
	}
	if err := rules.Validate(); err != nil {
		return nil, err
	}
	if opts.Lateness < 0 {
		return nil, errors.New("detect: lateness must not be negative")
	}
	zone, siteZones, err := rules.Detectors.OffSchedule.zones()
	if err != nil {
		return nil, err
	}
	return &Engine{
		zone: zone, siteZones: siteZones,
		rules:    rules,
		opts:     opts,
		subjects: map[string]*subjectState{},
		creds:    map[string]*credState{},
		doors:    map[string]*doorState{},
		roles:    map[string]*roleStats{},
		peers:    map[string]*roleStats{},
		open:     map[string]*openAlert{},
		heldOpen: map[string]*doorState{},
		scratch:  map[string]struct{}{},
		dirty:    map[string]struct{}{},
	}, nil
}

// Rules returns the engine's rules.
func (e *Engine) Rules() *Rules { return e.rules }

// SetReplay marks the events that follow as ones the engine saw before a
// restart (detect/stream's warm-up refilling the windows): granted uses the
// restored baselines already counted (up to their UsesThroughMs) are not
// counted again.
func (e *Engine) SetReplay(on bool) { e.replay = on }

// Watermark returns the engine's event-time watermark (epoch ms).
func (e *Engine) Watermark() int64 { return e.watermark }

// Access processes one access event.
func (e *Engine) Access(dst []Alert, ev *event.Access) []Alert {
	if ev.TsMs <= 0 {
		return dst
	}
	if e.firstTs == 0 {
		e.firstTs = ev.TsMs
	}
	d := &e.rules.Detectors
	granted := ev.Outcome == "granted"
	denied := ev.Outcome == "denied" || ev.Action == "access_denied"

	var cs *credState
	if ev.CredentialID != "" {
		cs = e.cred(ev.CredentialID)
		if cs.subject == "" {
			cs.subject = ev.SubjectID
		}
	}
	var ss *subjectState
	if key := subjectKey(ev); key != "" {
		ss = e.subject(key)
	}

	if cs != nil && granted {
		dst = e.grant(dst, cs, ev)
	}
	if cs != nil && ev.DeviceID != "" && d.UnattestedDeviceChange.Enabled {
		dst = e.checkDevice(dst, cs, ev, granted)
	}
	if ss != nil && granted && isUnlock(ev.Action) {
		offset := e.utcOffsetMinutes(ev)
		if d.OffSchedule.Enabled {
			dst = e.checkSchedule(dst, ss, ev, offset)
		}
		if !e.replay || ev.TsMs > ss.restoredThrough {
			ss.noteUse(ev.TsMs, offset)
			e.dirty[subjectKey(ev)] = struct{}{}
		}
	}
	if ss != nil && d.UnlockBurst.Enabled && (granted && isUnlock(ev.Action) ||
		d.UnlockBurst.IncludeDenied && denied && (isUnlock(ev.Action) || ev.Action == "access_denied")) {
		dst = e.checkBurst(dst, ss, cs, ev)
	}
	if denied && d.DeniedStorm.Enabled {
		dst = e.checkDenied(dst, ss, ev)
	}
	switch ev.Action {
	case "emergency_unlock":
		if d.EmergencyUnlock.Enabled {
			dst = e.emergency(dst, ev, false)
		}
	case "door_forced":
		if d.DoorForced.Enabled {
			dst = e.doorEvent(dst, DoorForced, ev)
		}
	case "door_ajar":
		if d.DoorAjar.Enabled {
			dst = e.doorEvent(dst, DoorAjar, ev)
		}
	case "door_opened", "door_closed":
		if d.DoorAjar.Enabled && d.DoorAjar.HeldOpen > 0 {
			e.trackDoor(ev)
		}
	}
	if granted && ev.BreakGlass && ev.Action != "emergency_unlock" && d.EmergencyUnlock.Enabled && d.EmergencyUnlock.IncludeBreakGlass {
		dst = e.emergency(dst, ev, true)
	}
	return e.observe(dst, ev.TsMs)
}

// RememberGrant feeds use_after_revocation alone with a replayed event older
// than the sliding windows (detect/stream's warm-up reading back the rule's
// lookback): a granted use is remembered, so a revocation record that
// arrives after a restart still finds it, and a revocation already known
// raises its alert now. Nothing else of the engine changes.
func (e *Engine) RememberGrant(dst []Alert, ev *event.Access) []Alert {
	if ev.TsMs <= 0 || ev.CredentialID == "" || ev.Outcome != "granted" {
		return dst
	}
	cs := e.cred(ev.CredentialID)
	if cs.subject == "" {
		cs.subject = ev.SubjectID
	}
	return e.grant(dst, cs, ev)
}

// grant remembers a granted use of a credential for use_after_revocation's
// lookback and checks it against a revocation already known.
func (e *Engine) grant(dst []Alert, cs *credState, ev *event.Access) []Alert {
	r := &e.rules.Detectors.UseAfterRevocation
	if i := cs.noteGrant(ev, r.Lookback.Ms(), &e.names); i >= 0 && r.Enabled {
		dst = e.checkRevocation(dst, cs, i)
	}
	return dst
}

// Credential processes one credential lifecycle record.
func (e *Engine) Credential(dst []Alert, rec *event.Credential) []Alert {
	if rec.CredentialID == "" || rec.TsMs <= 0 {
		return dst
	}
	cs := e.cred(rec.CredentialID)
	if rec.SubjectID != "" {
		cs.subject = rec.SubjectID
		if rec.Role != "" {
			e.setRole(rec.SubjectID, rec.Role)
		}
	}
	if rec.Role != "" {
		cs.role = rec.Role
	}
	if rec.SiteID != "" {
		cs.site = rec.SiteID
	}
	if rec.ValidUntilMs > 0 {
		cs.validUntilMs = rec.ValidUntilMs
	}
	if rec.BreakGlass {
		cs.breakGlass = true
	}
	cs.addState(rec.TsMs, rec.State)
	if rec.State == event.StateActive && cs.activeSinceMs == 0 {
		cs.activeSinceMs = rec.TsMs
	}
	if rec.DeviceID != "" {
		switch rec.State {
		case event.StateIssued, event.StatePendingActivation, event.StateActive:
			cs.bindDevice(rec.DeviceID, rec.Attested)
		}
	}
	if e.rules.Detectors.UseAfterRevocation.Enabled && blocked(rec.State, e.rules.Detectors.UseAfterRevocation.IncludeSuspended) {
		dst = e.lateRevocation(dst, cs)
	}
	return e.observe(dst, rec.TsMs)
}

// observe moves the watermark with a new event time and runs what is due.
func (e *Engine) observe(dst []Alert, ts int64) []Alert {
	if ts > e.maxTs {
		e.maxTs = ts
		if wm := ts - e.opts.Lateness.Milliseconds(); wm > e.watermark {
			return e.Advance(dst, wm)
		}
	}
	return dst
}

// Advance moves the watermark to wm (event time, epoch ms) if it is ahead:
// suppression windows and held-open timers that end before it close, and
// (with Options.BatchChecks) due batch checks run. The stream processor calls
// it on idle partitions so quiet periods still close windows.
func (e *Engine) Advance(dst []Alert, wm int64) []Alert {
	if wm <= e.watermark {
		return dst
	}
	e.watermark = wm
	if len(e.heldOpen) > 0 {
		dst = e.checkHeldOpen(dst, wm)
	}
	if wm >= e.nextSweep {
		dst = e.sweep(dst, wm)
		e.nextSweep = wm + 60_000
	}
	if e.opts.BatchChecks {
		every := min(e.rules.Detectors.StaleCredential.Every.Ms(), e.rules.Detectors.ExpiredException.Every.Ms())
		if e.nextBatch == 0 {
			e.nextBatch = (wm/every + 1) * every
		}
		if wm >= e.nextBatch {
			dst = e.Batch(dst, wm, nil, 0)
			e.nextBatch = (wm/every + 1) * every
		}
	}
	return dst
}

// Flush closes every open suppression window (end of a replay), emitting the
// updates of alerts that had suppressed repeats.
func (e *Engine) Flush(dst []Alert) []Alert {
	return e.sweep(dst, math.MaxInt64)
}

// openAlert is an alert whose suppression window is still open.
type openAlert struct {
	a     Alert
	until int64
}

// raise emits a (or counts it as a suppressed repeat of the open alert for
// the same detector and key). Alert ids are derived here unless set.
func (e *Engine) raise(dst []Alert, a Alert, key string, suppress int64) []Alert {
	if a.AlertID == "" {
		first := ""
		if len(a.Evidence) > 0 {
			first = a.Evidence[len(a.Evidence)-1]
		}
		a.AlertID = AlertID(a.Detector, key, a.TsMs, first)
	}
	a.Status = StatusOpen
	a.RulesVersion = e.rules.Version
	if len(a.Evidence) > MaxEvidence {
		a.Evidence = a.Evidence[len(a.Evidence)-MaxEvidence:]
	}
	if suppress <= 0 {
		return append(dst, a)
	}
	k := a.Detector + "\x00" + key
	if o := e.open[k]; o != nil {
		if a.TsMs < o.until && a.TsMs >= o.a.TsMs-suppress {
			o.merge(&a)
			e.opts.Metrics.countSuppressed(a.Detector)
			return dst
		}
		dst = closeAlert(dst, o)
		delete(e.open, k)
	}
	a.Evidence = append([]string(nil), a.Evidence...)
	e.open[k] = &openAlert{a: a, until: a.TsMs + suppress}
	return append(dst, copyAlert(a))
}

// merge folds a suppressed repeat into the open alert.
func (o *openAlert) merge(r *Alert) {
	a := &o.a
	a.SuppressedCount++
	if r.TsMs > a.WindowEndMs {
		a.WindowEndMs = r.TsMs
	}
	if r.WindowEndMs > a.WindowEndMs {
		a.WindowEndMs = r.WindowEndMs
	}
	if r.Observed > a.Observed {
		a.Observed = r.Observed
	}
	if SeverityRank(r.Severity) > SeverityRank(a.Severity) {
		a.Severity = r.Severity
	}
	if r.SourceReceivedMs > 0 && a.SourceReceivedMs == 0 {
		a.SourceReceivedMs = r.SourceReceivedMs
	}
	seen := map[string]bool{}
	for _, id := range a.Evidence {
		seen[id] = true
	}
	for _, id := range r.Evidence {
		if !seen[id] && len(a.Evidence) < MaxEvidence {
			a.Evidence = append(a.Evidence, id)
			seen[id] = true
		}
	}
}

func closeAlert(dst []Alert, o *openAlert) []Alert {
	if o.a.SuppressedCount == 0 {
		return dst
	}
	o.a.Revision++
	return append(dst, copyAlert(o.a))
}

func copyAlert(a Alert) Alert {
	a.Evidence = append([]string(nil), a.Evidence...)
	return a
}

// sweep closes suppression windows that end at or before wm, in a stable
// order (by end time, then key) so replays are deterministic.
func (e *Engine) sweep(dst []Alert, wm int64) []Alert {
	var due []string
	for k, o := range e.open {
		if o.until <= wm {
			due = append(due, k)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		oi, oj := e.open[due[i]], e.open[due[j]]
		if oi.until != oj.until {
			return oi.until < oj.until
		}
		return due[i] < due[j]
	})
	for _, k := range due {
		dst = closeAlert(dst, e.open[k])
		delete(e.open, k)
	}
	return dst
}

func (e *Engine) subject(key string) *subjectState {
	s := e.subjects[key]
	if s == nil {
		s = &subjectState{day: -1}
		e.subjects[key] = s
	}
	return s
}

func (e *Engine) cred(id string) *credState {
	c := e.creds[id]
	if c == nil {
		c = &credState{id: id}
		e.creds[id] = c
	}
	return c
}

func (e *Engine) door(key string) *doorState {
	d := e.doors[key]
	if d == nil {
		d = &doorState{key: key}
		e.doors[key] = d
	}
	return d
}

// subjectKey is the key of subject-scoped state: the subject, else the
// credential (an unresolved but identified key).
func subjectKey(ev *event.Access) string {
	if ev.SubjectID != "" {
		return ev.SubjectID
	}
	if ev.CredentialID != "" {
		return "credential:" + ev.CredentialID
	}
	return ""
}

func doorKey(ev *event.Access) string {
	if ev.DoorID != "" {
		return ev.DoorID
	}
	return ev.LockID
}

func isUnlock(action string) bool {
	return action == "unlock" || action == "unlatch"
}

// Stats describe the engine's state size (for metrics and tests).
type Stats struct {
	Subjects, Credentials, Doors, OpenAlerts int
}

// Stats returns the engine's state size.
func (e *Engine) Stats() Stats {
	return Stats{Subjects: len(e.subjects), Credentials: len(e.creds), Doors: len(e.doors), OpenAlerts: len(e.open)}
}

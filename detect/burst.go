package detect

import (
	"fmt"
	"iter"
	"math"
	"sort"
	"strings"

	"github.com/keyfleet/keyfleet/internal/event"
)

// maxPeak bounds the per-day peak values kept (histogram bins).
const maxPeak = 255

// subjectState is everything kept per subject.
type subjectState struct {
	role string
	// site is where the subject was last seen; its running peaks count
	// among its peers' (role at site, today) under peerKey.
	site, peerKey string

	// win holds the subject's recent granted unlocks, ordered by time.
	win []winEntry

	// day is the UTC day (ts / 24h) the running peaks belong to. A day that
	// raised a burst (dayAlerted) does not teach the subject's own baseline.
	day        int64
	dayAlerted bool
	reopened   bool // day is a completed day restored from a baseline (RestoreBaselines)
	m          [maxMeasures]measureState

	// Hour-of-day use histogram for off_schedule; usesThrough is the newest
	// use counted, restoredThrough the newest one a restored baseline had.
	hours           [24]uint32
	uses            uint32
	useDays         uint16
	lastUseDy       int64
	usesThrough     int64
	restoredThrough int64

	// Denials of this subject/credential (denied_storm per credential).
	denied []winEntry
}

// measureState is one unlock_burst measure of one subject: today's running
// peak, what it currently contributes to its role's pool, and the completed
// active days' peaks (oldest first).
type measureState struct {
	dayPeak int
	contrib int
	capAt   int // > 0 on a day that raised a burst: pool contributions are capped here
	peaks   []dayPeak
}

type winEntry struct {
	ts      int64
	door    string
	eventID string
	site    string
	scope   uint8 // entitlement scope of the event's lock (scopeUnknown, ...)
}

// dayPeak is one completed day's peak (8 bytes: a subject keeps one per
// measure and history day).
type dayPeak struct {
	day  int32 // ts / 24h
	peak int32
}

type hist = [maxPeak + 1]uint32

// roleStats pools subject-day peaks by role: per measure, a histogram per day.
type roleStats struct {
	days [maxMeasures]map[int64]*hist
}

func (e *Engine) role(name string) *roleStats {
	if name == "" {
		name = "unknown"
	}
	r := e.roles[name]
	if r == nil {
		r = &roleStats{}
		for i := range r.days {
			r.days[i] = map[int64]*hist{}
		}
		e.roles[name] = r
	}
	return r
}

func (r *roleStats) add(mi int, day int64, v, delta int, keepDays int) {
	v = min(v, maxPeak)
	if v <= 0 {
		return
	}
	h := r.days[mi][day]
	if h == nil {
		if delta < 0 {
			return
		}
		h = new(hist)
		r.days[mi][day] = h
		for d := range r.days[mi] {
			if d < day-int64(keepDays) {
				delete(r.days[mi], d)
			}
		}
	}
	if delta < 0 && h[v] == 0 {
		return
	}
	h[v] = uint32(int(h[v]) + delta)
}

// setContribution moves the subject's entry for measure mi in its role's
// pool for its current day to v.
func (e *Engine) setContribution(s *subjectState, mi, v int) {
	ms := &s.m[mi]
	if v == ms.contrib {
		return
	}
	r := e.role(s.role)
	keep := e.rules.Detectors.UnlockBurst.HistoryDays
	r.add(mi, s.day, ms.contrib, -1, keep)
	r.add(mi, s.day, v, +1, keep)
	if p := e.peers[s.peerKey]; p != nil {
		p.add(mi, s.day, ms.contrib, -1, 1)
		p.add(mi, s.day, v, +1, 1)
	}
	ms.contrib = v
}

// setPeerGroup moves the subject's running peaks of today to the peer
// group of role at site (a role record, or the subject seen at another
// site). Subjects without a role or site have no peers.
func (e *Engine) setPeerGroup(s *subjectState, role, site string) {
	key := ""
	if role != "" && site != "" && e.rules.Detectors.UnlockBurst.PeerQuorum > 0 {
		key = role + "\x00" + site
	}
	if key == s.peerKey {
		return
	}
	if p := e.peers[s.peerKey]; p != nil {
		for mi := range s.m {
			p.add(mi, s.day, s.m[mi].contrib, -1, 1)
		}
	}
	s.peerKey = key
	if key == "" {
		return
	}
	p := e.peers[key]
	if p == nil {
		p = &roleStats{}
		for i := range p.days {
			p.days[i] = map[int64]*hist{}
		}
		e.peers[key] = p
	}
	for mi := range s.m {
		p.add(mi, s.day, s.m[mi].contrib, +1, 1)
	}
}

// peerBase returns the level at least quorum of the subject's peers (its
// role at its site) reached today in measure mi, leaving out the subject's
// own running value (self), and how many peers were active today.
func (e *Engine) peerBase(s *subjectState, mi int, day int64, self, quorum int) (base, n int) {
	p := e.peers[s.peerKey]
	if p == nil || quorum <= 0 {
		return 0, 0
	}
	h := p.days[mi][day]
	if h == nil {
		return 0, 0
	}
	self = min(self, maxPeak)
	count := func(v int) int {
		c := int(h[v])
		if v == self && c > 0 {
			c--
		}
		return c
	}
	for v := maxPeak; v > 0; v-- {
		n += count(v)
		if n >= quorum && base == 0 {
			base = v
		}
	}
	return base, n
}

// setRole changes a subject's role, moving the peaks it contributed to the
// old role's pool over to the new one (roles come from credential records,
// which may arrive after the subject's first events).
func (e *Engine) setRole(key string, role string) {
	s := e.subject(key)
	if role == s.role {
		return
	}
	e.setPeerGroup(s, role, s.site)
	old, cur := e.role(s.role), e.role(role)
	keep := e.rules.Detectors.UnlockBurst.HistoryDays
	for mi := range s.m {
		ms := &s.m[mi]
		for _, p := range ms.peaks {
			old.add(mi, int64(p.day), int(p.peak), -1, keep)
			cur.add(mi, int64(p.day), int(p.peak), +1, keep)
		}
		old.add(mi, s.day, ms.contrib, -1, keep)
		cur.add(mi, s.day, ms.contrib, +1, keep)
	}
	s.role = role
	e.dirty[key] = struct{}{}
}

// percentile returns the p-quantile of the role's subject-day peaks of
// measure mi over the days [day-keep, day] and how many samples it has,
// leaving out the judged subject's own running value for today (self).
func (r *roleStats) percentile(mi int, day int64, keep int, p float64, self int) (int, int) {
	var sum [maxPeak + 1]uint64
	var n uint64
	for d, h := range r.days[mi] {
		if d < day-int64(keep) || d > day {
			continue
		}
		for v, c := range h {
			sum[v] += uint64(c)
			n += uint64(c)
		}
	}
	if self = min(self, maxPeak); self > 0 && sum[self] > 0 {
		sum[self]--
		n--
	}
	if n == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(p * float64(n)))
	var acc uint64
	for v, c := range sum {
		acc += c
		if acc >= rank && c > 0 {
			return v, int(n)
		}
	}
	return maxPeak, int(n)
}

// rollDay finishes the subject's running day when an event of a later day
// arrives: each measure's peak joins its history, unless the day raised a
// burst (an anomaly must not teach the baseline). It reports whether the
// history changed.
func (s *subjectState) rollDay(day int64, historyDays int) (pushed bool) {
	if day <= s.day {
		return false
	}
	if s.day >= 0 && !s.dayAlerted {
		for mi := range s.m {
			ms := &s.m[mi]
			if ms.dayPeak <= 0 {
				continue
			}
			pushed = true
			ms.peaks = append(ms.peaks, dayPeak{day: int32(s.day), peak: int32(ms.dayPeak)})
			if len(ms.peaks) > historyDays {
				ms.peaks = append(ms.peaks[:0], ms.peaks[len(ms.peaks)-historyDays:]...)
			}
		}
	}
	s.day, s.dayAlerted, s.reopened = day, false, false
	for mi := range s.m {
		s.m[mi].dayPeak, s.m[mi].contrib, s.m[mi].capAt = 0, 0, 0
	}
	return pushed
}

// ownBaseline is the highest completed-day peak within the history horizon,
// and the number of such days.
func (ms *measureState) ownBaseline(day int64, historyDays int) (int, int) {
	best, n := 0, 0
	for _, p := range ms.peaks {
		if int64(p.day) < day-int64(historyDays) {
			continue
		}
		n++
		best = max(best, int(p.peak))
	}
	return best, n
}

// insertWin adds an entry in time order (events may be slightly out of
// order), ignoring a re-delivered event id, and drops entries older than
// keepFrom.
func insertWin(win []winEntry, w winEntry, keepFrom int64) ([]winEntry, bool) {
	i := len(win)
	for i > 0 && win[i-1].ts > w.ts {
		i--
	}
	for j := i - 1; j >= 0 && win[j].ts == w.ts; j-- {
		if win[j].eventID == w.eventID && w.eventID != "" {
			return win, false
		}
	}
	for j := i; j < len(win) && win[j].ts == w.ts; j++ {
		if win[j].eventID == w.eventID && w.eventID != "" {
			return win, false
		}
	}
	win = append(win, winEntry{})
	copy(win[i+1:], win[i:])
	win[i] = w
	drop := 0
	for drop < len(win) && win[drop].ts < keepFrom {
		drop++
	}
	if drop > 0 {
		win = append(win[:0], win[drop:]...)
	}
	return win, true
}

// windowEnds yields the ends of the sliding windows (of up to w) that an
// entry at ts joined: ts itself and, when the entry arrived out of order,
// the time of every later entry less than w after it, whose windows now
// hold it too. Counts only change at entries, so these are all the windows
// a late entry can push over a threshold.
func windowEnds(win []winEntry, ts, w int64) iter.Seq[int64] {
	return func(yield func(int64) bool) {
		if !yield(ts) {
			return
		}
		prev := ts
		for i := sort.Search(len(win), func(i int) bool { return win[i].ts > ts }); i < len(win) && win[i].ts < ts+w; i++ {
			if win[i].ts == prev {
				continue
			}
			prev = win[i].ts
			if !yield(prev) {
				return
			}
		}
	}
}

// measure counts the window (from, to]: distinct doors or entries. It also
// returns the index of the window's first entry.
func (e *Engine) measure(win []winEntry, from, to int64, distinct bool) (int, int) {
	lo := 0
	for lo < len(win) && win[lo].ts <= from {
		lo++
	}
	hi := len(win)
	for hi > lo && win[hi-1].ts > to {
		hi--
	}
	if !distinct {
		return hi - lo, lo
	}
	n := 0
	if hi-lo <= 24 {
		for i := lo; i < hi; i++ {
			dup := false
			for j := lo; j < i; j++ {
				if win[j].door == win[i].door {
					dup = true
					break
				}
			}
			if !dup {
				n++
			}
		}
		return n, lo
	}
	clear(e.scratch)
	for i := lo; i < hi; i++ {
		e.scratch[win[i].door] = struct{}{}
	}
	return len(e.scratch), lo
}

// burstHit is a measure that reached its threshold.
type burstHit struct {
	mi                   int
	observed, threshold  int
	strict               int // the threshold without the learning period's leniency
	own, roleBase, basis int
	peerBase, peers      int // the level peerQuorum peers reached today; peers active today
	lo                   int
	factor               float64 // learning factor applied
	// low: judged on little knowledge (learning period, a newcomer of a role
	// without enough history): raised at LearningSeverity, and its day
	// still teaches the baselines.
	low, learning bool
	// outside counts the window's distinct doors outside the credential's
	// entitlement; entitled reports that every entry's entitlement was known
	// and held (filled in only for low-confidence hits).
	outside  int
	entitled bool
}

// Bases of an unlock_burst threshold.
const (
	basisOwn = iota
	basisRole
	basisCold
	basisLearning
	basisPeers
)

// checkBurst is unlock_burst; cs is the event's credential (nil if none).
func (e *Engine) checkBurst(dst []Alert, s *subjectState, cs *credState, ev *event.Access) []Alert {
	r := &e.rules.Detectors.UnlockBurst
	day := ev.TsMs / dayMs
	if s.rollDay(day, r.HistoryDays) {
		e.dirty[subjectKey(ev)] = struct{}{}
	}
	if ev.SiteID != "" && ev.SiteID != s.site {
		s.site = ev.SiteID
		e.setPeerGroup(s, s.role, s.site)
	}
	newest := ev.TsMs
	if len(s.win) > 0 {
		newest = max(newest, s.win[len(s.win)-1].ts)
	}
	var added bool
	s.win, added = insertWin(s.win, winEntry{ts: ev.TsMs, door: doorKey(ev), eventID: ev.EventID, site: ev.SiteID, scope: e.scope(cs, ev)},
		newest-r.maxWindow()-e.opts.Lateness.Milliseconds())
	if !added {
		return dst
	}
	learning := !e.learned && ev.TsMs < e.firstTs+r.LearningPeriod.Ms()
	for end := range windowEnds(s.win, ev.TsMs, r.maxWindow()) {
		hits, best := e.burstAt(s, ev.TsMs, end, learning)
		if best >= 0 {
			return e.raiseBurst(dst, s, ev, end, &hits, best, learning)
		}
	}
	return dst
}

// burstAt measures the subject's windows ending at end that hold the new
// entry at ts, updating the day's peaks; best is the index of the measure
// furthest over its threshold, -1 if none reached it.
func (e *Engine) burstAt(s *subjectState, ts, end int64, learning bool) (hits [maxMeasures]burstHit, best int) {
	r := &e.rules.Detectors.UnlockBurst
	day := end / dayMs
	today := day == s.day
	best = -1
	for mi, m := range r.Measures {
		if end-m.Window.Ms() >= ts {
			continue // this window no longer holds the new entry: judged before
		}
		observed, lo := e.measure(s.win, end-m.Window.Ms(), end, m.Measure == "distinct_doors")
		if ms := &s.m[mi]; today && observed > ms.dayPeak {
			ms.dayPeak = observed
			if ms.capAt > 0 {
				e.setContribution(s, mi, min(observed, ms.capAt))
			} else {
				e.setContribution(s, mi, observed)
			}
		}
		if observed < min(m.Floor, m.ColdFloor) {
			continue
		}
		h := e.burstThreshold(s, mi, day, learning)
		h.observed, h.lo = observed, lo
		if h.low && observed >= h.strict {
			// Doors outside the credential's entitlement are known on day
			// one: a burst that reaches them is no guess, and is judged
			// without the learning period's leniency.
			if h.outside, h.entitled = e.entitlementOf(s.win, end-m.Window.Ms(), end); h.outside > 0 {
				h.low, h.threshold = false, h.strict
			}
		}
		hits[mi] = h
		if observed < h.threshold {
			continue
		}
		if best < 0 || observed*hits[best].threshold > hits[best].observed*h.threshold {
			best = mi
		}
	}
	return hits, best
}

// raiseBurst raises unlock_burst for the window ending at end, where
// measure best crossed its threshold.
func (e *Engine) raiseBurst(dst []Alert, s *subjectState, ev *event.Access, end int64, hits *[maxMeasures]burstHit, best int, learning bool) []Alert {
	r := &e.rules.Detectors.UnlockBurst
	hit := &hits[best]
	if end/dayMs == s.day && !s.dayAlerted && !hit.low {
		// The subject's own history does not learn from this day. Its
		// role's pool keeps it, capped at the threshold it crossed: dropping
		// the day would make a crew's rare-but-legitimate rounds page again
		// every time, keeping it whole would let one anomaly raise the bar
		// for the next.
		// A low-confidence alert (learning after a cold start, a newcomer
		// of a role without history) is judged on the least knowledge: it
		// neither caps the pool nor keeps its day from the subject's own
		// history (that day may well be its normal), so it is not here.
		// One raised while learning (doors outside the entitlement) does
		// not cap the pool either.
		s.dayAlerted = true
		for mi := range r.Measures {
			ms := &s.m[mi]
			if learning {
				continue
			}
			ms.capAt = max(hits[mi].threshold, 1)
			if hits[mi].threshold == 0 || hits[mi].threshold == math.MaxInt32 {
				ms.capAt = max(ms.dayPeak, 1)
			}
			e.setContribution(s, mi, min(ms.dayPeak, ms.capAt))
		}
	}
	m := r.Measures[best]
	sev := r.Severity
	if hit.low {
		sev = r.LearningSeverity
	}
	if r.EscalateAt > 0 && float64(hit.observed) >= r.EscalateAt*float64(hit.threshold) {
		sev = escalate(sev)
	}
	evidence := make([]string, 0, min(len(s.win)-hit.lo, MaxEvidence))
	first, door := end, doorKey(ev)
	for i := hit.lo; i < len(s.win) && s.win[i].ts <= end; i++ {
		if s.win[i].eventID != "" {
			evidence = append(evidence, s.win[i].eventID)
		}
		first = min(first, s.win[i].ts)
		if end != ev.TsMs {
			door = s.win[i].door // the window's last entry completed it
		}
	}
	what := fmt.Sprintf("opened %d distinct doors", hit.observed)
	if m.Measure == "unlocks" {
		what = fmt.Sprintf("unlocked %d times", hit.observed)
	}
	if r.IncludeDenied {
		what = fmt.Sprintf("tried %d distinct doors", hit.observed)
		if m.Measure == "unlocks" {
			what = fmt.Sprintf("tried to unlock %d times", hit.observed)
		}
	}
	who := "Subject " + ev.SubjectID
	if ev.SubjectID == "" {
		who = "Credential " + ev.CredentialID
	}
	role := s.role
	if role == "" {
		role = "unknown role"
	}
	expl := fmt.Sprintf("%s (%s) %s within %s, at or above its threshold of %d (%s).%s",
		who, role, what, humanDuration(m.Window.D()), hit.threshold, basisText(hit, role, s.site, r.PeerQuorum), e.confidenceText(hit))
	a := Alert{
		Detector: UnlockBurst, Severity: sev,
		SubjectID: ev.SubjectID, CredentialID: ev.CredentialID, DoorID: door, SiteID: ev.SiteID,
		TsMs: end, WindowStartMs: first, WindowEndMs: end,
		Observed: float64(hit.observed), Threshold: float64(hit.threshold), Baseline: float64(max(hit.own, hit.roleBase, hit.peerBase)),
		Evidence: evidence, Explanation: expl,
		SuggestedAction:  "Confirm with the subject or site staff that this activity is expected; if not, suspend the credential and review the doors involved.",
		SourceReceivedMs: ev.ReceivedMs,
	}
	return e.raise(dst, a, subjectKey(ev), r.Suppress.Ms())
}

// burstThreshold returns measure mi's threshold for the subject and what it
// is based on.
//
// What is known decides: the subject's own completed days, its role's pool
// once it has MinRoleSamples subject-days, and — for a newcomer with no day
// of its own, or while its role has too little history — its peers today
// (the level PeerQuorum subjects of its role at its site reached). A
// newcomer whose role has too little history gets the cold floor, and its
// alerts are low confidence; so is everything during the learning period
// after a cold start, when multiplier, margin and the cold floor are scaled
// by LearningFactor. strict is the threshold without that leniency.
func (e *Engine) burstThreshold(s *subjectState, mi int, day int64, learning bool) burstHit {
	r := &e.rules.Detectors.UnlockBurst
	m := r.Measures[mi]
	own, days := s.m[mi].ownBaseline(day, r.HistoryDays)
	h := burstHit{mi: mi, own: own, basis: basisOwn, learning: learning}
	self := 0
	if day == s.day {
		self = s.m[mi].contrib
	}
	rb, n := e.role(s.role).percentile(mi, day, r.HistoryDays, r.RolePercentile, self)
	mature := n >= r.MinRoleSamples
	base, floor := own, m.Floor
	if mature {
		h.roleBase = rb
		if rb > base {
			base, h.basis = rb, basisRole
		}
	}
	if days == 0 || !mature {
		// A newcomer, or a role without enough history yet (a crew in its
		// first days): what its peers reach today is known, and a pattern.
		if pb, np := e.peerBase(s, mi, day, self, r.PeerQuorum); np >= r.PeerQuorum && r.PeerQuorum > 0 {
			h.peerBase, h.peers = pb, np
			if pb > base {
				base, h.basis = pb, basisPeers
			}
		}
	}
	cold := days == 0 && !mature
	if cold {
		floor, h.low = m.ColdFloor, true
		if h.basis == basisOwn {
			h.basis = basisCold
		}
	}
	mult, margin := m.Multiplier, m.Margin
	h.strict = max(floor, int(math.Ceil(mult*float64(base))), base+margin)
	if learning {
		// Today's peaks are all that is known: only what is far above
		// them, or far above the cold floor, pages.
		h.low, h.factor = true, r.LearningFactor
		mult, margin = mult*r.LearningFactor, int(math.Ceil(float64(margin)*r.LearningFactor))
		if cold {
			floor = int(math.Ceil(float64(floor) * r.LearningFactor))
		}
		if h.basis == basisRole || h.basis == basisOwn {
			h.basis = basisLearning
		}
	}
	h.threshold = max(floor, int(math.Ceil(mult*float64(base))), base+margin)
	return h
}

// entitlementOf counts the distinct doors of the window (from, to] that are
// outside their credential's entitlement, and reports whether every entry
// was within a known entitlement.
func (e *Engine) entitlementOf(win []winEntry, from, to int64) (outside int, entitled bool) {
	entitled = true
	clear(e.scratch)
	for i := range win {
		w := &win[i]
		if w.ts <= from || w.ts > to {
			continue
		}
		switch w.scope {
		case scopeOutside:
			e.scratch[w.door] = struct{}{}
			entitled = false
		case scopeUnknown:
			entitled = false
		}
	}
	return len(e.scratch), entitled
}

func basisText(h *burstHit, role, site string, quorum int) string {
	var b strings.Builder
	switch h.basis {
	case basisCold:
		if h.factor > 1 {
			return fmt.Sprintf("nothing is known yet about the subject, its role or its peers: cold-start floor, %g× while learning", h.factor)
		}
		return "nothing is known yet about the subject, its role or its peers: cold-start floor"
	case basisPeers:
		fmt.Fprintf(&b, "its peers: at least %d of the %d other %s subjects at %s today reached %d", quorum, h.peers, role, site, h.peerBase)
		if h.own > 0 {
			fmt.Fprintf(&b, ", the subject itself peaks at %d", h.own)
		}
		if h.factor > 1 {
			fmt.Fprintf(&b, ", with %g× the usual multiplier and margin while learning", h.factor)
		}
		return b.String()
	case basisLearning:
		return fmt.Sprintf("learning after a cold start: judged against its role %s's peaks so far (%d) with %g× the usual multiplier and margin", role, h.roleBase, h.factor)
	case basisRole:
		fmt.Fprintf(&b, "its role %s usually peaks at %d", role, h.roleBase)
		if h.own > 0 {
			fmt.Fprintf(&b, ", the subject itself at %d", h.own)
		}
	default:
		fmt.Fprintf(&b, "its own highest daily peak is %d", h.own)
		if h.roleBase > 0 {
			fmt.Fprintf(&b, ", its role's %d", h.roleBase)
		}
	}
	return b.String()
}

// confidenceText is the sentence an alert judged on little knowledge ends
// with: why its confidence is low, or why it is raised at full severity
// anyway (doors outside the credential's entitlement).
func (e *Engine) confidenceText(h *burstHit) string {
	why := "there is no history yet for the subject and too little for its role"
	if h.learning {
		why = "learning after a cold start, the first " + humanDuration(e.rules.Detectors.UnlockBurst.LearningPeriod.D()) + " of event time"
	}
	switch {
	case h.outside == 1:
		return " Full severity although " + why + ": one of the doors is outside its credential's entitlement."
	case h.outside > 1:
		return fmt.Sprintf(" Full severity although %s: %d of the doors are outside its credential's entitlement.", why, h.outside)
	case !h.low:
		return ""
	case h.entitled:
		return " Low confidence (" + why + "); every door is within its credential's entitlement. Review it; do not act on it alone."
	}
	return " Low confidence (" + why + "). Review it; do not act on it alone."
}

func escalate(sev string) string {
	if r := SeverityRank(sev); r > 0 && r < len(Severities) {
		return Severities[r]
	}
	return sev
}

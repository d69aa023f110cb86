package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/keyfleet/keyfleet/internal/event"
)

// maxPeak bounds the per-day peak values kept (histogram bins).
const maxPeak = 255

// subjectState is everything kept per subject.
type subjectState struct {
	role string

	// win holds the subject's recent granted unlocks, ordered by time.
	win []winEntry

	// day is the UTC day (ts / 24h) the running peak belongs to; dayPeak the
	// highest measure seen in a window that day; contrib what this subject
	// currently contributes to its role's histogram for that day. A day that
	// raised a burst (dayAlerted) teaches neither baseline.
	day        int64
	dayPeak    int
	dayAlerted bool
	contrib    int
	// peaks are the completed active days' peaks, oldest first.
	peaks []dayPeak

	// Hour-of-day use histogram for off_schedule.
	hours     [24]uint32
	uses      uint32
	useDays   uint16
	lastUseDy int64

	// Denials of this subject/credential (denied_storm per credential).
	denied []winEntry
}

type winEntry struct {
	ts      int64
	door    string
	eventID string
	site    string
}

type dayPeak struct {
	day  int64
	peak int
}

// roleStats pools subject-day peaks by role: a histogram per day.
type roleStats struct {
	days map[int64]*[maxPeak + 1]uint32
}

func (e *Engine) role(name string) *roleStats {
	if name == "" {
		name = "unknown"
	}
	r := e.roles[name]
	if r == nil {
		r = &roleStats{days: map[int64]*[maxPeak + 1]uint32{}}
		e.roles[name] = r
	}
	return r
}

// setContribution moves the subject's entry in its role's histogram for its
// current day to value v.
func (e *Engine) setContribution(s *subjectState, v int, keepDays int) {
	v = min(v, maxPeak)
	if v == s.contrib {
		return
	}
	if s.contrib > 0 {
		if h := e.role(s.role).days[s.day]; h != nil && h[s.contrib] > 0 {
			h[s.contrib]--
		}
	}
	s.contrib = v
	if v <= 0 {
		return
	}
	r := e.role(s.role)
	h := r.days[s.day]
	if h == nil {
		h = new([maxPeak + 1]uint32)
		r.days[s.day] = h
		for d := range r.days {
			if d < s.day-int64(keepDays) {
				delete(r.days, d)
			}
		}
	}
	h[v]++
}

// setRole changes a subject's role, moving the peaks it contributed to the
// old role's pool over to the new one (roles come from credential records,
// which may arrive after the subject's first events).
func (e *Engine) setRole(key string, role string) {
	s := e.subject(key)
	if role == s.role {
		return
	}
	old, cur := e.role(s.role), e.role(role)
	for _, p := range s.peaks {
		v := min(p.peak, maxPeak)
		if h := old.days[p.day]; h != nil && h[v] > 0 {
			h[v]--
			hn := cur.days[p.day]
			if hn == nil {
				hn = new([maxPeak + 1]uint32)
				cur.days[p.day] = hn
			}
			hn[v]++
		}
	}
	v := s.contrib
	s.role = role
	e.dirty[key] = struct{}{}
	if v > 0 {
		s.contrib = 0
		if h := old.days[s.day]; h != nil && h[v] > 0 {
			h[v]--
		}
		e.setContribution(s, v, e.rules.Detectors.UnlockBurst.HistoryDays)
	}
}

// percentile returns the p-quantile of the role's subject-day peaks over the
// days [day-keep, day] and how many samples it is based on.
func (r *roleStats) percentile(day int64, keep int, p float64) (int, int) {
	var hist [maxPeak + 1]uint64
	var n uint64
	for d, h := range r.days {
		if d < day-int64(keep) || d > day {
			continue
		}
		for v, c := range h {
			hist[v] += uint64(c)
			n += uint64(c)
		}
	}
	if n == 0 {
		return 0, 0
	}
	rank := uint64(math.Ceil(p * float64(n)))
	var acc uint64
	for v, c := range hist {
		acc += c
		if acc >= rank && c > 0 {
			return v, int(n)
		}
	}
	return maxPeak, int(n)
}

// rollDay finishes the subject's running day when an event of a later day
// arrives: its peak joins the history, unless the day raised a burst (an
// anomaly must not teach the baseline).
func (s *subjectState) rollDay(day int64, historyDays int) (pushed bool) {
	if s.day >= 0 && day > s.day && s.dayPeak > 0 && !s.dayAlerted {
		pushed = true
		s.peaks = append(s.peaks, dayPeak{day: s.day, peak: s.dayPeak})
		if len(s.peaks) > historyDays {
			s.peaks = append(s.peaks[:0], s.peaks[len(s.peaks)-historyDays:]...)
		}
	}
	if day > s.day {
		s.day, s.dayPeak, s.dayAlerted, s.contrib = day, 0, false, 0
	}
	return pushed
}

// ownBaseline is the highest completed-day peak within the history horizon,
// and the number of such days.
func (s *subjectState) ownBaseline(day int64, historyDays int) (int, int) {
	best, n := 0, 0
	for _, p := range s.peaks {
		if p.day < day-int64(historyDays) {
			continue
		}
		n++
		best = max(best, p.peak)
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

// measure counts the window (from, to]: distinct doors or entries.
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

// checkBurst is unlock_burst.
func (e *Engine) checkBurst(dst []Alert, s *subjectState, ev *event.Access) []Alert {
	r := &e.rules.Detectors.UnlockBurst
	w := r.Window.Ms()
	day := ev.TsMs / dayMs
	if s.rollDay(day, r.HistoryDays) {
		e.dirty[subjectKey(ev)] = struct{}{}
	}
	newest := ev.TsMs
	if len(s.win) > 0 {
		newest = max(newest, s.win[len(s.win)-1].ts)
	}
	var added bool
	s.win, added = insertWin(s.win, winEntry{ts: ev.TsMs, door: doorKey(ev), eventID: ev.EventID, site: ev.SiteID},
		newest-w-e.opts.Lateness.Milliseconds())
	if !added {
		return dst
	}
	distinct := r.Measure == "distinct_doors"
	observed, lo := e.measure(s.win, ev.TsMs-w, ev.TsMs, distinct)
	if ev.TsMs/dayMs == s.day && !s.dayAlerted {
		if observed > s.dayPeak {
			s.dayPeak = observed
		}
		e.setContribution(s, s.dayPeak, r.HistoryDays)
	}
	if observed < min(r.Floor, r.ColdFloor) || (!e.learned && ev.TsMs < e.firstTs+r.LearningPeriod.Ms()) {
		return dst
	}
	threshold, baseline, roleBase, basis := e.burstThreshold(s, day)
	if observed < threshold {
		return dst
	}
	if ev.TsMs/dayMs == s.day && !s.dayAlerted {
		s.dayAlerted = true
		e.setContribution(s, 0, r.HistoryDays)
	}
	sev := r.Severity
	if r.EscalateAt > 0 && float64(observed) >= r.EscalateAt*float64(threshold) {
		sev = escalate(sev)
	}
	evidence := make([]string, 0, min(len(s.win)-lo, MaxEvidence))
	first := ev.TsMs
	for i := lo; i < len(s.win) && s.win[i].ts <= ev.TsMs; i++ {
		if s.win[i].eventID != "" {
			evidence = append(evidence, s.win[i].eventID)
		}
		first = min(first, s.win[i].ts)
	}
	what := "distinct doors"
	if !distinct {
		what = "unlocks"
	}
	role := s.role
	if role == "" {
		role = "unknown role"
	}
	expl := fmt.Sprintf("Subject %s (%s) opened %d %s within %s, at or above its threshold of %d (%s).",
		ev.SubjectID, role, observed, what, r.Window.D(), threshold, basisText(basis, baseline, roleBase))
	if ev.SubjectID == "" {
		expl = fmt.Sprintf("Credential %s opened %d %s within %s, at or above its threshold of %d (%s).",
			ev.CredentialID, observed, what, r.Window.D(), threshold, basisText(basis, baseline, roleBase))
	}
	a := Alert{
		Detector: UnlockBurst, Severity: sev,
		SubjectID: ev.SubjectID, CredentialID: ev.CredentialID, DoorID: doorKey(ev), SiteID: ev.SiteID,
		TsMs: ev.TsMs, WindowStartMs: first, WindowEndMs: ev.TsMs,
		Observed: float64(observed), Threshold: float64(threshold), Baseline: float64(baseline),
		Evidence: evidence, Explanation: expl,
		SuggestedAction:  "Confirm with the subject or site staff that this activity is expected; if not, suspend the credential and review the doors involved.",
		SourceReceivedMs: ev.ReceivedMs,
	}
	return e.raise(dst, a, subjectKey(ev), r.Suppress.Ms())
}

// Baseline bases of an unlock_burst threshold.
const (
	basisOwn  = "own"
	basisRole = "role"
	basisCold = "cold"
)

// burstThreshold returns the subject's threshold, the baseline it used, the
// role baseline (if consulted) and which basis applied.
func (e *Engine) burstThreshold(s *subjectState, day int64) (threshold, baseline, roleBase int, basis string) {
	r := &e.rules.Detectors.UnlockBurst
	own, days := s.ownBaseline(day, r.HistoryDays)
	floor := r.Floor
	baseline, basis = own, basisOwn
	if days < r.MinHistoryDays {
		rb, n := e.role(s.role).percentile(day, r.HistoryDays, r.RolePercentile)
		switch {
		case n >= r.MinRoleSamples:
			roleBase = rb
			baseline, basis = max(own, rb), basisRole
		case days > 0:
			// Sparse own history and no usable role baseline: its own
			// peaks, held up by the floor.
			basis = basisOwn + "-sparse"
		default:
			floor, basis = r.ColdFloor, basisCold
		}
	}
	threshold = max(floor, int(math.Ceil(r.Multiplier*float64(baseline))), baseline+r.Margin)
	return threshold, baseline, roleBase, basis
}

func basisText(basis string, baseline, roleBase int) string {
	switch basis {
	case basisOwn:
		return fmt.Sprintf("its usual daily peak is %d", baseline)
	case basisRole:
		return fmt.Sprintf("short history: baseline %d from its own peaks and its role's (%d)", baseline, roleBase)
	case basisOwn + "-sparse":
		return fmt.Sprintf("short history: its daily peak so far is %d", baseline)
	default:
		return "no history for the subject or its role yet: cold-start floor"
	}
}

func escalate(sev string) string {
	if r := SeverityRank(sev); r > 0 && r < len(Severities) {
		return Severities[r]
	}
	return sev
}

// noteUse records a granted unlock in the hour-of-day histogram.
func (s *subjectState) noteUse(ts int64, offsetMin int) {
	local := ts + int64(offsetMin)*60_000
	h := int((local / 3_600_000) % 24)
	if h < 0 {
		h += 24
	}
	s.hours[h]++
	s.uses++
	if d := local / dayMs; d != s.lastUseDy {
		s.lastUseDy = d
		if s.useDays < math.MaxUint16 {
			s.useDays++
		}
	}
}

// checkSchedule is off_schedule; it runs before the use is recorded.
func (e *Engine) checkSchedule(dst []Alert, s *subjectState, ev *event.Access) []Alert {
	r := &e.rules.Detectors.OffSchedule
	local := ev.TsMs + int64(r.UTCOffsetMinutes)*60_000
	h := int((local / 3_600_000) % 24)
	if h < 0 {
		h += 24
	}
	var expl string
	var observed, threshold, baseline float64
	if hours, ok := r.RoleHours[s.role]; ok && !inHours(h, hours) {
		expl = fmt.Sprintf("Subject %s (%s) used a door at %02d:00 local time, outside its role's hours %02d:00-%02d:00.",
			ev.SubjectID, s.role, h, hours[0], hours[1])
		observed, threshold = float64(h), float64(hours[0])
	} else if inHours(h, r.QuietHours) && int(s.uses) >= r.MinEvents && int(s.useDays) >= r.MinDays {
		var near uint32
		for d := -r.Neighbors; d <= r.Neighbors; d++ {
			near += s.hours[(h+d+24)%24]
		}
		frac := float64(near) / float64(s.uses)
		if frac >= r.MinFraction {
			return dst
		}
		expl = fmt.Sprintf("Subject %s used a door at %02d:00 local time; only %d of its %d uses over %d days fall within %d hour(s) of that time.",
			ev.SubjectID, h, near, s.uses, s.useDays, r.Neighbors)
		observed, threshold, baseline = frac, r.MinFraction, float64(s.uses)
	} else {
		return dst
	}
	hourStart := local - local%3_600_000 - int64(r.UTCOffsetMinutes)*60_000
	a := Alert{
		Detector: OffSchedule, Severity: r.Severity,
		SubjectID: ev.SubjectID, CredentialID: ev.CredentialID, DoorID: doorKey(ev), SiteID: ev.SiteID,
		TsMs: ev.TsMs, WindowStartMs: hourStart, WindowEndMs: hourStart + time.Hour.Milliseconds(),
		Observed: observed, Threshold: threshold, Baseline: baseline,
		Evidence: []string{ev.EventID}, Explanation: expl,
		SuggestedAction:  "Check whether the subject had a reason to be on site at this hour; if not, contact them and review the door's footage.",
		SourceReceivedMs: ev.ReceivedMs,
	}
	return e.raise(dst, a, subjectKey(ev), r.Suppress.Ms())
}

func inHours(h int, hours [2]int) bool {
	from, to := hours[0], hours[1]
	if from == to {
		return true
	}
	if from < to {
		return h >= from && h < to
	}
	return h >= from || h < to
}

package detect

import (
	"fmt"
	"math"
	"time"

	"github.com/keyfleet/keyfleet/internal/event"
)

// noteUse records a granted unlock in the hour-of-day histogram.
func (s *subjectState) noteUse(ts int64, offsetMin int) {
	local := ts + int64(offsetMin)*60_000
	h := int((local / 3_600_000) % 24)
	if h < 0 {
		h += 24
	}
	s.hours[h]++
	s.uses++
	s.usesThrough = max(s.usesThrough, ts)
	if d := local / dayMs; d != s.lastUseDy {
		s.lastUseDy = d
		if s.useDays < math.MaxUint16 {
			s.useDays++
		}
	}
}

// utcOffsetMinutes is the offset of local time at the event's site when it
// happened (off_schedule's time zones).
func (e *Engine) utcOffsetMinutes(ev *event.Access) int {
	loc := e.siteZones[ev.SiteID]
	if loc == nil {
		loc = e.zone
	}
	if loc == nil {
		return e.rules.Detectors.OffSchedule.UTCOffsetMinutes
	}
	_, off := time.UnixMilli(ev.TsMs).In(loc).Zone()
	return off / 60
}

// checkSchedule is off_schedule; it runs before the use is recorded.
// offset is local time's at the event's site (utcOffsetMinutes).
func (e *Engine) checkSchedule(dst []Alert, s *subjectState, ev *event.Access, offset int) []Alert {
	r := &e.rules.Detectors.OffSchedule
	local := ev.TsMs + int64(offset)*60_000
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
	hourStart := local - local%3_600_000 - int64(offset)*60_000
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

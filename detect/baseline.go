package detect

import "sort"

// Baseline is what the engine learned about one subject: its role, its
// completed days' peaks per unlock_burst measure and its hour-of-day use
// histogram (off_schedule). Role baselines are the pool of subjects' peaks,
// so they are rebuilt from these.
type Baseline struct {
	SubjectID string `json:"subject_id"`
	Role      string `json:"role,omitempty"`
	// Peaks per measure name (BurstMeasure.Name): [day (UTC days since
	// epoch), peak] pairs, oldest first. Measures no longer configured are
	// ignored on restore.
	Peaks      map[string][][2]int64 `json:"peaks"`
	Hours      [24]uint32            `json:"hours"`
	Uses       uint32                `json:"uses"`
	UseDays    uint16                `json:"use_days"`
	LastUseDay int64                 `json:"last_use_day"`
	// UsesThroughMs is the event time of the newest use Hours counts.
	UsesThroughMs int64 `json:"uses_through_ms,omitempty"`
}

// DirtyBaselines returns the baselines that changed since the last call
// (a use, a finished day, a role change), sorted by subject, and marks them
// clean.
func (e *Engine) DirtyBaselines() []Baseline {
	if len(e.dirty) == 0 {
		return nil
	}
	measures := e.rules.Detectors.UnlockBurst.Measures
	out := make([]Baseline, 0, len(e.dirty))
	for key := range e.dirty {
		s := e.subjects[key]
		if s == nil {
			continue
		}
		b := Baseline{SubjectID: key, Role: s.role, Hours: s.hours, Uses: s.uses, UseDays: s.useDays, LastUseDay: s.lastUseDy,
			UsesThroughMs: s.usesThrough, Peaks: map[string][][2]int64{}}
		for mi, m := range measures {
			ps := make([][2]int64, 0, len(s.m[mi].peaks)+1)
			for _, p := range s.m[mi].peaks {
				ps = append(ps, [2]int64{int64(p.day), int64(p.peak)})
			}
			if s.reopened && s.m[mi].dayPeak > 0 {
				ps = append(ps, [2]int64{s.day, int64(s.m[mi].dayPeak)}) // a restored day is still complete
			}
			b.Peaks[m.Name()] = ps
		}
		out = append(out, b)
	}
	clear(e.dirty)
	sort.Slice(out, func(i, j int) bool { return out[i].SubjectID < out[j].SubjectID })
	return out
}

// MarkDirty marks baselines as changed again (their save failed).
func (e *Engine) MarkDirty(bs []Baseline) {
	for _, b := range bs {
		e.dirty[b.SubjectID] = struct{}{}
	}
}

// RestoreBaselines loads saved baselines (before any event is processed). A
// restored engine has already learned: the cold-start learning period of
// unlock_burst does not apply.
func (e *Engine) RestoreBaselines(bs []Baseline) {
	r := &e.rules.Detectors.UnlockBurst
	for _, b := range bs {
		if b.SubjectID == "" {
			continue
		}
		s := e.subject(b.SubjectID)
		s.role = b.Role
		role := e.role(s.role)
		for mi, m := range r.Measures {
			ms := &s.m[mi]
			ms.peaks = ms.peaks[:0]
			for _, p := range b.Peaks[m.Name()] {
				ms.peaks = append(ms.peaks, dayPeak{day: int32(p[0]), peak: int32(p[1])})
			}
			if len(ms.peaks) > r.HistoryDays {
				ms.peaks = ms.peaks[len(ms.peaks)-r.HistoryDays:]
			}
			for _, p := range ms.peaks {
				role.add(mi, int64(p.day), int(p.peak), +1, r.HistoryDays)
				s.day = max(s.day, int64(p.day))
			}
		}
		// The newest restored day is reopened as the running day: a restart
		// that replays part of it (detect/stream's warm-up) raises its peak
		// instead of completing the day a second time. Its peak stays in
		// the role's pool as the running day's contribution.
		for mi := range r.Measures {
			ms := &s.m[mi]
			if n := len(ms.peaks); n > 0 && int64(ms.peaks[n-1].day) == s.day {
				ms.dayPeak, ms.contrib = int(ms.peaks[n-1].peak), int(ms.peaks[n-1].peak)
				ms.peaks = ms.peaks[:n-1]
				s.reopened = true
			}
		}
		s.hours, s.uses, s.useDays, s.lastUseDy = b.Hours, b.Uses, b.UseDays, b.LastUseDay
		s.usesThrough, s.restoredThrough = b.UsesThroughMs, b.UsesThroughMs
	}
	if len(bs) > 0 {
		e.learned = true
	}
}

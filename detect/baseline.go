package detect

import "sort"

// Baseline is what the engine learned about one subject: its role, its
// completed days' peaks (unlock_burst) and its hour-of-day use histogram
// (off_schedule). Role baselines are the pool of subjects' peaks, so they
// are rebuilt from these.
type Baseline struct {
	SubjectID  string     `json:"subject_id"`
	Role       string     `json:"role,omitempty"`
	Peaks      [][2]int64 `json:"peaks"` // [day (UTC days since epoch), peak]
	Hours      [24]uint32 `json:"hours"`
	Uses       uint32     `json:"uses"`
	UseDays    uint16     `json:"use_days"`
	LastUseDay int64      `json:"last_use_day"`
}

// DirtyBaselines returns the baselines that changed since the last call
// (a finished day, a role change), sorted by subject, and marks them clean.
func (e *Engine) DirtyBaselines() []Baseline {
	if len(e.dirty) == 0 {
		return nil
	}
	out := make([]Baseline, 0, len(e.dirty))
	for key := range e.dirty {
		s := e.subjects[key]
		if s == nil {
			continue
		}
		b := Baseline{SubjectID: key, Role: s.role, Hours: s.hours, Uses: s.uses, UseDays: s.useDays, LastUseDay: s.lastUseDy}
		for _, p := range s.peaks {
			b.Peaks = append(b.Peaks, [2]int64{p.day, int64(p.peak)})
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
	hd := e.rules.Detectors.UnlockBurst.HistoryDays
	for _, b := range bs {
		if b.SubjectID == "" {
			continue
		}
		s := e.subject(b.SubjectID)
		s.role = b.Role
		s.peaks = s.peaks[:0]
		for _, p := range b.Peaks {
			s.peaks = append(s.peaks, dayPeak{day: p[0], peak: int(p[1])})
		}
		if len(s.peaks) > hd {
			s.peaks = s.peaks[len(s.peaks)-hd:]
		}
		if n := len(s.peaks); n > 0 {
			s.day = s.peaks[n-1].day
		}
		s.hours, s.uses, s.useDays, s.lastUseDy = b.Hours, b.Uses, b.UseDays, b.LastUseDay
		r := e.role(s.role)
		for _, p := range s.peaks {
			v := min(p.peak, maxPeak)
			if v <= 0 {
				continue
			}
			h := r.days[p.day]
			if h == nil {
				h = new([maxPeak + 1]uint32)
				r.days[p.day] = h
			}
			h[v]++
		}
	}
	if len(bs) > 0 {
		e.learned = true
	}
}

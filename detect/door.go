package detect

import (
	"fmt"
	"sort"
	"time"

	"github.com/keyfleet/keyfleet/internal/event"
)

// doorState is everything kept per door.
type doorState struct {
	key    string
	site   string
	denied []winEntry // recent denials

	openSince   int64  // door_opened without door_closed yet (held-open timer)
	openEventID string // the door_opened event
	openRecvMs  int64
}

// checkDenied is denied_storm, per door and per credential (or subject).
//
// access.events is keyed by subject, falling back to the lock for events
// without a subject, so denials of unknown credentials at a door (the usual
// storm) all reach one partition. Denials of known subjects at one door are
// spread over their subjects' partitions and each instance counts its own
// share; the per-credential storm is always complete.
func (e *Engine) checkDenied(dst []Alert, s *subjectState, ev *event.Access) []Alert {
	r := &e.rules.Detectors.DeniedStorm
	w := r.Window.Ms()
	entry := winEntry{ts: ev.TsMs, door: doorKey(ev), eventID: ev.EventID, site: ev.SiteID}
	if key := doorKey(ev); key != "" {
		d := e.door(key)
		d.site = ev.SiteID
		var added bool
		if d.denied, added = insertWin(d.denied, entry, ev.TsMs-w-e.opts.Lateness.Milliseconds()); added {
			for end := range windowEnds(d.denied, ev.TsMs, w) {
				n, lo := e.measure(d.denied, end-w, end, false)
				if n < r.DoorThreshold {
					continue
				}
				ids, first := evidence(d.denied[lo:], end)
				a := Alert{
					Detector: DeniedStorm, Severity: r.Severity, DoorID: key, SiteID: ev.SiteID,
					TsMs: end, WindowStartMs: first, WindowEndMs: end,
					Observed: float64(n), Threshold: float64(r.DoorThreshold), Evidence: ids,
					Explanation: fmt.Sprintf("Door %s denied %d access attempts within %s (threshold %d).",
						key, n, humanDuration(r.Window.D()), r.DoorThreshold),
					SuggestedAction:  "Check the door for a tampering or brute-force attempt (camera, guard round) and whether a lock or its credential list is misconfigured.",
					SourceReceivedMs: ev.ReceivedMs,
				}
				dst = e.raise(dst, a, "door:"+key, r.Suppress.Ms())
				break
			}
		}
	}
	if s != nil {
		var added bool
		if s.denied, added = insertWin(s.denied, entry, ev.TsMs-w-e.opts.Lateness.Milliseconds()); added {
			for end := range windowEnds(s.denied, ev.TsMs, w) {
				n, lo := e.measure(s.denied, end-w, end, false)
				if n < r.CredentialThreshold {
					continue
				}
				ids, first := evidence(s.denied[lo:], end)
				who := "Subject " + ev.SubjectID
				if ev.CredentialID != "" {
					who = "Credential " + ev.CredentialID
				}
				a := Alert{
					Detector: DeniedStorm, Severity: r.Severity,
					SubjectID: ev.SubjectID, CredentialID: ev.CredentialID, DoorID: doorKey(ev), SiteID: ev.SiteID,
					TsMs: end, WindowStartMs: first, WindowEndMs: end,
					Observed: float64(n), Threshold: float64(r.CredentialThreshold), Evidence: ids,
					Explanation: fmt.Sprintf("%s was denied %d times within %s (threshold %d).",
						who, n, humanDuration(r.Window.D()), r.CredentialThreshold),
					SuggestedAction:  "Contact the holder: the credential may be expired, mis-provisioned or in the wrong hands; check the deny reasons.",
					SourceReceivedMs: ev.ReceivedMs,
				}
				dst = e.raise(dst, a, subjectKey(ev), r.Suppress.Ms())
				break
			}
		}
	}
	return dst
}

func evidence(win []winEntry, upTo int64) ([]string, int64) {
	ids := make([]string, 0, min(len(win), MaxEvidence))
	first := upTo
	for _, w := range win {
		if w.ts > upTo {
			break
		}
		if w.eventID != "" {
			ids = append(ids, w.eventID)
		}
		first = min(first, w.ts)
	}
	return ids, first
}

// emergency is emergency_unlock: always flagged for review.
func (e *Engine) emergency(dst []Alert, ev *event.Access, breakGlass bool) []Alert {
	r := &e.rules.Detectors.EmergencyUnlock
	key := "door:" + doorKey(ev)
	expl := fmt.Sprintf("Emergency unlock at door %s (method %s); every emergency unlock is reviewed.", doorKey(ev), ev.Method)
	if breakGlass {
		key = "credential:" + ev.CredentialID
		expl = fmt.Sprintf("Break-glass credential %s was used at door %s; every break-glass use is reviewed.", ev.CredentialID, doorKey(ev))
	}
	a := Alert{
		Detector: EmergencyUnlock, Severity: r.Severity,
		SubjectID: ev.SubjectID, CredentialID: ev.CredentialID, DoorID: doorKey(ev), SiteID: ev.SiteID,
		TsMs: ev.TsMs, WindowStartMs: ev.TsMs, WindowEndMs: ev.TsMs, Observed: 1, Threshold: 1,
		Evidence: []string{ev.EventID}, Explanation: expl,
		SuggestedAction:  "Review the reason for the emergency access (incident, drill, fault) and record it; re-secure the door.",
		SourceReceivedMs: ev.ReceivedMs,
	}
	return e.raise(dst, a, key, r.Suppress.Ms())
}

// doorEvent is door_forced and door_ajar reported by the lock.
func (e *Engine) doorEvent(dst []Alert, detector string, ev *event.Access) []Alert {
	var c Common
	var expl, action string
	switch detector {
	case DoorForced:
		c = e.rules.Detectors.DoorForced.Common
		expl = fmt.Sprintf("Door %s was forced open (opened without a granted unlock).", doorKey(ev))
		action = "Dispatch security to the door and review its camera; check the lock and frame for damage."
	default:
		c = e.rules.Detectors.DoorAjar.Common
		expl = fmt.Sprintf("Door %s reports it has been held open too long.", doorKey(ev))
		action = "Have someone close the door and check why it was held (propping, faulty closer)."
	}
	a := Alert{
		Detector: detector, Severity: c.Severity,
		SubjectID: ev.SubjectID, CredentialID: ev.CredentialID, DoorID: doorKey(ev), SiteID: ev.SiteID,
		TsMs: ev.TsMs, WindowStartMs: ev.TsMs, WindowEndMs: ev.TsMs, Observed: 1, Threshold: 1,
		Evidence: []string{ev.EventID}, Explanation: expl, SuggestedAction: action,
		SourceReceivedMs: ev.ReceivedMs,
	}
	// Door alerts are about the door; who last used it is context only.
	return e.raise(dst, a, "door:"+doorKey(ev), c.Suppress.Ms())
}

// trackDoor follows door_opened/door_closed for the held-open timer.
func (e *Engine) trackDoor(ev *event.Access) {
	key := doorKey(ev)
	if key == "" {
		return
	}
	d := e.door(key)
	d.site = ev.SiteID
	if ev.Action == "door_opened" {
		if d.openSince == 0 || ev.TsMs < d.openSince {
			d.openSince, d.openEventID, d.openRecvMs = ev.TsMs, ev.EventID, ev.ReceivedMs
		}
		e.heldOpen[key] = d
		return
	}
	if ev.TsMs >= d.openSince {
		d.openSince = 0
		delete(e.heldOpen, key)
	}
}

// checkHeldOpen raises door_ajar for doors open longer than HeldOpen at the
// watermark.
func (e *Engine) checkHeldOpen(dst []Alert, wm int64) []Alert {
	r := &e.rules.Detectors.DoorAjar
	held := r.HeldOpen.Ms()
	var keys []string
	for key, d := range e.heldOpen {
		if d.openSince+held <= wm {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		d := e.heldOpen[key]
		due := d.openSince + held
		a := Alert{
			Detector: DoorAjar, Severity: r.Severity, DoorID: key, SiteID: d.site,
			TsMs: due, WindowStartMs: d.openSince, WindowEndMs: due,
			Observed: float64(held) / 1000, Threshold: float64(held) / 1000,
			Evidence: []string{d.openEventID},
			Explanation: fmt.Sprintf("Door %s has been open for more than %s without closing.",
				key, humanDuration(time.Duration(held)*time.Millisecond)),
			SuggestedAction:  "Have someone close the door and check why it was held (propping, faulty closer).",
			SourceReceivedMs: d.openRecvMs,
		}
		dst = e.raise(dst, a, "door:"+key, r.Suppress.Ms())
		d.openSince = 0
		delete(e.heldOpen, key)
	}
	return dst
}

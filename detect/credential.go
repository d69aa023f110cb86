package detect

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/keyfleet/keyfleet/internal/event"
)

// maxTrusted bounds the attested devices remembered per credential.
const maxTrusted = 8

// maxGrants bounds the recent grants remembered per credential for the late
// revocation join.
const maxGrants = 16

// credState is everything kept per credential: its lifecycle history (so the
// state at any event time can be looked up, whichever stream is ahead), its
// device bindings and its recent granted uses.
type credState struct {
	id, subject, role, site string

	states []stateAt // sorted by ts

	firstDevice string   // the device it was first issued to
	trusted     []string // devices attested by a record or an attested use

	grants []grant // recent granted uses, oldest first

	lastUseMs     int64
	activeSinceMs int64
	validUntilMs  int64
	breakGlass    bool

	entitled []uint32 // sorted lock numbers (Engine.lockNums); nil: no entitlement on record (Entitle)
}

type stateAt struct {
	ts    int64
	state string
}

// grant is a remembered granted use (a credential keeps up to maxGrants
// of them for the lookback), 56 bytes: the event id in binary when it is a
// canonical UUID (as keyfleet's event ids are), door, site and subject as
// numbers of the engine's names.
type grant struct {
	ts, receivedMs      int64
	id                  [16]byte
	idText              *string // an event id that is not a canonical UUID
	door, site, subject uint32  // names.text
	alerted             bool
}

// compactID returns a canonical (lowercase, not nil) UUID's bytes: the
// ones that format back to the same text.
func compactID(id string) ([16]byte, bool) {
	if len(id) != 36 || strings.ContainsFunc(id, func(r rune) bool { return r >= 'A' && r <= 'F' }) {
		return [16]byte{}, false
	}
	u, err := uuid.Parse(id)
	return u, err == nil && u != uuid.Nil
}

func (g *grant) eventID() string {
	if g.idText != nil {
		return *g.idText
	}
	if g.id == ([16]byte{}) {
		return ""
	}
	return uuid.UUID(g.id).String()
}

// names numbers the doors, sites and subjects grants name: 0 is "", the
// rest in order of first use; bounded by the estate and its people.
type names struct {
	index map[string]uint32
	texts []string
}

func (n *names) number(s string) uint32 {
	if s == "" {
		return 0
	}
	if i, ok := n.index[s]; ok {
		return i
	}
	if n.index == nil {
		n.index, n.texts = map[string]uint32{}, []string{""}
	}
	i := uint32(len(n.texts))
	n.texts = append(n.texts, s)
	n.index[s] = i
	return i
}

func (n *names) text(i uint32) string {
	if i == 0 {
		return ""
	}
	return n.texts[i]
}

// addState records a lifecycle record (records may arrive out of order).
func (c *credState) addState(ts int64, state string) {
	i := len(c.states)
	for i > 0 && c.states[i-1].ts > ts {
		i--
	}
	if i > 0 && c.states[i-1].ts == ts && c.states[i-1].state == state {
		return // re-delivered
	}
	c.states = slices.Insert(c.states, i, stateAt{ts: ts, state: state})
}

// latest returns the most recent state ("" when none is known).
func (c *credState) latest() stateAt {
	if len(c.states) == 0 {
		return stateAt{}
	}
	return c.states[len(c.states)-1]
}

// stateAt returns the state in force at ts and when the run of blocked
// states it belongs to began (0 if it is not blocked).
func (c *credState) blockedSince(ts int64, includeSuspended bool) (string, int64) {
	i := len(c.states) - 1
	for i >= 0 && c.states[i].ts > ts {
		i--
	}
	if i < 0 || !blocked(c.states[i].state, includeSuspended) {
		return "", 0
	}
	state := c.states[i].state
	for i > 0 && blocked(c.states[i-1].state, includeSuspended) {
		i--
	}
	return state, c.states[i].ts
}

func blocked(state string, includeSuspended bool) bool {
	switch state {
	case event.StateRevoked, event.StateArchived:
		return true
	case event.StateSuspended:
		return includeSuspended
	}
	return false
}

// bindDevice records that the credential is bound to a device.
func (c *credState) bindDevice(device string, attested bool) {
	if c.firstDevice == "" {
		c.firstDevice = device
	}
	if attested {
		c.trust(device)
	}
}

func (c *credState) trust(device string) {
	if device == c.firstDevice || slices.Contains(c.trusted, device) {
		return
	}
	if len(c.trusted) >= maxTrusted {
		c.trusted = c.trusted[1:]
	}
	c.trusted = append(c.trusted, device)
}

func (c *credState) known(device string) bool {
	return device == c.firstDevice || slices.Contains(c.trusted, device)
}

// noteGrant remembers a granted use and returns its index in c.grants (-1
// for a re-delivered event).
func (c *credState) noteGrant(ev *event.Access, lookback int64, n *names) int {
	if ev.TsMs > c.lastUseMs {
		c.lastUseMs = ev.TsMs
	}
	id, isUUID := compactID(ev.EventID)
	if ev.EventID != "" {
		for i := range c.grants {
			if g := &c.grants[i]; isUUID && g.idText == nil && g.id == id || !isUUID && g.idText != nil && *g.idText == ev.EventID {
				return -1
			}
		}
	}
	drop := 0
	for drop < len(c.grants) && (c.grants[drop].ts < ev.TsMs-lookback || len(c.grants)-drop >= maxGrants) {
		drop++
	}
	c.grants = append(c.grants[:0], c.grants[drop:]...)
	g := grant{ts: ev.TsMs, id: id, door: n.number(doorKey(ev)), site: n.number(ev.SiteID), receivedMs: ev.ReceivedMs,
		subject: n.number(ev.SubjectID)}
	if !isUUID {
		text := ev.EventID
		g.idText = &text
	}
	c.grants = append(c.grants, g)
	return len(c.grants) - 1
}

// checkRevocation is use_after_revocation for grant i when the credential's
// revocation (or suspension) is already known.
func (e *Engine) checkRevocation(dst []Alert, c *credState, i int) []Alert {
	r := &e.rules.Detectors.UseAfterRevocation
	g := &c.grants[i]
	state, since := c.blockedSince(g.ts, r.IncludeSuspended)
	if state == "" || g.ts <= since+r.Grace.Ms() {
		return dst
	}
	g.alerted = true
	return e.revocationAlert(dst, c, *g, state, since)
}

// lateRevocation joins a revocation (or suspension) record that arrived after
// grants it should have prevented: the remembered grants after it raise the
// alert now.
func (e *Engine) lateRevocation(dst []Alert, c *credState) []Alert {
	r := &e.rules.Detectors.UseAfterRevocation
	for i := range c.grants {
		g := &c.grants[i]
		if g.alerted {
			continue
		}
		state, since := c.blockedSince(g.ts, r.IncludeSuspended)
		if state == "" || g.ts <= since+r.Grace.Ms() {
			continue
		}
		g.alerted = true
		dst = e.revocationAlert(dst, c, *g, state, since)
	}
	return dst
}

func (e *Engine) revocationAlert(dst []Alert, c *credState, g grant, state string, since int64) []Alert {
	r := &e.rules.Detectors.UseAfterRevocation
	subject := e.names.text(g.subject)
	if subject == "" {
		subject = c.subject
	}
	site := e.names.text(g.site)
	if site == "" {
		site = c.site
	}
	door := e.names.text(g.door)
	after := time.Duration(g.ts-since) * time.Millisecond
	a := Alert{
		Detector: UseAfterRevocation, Severity: r.Severity,
		SubjectID: subject, CredentialID: c.id, DoorID: door, SiteID: site,
		TsMs: g.ts, WindowStartMs: since, WindowEndMs: g.ts,
		Observed: float64(g.ts-since) / 1000, Threshold: float64(r.Grace.Ms()) / 1000,
		Evidence: []string{g.eventID()},
		Explanation: fmt.Sprintf("Credential %s was granted access at door %s %s after it was %s; the change did not reach this lock.",
			c.id, door, humanDuration(after), state),
		SuggestedAction:  "Re-push the revocation to the lock's gateway and confirm its acknowledgement; disable the credential at the lock if the gateway is unreachable; review who entered.",
		SourceReceivedMs: g.receivedMs,
	}
	return e.raise(dst, a, "credential:"+c.id, r.Suppress.Ms())
}

// checkDevice is unattested_device_change.
func (e *Engine) checkDevice(dst []Alert, c *credState, ev *event.Access, granted bool) []Alert {
	r := &e.rules.Detectors.UnattestedDeviceChange
	d := ev.DeviceID
	if ev.Attested == "attested" {
		if c.firstDevice == "" {
			c.firstDevice = d
		}
		c.trust(d)
		return dst
	}
	if c.known(d) {
		return dst
	}
	if c.firstDevice == "" {
		// First sighting of a credential with no binding on record: nothing
		// to compare against yet, so this device becomes its binding.
		c.firstDevice = d
		return dst
	}
	if r.GrantedOnly && !granted {
		return dst
	}
	att := ev.Attested
	if att == "" {
		att = "unknown"
	}
	a := Alert{
		Detector: UnattestedDeviceChange, Severity: r.Severity,
		SubjectID: ev.SubjectID, CredentialID: c.id, DoorID: doorKey(ev), SiteID: ev.SiteID,
		TsMs: ev.TsMs, WindowStartMs: ev.TsMs, WindowEndMs: ev.TsMs,
		Observed: 1, Threshold: 1, Baseline: float64(1 + len(c.trusted)),
		Evidence: []string{ev.EventID},
		Explanation: fmt.Sprintf("Credential %s was used (%s) from device %s, which is neither the device it was issued to (%s) nor one it was attested on, and the use carries no attestation (%s).",
			c.id, ev.Outcome, d, c.firstDevice, att),
		SuggestedAction:  "Ask the holder to confirm the new phone; require a fresh attested provisioning, and suspend the credential if the holder does not recognize the device.",
		SourceReceivedMs: ev.ReceivedMs,
	}
	return e.raise(dst, a, "credential:"+c.id, r.Suppress.Ms())
}

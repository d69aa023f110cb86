// Package synth generates a small synthetic estate's access events,
// credential records and labelled anomalies for detector tests and
// benchmarks, until the fleet simulator's replay files are available. It is
// deliberately simple but contains what the detectors must cope with: daily
// rhythms, maintenance and cleaning crews that open many doors every day,
// concierges that unlock all day long, phone upgrades with and without
// attestation, revocations that propagate (and some that do not), wrong-PIN
// denials, and night owls.
package synth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Label is one labelled anomaly (the backtest label format).
type Label struct {
	Type         string `json:"type"`
	SubjectID    string `json:"subject_id"`
	CredentialID string `json:"credential_id"`
	DoorID       string `json:"door_id"`
	StartMs      int64  `json:"start_ms"`
	EndMs        int64  `json:"end_ms"`
}

// Config sizes the estate.
type Config struct {
	Seed     uint64
	Start    time.Time // first day (UTC midnight)
	Days     int
	Sites    int
	Subjects int // per site
	// Anomalies per type over the whole data set.
	Bursts, DeviceChanges, Revocations, DeniedStorms, Forced int
}

// Default is a two-week estate of about 200,000 events.
func Default() Config {
	return Config{Seed: 7, Start: time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC), Days: 14, Sites: 4, Subjects: 230,
		Bursts: 40, DeviceChanges: 30, Revocations: 25, DeniedStorms: 15, Forced: 10}
}

// Record is one line of a replay file: an access event or a credential record.
type Record struct {
	Access     *event.Access
	Credential *event.Credential
}

// Ts is the record's event time.
func (r Record) Ts() int64 {
	if r.Access != nil {
		return r.Access.TsMs
	}
	return r.Credential.TsMs
}

// Data is a generated data set.
type Data struct {
	Records []Record // ordered by ts_ms
	Labels  []Label
}

type subject struct {
	id, cred, device, role, site, unit string
	active, labelled                   bool
}

type site struct {
	id                                  string
	entrances, garage, amenity, service []string
	units                               []string
	office                              string
}

type gen struct {
	cfg    Config
	rng    *rand.Rand
	n      int
	recs   []Record
	labels []Label
	sites  []*site
	subs   []*subject
}

// Generate builds the data set for cfg.
func Generate(cfg Config) *Data {
	g := &gen{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x6b6579666c656574))}
	g.build()
	g.daily()
	g.anomalies()
	sort.SliceStable(g.recs, func(i, j int) bool { return g.recs[i].Ts() < g.recs[j].Ts() })
	sort.Slice(g.labels, func(i, j int) bool { return g.labels[i].StartMs < g.labels[j].StartMs })
	return &Data{Records: g.recs, Labels: g.labels}
}

func (g *gen) start() int64 { return g.cfg.Start.UnixMilli() }

func (g *gen) build() {
	roles := []struct {
		role  string
		share float64
	}{{"resident", 0.72}, {"guest", 0.06}, {"contractor", 0.04}, {"maintenance", 0.05}, {"cleaning", 0.05},
		{"concierge", 0.03}, {"staff", 0.05}}
	for s := range g.cfg.Sites {
		st := &site{id: fmt.Sprintf("site-%d", s+1), office: fmt.Sprintf("s%d-office", s+1)}
		for i := range 2 {
			st.entrances = append(st.entrances, fmt.Sprintf("s%d-entrance-%d", s+1, i+1))
		}
		st.garage = []string{fmt.Sprintf("s%d-garage", s+1)}
		for _, a := range []string{"gym", "pool", "mail"} {
			st.amenity = append(st.amenity, fmt.Sprintf("s%d-%s", s+1, a))
		}
		for i := range 24 {
			st.service = append(st.service, fmt.Sprintf("s%d-svc-%d", s+1, i+1))
		}
		g.sites = append(g.sites, st)
		for i := range g.cfg.Subjects {
			u := g.rng.Float64()
			role := "resident"
			for _, r := range roles {
				if u < r.share {
					role = r.role
					break
				}
				u -= r.share
			}
			sub := &subject{
				id: fmt.Sprintf("sub-%d-%d", s+1, i+1), cred: fmt.Sprintf("cred-%d-%d", s+1, i+1),
				device: fmt.Sprintf("dev-%d-%d-a", s+1, i+1), role: role, site: st.id, active: true,
			}
			if role == "resident" || role == "guest" {
				sub.unit = fmt.Sprintf("s%d-unit-%d", s+1, i+1)
				st.units = append(st.units, sub.unit)
			}
			g.subs = append(g.subs, sub)
			issued := g.start() - int64(20+g.rng.IntN(200))*24*3600*1000 - int64(g.rng.IntN(86400000))
			g.cred(sub, event.StateIssued, issued, false)
			g.cred(sub, event.StateActive, issued+int64(g.rng.IntN(3600000)), true)
		}
	}
}

func (g *gen) cred(s *subject, state string, ts int64, attested bool) {
	c := &event.Credential{Record: "credential", CredentialID: s.cred, SubjectID: s.id, State: state,
		Role: s.role, SiteID: s.site, TsMs: ts, Actor: "synth"}
	if state == event.StateIssued || state == event.StateActive {
		c.DeviceID, c.Attested = s.device, attested
	}
	g.recs = append(g.recs, Record{Credential: c})
}

// access appends one access event.
func (g *gen) access(s *subject, door string, ts int64, mod func(*event.Access)) *event.Access {
	g.n++
	a := &event.Access{
		EventID: event.ID("synth", strconv.Itoa(g.n)), TsMs: ts, ReceivedMs: ts + 200 + int64(g.rng.IntN(800)),
		Vendor: "matter", SiteID: s.site, DoorID: door, LockID: "lock-" + door,
		SubjectID: s.id, CredentialID: s.cred, DeviceID: s.device, Attested: "unknown",
		Action: "unlock", Outcome: "granted", Method: "phone_nfc",
	}
	if g.rng.IntN(10) == 0 {
		a.Attested = "attested"
	}
	if mod != nil {
		mod(a)
	}
	g.recs = append(g.recs, Record{Access: a})
	return a
}

func (g *gen) siteOf(s *subject) *site {
	for _, st := range g.sites {
		if st.id == s.site {
			return st
		}
	}
	return g.sites[0]
}

func (g *gen) minutes(m float64) int64 { return int64(m * 60000) }

// at returns day d at hour h (fractional) with a few minutes of jitter.
func (g *gen) at(d int, h float64, jitterMin float64) int64 {
	return g.start() + int64(d)*86400000 + int64(h*3600000) + int64((g.rng.Float64()*2-1)*jitterMin*60000)
}

// daily generates the normal activity.
func (g *gen) daily() {
	for d := range g.cfg.Days {
		weekend := (int(g.cfg.Start.Weekday())+d)%7 == 0 || (int(g.cfg.Start.Weekday())+d)%7 == 6
		for _, s := range g.subs {
			if !s.active {
				continue
			}
			st := g.siteOf(s)
			switch s.role {
			case "resident", "guest":
				g.resident(s, st, d, weekend)
			case "maintenance", "cleaning":
				if !weekend || g.rng.IntN(3) == 0 {
					g.crew(s, st, d)
				}
			case "concierge", "staff":
				if !weekend {
					g.desk(s, st, d)
				}
			case "contractor":
				if !weekend && g.rng.IntN(2) == 0 {
					g.contractor(s, st, d)
				}
			}
			// Occasional wrong PIN / stale phone key: a single denial.
			if g.rng.IntN(40) == 0 {
				g.access(s, st.entrances[0], g.at(d, 7+g.rng.Float64()*14, 0), func(a *event.Access) {
					a.Action, a.Outcome, a.Reason = "access_denied", "denied", "invalid_credential"
				})
			}
		}
		// Sensor noise per site: door open/close pairs.
		for _, st := range g.sites {
			for range 20 {
				ts := g.at(d, 6+g.rng.Float64()*16, 0)
				door := st.entrances[g.rng.IntN(len(st.entrances))]
				g.recs = append(g.recs, Record{Access: g.sensor(st, door, "door_opened", ts)}, Record{Access: g.sensor(st, door, "door_closed", ts+20000)})
			}
		}
	}
}

func (g *gen) sensor(st *site, door, action string, ts int64) *event.Access {
	g.n++
	return &event.Access{EventID: event.ID("synth", strconv.Itoa(g.n)), TsMs: ts, ReceivedMs: ts + 300,
		Vendor: "nuki", SiteID: st.id, DoorID: door, LockID: "lock-" + door, Attested: "unknown",
		Action: action, Outcome: "info", Method: "unknown"}
}

func (g *gen) resident(s *subject, st *site, d int, weekend bool) {
	if g.rng.IntN(12) == 0 {
		return // away
	}
	out := 7.5 + g.rng.Float64()*2
	if weekend {
		out = 10 + g.rng.Float64()*3
	}
	t := g.at(d, out, 20)
	g.access(s, s.unit, t, nil)
	if g.rng.IntN(2) == 0 {
		g.access(s, st.garage[0], t+g.minutes(2+g.rng.Float64()*3), nil)
	} else {
		g.access(s, st.entrances[g.rng.IntN(2)], t+g.minutes(1+g.rng.Float64()*2), nil)
	}
	if g.rng.IntN(3) == 0 {
		g.access(s, st.amenity[g.rng.IntN(len(st.amenity))], g.at(d, 12+g.rng.Float64()*6, 0), nil)
	}
	back := 17 + g.rng.Float64()*4
	if g.rng.IntN(25) == 0 {
		back = 23.5 + g.rng.Float64()*3 // night owl
	}
	t = g.at(d, back, 30)
	g.access(s, st.entrances[g.rng.IntN(2)], t, nil)
	if g.rng.IntN(4) == 0 {
		g.access(s, st.amenity[2], t+g.minutes(1), nil)
	}
	g.access(s, s.unit, t+g.minutes(2+g.rng.Float64()*2), nil)
}

// crew opens a run of service and unit doors, morning and afternoon.
func (g *gen) crew(s *subject, st *site, d int) {
	for _, h := range []float64{8.5, 13.5} {
		t := g.at(d, h, 30)
		n := 10 + g.rng.IntN(8)
		doors := append(append([]string{}, st.service...), st.units...)
		g.rng.Shuffle(len(doors), func(i, j int) { doors[i], doors[j] = doors[j], doors[i] })
		for i := range n {
			g.access(s, doors[i], t, nil)
			t += g.minutes(1 + g.rng.Float64()*2.5)
		}
	}
}

// desk unlocks the office and entrances all day: many unlocks, few doors.
func (g *gen) desk(s *subject, st *site, d int) {
	t := g.at(d, 8, 15)
	for t < g.at(d, 18, 0) {
		door := st.office
		switch g.rng.IntN(4) {
		case 0:
			door = st.entrances[g.rng.IntN(2)]
		case 1:
			door = st.amenity[2]
		}
		g.access(s, door, t, nil)
		t += g.minutes(5 + g.rng.Float64()*25)
	}
}

func (g *gen) contractor(s *subject, st *site, d int) {
	t := g.at(d, 9+g.rng.Float64()*5, 0)
	g.access(s, st.entrances[0], t, nil)
	for i := range 1 + g.rng.IntN(3) {
		g.access(s, st.service[(d+i)%len(st.service)], t+g.minutes(float64(5+i*20)), nil)
	}
}

func (g *gen) pick(role ...string) *subject {
	for {
		s := g.subs[g.rng.IntN(len(g.subs))]
		if !s.active || s.labelled {
			continue
		}
		for _, r := range role {
			if s.role == r {
				s.labelled = true
				return s
			}
		}
	}
}

// anomalies injects labelled anomalies and benign look-alikes.
func (g *gen) anomalies() {
	firstDay := 2 // after the learning period
	day := func() int { return firstDay + g.rng.IntN(g.cfg.Days-firstDay) }
	for i := range g.cfg.Bursts {
		s := g.pick("resident", "guest", "contractor", "staff")
		st := g.siteOf(s)
		n := 8 + g.rng.IntN(8)
		if i%5 == 0 {
			n = 6 + g.rng.IntN(2) // subtle
		}
		doors := append(append([]string{}, st.service...), st.units...)
		g.rng.Shuffle(len(doors), func(a, b int) { doors[a], doors[b] = doors[b], doors[a] })
		t := g.at(day(), 9+g.rng.Float64()*12, 0)
		start := t
		for k := range n {
			g.access(s, doors[k], t, nil)
			t += g.minutes(0.5 + g.rng.Float64()*2.5)
		}
		g.labels = append(g.labels, Label{Type: "unlock_burst", SubjectID: s.id, CredentialID: s.cred, StartMs: start, EndMs: t})
	}
	// Crew bursts: far above a crew's own habit.
	for range g.cfg.Bursts / 8 {
		s := g.pick("maintenance", "cleaning")
		st := g.siteOf(s)
		doors := append(append([]string{}, st.service...), st.units...)
		g.rng.Shuffle(len(doors), func(a, b int) { doors[a], doors[b] = doors[b], doors[a] })
		t := g.at(day(), 20+g.rng.Float64()*2, 0)
		start := t
		for k := range min(45, len(doors)) {
			g.access(s, doors[k], t, nil)
			t += g.minutes(0.3 + g.rng.Float64()*0.3)
		}
		g.labels = append(g.labels, Label{Type: "unlock_burst", SubjectID: s.id, CredentialID: s.cred, StartMs: start, EndMs: t})
	}
	for i := range g.cfg.DeviceChanges {
		s := g.pick("resident", "staff", "guest")
		st := g.siteOf(s)
		t := g.at(day(), 8+g.rng.Float64()*12, 0)
		newDev := s.device + fmt.Sprintf("-x%d", i)
		start := t
		for k := range 1 + g.rng.IntN(3) {
			g.access(s, st.entrances[k%2], t, func(a *event.Access) { a.DeviceID, a.Attested = newDev, "unattested" })
			t += g.minutes(10 + g.rng.Float64()*120)
		}
		g.labels = append(g.labels, Label{Type: "unattested_device_change", SubjectID: s.id, CredentialID: s.cred, StartMs: start, EndMs: t})
	}
	// Benign: attested phone upgrades, some announced by a credential record.
	for i := range g.cfg.DeviceChanges {
		s := g.pick("resident", "staff")
		t := g.at(day(), 7+g.rng.Float64()*3, 0)
		old := s.device
		s.device = fmt.Sprintf("%s-up%d", s.device, i)
		for _, r := range g.recs {
			if a := r.Access; a != nil && a.CredentialID == s.cred && a.TsMs >= t && a.DeviceID == old {
				a.DeviceID = s.device
			}
		}
		if i%2 == 0 {
			g.cred(s, event.StateActive, t-g.minutes(30), true)
		} else {
			dev := s.device
			g.access(s, g.siteOf(s).entrances[0], t-g.minutes(30), func(a *event.Access) { a.DeviceID, a.Attested = dev, "attested" })
		}
	}
	for range g.cfg.Revocations {
		s := g.pick("resident", "guest", "contractor")
		st := g.siteOf(s)
		d := day()
		rev := g.at(d, 6+g.rng.Float64()*6, 0)
		g.cred(s, event.StateRevoked, rev, false)
		s.active = false
		g.dropAfter(s, rev)
		legacy := fmt.Sprintf("%s-legacy-panel", st.id)
		t := rev + g.minutes(20+g.rng.Float64()*600)
		start := t
		for k := range 1 + g.rng.IntN(3) {
			g.access(s, legacy, t, func(a *event.Access) { a.Vendor, a.Method, a.DeviceID = "legacy", "card", "" })
			if k == 0 {
				g.access(s, st.entrances[0], t+g.minutes(5), func(a *event.Access) {
					a.Action, a.Outcome, a.Reason = "access_denied", "denied", "revoked"
				})
			}
			t += g.minutes(30 + g.rng.Float64()*600)
		}
		g.labels = append(g.labels, Label{Type: "use_after_revocation", SubjectID: s.id, CredentialID: s.cred, StartMs: start, EndMs: t})
	}
	// Benign: revocations that propagate (a grant seconds after, then denials).
	for range g.cfg.Revocations {
		s := g.pick("resident", "guest", "contractor")
		st := g.siteOf(s)
		rev := g.at(day(), 9+g.rng.Float64()*8, 0)
		g.cred(s, event.StateRevoked, rev, false)
		s.active = false
		g.dropAfter(s, rev)
		g.access(s, st.entrances[1], rev+20000, nil)
		g.access(s, st.entrances[0], rev+g.minutes(60), func(a *event.Access) {
			a.Action, a.Outcome, a.Reason = "access_denied", "denied", "revoked"
		})
	}
	for range g.cfg.DeniedStorms {
		st := g.sites[g.rng.IntN(len(g.sites))]
		door := st.service[g.rng.IntN(len(st.service))]
		t := g.at(day(), g.rng.Float64()*24, 0)
		start := t
		for range 10 + g.rng.IntN(15) {
			g.n++
			g.recs = append(g.recs, Record{Access: &event.Access{EventID: event.ID("synth", strconv.Itoa(g.n)), TsMs: t, ReceivedMs: t + 400,
				Vendor: "legacy", SiteID: st.id, DoorID: door, LockID: "lock-" + door, Attested: "unknown",
				Action: "access_denied", Outcome: "denied", Method: "card", Reason: "invalid_credential"}})
			t += 5000 + int64(g.rng.IntN(25000))
		}
		g.labels = append(g.labels, Label{Type: "denied_storm", DoorID: door, StartMs: start, EndMs: t})
	}
	for range g.cfg.Forced {
		st := g.sites[g.rng.IntN(len(g.sites))]
		door := st.garage[0]
		if g.rng.IntN(2) == 0 {
			door = st.service[g.rng.IntN(len(st.service))]
		}
		t := g.at(day(), g.rng.Float64()*24, 0)
		g.recs = append(g.recs, Record{Access: g.sensor(st, door, "door_forced", t)})
		g.labels = append(g.labels, Label{Type: "door_forced", DoorID: door, StartMs: t, EndMs: t})
	}
}

// dropAfter removes a revoked subject's normal activity after ts (its
// holder no longer has a working key; anomalies are added separately).
func (g *gen) dropAfter(s *subject, ts int64) {
	out := g.recs[:0]
	for _, r := range g.recs {
		if r.Access != nil && r.Access.CredentialID == s.cred && r.Access.TsMs >= ts {
			continue
		}
		out = append(out, r)
	}
	g.recs = out
}

// WriteJSONL writes the records as a replay file.
func (d *Data) WriteJSONL(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	for _, r := range d.Records {
		buf = buf[:0]
		if r.Access != nil {
			buf = r.Access.AppendJSON(buf)
		} else {
			b, err := json.Marshal(r.Credential)
			if err != nil {
				return err
			}
			buf = append(buf, b...)
		}
		buf = append(buf, '\n')
		if _, err := bw.Write(buf); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// WriteLabels writes the labels as JSON lines.
func (d *Data) WriteLabels(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, l := range d.Labels {
		if err := enc.Encode(l); err != nil {
			return err
		}
	}
	return nil
}

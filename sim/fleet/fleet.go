// Package fleet holds the simulated estate: sites with their doors, one lock
// per door from a mix of vendors, the people who live and work there, and
// their phone-key credentials with every vendor identity those keys have.
//
// The fleet is a pure function of its Options (seed and knobs): the same
// options give the same sites, lock ids, subjects, credentials and vendor
// user references, so `keyfleet simulate` and `keyfleet simulate gateways`
// started separately agree on the estate, and a registry file written by one
// run resolves the events of another.
package fleet

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/keyfleet/keyfleet/internal/event"
)

// Door kinds; each is also the door group locks of that kind belong to
// (unit doors belong to "unit:<unit id>").
const (
	KindEntrance = "entrance"
	KindGarage   = "garage"
	KindAmenity  = "amenity"
	KindService  = "service"
	KindUnit     = "unit"
)

// Roles of subjects (the control plane's role templates, plus cleaning crews).
const (
	RoleResident    = "resident"
	RoleGuest       = "guest"
	RoleContractor  = "contractor"
	RoleMaintenance = "maintenance"
	RoleCleaning    = "cleaning"
	RoleConcierge   = "concierge"
	RoleStaff       = "staff"
	RoleEmergency   = "emergency_responder"
	// RoleInspection is a role the base estate never has: the new crew of
	// Scenarios.NewCrew (fire and smoke-detector checks of every unit).
	RoleInspection = "inspection"
)

// Roles lists every role in a stable order.
var Roles = []string{RoleResident, RoleGuest, RoleContractor, RoleMaintenance, RoleCleaning,
	RoleConcierge, RoleStaff, RoleEmergency, RoleInspection}

// roleShare is the share of each role in the population (residents take the rest).
var roleShare = map[string]float64{
	RoleGuest: 0.10, RoleContractor: 0.04, RoleMaintenance: 0.03, RoleCleaning: 0.04,
	RoleConcierge: 0.03, RoleStaff: 0.03, RoleEmergency: 0.01,
}

// Options are the knobs of a fleet.
type Options struct {
	Seed         uint64
	Sites        int
	DoorsPerSite int
	Subjects     int
	// VendorMix weighs the vendors of locks (e.g. matter=30, nuki=20).
	VendorMix map[string]float64
	// SpareDevices is how many future phones each credential can move to.
	SpareDevices int
	// Scenarios add newcomers to the estate.
	Scenarios Scenarios
}

// Scenarios are newcomers to the estate, for backtests of the detectors'
// cold start. Their sites, locks, people and credentials come after the base
// estate's, which stays exactly as it is without them (ids, habits, keys),
// and their credentials are on no lock until their first day (the activity
// decides when: see activity.Generator).
type Scenarios struct {
	// NewCrew adds a crew of a role the estate never had (inspection) at
	// the first site: 4 to 8 people who check every unit's smoke detector
	// side by side.
	NewCrew bool
	// NewBuilding adds one more site, with as many people as the others
	// have, that opens during the simulation.
	NewBuilding bool
}

// Cohorts of newcomers (Subject.Cohort); the labels of their scenarios'
// anomalies say which (activity.Label.Scenario).
const (
	CohortNewCrew     = "new_crew"
	CohortNewBuilding = "new_building"
)

// ParseScenarios parses "new-crew,new-building" (also "none" or empty).
func ParseScenarios(v string) (Scenarios, error) {
	var sc Scenarios
	for _, part := range strings.Split(v, ",") {
		switch strings.TrimSpace(part) {
		case "", "none":
		case "new-crew":
			sc.NewCrew = true
		case "new-building":
			sc.NewBuilding = true
		default:
			return sc, fmt.Errorf("scenario %q: want new-crew or new-building", part)
		}
	}
	return sc, nil
}

// DefaultVendorMix is used when Options.VendorMix is empty.
var DefaultVendorMix = map[string]float64{"matter": 30, "nuki": 20, "schlage": 20, "seam": 15, "legacy": 15}

// Validate checks the options.
func (o Options) Validate() error {
	var errs []error
	if o.Sites < 1 || o.Sites > 999 {
		errs = append(errs, fmt.Errorf("sites: %d is not in 1..999", o.Sites))
	}
	if o.DoorsPerSite < 6 || o.DoorsPerSite > 2000 {
		errs = append(errs, fmt.Errorf("doors per site: %d is not in 6..2000", o.DoorsPerSite))
	}
	if o.Subjects < o.Sites*4 || o.Subjects > 1_000_000 {
		errs = append(errs, fmt.Errorf("subjects: %d is not in %d..1000000 (at least 4 per site)", o.Subjects, o.Sites*4))
	}
	total := 0.0
	for v, w := range o.VendorMix {
		if !event.Valid(event.Vendors, v) {
			errs = append(errs, fmt.Errorf("vendor mix: unknown vendor %q", v))
		}
		if w < 0 || math.IsNaN(w) {
			errs = append(errs, fmt.Errorf("vendor mix: weight of %s is negative", v))
		}
		total += w
	}
	if len(o.VendorMix) > 0 && total <= 0 {
		errs = append(errs, errors.New("vendor mix: weights sum to zero"))
	}
	if o.SpareDevices < 0 || o.SpareDevices > 8 {
		errs = append(errs, fmt.Errorf("spare devices: %d is not in 0..8", o.SpareDevices))
	}
	return errors.Join(errs...)
}

// ParseVendorMix parses "matter=30,nuki=20,...".
func ParseVendorMix(s string) (map[string]float64, error) {
	mix := map[string]float64{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("vendor mix %q: want vendor=weight", part)
		}
		w, err := strconv.ParseFloat(strings.TrimSpace(weight), 64)
		if err != nil || w < 0 {
			return nil, fmt.Errorf("vendor mix %q: weight must be a non-negative number", part)
		}
		name = strings.TrimSpace(name)
		if !event.Valid(event.Vendors, name) {
			return nil, fmt.Errorf("vendor mix: unknown vendor %q (want %s)", name, strings.Join(event.Vendors, ", "))
		}
		mix[name] = w
	}
	return mix, nil
}

// Lock is one door's lock.
type Lock struct {
	Index  int
	Vendor string
	// LockID is the lock id the vendor's adapter derives from the payload
	// (it contains the vendor device id).
	LockID string
	Site   int
	SiteID string
	ZoneID string
	DoorID string
	Kind   string
	Name   string // e.g. "gym", "mailroom", "204"
	Unit   string // unit id for unit doors
	Groups []string

	DoorSensor bool // reports door opened/closed
	AutoRelock bool
	Keypad     bool

	// Model and Firmware place the lock in the estate's capability matrix;
	// Tier is its door's risk tier (see buildEstate).
	Model    string
	Firmware string
	Tier     int

	// Vendor device identity.
	MatterNode     string // "0x…" (16 hex digits)
	MatterEndpoint int
	NukiID         int64
	DeviceUUID     string // schlage deviceId, seam device_id
	Panel, Reader  string // legacy panel and reader names
}

// Site is one building.
type Site struct {
	Index     int
	ID        string
	Locks     []int // every lock of the site
	Entrances []int
	Garages   []int
	Amenities []int
	Services  []int
	Units     []int // unit door locks
}

// Habit is how a subject moves through its days.
type Habit struct {
	Activity   float64 // multiplier of the role's base activity
	LeaveMin   int     // usual minute of day leaving (workers) / starting a shift
	ReturnMin  int     // usual minute of day coming back / ending a shift
	WorksAway  bool
	HasCar     bool
	NightOwl   bool
	Amenity    float64 // chance of an amenity visit per day
	Entrance   int     // preferred entrance (index into Site.Entrances)
	Workdays   uint8   // bit d set: works on weekday d (0 = Sunday)
	PrefersPIN bool    // uses a keypad code where there is one
}

// Works reports whether the subject works on weekday wd (0 = Sunday).
func (h Habit) Works(wd int) bool { return h.Workdays&(1<<uint(wd)) != 0 }

// Subject is one person.
type Subject struct {
	Index int
	ID    string
	Role  string
	Site  int
	// Name is a display name as vendor apps show it (Nuki logs carry it);
	// keyfleet must never store it.
	Name       string
	Unit       string // home unit (residents) or host unit (guests)
	UnitLock   int    // lock of Unit, -1 if none
	Habit      Habit
	Credential int
	// Incoming residents move in during the simulation: their credential is
	// not on any lock at the start.
	Incoming bool
	// OverProvisioned residents hold the service door group by mistake
	// (entitlement drift).
	OverProvisioned bool
	// Cohort names the scenario a newcomer belongs to (Cohort*; empty for
	// the base estate). Newcomers are Incoming too.
	Cohort string
}

// Device is one phone (or wallet pass) a credential can be bound to, with
// the user references locks of each vendor know it by.
type Device struct {
	ID string
	// MatterUser is the Matter user index of this device on its site's locks.
	MatterUser   int
	NukiAuth     string
	SchlageUser  string // accessor id
	SeamIdentity string // user_identity_id
	Card         string // legacy panel card number (mobile card emulation)
	// Phone is what the phone reports of itself at activation (phone.go).
	Phone event.Device
}

// PIN is a credential's keypad code identities (no device).
type PIN struct {
	MatterUser   int
	NukiAuth     string
	SchlageCode  string // accessCodeId
	SeamCode     string // access_code_id
	LegacyNumber string
}

// Schedule limits a credential to weekdays and minutes of day.
type Schedule struct {
	Days     uint8 // bit d: weekday d allowed (0 = Sunday)
	FromMin  int
	UntilMin int
}

// Allows reports whether the schedule allows weekday wd at minute m.
func (s *Schedule) Allows(wd, m int) bool {
	if s == nil {
		return true
	}
	return s.Days&(1<<uint(wd)) != 0 && m >= s.FromMin && m < s.UntilMin
}

// Credential is one subject's phone key.
type Credential struct {
	Index      int
	ID         string
	Subject    int
	Role       string
	Site       int
	Kinds      []string // door kinds it opens (besides units)
	Units      []string // unit doors it opens
	AllUnits   bool
	Devices    []Device // Devices[0] is the phone it is issued to; the rest are future phones
	HasPIN     bool
	PIN        PIN
	BreakGlass bool
	Schedule   *Schedule
}

// Fleet is the whole estate.
type Fleet struct {
	Options     Options
	Sites       []Site
	Locks       []Lock
	Subjects    []Subject
	Credentials []Credential
	// Base counts the base estate: the scenarios' sites, locks, people and
	// credentials come after these.
	Base struct{ Sites, Locks, Subjects, Credentials int }

	builder struct {
		sites    *siteBuilder
		subjects *subjectBuilder
	}

	planted  []PlantedWeakLink
	byLockID map[string]int
	byCredID map[string]int
	acl      [][]int // per lock: credential indexes allowed
	access   [][]int // per credential: lock indexes it opens
}

// LockByID returns a lock by its lock id.
func (f *Fleet) LockByID(lockID string) (*Lock, bool) {
	i, ok := f.byLockID[lockID]
	if !ok {
		return nil, false
	}
	return &f.Locks[i], true
}

// Allowed reports whether a credential opens a lock by entitlement.
func (f *Fleet) Allowed(cred, lock int) bool {
	c, l := &f.Credentials[cred], &f.Locks[lock]
	if c.Site != l.Site {
		return false
	}
	if l.Kind == KindUnit {
		if c.AllUnits {
			return true
		}
		for _, u := range c.Units {
			if u == l.Unit {
				return true
			}
		}
		return false
	}
	for _, k := range c.Kinds {
		if k == l.Kind {
			return true
		}
	}
	return false
}

// CredentialByID returns a credential by its id.
func (f *Fleet) CredentialByID(id string) (*Credential, bool) {
	i, ok := f.byCredID[id]
	if !ok {
		return nil, false
	}
	return &f.Credentials[i], true
}

// ACL returns the credentials entitled to a lock (shared slice; do not modify).
func (f *Fleet) ACL(lock int) []int { return f.acl[lock] }

// Access returns the locks a credential is entitled to (shared slice; do not modify).
func (f *Fleet) Access(cred int) []int { return f.access[cred] }

// rng returns a deterministic generator for one named stream of the fleet.
func rng(seed uint64, stream string, n int) *rand.Rand {
	h := uint64(1469598103934665603)
	for i := 0; i < len(stream); i++ {
		h ^= uint64(stream[i])
		h *= 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h^uint64(n)*0x9E3779B97F4A7C15))
}

// Generate builds the fleet described by o.
func Generate(o Options) (*Fleet, error) {
	if len(o.VendorMix) == 0 {
		o.VendorMix = DefaultVendorMix
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	f := &Fleet{Options: o, byLockID: map[string]int{}}
	f.buildSites()
	f.buildSubjects()
	f.Base.Sites, f.Base.Locks, f.Base.Subjects, f.Base.Credentials = len(f.Sites), len(f.Locks), len(f.Subjects), len(f.Credentials)
	f.buildScenarios()
	f.buildEstate()
	f.builder.sites, f.builder.subjects = nil, nil
	f.index()
	return f, nil
}

var amenityNames = []string{"gym", "pool", "lounge", "roof", "bikes", "cinema"}
var serviceNames = []string{"mailroom", "boiler", "electrical", "storage", "trash", "office", "loading", "workshop"}

func (f *Fleet) buildSites() {
	b := &siteBuilder{f: f, r: rng(f.Options.Seed, "sites", 0)}
	for s := 0; s < f.Options.Sites; s++ {
		b.build(s)
	}
	f.builder.sites = b
}

// siteBuilder builds sites one after the other: legacy panel names run on
// across sites (a lock id names them).
type siteBuilder struct {
	f              *Fleet
	r              *rand.Rand
	panel, readers int
}

// pick draws a vendor by the vendor mix.
func (b *siteBuilder) pick() string {
	o := b.f.Options
	vendors := make([]string, 0, len(o.VendorMix))
	for v := range o.VendorMix {
		vendors = append(vendors, v)
	}
	sort.Strings(vendors)
	total := 0.0
	for _, v := range vendors {
		total += o.VendorMix[v]
	}
	x := b.r.Float64() * total
	for _, v := range vendors {
		if x < o.VendorMix[v] {
			return v
		}
		x -= o.VendorMix[v]
	}
	return vendors[len(vendors)-1]
}

// build adds site s (its index) with its doors and locks.
func (b *siteBuilder) build(s int) {
	f, r := b.f, b.r
	d := f.Options.DoorsPerSite
	nEnt := max(1, d/25)
	nGar := max(1, d/40)
	nAmen := min(len(amenityNames), max(1, d/20))
	nServ := min(len(serviceNames), max(1, d/16))
	nUnits := d - nEnt - nGar - nAmen - nServ
	site := Site{Index: s, ID: fmt.Sprintf("site-%02d", s+1)}
	type door struct{ kind, name, unit, zone string }
	var doors []door
	for i := 0; i < nEnt; i++ {
		doors = append(doors, door{KindEntrance, "entrance-" + strconv.Itoa(i+1), "", "lobby"})
	}
	for i := 0; i < nGar; i++ {
		doors = append(doors, door{KindGarage, "garage-" + strconv.Itoa(i+1), "", "garage"})
	}
	for i := 0; i < nAmen; i++ {
		doors = append(doors, door{KindAmenity, amenityNames[i], "", "amenities"})
	}
	for i := 0; i < nServ; i++ {
		doors = append(doors, door{KindService, serviceNames[i], "", "service"})
	}
	perFloor := 8
	for i := 0; i < nUnits; i++ {
		floor, n := i/perFloor+1, i%perFloor+1
		name := fmt.Sprintf("%d%02d", floor, n)
		doors = append(doors, door{KindUnit, name, fmt.Sprintf("%02d-%s", s+1, name), "floor-" + strconv.Itoa(floor)})
	}
	bridged := r.IntN(2) == 0 // this site's Matter locks hang off bridges
	var bridgeNode string
	bridgeEP := 0
	b.readers = 0 // a site's readers start on a new panel
	for _, dr := range doors {
		l := Lock{
			Index:  len(f.Locks),
			Vendor: b.pick(),
			Site:   s,
			SiteID: site.ID,
			ZoneID: site.ID + "-" + dr.zone,
			DoorID: site.ID + "-" + dr.name,
			Kind:   dr.kind,
			Name:   dr.name,
			Unit:   dr.unit,
		}
		if dr.kind == KindUnit {
			l.Groups = []string{"unit:" + dr.unit}
		} else {
			l.Groups = []string{dr.kind}
		}
		l.DoorSensor = r.Float64() < 0.7
		l.AutoRelock = dr.kind != KindGarage && r.Float64() < 0.8
		l.Keypad = r.Float64() < 0.6
		switch l.Vendor {
		case "matter":
			if bridged {
				if bridgeNode == "" || bridgeEP >= 7 {
					bridgeNode, bridgeEP = matterNode(r), 1
				}
				bridgeEP++
				l.MatterNode, l.MatterEndpoint = bridgeNode, bridgeEP
			} else {
				l.MatterNode, l.MatterEndpoint = matterNode(r), 1
			}
		case "nuki":
			l.NukiID = 17_000_000_000 + r.Int64N(999_999_999)
		case "schlage", "seam":
			l.DeviceUUID = uuid(r)
		case "legacy":
			if b.readers%8 == 0 {
				b.panel++
			}
			b.readers++
			l.Panel, l.Reader = "PANEL-"+strconv.Itoa(b.panel), "READER-"+strconv.Itoa((b.readers-1)%8+1)
			l.Keypad = r.Float64() < 0.3
		}
		l.LockID = LockID(&l)
		f.Locks = append(f.Locks, l)
		site.Locks = append(site.Locks, l.Index)
		switch dr.kind {
		case KindEntrance:
			site.Entrances = append(site.Entrances, l.Index)
		case KindGarage:
			site.Garages = append(site.Garages, l.Index)
		case KindAmenity:
			site.Amenities = append(site.Amenities, l.Index)
		case KindService:
			site.Services = append(site.Services, l.Index)
		case KindUnit:
			site.Units = append(site.Units, l.Index)
		}
	}
	f.Sites = append(f.Sites, site)
}

// LockID is the lock id keyfleet's adapter of the lock's vendor derives from
// its payloads: the Matter node id (with "/<endpoint>" beyond endpoint 1),
// the Nuki smartlockId, the Schlage/Seam device id, "<panel>/<reader>" for
// legacy panels.
func LockID(l *Lock) string {
	switch l.Vendor {
	case "matter":
		if l.MatterEndpoint <= 1 {
			return l.MatterNode
		}
		return l.MatterNode + "/" + strconv.Itoa(l.MatterEndpoint)
	case "nuki":
		return strconv.FormatInt(l.NukiID, 10)
	case "schlage", "seam":
		return l.DeviceUUID
	case "legacy":
		return l.Panel + "/" + l.Reader
	}
	return ""
}

func matterNode(r *rand.Rand) string {
	return fmt.Sprintf("0x%016X", r.Uint64())
}

func uuid(r *rand.Rand) string {
	var b [16]byte
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func hexID(r *rand.Rand, n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[r.IntN(16)]
	}
	return string(b)
}

var firstNames = []string{"Anna", "Ben", "Chiara", "David", "Elif", "Farid", "Greta", "Hugo", "Ines", "Jonas",
	"Kira", "Luca", "Mara", "Noah", "Olga", "Paul", "Rosa", "Sami", "Tara", "Umar", "Vera", "Wen", "Yara", "Zoe"}
var lastNames = []string{"Keller", "Brandt", "Rossi", "Novak", "Yilmaz", "Haddad", "Lind", "Moreau", "Silva",
	"Weber", "Sato", "Costa", "Nowak", "Berg", "Ivanova", "Fischer", "Garcia", "Okafor", "Jensen", "Kim"}

func (f *Fleet) buildSubjects() {
	o := f.Options
	r := rng(o.Seed, "subjects", 0)
	// Distribute subjects over sites evenly, roles by share within each site;
	// every site gets at least one crew member of each working role.
	perSite := make([]int, o.Sites)
	for i := 0; i < o.Subjects; i++ {
		perSite[i%o.Sites]++
	}
	b := &subjectBuilder{f: f, r: r, nextCard: 100000 + r.IntN(800000), matterUsers: map[int]int{}, unitResidents: map[int]int{}}
	for s := 0; s < o.Sites; s++ {
		b.populate(s, perSite[s])
	}
	f.builder.subjects = b
}

// subjectBuilder adds people and their credentials one after the other:
// card numbers run on across sites, Matter user indexes per site.
type subjectBuilder struct {
	f             *Fleet
	r             *rand.Rand
	cohort        string
	nextCard      int
	matterUsers   map[int]int // per site: the last Matter user index given
	unitResidents map[int]int // per site: residents given a unit so far
}

func (b *subjectBuilder) nextMatter(site int) int {
	b.matterUsers[site]++
	return b.matterUsers[site]
}

// populate adds n people to site s, roles by share.
func (b *subjectBuilder) populate(s, n int) {
	counts := map[string]int{}
	assigned := 0
	for _, role := range Roles[1:] {
		c := int(math.Round(roleShare[role] * float64(n)))
		if c < 1 && role != RoleEmergency && role != RoleContractor && role != RoleInspection && n >= 20 {
			c = 1
		}
		counts[role] = c
		assigned += c
	}
	counts[RoleResident] = max(1, n-assigned)
	for _, role := range Roles {
		for k := 0; k < counts[role]; k++ {
			b.person(s, role)
		}
	}
}

// person adds one person of role at site s with a credential.
func (b *subjectBuilder) person(s int, role string) {
	f, r, o := b.f, b.r, b.f.Options
	site := &f.Sites[s]
	subj := Subject{Index: len(f.Subjects), Role: role, Site: s, UnitLock: -1, Cohort: b.cohort}
	subj.ID = fmt.Sprintf("subj-%06d", subj.Index+1)
	subj.Name = firstNames[r.IntN(len(firstNames))] + " " + lastNames[r.IntN(len(lastNames))]
	subj.Habit = habit(r, role, len(site.Entrances))
	cred := Credential{Index: len(f.Credentials), Subject: subj.Index, Role: role, Site: s}
	cred.ID = fmt.Sprintf("cred-%06d", cred.Index+1)
	switch role {
	case RoleResident:
		u := site.Units[b.unitResidents[s]%len(site.Units)]
		b.unitResidents[s]++
		subj.Unit, subj.UnitLock = f.Locks[u].Unit, u
		cred.Kinds = []string{KindEntrance, KindAmenity}
		if subj.Habit.HasCar {
			cred.Kinds = append(cred.Kinds, KindGarage)
		}
		cred.Units = []string{subj.Unit}
		subj.Incoming = r.Float64() < 0.05
		if r.Float64() < 0.05 {
			subj.OverProvisioned = true
			cred.Kinds = append(cred.Kinds, KindService)
		}
	case RoleGuest:
		u := site.Units[r.IntN(len(site.Units))]
		subj.Unit, subj.UnitLock = f.Locks[u].Unit, u
		cred.Kinds = []string{KindEntrance}
		cred.Units = []string{subj.Unit}
		cred.HasPIN = r.Float64() < 0.4
	case RoleContractor:
		cred.Kinds = []string{KindEntrance, KindService}
		for j := 0; j < 1+r.IntN(4); j++ {
			cred.Units = append(cred.Units, f.Locks[site.Units[r.IntN(len(site.Units))]].Unit)
		}
		cred.HasPIN = r.Float64() < 0.5
		cred.Schedule = &Schedule{Days: 0b0111110, FromMin: 7 * 60, UntilMin: 18 * 60}
	case RoleMaintenance:
		cred.Kinds = []string{KindEntrance, KindGarage, KindAmenity, KindService}
		cred.AllUnits = true
	case RoleCleaning:
		cred.Kinds = []string{KindEntrance, KindAmenity, KindService}
		cred.AllUnits = true
		cred.HasPIN = r.Float64() < 0.3
		cred.Schedule = &Schedule{Days: 0b1111111, FromMin: 5 * 60, UntilMin: 16 * 60}
	case RoleConcierge, RoleStaff:
		cred.Kinds = []string{KindEntrance, KindGarage, KindAmenity, KindService}
	case RoleEmergency:
		cred.Kinds = []string{KindEntrance, KindGarage, KindAmenity, KindService}
		cred.AllUnits = true
		cred.BreakGlass = true
	case RoleInspection:
		cred.Kinds = []string{KindEntrance, KindService}
		cred.AllUnits = true
		cred.Schedule = &Schedule{Days: 0b0111110, FromMin: 7 * 60, UntilMin: 18 * 60}
	}
	subj.Habit.PrefersPIN = cred.HasPIN && r.Float64() < 0.6
	for d := 0; d <= o.SpareDevices; d++ {
		b.nextCard++
		cred.Devices = append(cred.Devices, Device{
			ID:           "dev-" + hexID(r, 12),
			MatterUser:   b.nextMatter(s),
			NukiAuth:     hexID(r, 24),
			SchlageUser:  uuid(r),
			SeamIdentity: uuid(r),
			Card:         fmt.Sprintf("%08d", b.nextCard),
			Phone:        phone(f.Options.Seed, cred.Index, d),
		})
	}
	if cred.HasPIN {
		b.nextCard++
		cred.PIN = PIN{MatterUser: b.nextMatter(s), NukiAuth: hexID(r, 24), SchlageCode: uuid(r),
			SeamCode: uuid(r), LegacyNumber: fmt.Sprintf("%06d", b.nextCard%1000000)}
	}
	subj.Credential = cred.Index
	f.Subjects = append(f.Subjects, subj)
	f.Credentials = append(f.Credentials, cred)
}

func habit(r *rand.Rand, role string, entrances int) Habit {
	h := Habit{
		Activity: math.Exp(r.NormFloat64() * 0.35),
		Entrance: r.IntN(entrances),
		Amenity:  0.05 + 0.35*r.Float64(),
	}
	clampMin := func(m float64) int { return int(math.Max(0, math.Min(24*60-1, m))) }
	switch role {
	case RoleResident:
		h.WorksAway = r.Float64() < 0.7
		h.HasCar = r.Float64() < 0.45
		h.NightOwl = r.Float64() < 0.06
		h.LeaveMin = clampMin(8*60 + r.NormFloat64()*55)
		h.ReturnMin = clampMin(18*60 + r.NormFloat64()*70)
		h.Workdays = 0b0111110
	case RoleGuest:
		h.Activity *= 0.8
		h.LeaveMin = clampMin(11*60 + r.NormFloat64()*120)
		h.ReturnMin = clampMin(19*60 + r.NormFloat64()*90)
	case RoleContractor, RoleMaintenance, RoleStaff, RoleInspection:
		h.HasCar = r.Float64() < 0.6
		h.LeaveMin = clampMin(8*60 + r.NormFloat64()*30) // start of work
		h.ReturnMin = clampMin(16*60 + 30 + r.NormFloat64()*40)
		h.Workdays = 0b0111110
	case RoleCleaning:
		h.LeaveMin = clampMin(6*60 + 30 + r.NormFloat64()*30)
		h.ReturnMin = h.LeaveMin + 5*60
		h.Workdays = 0b1111110
		if r.IntN(2) == 0 {
			h.Workdays = 0b0111111
		}
	case RoleConcierge:
		if r.IntN(2) == 0 {
			h.LeaveMin, h.ReturnMin = 7*60, 15*60
		} else {
			h.LeaveMin, h.ReturnMin = 14*60, 22*60
		}
		// five days out of seven, rotating
		off := r.IntN(7)
		h.Workdays = 0b1111111 &^ (1 << uint(off)) &^ (1 << uint((off+1)%7))
	case RoleEmergency:
		h.Workdays = 0b1111111
	}
	return h
}

func (f *Fleet) index() {
	f.byCredID = make(map[string]int, len(f.Credentials))
	for i := range f.Credentials {
		f.byCredID[f.Credentials[i].ID] = i
	}
	f.acl = make([][]int, len(f.Locks))
	f.access = make([][]int, len(f.Credentials))
	for i := range f.Locks {
		f.byLockID[f.Locks[i].LockID] = i
	}
	for c := range f.Credentials {
		site := &f.Sites[f.Credentials[c].Site]
		for _, l := range site.Locks {
			if f.Allowed(c, l) {
				f.acl[l] = append(f.acl[l], c)
				f.access[c] = append(f.access[c], l)
			}
		}
	}
}

// buildScenarios adds the newcomers of Options.Scenarios after the base
// estate, each from a random stream of its own, so the base estate does not
// change.
func (f *Fleet) buildScenarios() {
	sc := f.Options.Scenarios
	people := f.builder.subjects
	if sc.NewCrew {
		b := *people
		b.r, b.cohort = rng(f.Options.Seed, "scenario-new-crew", 0), CohortNewCrew
		n := min(8, max(4, f.Options.Subjects/300))
		for range n {
			b.person(0, RoleInspection)
			f.Subjects[len(f.Subjects)-1].Incoming = true
		}
		people.nextCard = b.nextCard
	}
	if sc.NewBuilding {
		sb := *f.builder.sites
		sb.r = rng(f.Options.Seed, "scenario-new-building", 0)
		s := len(f.Sites)
		sb.build(s)
		b := *people
		b.r, b.cohort = rng(f.Options.Seed, "scenario-new-building", 1), CohortNewBuilding
		b.populate(s, f.Options.Subjects/f.Options.Sites)
		for i := f.Base.Subjects; i < len(f.Subjects); i++ {
			if f.Subjects[i].Cohort == CohortNewBuilding {
				f.Subjects[i].Incoming = true
			}
		}
	}
}

// Newcomer reports whether a subject belongs to a scenario's cohort.
func (f *Fleet) Newcomer(subject int) bool { return subject >= f.Base.Subjects }

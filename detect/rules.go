package detect

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"
)

// Duration is a time.Duration that reads and writes JSON as a Go duration
// string ("30m", "36h") or a number of milliseconds.
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Ms returns the duration in milliseconds.
func (d Duration) Ms() int64 { return time.Duration(d).Milliseconds() }

func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

func (d *Duration) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	ms, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("duration %s: want a string like \"30m\" or milliseconds", b)
	}
	*d = Duration(time.Duration(ms) * time.Millisecond)
	return nil
}

// Common are the settings every detector has.
type Common struct {
	Enabled  bool   `json:"enabled"`
	Severity string `json:"severity"`
	// Suppress: at most one alert per key per this much event time; repeats
	// inside it are counted on the alert (suppressed_count).
	Suppress Duration `json:"suppress"`
}

// BurstMeasure is one measure unlock_burst judges: distinct doors or
// unlocks (granted unlock/unlatch) in a sliding Window. Its threshold for a
// subject is
//
//	max(Floor, ceil(Multiplier × baseline), baseline + Margin)
//
// with ColdFloor instead of Floor while nothing is known about the subject
// (no completed day of its own) or its role (fewer than MinRoleSamples
// subject-days).
type BurstMeasure struct {
	Measure    string   `json:"measure"` // distinct_doors or unlocks
	Window     Duration `json:"window"`
	Floor      int      `json:"floor"`
	ColdFloor  int      `json:"cold_floor"`
	Multiplier float64  `json:"multiplier"`
	Margin     int      `json:"margin"`
}

// Name identifies the measure (baselines are saved under it).
func (m BurstMeasure) Name() string { return m.Measure + "/" + m.Window.D().String() }

// BurstRules configure unlock_burst. A subject raises it when any measure
// reaches its threshold. The baseline of a measure is the larger of
//   - the subject's own: its highest daily peak of the measure over its last
//     HistoryDays active days (days that raised a burst excluded, so an
//     anomaly does not teach the baseline), and
//   - its role's: the RolePercentile of the role's subject-day peaks (roles
//     come from credential records), once the role has MinRoleSamples
//     subject-days,
//
// so a member of a crew whose rounds vary from day to day (weekly
// inspections) is judged against its crew, not only its own last days.
// Sparse own histories are held up by the floor.
type BurstRules struct {
	Common
	Measures       []BurstMeasure `json:"measures"`
	HistoryDays    int            `json:"history_days"`
	MinRoleSamples int            `json:"min_role_samples"`
	RolePercentile float64        `json:"role_percentile"`
	// EscalateAt: observed ≥ EscalateAt × threshold raises the severity one
	// step (0 disables).
	EscalateAt float64 `json:"escalate_at"`
	// IncludeDenied counts denied attempts too: trying many doors is the
	// anomaly, whether or not they open (a key used outside its schedule).
	IncludeDenied bool `json:"include_denied"`
	// LearningPeriod: during this much event time after the engine's first
	// event, when it started without saved baselines (cold start), a subject
	// is judged against its role's pool (which fills as the day goes) or
	// its peers, with multiplier and margin scaled by LearningFactor, or by
	// the cold floor while neither is known; what it raises is low
	// confidence (LearningSeverity).
	LearningPeriod Duration `json:"learning_period"`
	LearningFactor float64  `json:"learning_factor"`
	// PeerQuorum: a newcomer (a subject with no completed day of its own),
	// and any subject while its role has fewer than MinRoleSamples
	// subject-days, is also judged against its peers, the other subjects of
	// its role at its site today: a level at least PeerQuorum of them
	// reached today is a pattern (a crew doing its rounds), not an anomaly.
	// 0 disables.
	PeerQuorum int `json:"peer_quorum"`
	// LearningSeverity is the severity of low-confidence alerts: those
	// raised during the learning period, and those of a newcomer whose role
	// has fewer than MinRoleSamples subject-days (judged by the cold floor
	// or its peers) — unless the burst reaches doors outside the
	// credential's entitlement (Engine.Entitle), which is known on day one.
	LearningSeverity string `json:"learning_severity"`
}

// SlidingWindow is the longest sliding window of the streaming detectors
// (unlock_burst's measures, denied_storm): how much recent history a
// restarted engine needs to judge the next event as an uninterrupted one
// would.
func (r *Rules) SlidingWindow() time.Duration {
	d := &r.Detectors
	return time.Duration(max(d.UnlockBurst.maxWindow(), d.DeniedStorm.Window.Ms())) * time.Millisecond
}

// maxWindow is the longest window of the measures.
func (b *BurstRules) maxWindow() int64 {
	var w int64
	for _, m := range b.Measures {
		w = max(w, m.Window.Ms())
	}
	return w
}

// maxMeasures bounds unlock_burst's measures.
const maxMeasures = 4

// DeviceRules configure unattested_device_change: a use of a credential from
// a device that is neither the one it was first issued to nor one it was
// attested on (by an attested lifecycle record or an attested use), when the
// use itself carries no attestation.
type DeviceRules struct {
	Common
	// GrantedOnly ignores denied attempts from unknown devices.
	GrantedOnly bool `json:"granted_only"`
}

// RevocationRules configure use_after_revocation: a granted use at
// ts > revoked_at + Grace. Grants are remembered for Lookback so a revocation
// record that arrives after the use (a lagging credential stream) still
// raises the alert.
type RevocationRules struct {
	Common
	Grace            Duration `json:"grace"`
	IncludeSuspended bool     `json:"include_suspended"`
	Lookback         Duration `json:"lookback"`
}

// DeniedRules configure denied_storm: at least DoorThreshold denials at one
// door, or CredentialThreshold denials of one credential (or subject), within
// Window.
type DeniedRules struct {
	Common
	Window              Duration `json:"window"`
	DoorThreshold       int      `json:"door_threshold"`
	CredentialThreshold int      `json:"credential_threshold"`
}

// ScheduleRules configure off_schedule: a granted use within QuietHours at an
// hour of day the subject (with at least MinEvents uses over MinDays days of
// history) has practically never used (the hour and its Neighbors on each
// side hold less than MinFraction of its uses), or at any hour outside its
// role's allowed hours (RoleHours). Hours are [from, to) in local time;
// from == to means all day. Local time is the event's site's: SiteTimeZones
// (IANA names, daylight saving included) for the sites it names, else
// TimeZone, else the fixed UTCOffsetMinutes.
type ScheduleRules struct {
	Common
	QuietHours       [2]int            `json:"quiet_hours"`
	MinEvents        int               `json:"min_events"`
	MinDays          int               `json:"min_days"`
	MinFraction      float64           `json:"min_fraction"`
	Neighbors        int               `json:"neighbors"`
	RoleHours        map[string][2]int `json:"role_hours,omitempty"`
	UTCOffsetMinutes int               `json:"utc_offset_minutes"`
	TimeZone         string            `json:"time_zone,omitempty"`
	SiteTimeZones    map[string]string `json:"site_time_zones,omitempty"`
}

// zones loads the rules' time zones: the default (nil: the fixed offset)
// and one per named site.
func (s *ScheduleRules) zones() (def *time.Location, sites map[string]*time.Location, err error) {
	if s.TimeZone != "" {
		if def, err = time.LoadLocation(s.TimeZone); err != nil {
			return nil, nil, fmt.Errorf("off_schedule.time_zone %q: %w", s.TimeZone, err)
		}
	}
	sites = make(map[string]*time.Location, len(s.SiteTimeZones))
	for site, name := range s.SiteTimeZones {
		loc, err := time.LoadLocation(name)
		if err != nil || name == "" {
			return nil, nil, fmt.Errorf("off_schedule.site_time_zones[%s] %q: not an IANA time zone", site, name)
		}
		sites[site] = loc
	}
	return def, sites, nil
}

// EmergencyRules configure emergency_unlock: every emergency unlock (and,
// with IncludeBreakGlass, every granted break-glass use) is flagged for review.
type EmergencyRules struct {
	Common
	IncludeBreakGlass bool `json:"include_break_glass"`
}

// DoorRules configure door_forced and door_ajar. For door_ajar, HeldOpen > 0
// also raises an alert when a door_opened is not followed by door_closed
// within HeldOpen (event time).
type DoorRules struct {
	Common
	HeldOpen Duration `json:"held_open,omitempty"`
}

// StaleRules configure stale_credential: an active credential not used
// (granted) for UnusedDays, counted from its last use or activation.
type StaleRules struct {
	Common
	UnusedDays int      `json:"unused_days"`
	Every      Duration `json:"every"` // how often the batch check runs
}

// ExpiredRules configure expired_exception. Exceptions are credentials with
// an end date (valid_until_ms: temporary, guest and contractor grants) and
// break-glass credentials; one is past its end date when event time is beyond
// valid_until_ms + Grace (break-glass without an end date: activation +
// MaxBreakGlass) and its latest state is still live (not revoked/archived).
type ExpiredRules struct {
	Common
	Grace         Duration `json:"grace"`
	MaxBreakGlass Duration `json:"max_break_glass"`
	Every         Duration `json:"every"`
}

// DetectorRules holds every detector's settings.
type DetectorRules struct {
	UnlockBurst            BurstRules      `json:"unlock_burst"`
	UnattestedDeviceChange DeviceRules     `json:"unattested_device_change"`
	UseAfterRevocation     RevocationRules `json:"use_after_revocation"`
	DeniedStorm            DeniedRules     `json:"denied_storm"`
	OffSchedule            ScheduleRules   `json:"off_schedule"`
	EmergencyUnlock        EmergencyRules  `json:"emergency_unlock"`
	DoorForced             DoorRules       `json:"door_forced"`
	DoorAjar               DoorRules       `json:"door_ajar"`
	StaleCredential        StaleRules      `json:"stale_credential"`
	ExpiredException       ExpiredRules    `json:"expired_exception"`
	Regression             RegressionRules `json:"regression"`
}

// Response actions.
const (
	ActionSuspend = "suspend"
	ActionWebhook = "webhook"
	ActionTicket  = "ticket"
)

// ResponseRule maps alerts to actions: an alert of one of Detectors (any when
// empty) with at least MinSeverity gets Actions, in order.
type ResponseRule struct {
	Name        string   `json:"name"`
	Detectors   []string `json:"detectors,omitempty"`
	MinSeverity string   `json:"min_severity"`
	Actions     []string `json:"actions"`
}

// Matches reports whether the rule applies to an alert.
func (r ResponseRule) Matches(a *Alert) bool {
	if len(r.Detectors) > 0 && !slices.Contains(r.Detectors, a.Detector) {
		return false
	}
	return SeverityRank(a.Severity) >= SeverityRank(r.MinSeverity)
}

// ResponderRules configure the automated responders.
type ResponderRules struct {
	// DryRun records and audits what would be done without doing it.
	DryRun bool `json:"dry_run"`
	// MaxSuspensionsPerMinute caps automatic suspensions per site per minute;
	// suspensions beyond it are skipped (recorded and audited as rate_limited).
	MaxSuspensionsPerMinute int            `json:"max_suspensions_per_minute"`
	Rules                   []ResponseRule `json:"rules"`
}

// Rules are the detection and response rules: compiled-in defaults,
// optionally overridden field by field by a versioned JSON rules file.
type Rules struct {
	// Version of the rules file (0 for the compiled-in defaults). Alerts
	// record it, so an alert can be traced to the rules that raised it.
	Version    int            `json:"version"`
	Detectors  DetectorRules  `json:"detectors"`
	Responders ResponderRules `json:"responders"`
}

func common(sev string, suppress time.Duration) Common {
	return Common{Enabled: true, Severity: sev, Suppress: Duration(suppress)}
}

// DefaultRules returns the compiled-in rules.
func DefaultRules() *Rules {
	return &Rules{
		Version: 0,
		Detectors: DetectorRules{
			UnlockBurst: BurstRules{
				Common:      common(SeverityHigh, 2*time.Hour),
				Measures:    defaultMeasures(),
				HistoryDays: 14, MinRoleSamples: 20, RolePercentile: 0.99, EscalateAt: 2, IncludeDenied: true,
				LearningPeriod: Duration(24 * time.Hour), LearningFactor: 1.5,
				PeerQuorum: 3, LearningSeverity: SeverityLow,
			},
			UnattestedDeviceChange: DeviceRules{Common: common(SeverityHigh, 24*time.Hour), GrantedOnly: true},
			UseAfterRevocation: RevocationRules{
				Common: common(SeverityCritical, 12*time.Hour), Grace: Duration(2 * time.Minute),
				IncludeSuspended: true, Lookback: Duration(24 * time.Hour),
			},
			DeniedStorm: DeniedRules{
				Common: common(SeverityMedium, 30*time.Minute), Window: Duration(15 * time.Minute),
				DoorThreshold: 8, CredentialThreshold: 5,
			},
			OffSchedule: ScheduleRules{
				Common: common(SeverityLow, 12*time.Hour), QuietHours: [2]int{0, 5}, MinEvents: 40, MinDays: 7, MinFraction: 0.002, Neighbors: 1,
			},
			EmergencyUnlock:  EmergencyRules{Common: common(SeverityHigh, 10*time.Minute), IncludeBreakGlass: true},
			DoorForced:       DoorRules{Common: common(SeverityHigh, 10*time.Minute)},
			DoorAjar:         DoorRules{Common: common(SeverityMedium, 30*time.Minute)},
			StaleCredential:  StaleRules{Common: common(SeverityLow, 30*24*time.Hour), UnusedDays: 30, Every: Duration(time.Hour)},
			ExpiredException: ExpiredRules{Common: common(SeverityMedium, 7*24*time.Hour), Grace: Duration(time.Hour), MaxBreakGlass: Duration(24 * time.Hour), Every: Duration(time.Hour)},
			Regression:       DefaultRegressionRules(),
		},
		Responders: ResponderRules{
			DryRun:                  true,
			MaxSuspensionsPerMinute: 5,
			Rules: []ResponseRule{
				{Name: "revoked-credential-used", Detectors: []string{UseAfterRevocation}, MinSeverity: SeverityHigh,
					Actions: []string{ActionSuspend, ActionTicket, ActionWebhook}},
				{Name: "unattested-device", Detectors: []string{UnattestedDeviceChange}, MinSeverity: SeverityHigh,
					Actions: []string{ActionSuspend, ActionTicket, ActionWebhook}},
				{Name: "page-on-high", MinSeverity: SeverityHigh, Actions: []string{ActionTicket, ActionWebhook}},
			},
		},
	}
}

func defaultMeasures() []BurstMeasure {
	return []BurstMeasure{
		{Measure: "distinct_doors", Window: Duration(time.Hour), Floor: 6, ColdFloor: 10, Multiplier: 1.5, Margin: 3},
		{Measure: "unlocks", Window: Duration(30 * time.Minute), Floor: 8, ColdFloor: 14, Multiplier: 1.5, Margin: 5},
	}
}

// ParseRules reads a rules file over the defaults: fields the file does not
// name keep their default. Unknown fields are errors (a typo must not
// silently leave a default in force). The file must carry "version" ≥ 1.
func ParseRules(data []byte) (*Rules, error) {
	r := DefaultRules()
	r.Version = -1
	// A file that gives measures gives the whole list (decoding into the
	// default elements would mix the two).
	r.Detectors.UnlockBurst.Measures = nil
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("rules: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("rules: trailing data after the JSON object")
	}
	if r.Detectors.UnlockBurst.Measures == nil {
		r.Detectors.UnlockBurst.Measures = defaultMeasures()
	}
	if r.Version < 1 {
		return nil, errors.New("rules: \"version\" (an integer ≥ 1) is required")
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// LoadRules reads a rules file; an empty path gives the defaults.
func LoadRules(path string) (*Rules, error) {
	if path == "" {
		return DefaultRules(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	r, err := ParseRules(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}

// Validate checks the rules.
func (r *Rules) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("rules: "+format, args...)) }
	d := &r.Detectors
	for name, c := range map[string]Common{
		UnlockBurst: d.UnlockBurst.Common, UnattestedDeviceChange: d.UnattestedDeviceChange.Common,
		UseAfterRevocation: d.UseAfterRevocation.Common, DeniedStorm: d.DeniedStorm.Common,
		OffSchedule: d.OffSchedule.Common, EmergencyUnlock: d.EmergencyUnlock.Common,
		DoorForced: d.DoorForced.Common, DoorAjar: d.DoorAjar.Common,
		StaleCredential: d.StaleCredential.Common, ExpiredException: d.ExpiredException.Common,
		Regression: d.Regression.Common,
	} {
		if SeverityRank(c.Severity) == 0 {
			bad("%s.severity %q: want one of %v", name, c.Severity, Severities)
		}
		if c.Suppress < 0 {
			bad("%s.suppress must not be negative", name)
		}
	}
	b := d.UnlockBurst
	if len(b.Measures) == 0 || len(b.Measures) > maxMeasures {
		bad("unlock_burst.measures: want 1..%d measures", maxMeasures)
	}
	seen := map[string]bool{}
	for i, m := range b.Measures {
		if m.Measure != "distinct_doors" && m.Measure != "unlocks" {
			bad("unlock_burst.measures[%d].measure %q: want distinct_doors or unlocks", i, m.Measure)
		}
		if m.Window <= 0 || m.Window.D() > 24*time.Hour {
			bad("unlock_burst.measures[%d].window: want (0, 24h]", i)
		}
		if m.Floor < 1 || m.ColdFloor < 1 {
			bad("unlock_burst.measures[%d]: floor and cold_floor must be at least 1", i)
		}
		if m.Multiplier < 1 || m.Margin < 0 {
			bad("unlock_burst.measures[%d]: multiplier at least 1, margin not negative", i)
		}
		if seen[m.Name()] {
			bad("unlock_burst.measures[%d]: %s given twice", i, m.Name())
		}
		seen[m.Name()] = true
	}
	if b.HistoryDays < 1 || b.HistoryDays > 90 {
		bad("unlock_burst.history_days %d: want 1..90", b.HistoryDays)
	}
	if b.LearningPeriod < 0 || b.LearningFactor < 1 {
		bad("unlock_burst: learning_period must not be negative, learning_factor at least 1")
	}
	if b.PeerQuorum < 0 {
		bad("unlock_burst.peer_quorum %d: want 0 (off) or more", b.PeerQuorum)
	}
	if SeverityRank(b.LearningSeverity) == 0 {
		bad("unlock_burst.learning_severity %q: want one of %v", b.LearningSeverity, Severities)
	}
	if b.RolePercentile <= 0 || b.RolePercentile > 1 {
		bad("unlock_burst.role_percentile %v: want (0, 1]", b.RolePercentile)
	}
	if d.UseAfterRevocation.Grace < 0 || d.UseAfterRevocation.Lookback <= 0 {
		bad("use_after_revocation: grace must not be negative, lookback must be positive")
	}
	if d.DeniedStorm.Window <= 0 || d.DeniedStorm.DoorThreshold < 1 || d.DeniedStorm.CredentialThreshold < 1 {
		bad("denied_storm: window must be positive, thresholds at least 1")
	}
	s := d.OffSchedule
	if s.MinFraction < 0 || s.MinFraction >= 1 || s.Neighbors < 0 || s.Neighbors > 11 {
		bad("off_schedule: min_fraction wants [0, 1), neighbors 0..11")
	}
	if s.QuietHours[0] < 0 || s.QuietHours[0] > 24 || s.QuietHours[1] < 0 || s.QuietHours[1] > 24 {
		bad("off_schedule.quiet_hours: hours want 0..24")
	}
	for role, h := range s.RoleHours {
		if h[0] < 0 || h[0] > 24 || h[1] < 0 || h[1] > 24 {
			bad("off_schedule.role_hours[%s]: hours want 0..24", role)
		}
	}
	if s.UTCOffsetMinutes < -14*60 || s.UTCOffsetMinutes > 14*60 {
		bad("off_schedule.utc_offset_minutes: want -840..840")
	}
	if _, _, err := s.zones(); err != nil {
		bad("%v", err)
	}
	if d.DoorAjar.HeldOpen < 0 {
		bad("door_ajar.held_open must not be negative")
	}
	if d.StaleCredential.UnusedDays < 1 || d.StaleCredential.Every <= 0 {
		bad("stale_credential: unused_days at least 1, every positive")
	}
	if d.ExpiredException.Grace < 0 || d.ExpiredException.MaxBreakGlass <= 0 || d.ExpiredException.Every <= 0 {
		bad("expired_exception: grace not negative, max_break_glass and every positive")
	}
	for _, e := range d.Regression.validate() {
		bad("%s", e)
	}
	if r.Responders.MaxSuspensionsPerMinute < 0 {
		bad("responders.max_suspensions_per_minute must not be negative")
	}
	for i, rr := range r.Responders.Rules {
		if rr.Name == "" {
			bad("responders.rules[%d]: name is required", i)
		}
		for _, det := range rr.Detectors {
			if !slices.Contains(Detectors, det) {
				bad("responders.rules[%d]: unknown detector %q", i, det)
			}
		}
		if SeverityRank(rr.MinSeverity) == 0 {
			bad("responders.rules[%d].min_severity %q: want one of %v", i, rr.MinSeverity, Severities)
		}
		if len(rr.Actions) == 0 {
			bad("responders.rules[%d]: actions are required", i)
		}
		for _, a := range rr.Actions {
			if a != ActionSuspend && a != ActionWebhook && a != ActionTicket {
				bad("responders.rules[%d]: unknown action %q (want suspend, webhook, ticket)", i, a)
			}
		}
	}
	return errors.Join(errs...)
}

// Enabled reports whether a detector is enabled.
func (r *Rules) Enabled(detector string) bool {
	c, ok := r.common(detector)
	return ok && c.Enabled
}

func (r *Rules) common(detector string) (Common, bool) {
	d := &r.Detectors
	switch detector {
	case UnlockBurst:
		return d.UnlockBurst.Common, true
	case UnattestedDeviceChange:
		return d.UnattestedDeviceChange.Common, true
	case UseAfterRevocation:
		return d.UseAfterRevocation.Common, true
	case DeniedStorm:
		return d.DeniedStorm.Common, true
	case OffSchedule:
		return d.OffSchedule.Common, true
	case EmergencyUnlock:
		return d.EmergencyUnlock.Common, true
	case DoorForced:
		return d.DoorForced.Common, true
	case DoorAjar:
		return d.DoorAjar.Common, true
	case StaleCredential:
		return d.StaleCredential.Common, true
	case ExpiredException:
		return d.ExpiredException.Common, true
	case Regression:
		return d.Regression.Common, true
	}
	return Common{}, false
}

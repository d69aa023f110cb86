package sim

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyfleet/keyfleet/detect/backtest"
	"github.com/keyfleet/keyfleet/sim/fleet"
	"github.com/keyfleet/keyfleet/sim/locks"
	"github.com/keyfleet/keyfleet/sim/payload"
)

// Stats describe a run.
type Stats struct {
	Mode     string `json:"mode"`
	Seed     uint64 `json:"seed"`
	Sites    int    `json:"sites"`
	Locks    int    `json:"locks"`
	Subjects int    `json:"subjects"`
	// SimStartMs..SimEndMs is the simulated time covered (in rate mode the
	// fleet's compressed time, not the records' timestamps).
	SimStartMs int64   `json:"sim_start_ms"`
	SimEndMs   int64   `json:"sim_end_ms"`
	SimDays    float64 `json:"sim_days"`

	Records         int64            `json:"records"`
	RecordsByVendor map[string]int64 `json:"records_by_vendor"`
	RecordsByOp     map[string]int64 `json:"records_by_op"`
	// RecordsByDay counts records by UTC date of their timestamp.
	RecordsByDay   map[string]int64      `json:"records_by_day"`
	Attempts       int64                 `json:"attempts"`
	Granted        int64                 `json:"granted"`
	Denied         int64                 `json:"denied"`
	AttemptsByHour [24]int64             `json:"attempts_by_hour"`
	Roles          map[string]*RoleStats `json:"roles"`
	Changes        map[string]int        `json:"credential_records"`
	Commands       map[string]int        `json:"gateway_commands"`
	CommandsLost   int                   `json:"gateway_commands_lost"`
	Labels         map[string]int        `json:"labels"`
	// OSUpdates and RegressionDenials are the planted regression's
	// (sim.Regression): phones updated, attempts refused because of it.
	OSUpdates         int   `json:"os_updates"`
	RegressionDenials int64 `json:"regression_denials"`

	WallSeconds      float64         `json:"wall_seconds"`
	RecordsPerSecond float64         `json:"records_per_second"`
	Gateways         []locks.Summary `json:"gateways"`
}

// RoleStats describe one role's share of a run.
type RoleStats struct {
	Subjects int   `json:"subjects"`
	Attempts int64 `json:"attempts"`
	Granted  int64 `json:"granted"`
	Denied   int64 `json:"denied"`
	Records  int64 `json:"records"`
	// Per simulated day: attempts per subject, records of the whole role.
	AttemptsPerSubjectDay float64 `json:"attempts_per_subject_day"`
	RecordsPerDay         float64 `json:"records_per_day"`
}

func (st *Stats) init(o Options, f *fleet.Fleet) {
	st.Mode = o.Mode.String()
	st.Seed = o.Seed
	st.Sites, st.Locks, st.Subjects = len(f.Sites), len(f.Locks), len(f.Subjects)
	st.RecordsByVendor = map[string]int64{}
	st.RecordsByOp = map[string]int64{}
	st.RecordsByDay = map[string]int64{}
	st.Roles = map[string]*RoleStats{}
	st.Changes = map[string]int{}
	st.Commands = map[string]int{}
	st.Labels = map[string]int{}
	for _, r := range append(append([]string(nil), fleet.Roles...), "unknown", "none") {
		st.Roles[r] = &RoleStats{}
	}
	for _, s := range f.Subjects {
		st.Roles[s.Role].Subjects++
	}
}

func (st *Stats) simTime(ms int64) {
	if st.SimStartMs == 0 || ms < st.SimStartMs {
		st.SimStartMs = ms
	}
	if ms > st.SimEndMs {
		st.SimEndMs = ms
	}
}

func (st *Stats) attempt(role string, t int64, granted bool) {
	st.Attempts++
	rs := st.Roles[role]
	rs.Attempts++
	if granted {
		st.Granted++
		rs.Granted++
	} else {
		st.Denied++
		rs.Denied++
	}
	st.AttemptsByHour[time.UnixMilli(t).UTC().Hour()]++
}

func (st *Stats) record(vendor string, op payload.Op, cred int, f *fleet.Fleet, ts int64) {
	st.Records++
	st.RecordsByVendor[vendor]++
	st.RecordsByOp[op.String()]++
	st.RecordsByDay[time.UnixMilli(ts).UTC().Format("2006-01-02")]++
	role := "none"
	if cred >= 0 {
		role = f.Credentials[cred].Role
	}
	st.Roles[role].Records++
}

func (st *Stats) finish(wall time.Duration, labels []backtest.Label, set *locks.Set) {
	st.WallSeconds = wall.Seconds()
	if st.WallSeconds > 0 {
		st.RecordsPerSecond = float64(st.Records) / st.WallSeconds
	}
	st.SimDays = float64(st.SimEndMs-st.SimStartMs) / float64(24*time.Hour/time.Millisecond)
	for _, rs := range st.Roles {
		if st.SimDays > 0 {
			rs.RecordsPerDay = float64(rs.Records) / st.SimDays
			if rs.Subjects > 0 {
				rs.AttemptsPerSubjectDay = float64(rs.Attempts) / float64(rs.Subjects) / st.SimDays
			}
		}
	}
	for _, l := range labels {
		if l.StartMs > 0 {
			st.Labels[l.Type]++
		}
	}
	st.Gateways = set.Summarize()
}

// WriteTable writes a readable summary.
func (st *Stats) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "mode %s, seed %d: %d sites, %d locks, %d subjects, %.2f simulated days\n",
		st.Mode, st.Seed, st.Sites, st.Locks, st.Subjects, st.SimDays)
	fmt.Fprintf(w, "%d records in %.1f s (%.0f records/s); %d attempts (%d granted, %d denied)\n\n",
		st.Records, st.WallSeconds, st.RecordsPerSecond, st.Attempts, st.Granted, st.Denied)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "role\tsubjects\tattempts/subject/day\tdenied %\trecords/day\t")
	roles := append(append([]string(nil), fleet.Roles...), "unknown", "none")
	for _, r := range roles {
		rs := st.Roles[r]
		if rs == nil || (rs.Subjects == 0 && rs.Records == 0 && rs.Attempts == 0) {
			continue
		}
		denied := 0.0
		if rs.Attempts > 0 {
			denied = 100 * float64(rs.Denied) / float64(rs.Attempts)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.1f\t%.0f\t\n", r, rs.Subjects, rs.AttemptsPerSubjectDay, denied, rs.RecordsPerDay)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	fmt.Fprintf(w, "records by vendor: %s\n", formatCounts(st.RecordsByVendor))
	fmt.Fprintf(w, "records by kind:   %s\n", formatCounts(st.RecordsByOp))
	fmt.Fprintf(w, "records by day:    %s\n", formatDays(st.RecordsByDay))
	hours := make([]string, 24)
	for h, n := range st.AttemptsByHour {
		hours[h] = fmt.Sprint(n)
	}
	fmt.Fprintf(w, "attempts by hour (UTC 0..23): %s\n", strings.Join(hours, " "))
	fmt.Fprintf(w, "credential records: %s\n", formatCounts(st.Changes))
	fmt.Fprintf(w, "gateway commands: %s (lost %d)\n", formatCounts(st.Commands), st.CommandsLost)
	fmt.Fprintf(w, "labels: %s\n", formatCounts(st.Labels))
	for _, g := range st.Gateways {
		fmt.Fprintf(w, "gateway %-8s commands %d applied %d lost %d failed %d injected delay p50 %d ms p95 %d ms max %d ms\n",
			g.Vendor, g.Commands, g.Applied, g.Lost, g.Failed, g.P50Ms, g.P95Ms, g.MaxMs)
	}
}

func formatCounts[V int | int64](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func formatDays(m map[string]int64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		d, _ := time.Parse("2006-01-02", k)
		parts = append(parts, fmt.Sprintf("%s(%s)=%d", k[5:], d.Weekday().String()[:2], m[k]))
	}
	return strings.Join(parts, " ")
}

package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/keyfleet/keyfleet/internal/bus"
	"github.com/keyfleet/keyfleet/internal/chstorage"
	"github.com/keyfleet/keyfleet/query/querytest"
	"github.com/keyfleet/keyfleet/query/rollup"
	"github.com/keyfleet/keyfleet/sim"
)

// Scaling is the scaling benchmark (issue 23): serve's start-up and memory
// by fleet size, and the analyst queries' latency by stored rows.
type Scaling struct {
	StartedAt time.Time   `json:"started_at"`
	Commit    string      `json:"commit"`
	Machine   Machine     `json:"machine"`
	Fleets    []FleetSize `json:"fleets"`
	Stores    []StoreSize `json:"stores"`
	Notes     []string    `json:"notes"`
	Seconds   float64     `json:"duration_s"`
}

// FleetSize is serve with a fleet of Subjects people: time to ready, idle
// memory, and memory under a fixed offered rate. Live heap is read right
// after a forced collection (heap profile with gc=1).
type FleetSize struct {
	Subjects      int     `json:"subjects"`
	Sites         int     `json:"sites"`
	Locks         int     `json:"locks"`
	ReadySeconds  float64 `json:"ready_s"` // process start → /readyz 200
	IdleRSSMiB    float64 `json:"idle_rss_mib"`
	IdleLiveMiB   float64 `json:"idle_live_heap_mib"`
	Rate          float64 `json:"rate"` // records/s offered
	LoadPeakRSS   float64 `json:"load_peak_rss_mib"`
	LoadLiveMiB   float64 `json:"load_live_heap_mib"`
	LiveKBPerSubj float64 `json:"live_kb_per_subject"` // under load
	Error         string  `json:"error,omitempty"`
}

// StoreSize is the analyst queries (the harness's set) on a store of Rows
// events, idle, with Alerts stored alerts.
type StoreSize struct {
	Rows          uint64        `json:"rows"`
	Alerts        uint64        `json:"alerts"`
	LoadSeconds   float64       `json:"load_s"`
	BytesPerEvent float64       `json:"bytes_per_event"` // on disk, every access table
	RollupRows    float64       `json:"rollup_rows_per_event"`
	Queries       []QueryResult `json:"queries"`
	// Exports of the newest day (pseudonymized, through the API): rows/s by format.
	ExportRows   uint64             `json:"export_rows"`
	ExportPerSec map[string]float64 `json:"export_rows_per_s"`
}

// ScaleOptions configure RunScaling.
type ScaleOptions struct {
	Options
	FleetSizes []int    // subjects
	StoreSizes []uint64 // stored events
	// StoreAlerts is how many alerts are stored beside the events.
	StoreAlerts uint64
	// LoadRate and LoadDuration are the offered rate of the memory phase.
	LoadRate     float64
	LoadDuration time.Duration
}

// RunScaling runs the scaling benchmark: for each fleet size a serve on a
// fleet of that many people (sites and locks grow with it), and for each
// store size the analyst queries on that many stored events.
func RunScaling(ctx context.Context, o ScaleOptions) (*Scaling, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.LoadRate <= 0 {
		o.LoadRate = 2000
	}
	if o.LoadDuration <= 0 {
		o.LoadDuration = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	start := time.Now()
	sc := &Scaling{StartedAt: start.UTC(), Commit: commit(), Machine: machine(), Notes: []string{}}
	for _, n := range o.FleetSizes {
		fs, err := fleetSize(ctx, o, n)
		if err != nil {
			fs.Error = err.Error()
			o.Logger.Warn("fleet size failed", "subjects", n, "err", err)
		}
		sc.Fleets = append(sc.Fleets, fs)
		if ctx.Err() != nil {
			break
		}
	}
	if len(o.StoreSizes) > 0 {
		stores, err := storeSizes(ctx, o)
		sc.Stores = stores
		if err != nil {
			sc.Notes = append(sc.Notes, "store sizes: "+err.Error())
		}
	}
	sc.Machine.ClickHouseVersion = (&run{o: o.Options}).clickHouseVersion(ctx)
	sc.Machine.LoadAvgEnd = loadAvg()
	sc.Seconds = time.Since(start).Seconds()
	return sc, nil
}

func fleetSize(ctx context.Context, o ScaleOptions, subjects int) (FleetSize, error) {
	out := FleetSize{Subjects: subjects, Rate: o.LoadRate}
	ro := o.Options
	ro.Subjects = subjects
	ro.Sites = min(999, max(4, subjects/400)) // the simulator's most sites: 1M people are ~1,000 a site
	ro.DoorsPerSite = 40
	ro.ThroughputRecords = int64(o.LoadRate*o.LoadDuration.Seconds()) + 1
	ro.Rates, ro.MaxRateFraction, ro.Revocations, ro.QueryRounds, ro.BaselineRounds = nil, 0, 0, 0, 0
	r := &run{o: ro, logger: o.Logger, id: newID(), res: newResults(ro)}
	defer r.cleanup()
	if err := r.prepare(ctx); err != nil {
		return out, err
	}
	out.Sites, out.Locks = len(r.fleet.Sites), len(r.fleet.Locks)
	recs := bus.NewWriter(r.bc, bus.TopicCredentialEvents)
	defer recs.Close()
	segs := r.tl.next(ro.ThroughputRecords, ro.Workers)
	p, _, err := r.gen.generatePool(ctx, r.dir, "load", segs, &registerOnce{registerOnly: registerOnly{&sim.StandIn{Records: recs}}})
	if err != nil {
		return out, err
	}
	defer p.close()
	t0 := time.Now()
	if err := r.startServe(ctx); err != nil {
		return out, err
	}
	out.ReadySeconds = time.Since(t0).Seconds()
	if err := sleep(ctx, 10*time.Second); err != nil { // the detectors replay credential records
		return out, err
	}
	out.IdleLiveMiB = r.liveHeapMiB(ctx)
	rss, _, _ := procMem(r.srv.pid())
	out.IdleRSSMiB = float64(rss) / (1 << 20)
	from := time.Now()
	if _, err := producePaced(ctx, r.bc, p, o.LoadRate, o.LoadDuration); err != nil {
		return out, err
	}
	for _, s := range r.sampler.between(from, time.Now()) {
		out.LoadPeakRSS = math.Max(out.LoadPeakRSS, float64(s.rss)/(1<<20))
	}
	out.LoadLiveMiB = r.liveHeapMiB(ctx)
	out.LiveKBPerSubj = out.LoadLiveMiB * 1024 / float64(subjects)
	if o.ProfileOut != "" {
		// serve's heap after the load, per fleet size, beside --profile-out.
		path := strings.TrimSuffix(o.ProfileOut, filepath.Ext(o.ProfileOut)) + fmt.Sprintf("-heap-%d.pb.gz", subjects)
		if code, body, err := r.srv.do(ctx, http.MethodGet, "/debug/pprof/heap", nil); err == nil && code == http.StatusOK {
			if err := os.WriteFile(path, body, 0o644); err != nil {
				o.Logger.Warn("heap profile", "err", err)
			}
		}
	}
	o.Logger.Info("fleet size measured", "subjects", subjects, "ready_s", fmt.Sprintf("%.1f", out.ReadySeconds),
		"idle_rss_mib", int(out.IdleRSSMiB), "idle_live_mib", int(out.IdleLiveMiB), "load_peak_rss_mib", int(out.LoadPeakRSS),
		"load_live_mib", int(out.LoadLiveMiB))
	return out, nil
}

// registerOnce publishes the fleet's initial credential records for the
// first simulator segment only: every segment simulates the same fleet, and
// each registering it wrote every credential's records once per segment to
// credential.events (which serve replays before it is ready).
type registerOnce struct {
	registerOnly
	once sync.Once
}

func (r *registerOnce) Register(ctx context.Context, reg *sim.Registration) error {
	var err error
	r.once.Do(func() { err = r.registerOnly.Register(ctx, reg) })
	return err
}

// liveHeapMiB forces a collection in serve (heap profile with gc=1) and
// reads the heap in use after it.
func (r *run) liveHeapMiB(ctx context.Context) float64 {
	if code, _, err := r.srv.do(ctx, http.MethodGet, "/debug/pprof/heap?gc=1", nil); err != nil || code != http.StatusOK {
		return 0
	}
	m, err := r.srv.scrape(ctx)
	if err != nil {
		return 0
	}
	return m.sum("go_memstats_heap_alloc_bytes") / (1 << 20)
}

var (
	loadAlertsSQL     = chstorage.Query("bench/load_alerts")
	loadAlertIndexSQL = chstorage.Query("bench/load_alert_index")
	loadAlertsOpenSQL = chstorage.Query("bench/load_alerts_open")
	accessBytesSQL    = chstorage.Query("bench/access_bytes")
	rollupRowsSQL     = chstorage.Query("bench/rollup_rows")
)

// storeSizes loads events (querytest's generator: 20 sites × 50 doors,
// 20,000 subjects, the last 90 days) up to each size in turn and runs the
// analyst queries through a serve on that database, idle.
func storeSizes(ctx context.Context, o ScaleOptions) ([]StoreSize, error) {
	ro := o.Options
	ro.Sites, ro.DoorsPerSite, ro.Subjects = 4, 10, 100
	ro.ThroughputRecords, ro.Rates, ro.MaxRateFraction, ro.Revocations, ro.BaselineRounds = 1, nil, 0, 0, 0
	r := &run{o: ro, logger: o.Logger, id: newID(), res: newResults(ro)}
	defer r.cleanup()
	if err := r.prepare(ctx); err != nil {
		return nil, err
	}
	conn, err := chstorage.Open(ctx, r.chCfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := chstorage.Migrate(ctx, conn, r.logger); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	var out []StoreSize
	var have uint64
	if o.StoreAlerts > 0 {
		args := chstorage.Args{"n": o.StoreAlerts, "start": now.Add(-90 * 24 * time.Hour).UnixMilli(), "span": int64(90 * 24 * 3600 * 1000)}
		if err := loadAlertsSQL.Exec(ctx, conn, args); err != nil {
			return nil, err
		}
		if err := loadAlertIndexSQL.Exec(ctx, conn, nil); err != nil {
			return nil, err
		}
		if err := loadAlertsOpenSQL.Exec(ctx, conn, nil); err != nil {
			return nil, err
		}
	}
	for _, size := range o.StoreSizes {
		t0 := time.Now()
		const step = 5_000_000
		for have < size {
			n := min(step, size-have)
			if err := querytest.Load(ctx, conn, querytest.Fleet{Events: n, Offset: have, Start: now.Add(-90 * 24 * time.Hour),
				Span: 90 * 24 * time.Hour, Subjects: 20000, Sites: 20, Doors: 50}); err != nil {
				return out, fmt.Errorf("load %d events: %w", size, err)
			}
			have += n
			r.logger.Info("events loaded", "rows", have, "took", time.Since(t0).Round(time.Second))
		}
		roll, err := rollup.New(rollup.Options{Conn: conn, Logger: r.logger})
		if err != nil {
			return out, err
		}
		if err := roll.RunOnce(ctx); err != nil {
			return out, err
		}
		if err := sleep(ctx, rollup.Slack+time.Second); err != nil {
			return out, err
		}
		if err := roll.RunOnce(ctx); err != nil {
			return out, err
		}
		st := StoreSize{Rows: have, Alerts: o.StoreAlerts, LoadSeconds: time.Since(t0).Seconds()}
		r.waitMerges(ctx, 3*time.Minute)
		var bytes, rollRows uint64
		if err := accessBytesSQL.QueryRow(ctx, conn, nil).Scan(&bytes); err == nil && have > 0 {
			st.BytesPerEvent = float64(bytes) / float64(have)
		}
		if err := rollupRowsSQL.QueryRow(ctx, conn, nil).Scan(&rollRows); err == nil && have > 0 {
			st.RollupRows = float64(rollRows) / float64(have)
		}
		if r.srv == nil {
			if err := r.startServe(ctx); err != nil {
				return out, err
			}
		}
		ph := r.runQueries(ctx, "idle", max(ro.QueryRounds, 20))
		st.Queries = ph.Queries
		r.measureExports(ctx, conn, &st)
		out = append(out, st)
		r.logger.Info("store size measured", "rows", have)
	}
	return out, nil
}

// measureExports exports the newest stored day through the API in each
// format (the response read and dropped) and reports rows/s.
func (r *run) measureExports(ctx context.Context, conn driver.Conn, st *StoreSize) {
	var end int64
	if err := latestEventSQL.QueryRow(ctx, conn, nil).Scan(&end); err != nil || end <= 0 {
		return
	}
	from := end - 24*3600*1000
	if err := exportRowsSQL.QueryRow(ctx, conn, chstorage.Args{"from_ms": from, "to_ms": end + 1}).Scan(&st.ExportRows); err != nil {
		return
	}
	st.ExportPerSec = map[string]float64{}
	for _, format := range []string{"arrow", "parquet", "csv"} {
		t0 := time.Now()
		code, _, err := r.srv.do(ctx, http.MethodGet, fmt.Sprintf("/v1/export/events?format=%s&from=%d&to=%d", format, from, end+1), nil)
		if err != nil || code != http.StatusOK {
			r.logger.Warn("export", "format", format, "status", code, "err", err)
			continue
		}
		st.ExportPerSec[format] = float64(st.ExportRows) / time.Since(t0).Seconds()
	}
}

var exportRowsSQL = chstorage.Query("bench/export_rows")

// WriteScaling prints the scaling tables.
func WriteScaling(w io.Writer, sc *Scaling) {
	m := sc.Machine
	fmt.Fprintf(w, "keyfleet bench (scaling) %s  commit %s  took %s\n", sc.StartedAt.Format(time.RFC3339), sc.Commit,
		(time.Duration(sc.Seconds) * time.Second).String())
	fmt.Fprintf(w, "machine: %s, %d CPUs, %.1f GiB; ClickHouse %s; load %s → %s\n\n", m.CPUModel, m.CPUs,
		float64(m.MemoryBytes)/(1<<30), m.ClickHouseVersion, m.LoadAvgStart, m.LoadAvgEnd)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if len(sc.Fleets) > 0 {
		fmt.Fprintln(tw, "subjects\tsites/locks\ttime to ready\tidle RSS / live heap\tunder load: peak RSS / live heap\tlive KB per subject\t")
		for _, f := range sc.Fleets {
			if f.Error != "" {
				fmt.Fprintf(tw, "%s\t%d/%d\terror: %s\t\t\t\t\n", thousands(float64(f.Subjects)), f.Sites, f.Locks, f.Error)
				continue
			}
			fmt.Fprintf(tw, "%s\t%d/%d\t%.1f s\t%.0f / %.0f MiB\t%.0f / %.0f MiB (%s records/s)\t%.1f\t\n", thousands(float64(f.Subjects)),
				f.Sites, f.Locks, f.ReadySeconds, f.IdleRSSMiB, f.IdleLiveMiB, f.LoadPeakRSS, f.LoadLiveMiB, thousands(f.Rate), f.LiveKBPerSubj)
		}
		fmt.Fprintln(tw)
	}
	if len(sc.Stores) > 0 {
		header := []string{"query (p50 / p95)"}
		for _, s := range sc.Stores {
			header = append(header, fmt.Sprintf("%s rows", thousands(float64(s.Rows))))
		}
		fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
		for i := range sc.Stores[0].Queries {
			row := []string{sc.Stores[0].Queries[i].Name}
			for _, s := range sc.Stores {
				if i < len(s.Queries) {
					row = append(row, fmt.Sprintf("%s / %s", ms(s.Queries[i].Latency.P50), ms(s.Queries[i].Latency.P95)))
				}
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		row := []string{"bytes on disk per event (all access tables)"}
		for _, s := range sc.Stores {
			row = append(row, fmt.Sprintf("%.1f", s.BytesPerEvent))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		row = []string{"rollup rows per event (hourly + subject daily)"}
		for _, s := range sc.Stores {
			row = append(row, fmt.Sprintf("%.3f", s.RollupRows))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		for _, format := range []string{"arrow", "parquet", "csv"} {
			row = []string{"export of the newest day, " + format + " (rows/s)"}
			for _, s := range sc.Stores {
				row = append(row, fmt.Sprintf("%s (%s rows)", thousands(s.ExportPerSec[format]), thousands(float64(s.ExportRows))))
			}
			fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
		}
		row = []string{"load time"}
		for _, s := range sc.Stores {
			row = append(row, fmt.Sprintf("%.0f s", s.LoadSeconds))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	for _, n := range sc.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

// ParseSizes parses "2k,20k,100k,1M".
func ParseSizes(s string) ([]uint64, error) {
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" {
			continue
		}
		mult := uint64(1)
		switch {
		case strings.HasSuffix(f, "k"):
			f, mult = strings.TrimSuffix(f, "k"), 1000
		case strings.HasSuffix(f, "m"):
			f, mult = strings.TrimSuffix(f, "m"), 1_000_000
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q: want positive sizes (k, M suffixes)", f)
		}
		out = append(out, uint64(v*float64(mult)))
	}
	return out, nil
}

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ProfileStats summarizes the CPU profile of serve taken during the
// throughput phase.
type ProfileStats struct {
	Path    string  `json:"path"`
	Seconds int     `json:"seconds"`
	Cores   float64 `json:"cores"` // samples / duration
	// Top are the functions with the most flat (self) time.
	Top []ProfileEntry `json:"top"`
	// Groups add flat time by what the code does.
	Groups []ProfileEntry `json:"groups"`
	// Stages are the cumulative time of the pipeline's long-running parts.
	Stages []ProfileEntry `json:"stages"`
	// Heap is a heap profile taken right after the CPU profile: the
	// allocation sites holding the most in-use memory (flat percent of
	// in-use bytes), with the Go heap in use and the memory Go holds from
	// the OS at that moment.
	HeapPath     string         `json:"heap_path,omitempty"`
	Heap         []ProfileEntry `json:"heap,omitempty"`
	HeapInuseMiB float64        `json:"heap_inuse_mib"`
	GoSysMiB     float64        `json:"go_sys_mib"`
}

// ProfileEntry is one line of a profile summary (percent of all samples).
type ProfileEntry struct {
	Name    string  `json:"name"`
	FlatPct float64 `json:"flat_pct"`
	CumPct  float64 `json:"cum_pct"`
}

type pprofLine struct {
	fn        string
	flat, cum float64 // percent
}

// summarizeProfile reads the CPU and heap profiles with `go tool pprof` (it
// needs the Go toolchain; the files are kept either way) and copies the CPU
// profile to out and the heap profile beside it (serve-cpu.pprof →
// serve-cpu-heap.pprof).
func summarizeProfile(ctx context.Context, binary, path, heapPath, out string) (*ProfileStats, error) {
	ps := &ProfileStats{Path: path, HeapPath: heapPath}
	if text, err := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-sample_index=inuse_space", "-nodecount=12",
		binary, heapPath).Output(); err == nil {
		lines, _, _ := parsePprofTop(string(text))
		for _, l := range lines {
			ps.Heap = append(ps.Heap, ProfileEntry{Name: l.fn, FlatPct: l.flat, CumPct: l.cum})
		}
	}
	if out != "" {
		if err := copyFile(path, out); err != nil {
			return nil, fmt.Errorf("--profile-out: %w", err)
		}
		ps.Path = out
		heapOut := strings.TrimSuffix(out, filepath.Ext(out)) + "-heap" + filepath.Ext(out)
		if err := copyFile(heapPath, heapOut); err != nil {
			return nil, fmt.Errorf("--profile-out (heap): %w", err)
		}
		ps.HeapPath = heapOut
	}
	cmd := exec.CommandContext(ctx, "go", "tool", "pprof", "-top", "-nodecount=100000", binary, path)
	text, err := cmd.Output()
	if err != nil {
		return ps, fmt.Errorf("go tool pprof: %w", err)
	}
	lines, total, dur := parsePprofTop(string(text))
	if dur > 0 {
		ps.Cores = total / dur
	}
	for i, l := range lines {
		if i == 15 {
			break
		}
		ps.Top = append(ps.Top, ProfileEntry{Name: l.fn, FlatPct: l.flat, CumPct: l.cum})
	}
	groups := map[string]float64{}
	for _, l := range lines {
		groups[groupOf(l.fn)] += l.flat
	}
	for name, pct := range groups {
		ps.Groups = append(ps.Groups, ProfileEntry{Name: name, FlatPct: pct})
	}
	sort.Slice(ps.Groups, func(i, j int) bool { return ps.Groups[i].FlatPct > ps.Groups[j].FlatPct })
	for _, st := range profileStages {
		var best pprofLine
		for _, l := range lines {
			if strings.HasPrefix(l.fn, st.fn) && l.cum > best.cum {
				best = l
			}
		}
		if best.fn != "" {
			ps.Stages = append(ps.Stages, ProfileEntry{Name: st.name, CumPct: best.cum})
		}
	}
	return ps, nil
}

// profileStages are the long-running parts of serve, by the function at
// the root of their goroutines.
var profileStages = []struct{ name, fn string }{
	{"one pass: normalize, detectors' hand-off, access.events (Ingest.process)", "github.com/keyfleet/keyfleet/pipeline.(*Ingest).process"},
	{"one pass: ClickHouse inserts and commits (Ingest.store)", "github.com/keyfleet/keyfleet/pipeline.(*Ingest).store"},
	{"detectors judging (in-process or from access.events)", "github.com/keyfleet/keyfleet/detect/stream.(*Processor).judge"},
	{"normalize stage (raw → access.events; before the one pass)", "github.com/keyfleet/keyfleet/pipeline.(*NormalizeStage).Run"},
	{"Kafka → ClickHouse sinks (dead letters; before the one pass also access.events)", "github.com/keyfleet/keyfleet/pipeline.(*Sink).Run"},
	{"kafka-go readers (fetch, decompress, parse)", "github.com/segmentio/kafka-go.(*reader).run"},
	{"kafka-go producer connections (encode, lz4)", "github.com/segmentio/kafka-go.(*conn).run"},
	{"garbage collector (background marking)", "runtime.gcBgMarkWorker"},
}

// parsePprofTop reads `go tool pprof -top` output: the functions with flat
// and cumulative percentages, the total sampled seconds and the duration.
func parsePprofTop(text string) (lines []pprofLine, total, duration float64) {
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	table := false
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "Duration: "); ok {
			// "Duration: 20.01s, Total samples = 25.34s (126.63%)"
			d, samples, _ := strings.Cut(rest, ", Total samples = ")
			duration = parseSeconds(d)
			total = parseSeconds(strings.Fields(samples + " ")[0])
			continue
		}
		if strings.Contains(line, "flat%") && strings.Contains(line, "cum%") {
			table = true
			continue
		}
		if !table {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		flat, err1 := strconv.ParseFloat(strings.TrimSuffix(f[1], "%"), 64)
		cum, err2 := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64)
		if err1 != nil || err2 != nil {
			continue
		}
		fn := strings.Join(f[5:], " ")
		if i := strings.Index(fn, " (inline)"); i >= 0 {
			fn = fn[:i]
		}
		lines = append(lines, pprofLine{fn: fn, flat: flat, cum: cum})
	}
	return lines, total, duration
}

func parseSeconds(s string) float64 {
	s = strings.TrimSpace(s)
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d.Seconds()
}

// groupOf names what a function's time is spent on.
func groupOf(fn string) string {
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(fn, s) {
				return true
			}
		}
		return false
	}
	switch {
	case fn == "runtime.memmove" || fn == "runtime.memequal" || strings.HasPrefix(fn, "bytes.") || strings.HasPrefix(fn, "strings."):
		return "memory copies and compares"
	case strings.HasPrefix(fn, "runtime.") && has("gc", "GC", "malloc", "scan", "Span", "span", "sweep", "mark", "Mark", "heap", "Heap",
		"memclr", "Barrier", "wbBuf", "grey", "findObject", "nextFree", "alloc", "Alloc", "newobject", "makeslice", "growslice",
		"typePointers", "bgsweep", "Defer"):
		return "allocation and garbage collection"
	case strings.HasPrefix(fn, "internal/runtime/gc") || strings.HasPrefix(fn, "internal/runtime/maps") || strings.HasPrefix(fn, "runtime.map") ||
		fn == "aeshashbody" || strings.HasPrefix(fn, "runtime.aeshash"):
		if strings.HasPrefix(fn, "internal/runtime/gc") {
			return "allocation and garbage collection"
		}
		return "hash maps"
	case strings.HasPrefix(fn, "syscall.") || strings.HasPrefix(fn, "internal/poll") || strings.HasPrefix(fn, "internal/runtime/syscall") ||
		strings.HasPrefix(fn, "runtime.futex") || strings.HasPrefix(fn, "runtime.epoll") || strings.HasPrefix(fn, "runtime.netpoll") ||
		strings.HasPrefix(fn, "net."):
		return "syscalls and network"
	case strings.HasPrefix(fn, "runtime.") || strings.HasPrefix(fn, "sync.") || strings.HasPrefix(fn, "internal/sync") ||
		strings.HasPrefix(fn, "sync/atomic"):
		return "scheduler, locks and other runtime"
	case has("encoding/json", "keyfleet/internal/event", "jsonscan", "strconv.", "unicode/utf8", "time.", "encoding/hex"):
		return "JSON and field decoding/encoding"
	case has("keyfleet/keyfleet/normalize", "keyfleet/internal/registry", "crypto/", "github.com/google/uuid"):
		return "normalization (adapters, ids, pseudonyms, registry)"
	case has("keyfleet/keyfleet/detect"):
		return "detectors"
	case has("ClickHouse/", "keyfleet/internal/chstorage", "go-faster/city", "paulmach/orb"):
		return "ClickHouse client (columns, compression)"
	case has("segmentio/kafka-go", "pierrec/lz4", "klauspost/compress", "keyfleet/internal/bus"):
		return "Kafka client (kafka-go, lz4)"
	case has("keyfleet/keyfleet"):
		return "other keyfleet code"
	default:
		return "other"
	}
}

// goals compares the results with the performance goals (BENCHMARKS.md).
func goals(res *Results) []Goal {
	yes := func(b bool) *bool { return &b }
	var out []Goal
	g := Goal{Name: "CPU per event (serve + ClickHouse + Kafka)", Target: "≤ 12 µs"}
	if c := res.Comparison; c != nil && c.Keyfleet.TotalUs > 0 {
		k := c.Keyfleet
		g.Measured = fmt.Sprintf("%.1f µs (serve %.1f, ClickHouse %.1f, Kafka %.1f; median of %d rounds)",
			k.TotalUs, k.ProcessUs, k.ClickHouseUs, k.KafkaUs, len(c.PairRatios))
		g.Met = yes(k.TotalUs <= 12)
	} else if t := res.Throughput; t != nil && t.ServeCPUPerMillion > 0 {
		tot := t.ServeCPUPerMillion + t.ClickHouseCPUPerMillion + t.KafkaCPUPerMillion
		g.Measured = fmt.Sprintf("%.1f µs (serve %.1f, ClickHouse %.1f, Kafka %.1f; one drain)", tot,
			t.ServeCPUPerMillion, t.ClickHouseCPUPerMillion, t.KafkaCPUPerMillion)
		g.Met = yes(tot <= 12)
	}
	out = append(out, g)
	g = Goal{Name: "throughput against the baseline loop", Target: "≥ 0.6 × baseline events/s"}
	if c := res.Comparison; c != nil && c.Baseline.EventsPerSecond > 0 {
		g.Measured = fmt.Sprintf("%.2f × (keyfleet %s, baseline %s events/s, medians; pairs %s)", c.Ratio.EventsPerSecond,
			thousands(c.Keyfleet.EventsPerSecond), thousands(c.Baseline.EventsPerSecond), ratios(c.PairRatios))
		g.Met = yes(c.Ratio.EventsPerSecond >= 0.6)
	}
	out = append(out, g)
	half := res.FractionRate
	g = Goal{Name: "freshness at 50% of the sustained rate", Target: "p99 ≤ 2 s"}
	if ph := rateOf(res, half); half > 0 && ph != nil && ph.Freshness.Count > 0 {
		g.Measured = fmt.Sprintf("p50 %s, p99 %s at %s/s", ms(ph.Freshness.P50), ms(ph.Freshness.P99), thousands(ph.AchievedRate))
		g.Met = yes(ph.Freshness.P99 <= 2000)
	}
	out = append(out, g)
	g = Goal{Name: "detection at 50% of the sustained rate", Target: "p99 ≤ 1 s"}
	if ph := rateOf(res, half); half > 0 && ph != nil && ph.Detection.Count > 0 {
		g.Measured = fmt.Sprintf("p50 %s, p99 %s (%d alerts) at %s/s", ms(ph.Detection.P50), ms(ph.Detection.P99),
			ph.Detection.Count, thousands(ph.AchievedRate))
		g.Met = yes(ph.Detection.P99 <= 1000)
	}
	out = append(out, g)
	for _, q := range []struct {
		name, target string
		limit        float64
		queries      []string
	}{
		{"scoped queries at 20,000/s ingest", "p95 ≤ 50 ms", 50,
			[]string{"subject_events_30d", "door_events_1d", "site_summary_hourly_7d", "subject_timeline_7d"}},
		{"fleet-wide queries at 20,000/s ingest", "p95 ≤ 300 ms", 300,
			[]string{"fleet_summary_hourly_7d", "site_alerts_open", "fleet_alerts_open", "top_denied_subjects_30d", "top_denied_subjects_30d_daily"}},
	} {
		g = Goal{Name: q.name, Target: q.target}
		var worst float64
		var worstName string
		for _, ph := range res.Queries {
			if ph.Name == "idle" {
				continue
			}
			for _, qr := range ph.Queries {
				if slices.Contains(q.queries, qr.Name) && qr.Latency.Count > 0 && qr.Latency.P95 >= worst {
					worst, worstName = qr.Latency.P95, qr.Name
				}
			}
		}
		if worstName != "" {
			g.Measured = fmt.Sprintf("worst p95 %s (%s)", ms(worst), worstName)
			g.Met = yes(worst <= q.limit)
		}
		out = append(out, g)
	}
	g = Goal{Name: "revocation, keyfleet's share", Target: "p99 ≤ 100 ms"}
	if rv := res.Revocation; rv != nil && rv.KeyfleetPerRevocation.Count > 0 {
		g.Measured = fmt.Sprintf("p50 %s, p99 %s per revocation (worst lock)", ms(rv.KeyfleetPerRevocation.P50), ms(rv.KeyfleetPerRevocation.P99))
		g.Met = yes(rv.KeyfleetPerRevocation.P99 <= 100)
	}
	out = append(out, g)
	g = Goal{Name: "memory at full ingest", Target: "RSS ≤ 512 MiB"}
	if t := res.Throughput; t != nil && t.PeakRSSMiB > 0 {
		g.Measured = fmt.Sprintf("peak %.0f MiB", t.PeakRSSMiB)
		g.Met = yes(t.PeakRSSMiB <= 512)
	}
	out = append(out, g)
	return out
}

func ratios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}

func rateOf(res *Results, rate float64) *RatePhase {
	for i := range res.Rates {
		if res.Rates[i].OfferedRate == rate {
			return &res.Rates[i]
		}
	}
	return nil
}

func ms(v float64) string {
	switch {
	case v >= 10_000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 1000:
		return fmt.Sprintf("%.2f s", v/1000)
	case v >= 10:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

// thousands formats a count with thousands separators.
func thousands(v float64) string {
	s := strconv.FormatInt(int64(v+0.5), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func dist(d Dist) string {
	if d.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %s  p95 %s  p99 %s  max %s  (n=%d)", ms(d.P50), ms(d.P95), ms(d.P99), ms(d.Max), d.Count)
}

// WriteTable prints the results for people.
func WriteTable(w io.Writer, res *Results) {
	m := res.Machine
	fmt.Fprintf(w, "keyfleet bench (%s) %s  commit %s  took %s\n", res.Mode, res.StartedAt.Format(time.RFC3339), res.Commit,
		(time.Duration(res.Seconds) * time.Second).String())
	fmt.Fprintf(w, "machine: %s, %d CPUs, %.1f GiB, Linux %s, %s, ClickHouse %s, Kafka %s; load %s → %s\n",
		m.CPUModel, m.CPUs, float64(m.MemoryBytes)/(1<<30), m.Kernel, m.GoVersion, m.ClickHouseVersion, m.KafkaVersion,
		m.LoadAvgStart, m.LoadAvgEnd)
	st := res.Setup
	fmt.Fprintf(w, "fleet: %d sites, %d locks, %d subjects, vendors %s; %d partitions\n\n", st.Sites, st.Locks, st.Subjects,
		st.VendorMix, st.Partitions)
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if t := res.Throughput; t != nil {
		fmt.Fprintf(tw, "INGEST (raw → ClickHouse, normalize + detect running)\t\n")
		windows := ""
		if t.Rate10sMax > 0 {
			windows = fmt.Sprintf(" (10 s windows: min %s, median %s, max %s)", thousands(t.Rate10sMin), thousands(t.Rate10sMedian), thousands(t.Rate10sMax))
		}
		fmt.Fprintf(tw, "  sustained\t%s events/s over %.0f s%s\n", thousands(t.EventsPerSecond), t.WindowSeconds, windows)
		fmt.Fprintf(tw, "  from serve start\t%s events/s (%s events, start-up %.1f s, %d dead-lettered)\n", thousands(t.FromStartPerSecond),
			thousands(float64(t.Events)), t.StartupSeconds, t.DeadLettered)
		fmt.Fprintf(tw, "  until detectors caught up\t%s events/s (detectors done %.1f s after the last row; %d alerts)\n",
			thousands(t.WithDetectPerSecond), t.DetectCatchUpSeconds, t.Alerts)
		fmt.Fprintf(tw, "  CPU s per million events\tserve %.2f, ClickHouse %.2f, Kafka %.2f (serve whole phase %.2f)\n",
			t.ServeCPUPerMillion, t.ClickHouseCPUPerMillion, t.KafkaCPUPerMillion, t.ServeCPUPerMillionTotal)
		fmt.Fprintf(tw, "  busy cores\tserve %.2f, ClickHouse %.2f, Kafka %.2f, harness %.2f, other processes %.2f (machine %.2f of %d)\n",
			t.ServeCores, t.ClickHouseCores, t.KafkaCores, t.HarnessCores, t.OtherCores, t.MachineBusyCores, res.Machine.CPUs)
		fmt.Fprintf(tw, "  serve peak RSS\t%.0f MiB\n", t.PeakRSSMiB)
	}
	if c := res.Comparison; c != nil {
		fmt.Fprintf(tw, "AGAINST THE BASELINE LOOP\t%s records each round, interleaved; CPU µs per event\n", thousands(float64(c.Records)))
		for _, rd := range c.Rounds {
			fmt.Fprintf(tw, "  %s\t%s events/s over %.0f s; process %.2f, ClickHouse %.2f, Kafka %.2f, total %.2f µs; peak RSS %.0f MiB\n",
				rd.Kind, thousands(rd.EventsPerSecond), rd.WindowSeconds, rd.ProcessUs, rd.ClickHouseUs, rd.KafkaUs, rd.TotalUs, rd.PeakRSSMiB)
		}
		for _, sd := range []struct {
			name string
			s    Side
		}{{"keyfleet (median)", c.Keyfleet}, {"baseline (median)", c.Baseline}} {
			fmt.Fprintf(tw, "  %s\t%s events/s; process %.2f, ClickHouse %.2f, Kafka %.2f, total %.2f µs\n", sd.name,
				thousands(sd.s.EventsPerSecond), sd.s.ProcessUs, sd.s.ClickHouseUs, sd.s.KafkaUs, sd.s.TotalUs)
		}
		fmt.Fprintf(tw, "  keyfleet / baseline\tevents/s %.2f (pairs %s); CPU per event: process %.2f, ClickHouse %.2f, Kafka %.2f, total %.2f\n",
			c.Ratio.EventsPerSecond, ratios(c.PairRatios), c.Ratio.ProcessUs, c.Ratio.ClickHouseUs, c.Ratio.KafkaUs, c.Ratio.TotalUs)
	}
	for _, ph := range res.Rates {
		fmt.Fprintf(tw, "RATE %s\toffered %s/s, achieved %s/s for %.0f s; drained %.1f s after; sustainable %v\n",
			ph.Name, thousands(ph.OfferedRate), thousands(ph.AchievedRate), ph.Seconds, ph.DrainSeconds, ph.Sustainable)
		fmt.Fprintf(tw, "  busy cores\tserve %.2f, ClickHouse %.2f, Kafka %.2f, harness %.2f, other processes %.2f (machine %.2f); serve peak RSS %.0f MiB\n",
			ph.ServeCores, ph.ClickHouseCores, ph.KafkaCores, ph.HarnessCores, ph.OtherCores, ph.MachineCores, ph.PeakRSSMiB)
		fmt.Fprintf(tw, "  freshness (produced → queryable)\t%s\n", dist(ph.Freshness))
		fmt.Fprintf(tw, "  detection (produced → alert)\t%s\n", dist(ph.Detection))
		fmt.Fprintf(tw, "  detection (latency histogram)\tp50 %s  p95 %s  p99 %s  (n=%d)\n", ms(ph.DetectionMetric.P50),
			ms(ph.DetectionMetric.P95), ms(ph.DetectionMetric.P99), ph.DetectionMetric.Count)
		for _, name := range sortedKeys(ph.DetectionByDet) {
			fmt.Fprintf(tw, "    %s\t%s\n", name, dist(ph.DetectionByDet[name]))
		}
	}
	if rv := res.Revocation; rv != nil {
		fmt.Fprintf(tw, "REVOCATION\t%d revocations, %d lock commands, %d acked (credentials issued in %.1f s)\n",
			rv.Revocations, rv.Locks, rv.Acked, rv.IssueSecs)
		fmt.Fprintf(tw, "  total (request → last lock applied)\t%s\n", dist(rv.Total))
		fmt.Fprintf(tw, "  total (request → last ack recorded)\t%s\n", dist(rv.TotalRecorded))
		fmt.Fprintf(tw, "  gateways' injected delay (per lock)\t%s\n", dist(rv.Gateway))
		for _, v := range sortedKeys(rv.GatewayByVendor) {
			fmt.Fprintf(tw, "    %s\t%s\n", v, dist(rv.GatewayByVendor[v]))
		}
		fmt.Fprintf(tw, "  keyfleet's share (per revocation)\t%s\n", dist(rv.KeyfleetPerRevocation))
		fmt.Fprintf(tw, "  keyfleet's share (per lock)\t%s\n", dist(rv.KeyfleetPerLock))
		fmt.Fprintf(tw, "    request → command published\t%s\n", dist(rv.Queueing))
		fmt.Fprintf(tw, "    published → gateway received\t%s\n", dist(rv.Delivery))
		fmt.Fprintf(tw, "    applied → ack recorded\t%s\n", dist(rv.AckTracking))
	}
	for _, qp := range res.Queries {
		fmt.Fprintf(tw, "QUERIES %s\t\n", qp.Name)
		for _, q := range qp.Queries {
			if q.Status == "unavailable" {
				fmt.Fprintf(tw, "  %s\tunavailable in this build (%s)\n", q.Name, strings.SplitN(q.Example, "?", 2)[0])
				continue
			}
			errs := ""
			if q.Errors > 0 {
				errs = fmt.Sprintf(", %d errors", q.Errors)
			}
			fmt.Fprintf(tw, "  %s\t%s%s\n", q.Name, dist(q.Latency), errs)
		}
	}
	fmt.Fprintf(tw, "SERVE\tCPU %.1f s, peak RSS (VmHWM) %.0f MiB\n", res.Serve.CPUSeconds, res.Serve.PeakRSSMiB)
	tw.Flush()
	if p := res.Profile; p != nil {
		fmt.Fprintf(w, "\nCPU profile of serve (%d s during ingest, %.2f cores sampled): %s\n", p.Seconds, p.Cores, p.Path)
		for _, e := range p.Stages {
			fmt.Fprintf(w, "  %5.1f%% cum  %s\n", e.CumPct, e.Name)
		}
		for _, e := range p.Groups {
			fmt.Fprintf(w, "  %5.1f%% flat %s\n", e.FlatPct, e.Name)
		}
		for _, e := range p.Top {
			fmt.Fprintf(w, "  %5.1f%% flat %5.1f%% cum  %s\n", e.FlatPct, e.CumPct, e.Name)
		}
		fmt.Fprintf(w, "heap right after: %.0f MiB in use, %.0f MiB held by Go from the OS; in-use bytes by allocation site:\n",
			p.HeapInuseMiB, p.GoSysMiB)
		for _, e := range p.Heap {
			fmt.Fprintf(w, "  %5.1f%%  %s\n", e.FlatPct, e.Name)
		}
	}
	fmt.Fprintln(w, "\nGOALS")
	for _, g := range res.Goals {
		verdict := "not measured"
		if g.Met != nil {
			verdict = "MISSED"
			if *g.Met {
				verdict = "met"
			}
		}
		note := ""
		if g.Note != "" {
			note = " — " + g.Note
		}
		fmt.Fprintf(w, "  %-30s %-28s %-8s %s%s\n", g.Name, g.Target, verdict, g.Measured, note)
	}
	if len(res.Notes) > 0 {
		fmt.Fprintln(w, "\nNOTES")
		for _, n := range res.Notes {
			fmt.Fprintf(w, "  - %s\n", n)
		}
	}
	if res.Error != "" {
		fmt.Fprintf(w, "\nERROR: %s\n", res.Error)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// WriteMarkdown writes the results as the Markdown tables of BENCHMARKS.md.
func WriteMarkdown(w io.Writer, res *Results) {
	m, st := res.Machine, res.Setup
	fmt.Fprintf(w, "Run %s (%s mode, %s), commit `%s`.\n\n", res.StartedAt.Format("2006-01-02 15:04 MST"), res.Mode,
		(time.Duration(res.Seconds) * time.Second).String(), res.Commit)
	fmt.Fprintf(w, "Machine: %s, %d CPUs, %.1f GiB RAM, Linux %s, %s; ClickHouse %s, Kafka %s (single node, loopback); "+
		"load average %s at the start, %s at the end.\n\n", m.CPUModel, m.CPUs, float64(m.MemoryBytes)/(1<<30), m.Kernel,
		m.GoVersion, m.ClickHouseVersion, m.KafkaVersion, m.LoadAvgStart, m.LoadAvgEnd)
	fmt.Fprintf(w, "Fleet: %d sites, %d locks, %d subjects, vendor mix %s; %d partitions per topic.\n\n",
		st.Sites, st.Locks, st.Subjects, st.VendorMix, st.Partitions)
	fmt.Fprintln(w, "| Goal | Target | Measured | |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, g := range res.Goals {
		verdict := "not measured"
		if g.Met != nil {
			verdict = "**missed**"
			if *g.Met {
				verdict = "met"
			}
		}
		measured := g.Measured
		if g.Note != "" {
			measured += " — " + g.Note
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", g.Name, g.Target, measured, verdict)
	}
	if t := res.Throughput; t != nil {
		fmt.Fprintln(w, "\n**Ingest** (raw → ClickHouse, normalization and detectors running)")
		fmt.Fprintln(w, "\n| | |\n|---|---|")
		fmt.Fprintf(w, "| sustained | %s events/s over %.0f s (10 s windows: %s – %s, median %s) |\n", thousands(t.EventsPerSecond),
			t.WindowSeconds, thousands(t.Rate10sMin), thousands(t.Rate10sMax), thousands(t.Rate10sMedian))
		fmt.Fprintf(w, "| from serve's start / until detectors caught up | %s / %s events/s (%s events) |\n",
			thousands(t.FromStartPerSecond), thousands(t.WithDetectPerSecond), thousands(float64(t.Events)))
		fmt.Fprintf(w, "| CPU s per million events | serve %.1f, ClickHouse %.1f, Kafka %.1f |\n",
			t.ServeCPUPerMillion, t.ClickHouseCPUPerMillion, t.KafkaCPUPerMillion)
		fmt.Fprintf(w, "| busy cores | serve %.2f, ClickHouse %.2f, Kafka %.2f, harness %.2f, other processes %.2f (of %d) |\n",
			t.ServeCores, t.ClickHouseCores, t.KafkaCores, t.HarnessCores, t.OtherCores, m.CPUs)
		fmt.Fprintf(w, "| serve peak RSS | %.0f MiB |\n", t.PeakRSSMiB)
	}
	if c := res.Comparison; c != nil {
		fmt.Fprintf(w, "\n**Against the baseline loop** (the same %s-record backlog, broker and ClickHouse; rounds interleaved; "+
			"CPU µs per event: the process is serve or the baseline loop)\n", thousands(float64(c.Records)))
		fmt.Fprintln(w, "\n| round | events/s | process | ClickHouse | Kafka | total | peak RSS |\n|---|---|---|---|---|---|---|")
		for _, rd := range c.Rounds {
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.2f | %.2f | %.0f MiB |\n", rd.Kind, thousands(rd.EventsPerSecond),
				rd.ProcessUs, rd.ClickHouseUs, rd.KafkaUs, rd.TotalUs, rd.PeakRSSMiB)
		}
		side := func(name string, s Side, eps string) {
			fmt.Fprintf(w, "| %s | %s | %.2f | %.2f | %.2f | %.2f | |\n", name, eps, s.ProcessUs, s.ClickHouseUs, s.KafkaUs, s.TotalUs)
		}
		side("keyfleet, median", c.Keyfleet, thousands(c.Keyfleet.EventsPerSecond))
		side("baseline, median", c.Baseline, thousands(c.Baseline.EventsPerSecond))
		side("**keyfleet / baseline**", c.Ratio, fmt.Sprintf("%.2f", c.Ratio.EventsPerSecond))
		fmt.Fprintf(w, "\nPer pair, keyfleet/baseline events/s: %s.\n", ratios(c.PairRatios))
	}
	if len(res.Rates) > 0 {
		fmt.Fprintln(w, "\n**Fixed offered rates**")
		fmt.Fprintln(w, "\n| offered | achieved | sustainable | freshness p50 / p99 | detection p50 / p99 (alerts) | serve cores |")
		fmt.Fprintln(w, "|---|---|---|---|---|---|")
		for _, ph := range res.Rates {
			fmt.Fprintf(w, "| %s/s | %s/s | %v (drained %.1f s after) | %s / %s | %s / %s (%d) | %.2f |\n",
				thousands(ph.OfferedRate), thousands(ph.AchievedRate), ph.Sustainable, ph.DrainSeconds,
				ms(ph.Freshness.P50), ms(ph.Freshness.P99), ms(ph.Detection.P50), ms(ph.Detection.P99), ph.Detection.Count, ph.ServeCores)
		}
	}
	if rv := res.Revocation; rv != nil {
		fmt.Fprintf(w, "\n**Revocation** (%d subjects revoked over the API, %d lock commands, %d acknowledged)\n", rv.Revocations, rv.Locks, rv.Acked)
		fmt.Fprintln(w, "\n| | p50 | p95 | p99 | max |\n|---|---|---|---|---|")
		row := func(name string, d Dist) {
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, ms(d.P50), ms(d.P95), ms(d.P99), ms(d.Max))
		}
		row("total: request → last lock applied", rv.Total)
		row("gateways' injected delay (per lock)", rv.Gateway)
		row("keyfleet's share, per revocation (worst lock)", rv.KeyfleetPerRevocation)
		row("keyfleet's share, per lock", rv.KeyfleetPerLock)
		row("— request → command published", rv.Queueing)
		row("— published → gateway received", rv.Delivery)
		row("— lock applied → ack recorded", rv.AckTracking)
	}
	if len(res.Queries) > 0 {
		fmt.Fprintln(w, "\n**Analyst queries** (p50 / p95)")
		fmt.Fprint(w, "\n| query |")
		for _, qp := range res.Queries {
			fmt.Fprintf(w, " %s |", qp.Name)
		}
		fmt.Fprint(w, "\n|---|")
		for range res.Queries {
			fmt.Fprint(w, "---|")
		}
		fmt.Fprintln(w)
		for i, q := range res.Queries[0].Queries {
			fmt.Fprintf(w, "| `%s` |", q.Name)
			for _, qp := range res.Queries {
				if i >= len(qp.Queries) || qp.Queries[i].Latency.Count == 0 {
					fmt.Fprint(w, " – |")
					continue
				}
				fmt.Fprintf(w, " %s / %s |", ms(qp.Queries[i].Latency.P50), ms(qp.Queries[i].Latency.P95))
			}
			fmt.Fprintln(w)
		}
	}
	if p := res.Profile; p != nil {
		fmt.Fprintf(w, "\n**CPU profile of serve** (%d s during ingest; share of samples)\n\n", p.Seconds)
		fmt.Fprintln(w, "| part (cumulative) | % | what (flat) | % |\n|---|---|---|---|")
		for i := 0; i < max(len(p.Stages), len(p.Groups)); i++ {
			a, b := "", ""
			if i < len(p.Stages) {
				a = fmt.Sprintf("%s | %.1f", p.Stages[i].Name, p.Stages[i].CumPct)
			} else {
				a = " | "
			}
			if i < len(p.Groups) {
				b = fmt.Sprintf("%s | %.1f", p.Groups[i].Name, p.Groups[i].FlatPct)
			} else {
				b = " | "
			}
			fmt.Fprintf(w, "| %s | %s |\n", a, b)
		}
	}
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o644)
}

package bench

import (
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Results are what a run measured (the JSON results file).
type Results struct {
	StartedAt time.Time `json:"started_at"`
	Seconds   float64   `json:"duration_s"`
	Mode      string    `json:"mode"`
	Command   string    `json:"command,omitempty"`
	Commit    string    `json:"commit,omitempty"`
	Machine   Machine   `json:"machine"`
	Setup     Setup     `json:"setup"`

	Throughput *Throughput `json:"throughput,omitempty"`
	Comparison *Comparison `json:"comparison,omitempty"`
	// FractionRate is the offered rate of the phase at MaxRateFraction of
	// the measured throughput (0: none).
	FractionRate float64       `json:"fraction_rate,omitempty"`
	Rates        []RatePhase   `json:"rates"`
	Revocation   *Revocation   `json:"revocation,omitempty"`
	Queries      []QueryPhase  `json:"queries"`
	Serve        ServeTotals   `json:"serve"`
	Profile      *ProfileStats `json:"profile,omitempty"`
	Goals        []Goal        `json:"goals"`
	Notes        []string      `json:"notes"`
	Error        string        `json:"error,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPUModel          string `json:"cpu_model"`
	CPUs              int    `json:"cpus"`
	MemoryBytes       int64  `json:"memory_bytes"`
	Kernel            string `json:"kernel"`
	GoVersion         string `json:"go_version"`
	ClickHouseVersion string `json:"clickhouse_version"`
	KafkaVersion      string `json:"kafka_version,omitempty"`
	LoadAvgStart      string `json:"loadavg_start"`
	LoadAvgEnd        string `json:"loadavg_end"`
}

// Setup is how the run was laid out.
type Setup struct {
	Sites          int    `json:"sites"`
	Locks          int    `json:"locks"`
	Subjects       int    `json:"subjects"`
	VendorMix      string `json:"vendor_mix"`
	Partitions     int    `json:"partitions"`
	Workers        int    `json:"generator_workers"`
	GatewayProfile string `json:"gateway_profile"`
	TopicPrefix    string `json:"topic_prefix"`
	Database       string `json:"database"`
	WorkDir        string `json:"work_dir"`
	ServeCommand   string `json:"serve_command"`
	// The throughput feed: simulated records generated before serve
	// started, then produced to lock.events.raw.
	FeedRecords         int64   `json:"feed_records"`
	FeedGenerateSeconds float64 `json:"feed_generate_s"`
	FeedProduceSeconds  float64 `json:"feed_produce_s"`
	// The server processes whose CPU is counted.
	ClickHousePIDs []int `json:"clickhouse_pids"`
	KafkaPIDs      []int `json:"kafka_pids"`
}

// Comparison is keyfleet against the baseline loop on the same backlog,
// broker and ClickHouse, interleaved (baseline, keyfleet, baseline, …).
type Comparison struct {
	Records int64 `json:"records"`
	// Rounds in the order they ran.
	Rounds []CompareRound `json:"rounds"`
	// Medians of each side, and keyfleet/baseline ratios of those medians
	// (events/s, and CPU µs per event: serve or the baseline loop,
	// ClickHouse, Kafka, their total).
	Keyfleet Side `json:"keyfleet"`
	Baseline Side `json:"baseline"`
	Ratio    Side `json:"ratio"`
	// PairRatios are keyfleet/baseline of each round's pair (events/s).
	PairRatios []float64 `json:"pair_ratios"`
}

// CompareRound is one measured drain of the backlog.
type CompareRound struct {
	Kind string `json:"kind"` // keyfleet or baseline
	Side
	WindowSeconds float64 `json:"window_s"`
	Events        int64   `json:"events"`
	PeakRSSMiB    float64 `json:"peak_rss_mib"`
}

// Side is a rate and its CPU cost per event (µs), split by process.
type Side struct {
	EventsPerSecond float64 `json:"events_per_s"`
	ProcessUs       float64 `json:"process_us_per_event"` // serve, or the baseline loop (the harness process)
	ClickHouseUs    float64 `json:"clickhouse_us_per_event"`
	KafkaUs         float64 `json:"kafka_us_per_event"`
	TotalUs         float64 `json:"total_us_per_event"`
}

// Throughput is the ingest phase: a backlog of raw records drained by
// serve with normalization and detectors running.
type Throughput struct {
	RawRecords   int64 `json:"raw_records"`
	Events       int64 `json:"events"` // rows in access_events
	DeadLettered int64 `json:"dead_lettered"`
	// EventsPerSecond is the sustained rate: 90% of the rows over the time
	// between the 5th and 95th percentile of their inserted_ms, over
	// WindowSeconds.
	EventsPerSecond float64 `json:"events_per_s"`
	WindowSeconds   float64 `json:"window_s"`
	// Per 10-second window of the sustained part: slowest, median, fastest.
	Rate10sMin    float64 `json:"rate_10s_min"`
	Rate10sMedian float64 `json:"rate_10s_median"`
	Rate10sMax    float64 `json:"rate_10s_max"`
	// FromStartPerSecond counts from the serve process start (start-up,
	// group joins) to the last row.
	FromStartPerSecond float64 `json:"from_start_events_per_s"`
	StartupSeconds     float64 `json:"startup_s"`
	// DetectCatchUpSeconds is how long after the last row the detectors
	// (and the alerts sink) had consumed everything; WithDetectPerSecond is
	// the rate counted to that point.
	DetectCatchUpSeconds float64 `json:"detect_catch_up_s"`
	WithDetectPerSecond  float64 `json:"with_detect_events_per_s"`
	Alerts               int64   `json:"alerts"`
	// CPU seconds per million events in the sustained window, and the
	// average busy cores of each party.
	ServeCPUPerMillion      float64 `json:"serve_cpu_s_per_million"`
	ClickHouseCPUPerMillion float64 `json:"clickhouse_cpu_s_per_million"`
	KafkaCPUPerMillion      float64 `json:"kafka_cpu_s_per_million"`
	ServeCores              float64 `json:"serve_cores"`
	ClickHouseCores         float64 `json:"clickhouse_cores"`
	KafkaCores              float64 `json:"kafka_cores"`
	HarnessCores            float64 `json:"harness_cores"`
	MachineBusyCores        float64 `json:"machine_busy_cores"`
	// OtherCores is the machine's busy time not accounted to serve,
	// ClickHouse, Kafka or the harness: other work on a shared machine.
	OtherCores float64 `json:"other_cores"`
	// Whole-phase CPU per million (serve start to detectors caught up).
	ServeCPUPerMillionTotal float64 `json:"serve_cpu_s_per_million_total"`
	PeakRSSMiB              float64 `json:"peak_rss_mib"`
	// Timeline has one sample a second from serve's start: seconds since,
	// rows inserted (keyfleet_clickhouse_rows_inserted_total), serve's CPU
	// seconds, serve's RSS in MiB.
	Timeline [][4]float64 `json:"timeline"`
}

// RatePhase is a fixed offered rate: freshness and detection latency.
type RatePhase struct {
	Name           string          `json:"name"`
	OfferedRate    float64         `json:"offered_per_s"`
	AchievedRate   float64         `json:"achieved_per_s"`
	Seconds        float64         `json:"seconds"`
	Sent           int64           `json:"sent"`
	Stored         int64           `json:"stored"`
	DrainSeconds   float64         `json:"drain_s"`
	Sustainable    bool            `json:"sustainable"`
	Freshness      Dist            `json:"freshness"`
	Detection      Dist            `json:"detection"`
	DetectionByDet map[string]Dist `json:"detection_by_detector,omitempty"`
	// DetectionMetric is the keyfleet_detect_latency_seconds histogram's
	// increase over the phase (bucket-interpolated quantiles).
	DetectionMetric Dist `json:"detection_metric"`
	// Average busy cores over the phase (production and drain): serve,
	// ClickHouse, Kafka, the harness (the paced producer), other processes.
	ServeCores      float64 `json:"serve_cores"`
	ClickHouseCores float64 `json:"clickhouse_cores"`
	KafkaCores      float64 `json:"kafka_cores"`
	HarnessCores    float64 `json:"harness_cores"`
	OtherCores      float64 `json:"other_cores"`
	MachineCores    float64 `json:"machine_busy_cores"`
	PeakRSSMiB      float64 `json:"peak_rss_mib"`
	GenerateSeconds float64 `json:"generate_s"`
}

// Revocation is the revocation phase.
type Revocation struct {
	Credentials int `json:"credentials"`
	Revocations int `json:"revocations"`
	Locks       int `json:"lock_commands"`
	Acked       int `json:"locks_acked"`
	// Total: request → last lock applied, per revocation (the control
	// plane's definition); TotalRecorded: request → keyfleet recorded the
	// last ack.
	Total         Dist `json:"total"`
	TotalRecorded Dist `json:"total_recorded"`
	// Gateway: the simulated gateways' injected delay (applied − received)
	// per lock, overall and by vendor.
	Gateway         Dist            `json:"gateway_injected"`
	GatewayByVendor map[string]Dist `json:"gateway_injected_by_vendor"`
	// Keyfleet's share per lock: queueing and fan-out (received − requested)
	// plus ack tracking (recorded − applied); per revocation the worst lock.
	KeyfleetPerLock       Dist `json:"keyfleet_share_per_lock"`
	KeyfleetPerRevocation Dist `json:"keyfleet_share_per_revocation"`
	// The parts: request → command published, published → gateway
	// received, lock applied → keyfleet recorded the ack.
	Queueing    Dist    `json:"queueing"`
	Delivery    Dist    `json:"delivery"`
	AckTracking Dist    `json:"ack_tracking"`
	IssueSecs   float64 `json:"issue_s"`
	Note        string  `json:"note,omitempty"`
}

// QueryPhase is one round of the analyst queries.
type QueryPhase struct {
	Name    string        `json:"name"` // idle, or the offered ingest rate
	Queries []QueryResult `json:"queries"`
}

// QueryResult is one analyst query's latency.
type QueryResult struct {
	Name    string `json:"name"`
	Example string `json:"example"`
	Status  string `json:"status"` // ok, unavailable (route not in this build), errors
	Errors  int    `json:"errors"`
	Latency Dist   `json:"latency"`
}

// ServeTotals are serve's whole-run figures.
type ServeTotals struct {
	CPUSeconds   float64 `json:"cpu_s"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
}

// Goal is one of the performance goals and how the run did.
type Goal struct {
	Name     string `json:"name"`
	Target   string `json:"target"`
	Measured string `json:"measured"`
	// Met is nil when the run did not measure it.
	Met  *bool  `json:"met"`
	Note string `json:"note,omitempty"`
}

func newResults(o Options) *Results {
	return &Results{StartedAt: time.Now().UTC(), Mode: o.Mode, Machine: machine(), Rates: []RatePhase{},
		Queries: []QueryPhase{}, Notes: []string{}, Commit: commit()}
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemoryBytes = kb << 10
				}
			}
		}
	}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	m.KafkaVersion = kafkaVersion()
	return m
}

// kafkaVersion reads the version of a local Kafka broker from its jars'
// names on its command line ("" without one).
func kafkaVersion() string {
	v := ""
	for _, pid := range findProcs("kafka.Kafka") {
		if data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
			if m := kafkaVersionRE.FindSubmatch(data); m != nil {
				v = string(m[1])
			}
		}
	}
	return v
}

var kafkaVersionRE = regexp.MustCompile(`kafka[-_]([0-9]+\.[0-9]+(?:\.[0-9]+)?)`)

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// commit names the source tree the run was started from (when it is a git
// checkout), with "-dirty" for uncommitted changes.
func commit() string {
	out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "-dirty"
	}
	return c
}

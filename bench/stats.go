package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Dist summarizes a latency distribution in milliseconds.
type Dist struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// distOf returns the distribution of values (milliseconds); it sorts vs.
func distOf(vs []float64) Dist {
	if len(vs) == 0 {
		return Dist{}
	}
	slices.Sort(vs)
	q := func(p float64) float64 { return vs[min(len(vs)-1, int(p*float64(len(vs))))] }
	return Dist{Count: len(vs), P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: vs[len(vs)-1]}
}

// metrics is one scrape of a Prometheus text exposition: series (name plus
// labels, as written) to value.
type metrics map[string]float64

// parseMetrics reads the text exposition format (the subset Go's client
// writes: one sample per line, no timestamps needed).
func parseMetrics(data []byte) metrics {
	m := metrics{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m
}

// sum adds the samples of one metric whose labels contain every given
// `name="value"` pair.
func (m metrics) sum(name string, labels ...string) float64 {
	var total float64
	for series, v := range m {
		if !strings.HasPrefix(series, name) {
			continue
		}
		rest := series[len(name):]
		if rest != "" && rest[0] != '{' {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				ok = false
				break
			}
		}
		if ok {
			total += v
		}
	}
	return total
}

// histogram is a cumulative Prometheus histogram: upper bounds (le) to
// counts, summed over the series that match.
type histogram struct {
	bounds []float64
	counts []float64
}

func (m metrics) histogram(name string, labels ...string) histogram {
	byLe := map[float64]float64{}
	for series, v := range m {
		if !strings.HasPrefix(series, name+"_bucket{") {
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(series, l) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		i := strings.Index(series, `le="`)
		if i < 0 {
			continue
		}
		le := series[i+4:]
		le = le[:strings.IndexByte(le, '"')]
		b := math.Inf(1)
		if le != "+Inf" {
			var err error
			if b, err = strconv.ParseFloat(le, 64); err != nil {
				continue
			}
		}
		byLe[b] += v
	}
	var h histogram
	for b := range byLe {
		h.bounds = append(h.bounds, b)
	}
	slices.Sort(h.bounds)
	for _, b := range h.bounds {
		h.counts = append(h.counts, byLe[b])
	}
	return h
}

// minus returns the observations made between two scrapes (h after prev).
func (h histogram) minus(prev histogram) histogram {
	out := histogram{bounds: h.bounds, counts: slices.Clone(h.counts)}
	for i, b := range h.bounds {
		if j := slices.Index(prev.bounds, b); j >= 0 {
			out.counts[i] -= prev.counts[j]
		}
	}
	return out
}

func (h histogram) total() float64 {
	if len(h.counts) == 0 {
		return 0
	}
	return h.counts[len(h.counts)-1]
}

// quantile estimates the q-quantile in milliseconds by linear
// interpolation inside the bucket (as PromQL's histogram_quantile does);
// observations above the last finite bound report that bound.
func (h histogram) quantile(q float64) float64 {
	n := h.total()
	if n == 0 {
		return 0
	}
	rank := q * n
	lower, below := 0.0, 0.0
	for i, b := range h.bounds {
		c := h.counts[i]
		if c >= rank {
			if math.IsInf(b, 1) {
				return lower * 1000
			}
			if c == below {
				return b * 1000
			}
			return (lower + (b-lower)*(rank-below)/(c-below)) * 1000
		}
		if !math.IsInf(b, 1) {
			lower = b
		}
		below = c
	}
	return lower * 1000
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux ABI Go supports).
const clockTicks = 100

// procCPU returns the user+system CPU seconds a process has used.
func procCPU(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields count
	// from after the last ')'.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	ut, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return (ut + st) / clockTicks, nil
}

// procMem returns a process's resident set size now and its peak (VmRSS,
// VmHWM) in bytes.
func procMem(pid int) (rss, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			hwm = kb << 10
		}
	}
	return rss, hwm, nil
}

// machineCPU returns the CPU seconds the whole machine spent busy and in
// total (all cores) since boot, from /proc/stat.
func machineCPU() (busy, total float64, err error) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, err
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("/proc/stat: unexpected format")
	}
	var idle float64
	for i, s := range f[1:] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/stat: %w", err)
		}
		if i >= 8 { // guest times are already in user/nice
			break
		}
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return (total - idle) / clockTicks, total / clockTicks, nil
}

// findProcs returns the pids whose command line contains every needle
// (for the CPU of the ClickHouse server and the Kafka broker).
func findProcs(needles ...string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		ok := true
		for _, n := range needles {
			if !bytes.Contains(cmd, []byte(n)) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, pid)
		}
	}
	return out
}

// procsCPU sums procCPU over pids (missing processes count 0).
func procsCPU(pids []int) float64 {
	var total float64
	for _, p := range pids {
		if c, err := procCPU(p); err == nil {
			total += c
		}
	}
	return total
}

// listenerPIDs returns the processes that hold a listening TCP socket on
// port (any address, IPv4 or IPv6): the server the harness talks to, and
// no other process of the same program (another ClickHouse on the machine
// is not this run's). It reads /proc/net/tcp{,6} and the processes' fds.
func listenerPIDs(port int) []int {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if p, err := strconv.ParseInt(hexPort, 16, 32); ok && err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[l] {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}

// portOf returns the port of a host:port address (0 if there is none).
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

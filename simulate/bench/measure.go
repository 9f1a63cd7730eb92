package bench

import (
	"bufio"
	"bytes"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"
)

// span measures one stretch of work: wall time from the injected clock, CPU time of the
// process (or of the calling thread), and heap allocations.
type span struct {
	clk     clock.PassiveClock
	thread  bool
	start   time.Time
	cpu     time.Duration
	mallocs uint64
}

// measured is what a span saw.
type measured struct {
	Wall    time.Duration
	CPU     time.Duration // 0 where the platform does not say
	Mallocs uint64
}

func startSpan(clk clock.PassiveClock, thread bool) *span {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := &span{clk: clk, thread: thread, mallocs: ms.Mallocs}
	s.cpu = cpuTime(thread)
	s.start = clk.Now()
	return s
}

func (s *span) stop() measured {
	wall := s.clk.Since(s.start)
	cpu := cpuTime(s.thread) - s.cpu
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return measured{Wall: wall, CPU: cpu, Mallocs: ms.Mallocs - s.mallocs}
}

// perSecond is n per second of d, or 0 when d is not positive.
func perSecond(n int, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// percentile returns the p-th percentile (0..100) of ds by the nearest-rank method.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// Machine describes where figures were taken, as BENCHMARKS.md records them.
type Machine struct {
	CPUs      int    `json:"cpus"`
	Model     string `json:"model"`
	GoVersion string `json:"goVersion"`
	// Load is /proc/loadavg's one-minute average when the run started and ended: the
	// machine may be shared, and wall-clock figures mean little without it.
	LoadStart string `json:"loadStart"`
	LoadEnd   string `json:"loadEnd"`
}

func machine() Machine {
	return Machine{CPUs: runtime.NumCPU(), Model: cpuModel(), GoVersion: runtime.Version(), LoadStart: loadAverage()}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) > 0 {
		return f[0]
	}
	return "unknown"
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes, or 0 when the
// platform does not report it.
func peakRSS() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte("VmHWM:")); ok {
			f := strings.Fields(string(v))
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	return 0
}

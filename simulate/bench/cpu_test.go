package bench_test

import (
	"syscall"
	"testing"
	"time"
)

// cpuClock reports the process's CPU time per operation next to ns/op: on a machine
// shared with other work, wall time measures the neighbours as much as the code.
type cpuClock time.Duration

func startCPU(b *testing.B) cpuClock {
	b.Helper()
	return cpuClock(processCPU(b))
}

func (c cpuClock) report(b *testing.B) {
	b.ReportMetric(float64(processCPU(b)-time.Duration(c))/float64(b.N), "cpu-ns/op")
}

func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

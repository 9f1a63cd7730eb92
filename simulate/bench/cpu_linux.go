package bench

import (
	"syscall"
	"time"
)

// cpuTime returns the CPU time (user and system) of the process, or of the calling
// thread: figures taken on a shared machine are judged by the CPU they used, since wall
// time also measures the neighbours.
func cpuTime(thread bool) time.Duration {
	who := syscall.RUSAGE_SELF
	if thread {
		who = syscall.RUSAGE_THREAD
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

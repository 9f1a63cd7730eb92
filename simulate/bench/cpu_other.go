//go:build !linux

package bench

import "time"

// cpuTime is not measured on this platform; figures fall back to wall time.
func cpuTime(bool) time.Duration { return 0 }

package v1alpha1

import "time"

// The defaults the CRD schema applies. The accessors below apply them again, so that an
// object stored before a default existed (or built in Go without the API server) reads the
// same.
const (
	DefaultSoakWindow     = 168 * time.Hour
	DefaultMinConnections = 1000
	DefaultMaxGap         = time.Hour
	DefaultDrops          = 10
	DefaultDropPeriod     = time.Minute
)

// WindowOrDefault is spec.soak.window, or its default.
func (s SoakSpec) WindowOrDefault() time.Duration {
	if s.Window == nil || s.Window.Duration <= 0 {
		return DefaultSoakWindow
	}
	return s.Window.Duration
}

// MinConnectionsOrDefault is spec.soak.minConnections, or its default.
func (s SoakSpec) MinConnectionsOrDefault() int64 {
	if s.MinConnections == nil {
		return DefaultMinConnections
	}
	return *s.MinConnections
}

// MaxGapOrDefault is spec.soak.maxGap, or its default.
func (s SoakSpec) MaxGapOrDefault() time.Duration {
	if s.MaxGap == nil || s.MaxGap.Duration <= 0 {
		return DefaultMaxGap
	}
	return s.MaxGap.Duration
}

// DropsOrDefault is spec.rollback.drops, or its default.
func (r RollbackSpec) DropsOrDefault() int32 {
	if r.Drops <= 0 {
		return DefaultDrops
	}
	return r.Drops
}

// PeriodOrDefault is spec.rollback.period, or its default.
func (r RollbackSpec) PeriodOrDefault() time.Duration {
	if r.Period == nil || r.Period.Duration <= 0 {
		return DefaultDropPeriod
	}
	return r.Period.Duration
}

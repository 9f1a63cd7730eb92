package soak

import (
	"errors"
	"fmt"
	"time"
)

// GateConfig is what a namespace must show before it may be enforced.
type GateConfig struct {
	// Window is how far back the gate looks and how long tracking must have lasted; 0 means
	// the store's window, and it cannot exceed it (older data is not kept).
	Window time.Duration
	// MinConnections observed to the namespace in the window.
	MinConnections int64
	// MaxGap: the total ingestion gap time in the window must stay under it (so every single
	// gap does too).
	MaxGap time.Duration
	// LostEventsThreshold: at most this many flows reported lost in the window.
	LostEventsThreshold uint64
	// TopN uncovered edges are listed in the result.
	TopN int
}

// DefaultGateConfig: the store's window, 1000 connections, under an hour of gaps, no lost
// flows, five example edges.
func DefaultGateConfig() GateConfig {
	return GateConfig{MinConnections: 1000, MaxGap: time.Hour, TopN: 5}
}

// Validate reports every bad field at once.
func (c GateConfig) Validate() error {
	var errs []error
	if c.Window < 0 || c.Window%time.Hour != 0 {
		errs = append(errs, fmt.Errorf("window: %s must be 0 (the store's) or a whole number of hours", c.Window))
	}
	if c.MinConnections < 0 {
		errs = append(errs, fmt.Errorf("minConnections: %d must not be negative", c.MinConnections))
	}
	if c.MaxGap <= 0 {
		errs = append(errs, fmt.Errorf("maxGap: %s must be positive", c.MaxGap))
	}
	if c.TopN < 1 {
		errs = append(errs, fmt.Errorf("topN: %d must be at least 1", c.TopN))
	}
	return errors.Join(errs...)
}

// Reason codes of a failing gate. They are stable: CI scripts and the UI match on them.
const (
	CodeUntracked   = "untracked"
	CodeTracking    = "tracking"
	CodeUncovered   = "uncovered"
	CodeConnections = "connections"
	CodeGap         = "gap"
	CodeGapTotal    = "gap-total"
	CodeLostEvents  = "lost-events"
	CodeOverflow    = "overflow"
)

// Reason is one reason a gate fails.
type Reason struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Result is a gate's answer. Stats.Uncovered holds the TopN most observed uncovered edges;
// Stats.UncoveredEdges counts them all.
type Result struct {
	Namespace string   `json:"namespace"`
	Pass      bool     `json:"pass"`
	Reasons   []Reason `json:"reasons"`
	// WindowSeconds, MinConnections and MaxGapSeconds echo the configuration judged against.
	WindowSeconds  float64 `json:"windowSeconds"`
	MinConnections int64   `json:"minConnections"`
	MaxGapSeconds  float64 `json:"maxGapSeconds"`
	Stats          Summary `json:"stats"`
}

// Gate answers whether namespace may be enforced at now. It passes only if, over the window,
// the namespace was tracked throughout, no uncovered edge was seen, at least MinConnections
// connections were observed, gaps total less than MaxGap, lost flows stay within the
// threshold, and nothing overflowed. An untracked namespace fails: missing data is never
// clean. The error reports a bad configuration only.
func (s *Store) Gate(namespace string, now time.Time, cfg GateConfig) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, fmt.Errorf("gate config: %w", err)
	}
	window := cfg.Window
	if window == 0 {
		window = s.opts.Window
	}
	if window > s.opts.Window {
		return Result{}, fmt.Errorf("gate config: window %s exceeds the %s the store keeps", fmtDuration(window), fmtDuration(s.opts.Window))
	}
	r := Result{Namespace: namespace, Reasons: []Reason{}, WindowSeconds: window.Seconds(),
		MinConnections: cfg.MinConnections, MaxGapSeconds: cfg.MaxGap.Seconds()}
	s.mu.Lock()
	d := s.ns[namespace]
	if d == nil {
		s.mu.Unlock()
		r.Stats = Summary{Namespace: namespace, Now: now.UTC(), Uncovered: []EdgeSummary{}, Gaps: []GapSpan{}}
		r.Reasons = append(r.Reasons, Reason{CodeUntracked, fmt.Sprintf(
			"namespace %s is not tracked: nothing was recorded for it, and missing data is never clean", namespace)})
		return r, nil
	}
	st := s.summarize(d, now, window)
	s.mu.Unlock()

	fail := func(code, format string, args ...any) {
		r.Reasons = append(r.Reasons, Reason{Code: code, Message: fmt.Sprintf(format, args...)})
	}
	if tracked := now.Sub(st.TrackedSince); tracked < window {
		fail(CodeTracking, "tracked for %s of %s (since %s)", fmtDuration(max(0, tracked)), fmtDuration(window), fmtTime(st.TrackedSince))
	}
	if n := st.UncoveredEdges; n > 0 {
		e := st.Uncovered[0]
		fail(CodeUncovered, "%d uncovered %s, e.g. %s last seen %s ago", n, plural(n, "edge", "edges"),
			e.Key(), fmtDuration(max(0, now.Sub(e.LastSeen))))
	}
	if st.Connections < cfg.MinConnections {
		fail(CodeConnections, "only %d connections observed, need %d", st.Connections, cfg.MinConnections)
	}
	var total time.Duration
	for _, g := range st.Gaps {
		total += g.Duration()
	}
	if total >= cfg.MaxGap {
		longest := st.Gaps[0]
		for _, g := range st.Gaps[1:] {
			if g.Duration() > longest.Duration() {
				longest = g
			}
		}
		if longest.Duration() >= cfg.MaxGap {
			when := "on " + fmtTime(longest.Start)
			if longest.Ongoing {
				when = "since " + fmtTime(longest.Start) + ", ongoing"
			}
			fail(CodeGap, "ingestion gap of %s %s (%s), limit %s", fmtDuration(longest.Duration()), when,
				longest.Causes[0].describe(), fmtDuration(cfg.MaxGap))
		} else {
			fail(CodeGapTotal, "ingestion gaps total %s in %d %s, limit %s", fmtDuration(total), len(st.Gaps),
				plural(len(st.Gaps), "gap", "gaps"), fmtDuration(cfg.MaxGap))
		}
	}
	if st.LostEvents > cfg.LostEventsThreshold {
		fail(CodeLostEvents, "%d flows lost (Hubble lost_events) in the window, threshold %d", st.LostEvents, cfg.LostEventsThreshold)
	}
	if st.Overflow > 0 {
		fail(CodeOverflow, "%d observations of new edges not stored: edge cap reached (caps now %d per namespace, %d in total)",
			st.Overflow, s.opts.MaxEdgesPerNamespace, s.opts.MaxEdges)
	}
	if len(st.Uncovered) > cfg.TopN {
		st.Uncovered = st.Uncovered[:cfg.TopN]
	}
	r.Stats = st
	r.Pass = len(r.Reasons) == 0
	return r, nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// fmtDuration renders durations the way people read them in reasons: "35s", "47m", "2h5m",
// "2d3h", "7d". It truncates, so a reason never overstates how long something lasted.
func fmtDuration(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int64(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int64(d/time.Minute))
	case d < day:
		h, m := int64(d/time.Hour), int64(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int64(d/day), int64(d%day/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}

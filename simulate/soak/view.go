package soak

import (
	"cmp"
	"slices"
	"time"
)

// EdgeSummary is one edge as the report shows it. Count is over the window the view was
// taken for.
type EdgeSummary struct {
	Source      Peer      `json:"source"`
	Destination Peer      `json:"destination"`
	Port        int32     `json:"port"`
	Protocol    string    `json:"protocol"`
	Count       int64     `json:"count"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
	Uncovered   bool      `json:"uncovered"`
	Reason      string    `json:"reason"`
}

// Key is the edge's key.
func (e EdgeSummary) Key() EdgeKey {
	return EdgeKey{Source: e.Source, Destination: e.Destination, Protocol: e.Protocol, Port: e.Port}
}

// Summary is a namespace over one window: what the gate judges, for the report.
type Summary struct {
	Namespace   string    `json:"namespace"`
	Now         time.Time `json:"now"`
	WindowStart time.Time `json:"windowStart"`
	// TrackedSince is when tracking started; TrackedSeconds how long it has lasted at Now.
	TrackedSince   time.Time `json:"trackedSince"`
	TrackedSeconds float64   `json:"trackedSeconds"`
	// Connections observed to (or, with egress, from) the namespace in the window.
	Connections int64 `json:"connections"`
	// Edges seen in the window, and how many of them are uncovered.
	Edges          int `json:"edges"`
	UncoveredEdges int `json:"uncoveredEdges"`
	// Uncovered lists the uncovered edges seen in the window, most observed first.
	Uncovered []EdgeSummary `json:"uncovered"`
	// Gaps are the merged outages in the window (ongoing ones run to Now).
	Gaps              []GapSpan `json:"gaps"`
	GapSeconds        float64   `json:"gapSeconds"`
	LongestGapSeconds float64   `json:"longestGapSeconds"`
	// CoveredSeconds is the healthy ingestion time: the tracked part of the window minus gaps.
	CoveredSeconds float64 `json:"coveredSeconds"`
	// LostEvents: flows the producer reported lost in the window. Overflow: observations of
	// new edges not stored because of the caps.
	LostEvents uint64 `json:"lostEvents"`
	Overflow   uint64 `json:"overflow"`
}

// Summary returns namespace's summary over the store's window ending at now, and false when
// the namespace is not tracked.
func (s *Store) Summary(namespace string, now time.Time) (Summary, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.ns[namespace]
	if d == nil {
		return Summary{Namespace: namespace, Now: now}, false
	}
	return s.summarize(d, now, s.opts.Window), true
}

// Summaries returns the summary of every tracked namespace, sorted by namespace.
func (s *Store) Summaries(now time.Time) []Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Summary, 0, len(s.ns))
	for _, d := range s.ns {
		out = append(out, s.summarize(d, now, s.opts.Window))
	}
	slices.SortFunc(out, func(a, b Summary) int { return cmp.Compare(a.Namespace, b.Namespace) })
	return out
}

// Edges returns every edge of namespace seen in the store's window ending at now, sorted by
// key: the report's access graph.
func (s *Store) Edges(namespace string, now time.Time) []EdgeSummary {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.ns[namespace]
	if d == nil {
		return nil
	}
	from := s.windowStartHour(now.UnixNano(), s.opts.Window)
	var out []EdgeSummary
	for i := range d.edges {
		if e := &d.edges[i]; hourOf(e.last) >= from {
			out = append(out, s.edgeSummary(e, from))
		}
	}
	slices.SortFunc(out, func(a, b EdgeSummary) int { return CompareEdgeKeys(a.Key(), b.Key()) })
	return out
}

func (s *Store) edgeSummary(e *edge, from int64) EdgeSummary {
	k := s.edgeKey(e.ekey)
	return EdgeSummary{Source: k.Source, Destination: k.Destination, Port: k.Port, Protocol: k.Protocol,
		Count: int64(sumEncodedFrom(e.hours, from)), FirstSeen: unixTime(e.first), LastSeen: unixTime(e.last),
		Uncovered: e.uncovered, Reason: s.reasons[e.reason]}
}

func (s *Store) summarize(d *nsData, now time.Time, window time.Duration) Summary {
	nowNS := now.UnixNano()
	from := s.windowStartHour(nowNS, window)
	start := from * nsPerHour
	sum := Summary{
		Namespace: d.name, Now: now.UTC(), WindowStart: unixTime(start), TrackedSince: unixTime(d.since),
		TrackedSeconds: max(0, time.Duration(nowNS-d.since).Seconds()),
		Uncovered:      []EdgeSummary{},
		LostEvents:     sumFrom(d.lost, from), Overflow: sumFrom(d.overflow, from),
	}
	for i := range d.edges {
		e := &d.edges[i]
		if hourOf(e.last) < from {
			continue
		}
		n := sumEncodedFrom(e.hours, from)
		sum.Edges++
		sum.Connections += int64(n)
		if e.uncovered {
			sum.Uncovered = append(sum.Uncovered, s.edgeSummary(e, from))
		}
	}
	sum.UncoveredEdges = len(sum.Uncovered)
	slices.SortFunc(sum.Uncovered, compareByCount)
	sum.Gaps = spans(d.gaps, d.open, start, nowNS)
	if sum.Gaps == nil {
		sum.Gaps = []GapSpan{}
	}
	var gap time.Duration
	for _, g := range sum.Gaps {
		gap += g.Duration()
		sum.LongestGapSeconds = max(sum.LongestGapSeconds, g.Seconds)
	}
	sum.GapSeconds = gap.Seconds()
	// Gaps before tracking started lie outside the covered stretch already.
	var inTracked time.Duration
	for _, g := range spans(d.gaps, d.open, max(start, d.since), nowNS) {
		inTracked += g.Duration()
	}
	sum.CoveredSeconds = max(0, (time.Duration(nowNS-max(start, d.since)) - inTracked).Seconds())
	return sum
}

// compareByCount orders edges most observed first, then most recently seen, then by key.
func compareByCount(a, b EdgeSummary) int {
	if c := cmp.Compare(b.Count, a.Count); c != 0 {
		return c
	}
	if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
		return c
	}
	return CompareEdgeKeys(a.Key(), b.Key())
}

// HourCount is a count in the hour starting at Hour.
type HourCount struct {
	Hour  time.Time `json:"hour"`
	Count uint64    `json:"count"`
}

// EdgeDump is a stored edge in full.
type EdgeDump struct {
	EdgeKey
	Uncovered bool        `json:"uncovered"`
	Reason    string      `json:"reason"`
	FirstSeen time.Time   `json:"firstSeen"`
	LastSeen  time.Time   `json:"lastSeen"`
	Count     uint64      `json:"count"`
	Hours     []HourCount `json:"hours"`
}

// NamespaceDump is everything stored for a namespace.
type NamespaceDump struct {
	Namespace    string      `json:"namespace"`
	TrackedSince time.Time   `json:"trackedSince"`
	Edges        []EdgeDump  `json:"edges"`
	Gaps         []Gap       `json:"gaps"`
	Lost         []HourCount `json:"lost"`
	Overflow     []HourCount `json:"overflow"`
}

// Dump is the store's whole content in a deterministic order, independent of how it was
// built: two stores with equal dumps answer every question equally. Open gaps have Ongoing
// set and a zero End.
type Dump struct {
	Heartbeat    time.Time       `json:"heartbeat,omitzero"`
	SnapshotLost time.Time       `json:"snapshotLost,omitzero"`
	Namespaces   []NamespaceDump `json:"namespaces"`
}

// Dump returns the store's content.
func (s *Store) Dump() Dump {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Dump{Heartbeat: unixTime(s.heartbeat), SnapshotLost: unixTime(s.snapshotLost), Namespaces: []NamespaceDump{}}
	var buf []hourCount
	for _, d := range s.ns {
		nd := NamespaceDump{Namespace: d.name, TrackedSince: unixTime(d.since), Edges: []EdgeDump{}, Gaps: []Gap{},
			Lost: hourCounts(d.lost), Overflow: hourCounts(d.overflow)}
		for i := range d.edges {
			e := &d.edges[i]
			buf, _ = decodeHours(e.hours, buf[:0])
			ed := EdgeDump{EdgeKey: s.edgeKey(e.ekey), Uncovered: e.uncovered, Reason: s.reasons[e.reason],
				FirstSeen: unixTime(e.first), LastSeen: unixTime(e.last), Hours: hourCounts(buf)}
			for _, h := range buf {
				ed.Count += h.count
			}
			nd.Edges = append(nd.Edges, ed)
		}
		slices.SortFunc(nd.Edges, func(a, b EdgeDump) int { return CompareEdgeKeys(a.EdgeKey, b.EdgeKey) })
		for _, g := range d.gaps {
			nd.Gaps = append(nd.Gaps, Gap{Start: unixTime(g.start), End: unixTime(g.end), Reason: g.reason,
				Source: g.source, Node: g.node, Message: g.message})
		}
		for k, o := range d.open {
			nd.Gaps = append(nd.Gaps, Gap{Start: unixTime(o.start), Ongoing: true, Reason: k.reason,
				Source: k.source, Node: k.node, Message: o.message})
		}
		slices.SortFunc(nd.Gaps, compareGaps)
		out.Namespaces = append(out.Namespaces, nd)
	}
	slices.SortFunc(out.Namespaces, func(a, b NamespaceDump) int { return cmp.Compare(a.Namespace, b.Namespace) })
	return out
}

func hourCounts(hs []hourCount) []HourCount {
	out := make([]HourCount, len(hs))
	for i, h := range hs {
		out[i] = HourCount{Hour: unixTime(h.hour * nsPerHour), Count: h.count}
	}
	return out
}

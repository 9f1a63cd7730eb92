package soak

import (
	"cmp"
	"slices"
	"strings"
	"time"
)

// GapReason says why ingestion was not healthy. The values are stable: they appear in the
// report JSON and in snapshots.
type GapReason string

const (
	// GapDisconnected: a source lost its upstream, from its Disconnected until its Connected,
	// minus what a CaughtUp replay covered.
	GapDisconnected GapReason = "source-disconnected"
	// GapStalled: a source was connected but nothing arrived, from Stalled until Connected.
	GapStalled GapReason = "source-stalled"
	// GapNodeUnavailable: some nodes' observers did not answer (Degraded), until a Connected
	// naming those nodes or a Connected for the whole source.
	GapNodeUnavailable GapReason = "node-unavailable"
	// GapShadowgateDown: shadowgate itself was not running, from the heartbeat of the last
	// snapshot it wrote to the moment it loaded it again.
	GapShadowgateDown GapReason = "shadowgate-down"
	// GapSnapshotLost: the soak snapshot could not be loaded, so what it held is unknown.
	GapSnapshotLost GapReason = "snapshot-lost"
	// GapCoalesced: older gaps merged into one because a namespace had more than
	// Options.MaxGapsPerNamespace; merging only ever widens a gap.
	GapCoalesced GapReason = "coalesced"
)

// Gap is one interval during which a namespace's ingestion was not healthy, for one reason.
type Gap struct {
	Start time.Time `json:"start"`
	// End is zero for an ongoing gap in Dump; views clip ongoing gaps at their now.
	End     time.Time `json:"end,omitzero"`
	Ongoing bool      `json:"ongoing,omitempty"`
	Reason  GapReason `json:"reason"`
	// Source names what reported it ("hubble", "mapper", "file", "shadowgate").
	Source string `json:"source,omitempty"`
	// Node is the unavailable node of a node-unavailable gap, when the server named it.
	Node    string `json:"node,omitempty"`
	Message string `json:"message,omitempty"`
}

func (g Gap) describe() string {
	s := string(g.Reason)
	if g.Source != "" {
		s += " from " + g.Source
	}
	if g.Node != "" {
		s += " (" + g.Node + ")"
	}
	if g.Message != "" {
		s += ": " + g.Message
	}
	return s
}

// GapSpan is a maximal interval covered by one or more overlapping gaps: overlapping gaps are
// one outage, counted once.
type GapSpan struct {
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Seconds float64   `json:"seconds"`
	// Ongoing: the span reaches now because a gap is still open.
	Ongoing bool `json:"ongoing,omitempty"`
	// Causes are the gaps the span is made of, by start.
	Causes []Gap `json:"causes"`
}

// Duration is the span's length.
func (s GapSpan) Duration() time.Duration { return s.End.Sub(s.Start) }

// gapRec is a closed gap; times are Unix nanoseconds.
type gapRec struct {
	start, end int64
	reason     GapReason
	source     string
	node       string
	message    string
}

// openKey identifies a gap that is still open: one per source, reason and node.
type openKey struct {
	source string
	reason GapReason
	node   string
}

type openGap struct {
	start   int64
	message string
}

func sameGroup(a, b *gapRec) bool {
	return a.source == b.source && a.reason == b.reason && a.node == b.node
}

func compareGroup(a, b *gapRec) int {
	if c := strings.Compare(a.source, b.source); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.reason), string(b.reason)); c != 0 {
		return c
	}
	return strings.Compare(a.node, b.node)
}

// normalizeGaps puts closed gaps in their canonical form: within one (source, reason, node),
// overlapping or touching gaps become one keeping the message of the earliest (ties: the
// smallest message); empty gaps go;
// the result is sorted by start. The form depends only on the set of intervals, not on the
// order they arrived in, which is what makes Merge equal to one store fed everything.
func normalizeGaps(gs []gapRec) []gapRec {
	slices.SortFunc(gs, func(a, b gapRec) int {
		if c := compareGroup(&a, &b); c != 0 {
			return c
		}
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		// Ties on start go by message, never by end: a merged gap's end grows, its start
		// and message do not, so the kept message is a function of the set of gaps.
		if c := strings.Compare(a.message, b.message); c != 0 {
			return c
		}
		return cmp.Compare(b.end, a.end)
	})
	out := gs[:0]
	for _, g := range gs {
		if g.end <= g.start {
			continue
		}
		if k := len(out); k > 0 && sameGroup(&out[k-1], &g) && g.start <= out[k-1].end {
			out[k-1].end = max(out[k-1].end, g.end)
			continue
		}
		out = append(out, g)
	}
	slices.SortFunc(out, compareGapRecs)
	return out
}

func compareGapRecs(a, b gapRec) int {
	if c := cmp.Compare(a.start, b.start); c != 0 {
		return c
	}
	if c := cmp.Compare(a.end, b.end); c != 0 {
		return c
	}
	if c := compareGroup(&a, &b); c != 0 {
		return c
	}
	return strings.Compare(a.message, b.message)
}

// capGaps keeps at most limit closed gaps by merging the two oldest into one gap spanning
// both: the healthy time between them is given up, never invented.
func capGaps(gs []gapRec, limit int) []gapRec {
	for len(gs) > limit && len(gs) >= 2 {
		a, b := gs[0], gs[1]
		merged := gapRec{start: a.start, end: max(a.end, b.end), reason: GapCoalesced,
			message: "older gaps merged: too many gaps in the window"}
		gs = append([]gapRec{merged}, gs[2:]...)
		slices.SortFunc(gs, compareGapRecs)
	}
	return gs
}

// subtractGaps removes [from, to) from the closed gaps of source whose reason is in reasons.
func subtractGaps(gs []gapRec, source string, reasons []GapReason, from, to int64) []gapRec {
	out := make([]gapRec, 0, len(gs)+1)
	for _, g := range gs {
		if g.source != source || !slices.Contains(reasons, g.reason) || g.end <= from || g.start >= to {
			out = append(out, g)
			continue
		}
		if g.start < from {
			left := g
			left.end = from
			out = append(out, left)
		}
		if g.end > to {
			right := g
			right.start = to
			out = append(out, right)
		}
	}
	slices.SortFunc(out, compareGapRecs)
	return out
}

// spans returns the maximal intervals covered by gaps (closed ones and open ones running to
// now), clipped to [from, now].
func spans(closed []gapRec, open map[openKey]openGap, from, now int64) []GapSpan {
	type iv struct {
		start, end int64
		gap        Gap
	}
	var ivs []iv
	for _, g := range closed {
		s, e := max(g.start, from), min(g.end, now)
		if e <= s {
			continue
		}
		ivs = append(ivs, iv{s, e, Gap{Start: unixTime(g.start), End: unixTime(g.end), Reason: g.reason,
			Source: g.source, Node: g.node, Message: g.message}})
	}
	for k, o := range open {
		s := max(o.start, from)
		if now <= s {
			continue
		}
		ivs = append(ivs, iv{s, now, Gap{Start: unixTime(o.start), Ongoing: true, Reason: k.reason,
			Source: k.source, Node: k.node, Message: o.message}})
	}
	slices.SortFunc(ivs, func(a, b iv) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		if c := cmp.Compare(a.end, b.end); c != 0 {
			return c
		}
		return compareGaps(a.gap, b.gap)
	})
	var out []GapSpan
	var end int64
	for _, v := range ivs {
		if k := len(out); k > 0 && v.start <= end {
			end = max(end, v.end)
			out[k-1].Causes = append(out[k-1].Causes, v.gap)
			out[k-1].Ongoing = out[k-1].Ongoing || v.gap.Ongoing
			continue
		}
		if k := len(out); k > 0 {
			out[k-1].End = unixTime(end)
		}
		end = v.end
		out = append(out, GapSpan{Start: unixTime(v.start), Ongoing: v.gap.Ongoing, Causes: []Gap{v.gap}})
	}
	if k := len(out); k > 0 {
		out[k-1].End = unixTime(end)
	}
	for i := range out {
		out[i].Seconds = out[i].Duration().Seconds()
	}
	return out
}

// compareGaps orders gaps by start, then by what they are, for deterministic views.
func compareGaps(a, b Gap) int {
	if c := a.Start.Compare(b.Start); c != 0 {
		return c
	}
	if c := a.End.Compare(b.End); c != 0 {
		return c
	}
	if c := strings.Compare(string(a.Reason), string(b.Reason)); c != 0 {
		return c
	}
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return strings.Compare(a.Message, b.Message)
}

// unixTime converts Unix nanoseconds to a UTC time; 0 stays the zero time so unset fields
// round-trip.
func unixTime(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

// unixNano is the inverse of unixTime.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

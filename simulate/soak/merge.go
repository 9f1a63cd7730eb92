package soak

import (
	"errors"
	"fmt"
)

// Merge folds other into s, as if s had also been fed everything other was: edges are united
// (hourly counts summed, earliest first seen, latest last seen, verdicts folded as Observe
// folds them), gaps united per namespace, lost and overflow counts summed, tracking starting
// at the earlier start. Edges of other that do not fit under s's caps count as overflow.
// Both stores must keep the same window; other is not modified.
func (s *Store) Merge(other *Store) error {
	if s == other {
		return errors.New("soak merge: a store cannot be merged into itself")
	}
	if s.opts.Window != other.opts.Window {
		return fmt.Errorf("soak merge: windows differ (%s and %s)", s.opts.Window, other.opts.Window)
	}
	// Lock in id order so concurrent a.Merge(b) and b.Merge(a) cannot deadlock.
	first, second := s, other
	if second.id < first.id {
		first, second = second, first
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	second.mu.Lock()
	defer second.mu.Unlock()

	var a, b, m []hourCount
	for name, od := range other.ns {
		d := s.ns[name]
		if d == nil {
			d = newNSData(name, od.since)
			s.ns[name] = d
		}
		d.since = min(d.since, od.since)
		for i := range od.edges {
			oe := &od.edges[i]
			key := other.edgeKey(oe.ekey)
			if k, ok := s.lookupKey(key); ok {
				if idx, ok := d.index.get(d.edges, k); ok {
					e := &d.edges[idx]
					a, _ = decodeHours(e.hours, a[:0])
					b, _ = decodeHours(oe.hours, b[:0])
					m = mergeHours(m[:0], a, b)
					e.hours = appendHours(e.hours[:0], m)
					e.first, e.last = min(e.first, oe.first), max(e.last, oe.last)
					s.judge(e, oe.uncovered, other.reasons[oe.reason])
					continue
				}
			}
			var k ekey
			ok := len(d.edges) < s.opts.MaxEdgesPerNamespace && s.edgeCount < s.opts.MaxEdges
			if ok {
				k, ok = s.internKey(key)
			}
			if !ok {
				b, _ = decodeHours(oe.hours, b[:0])
				d.overflow = mergeHours(nil, d.overflow, b)
				continue
			}
			s.addEdge(d, edge{ekey: k, uncovered: oe.uncovered, reason: s.internReason(other.reasons[oe.reason]),
				first: oe.first, last: oe.last, hours: append([]byte(nil), oe.hours...)})
		}
		d.lost = mergeHours(nil, d.lost, od.lost)
		d.overflow = mergeHours(nil, d.overflow, od.overflow)
		s.addGaps(d, od.gaps...)
		for k, og := range od.open {
			if cur, ok := d.open[k]; !ok || og.start < cur.start || (og.start == cur.start && og.message < cur.message) {
				d.open[k] = og
			}
		}
	}
	s.heartbeat = max(s.heartbeat, other.heartbeat)
	if other.snapshotLost > s.snapshotLost {
		s.snapshotLost, s.snapshotLostDetail = other.snapshotLost, other.snapshotLostDetail
	}
	s.sweep()
	return nil
}

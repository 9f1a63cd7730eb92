package soak

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/flows"
)

// Options size a Store.
type Options struct {
	// Window is how much history the store keeps and the default gate window.
	Window time.Duration
	// MaxEdgesPerNamespace and MaxEdges cap the distinct edges stored; an observation of a new
	// edge beyond a cap is counted as overflow for its namespace, which fails the gate.
	MaxEdgesPerNamespace int
	MaxEdges             int
	// MaxGapsPerNamespace caps the closed gaps kept per namespace; beyond it the oldest are
	// merged (a flapping source cannot grow memory without bound).
	MaxGapsPerNamespace int
}

// DefaultOptions: a 7-day window, and caps that hold the largest profile (1M distinct
// edges, ≤ 200 bytes each) with room to spare.
func DefaultOptions() Options {
	return Options{
		Window:               7 * 24 * time.Hour,
		MaxEdgesPerNamespace: 200_000,
		MaxEdges:             2_000_000,
		MaxGapsPerNamespace:  1024,
	}
}

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs []error
	if o.Window < time.Hour || o.Window%time.Hour != 0 {
		errs = append(errs, fmt.Errorf("window: %s must be a whole number of hours, at least 1h", o.Window))
	}
	if o.MaxEdgesPerNamespace <= 0 || o.MaxEdgesPerNamespace > maxIndexed {
		errs = append(errs, fmt.Errorf("maxEdgesPerNamespace: %d must be in 1..%d", o.MaxEdgesPerNamespace, maxIndexed))
	}
	if o.MaxEdges <= 0 || o.MaxEdges > 1<<31 {
		errs = append(errs, fmt.Errorf("maxEdges: %d must be in 1..%d", o.MaxEdges, 1<<31))
	}
	if o.MaxGapsPerNamespace < 2 {
		errs = append(errs, fmt.Errorf("maxGapsPerNamespace: %d must be at least 2", o.MaxGapsPerNamespace))
	}
	return errors.Join(errs...)
}

// ekey is an edge's identity with interned peers and protocol.
type ekey struct {
	src, dst uint32
	port     int32
	proto    uint16
}

// edge is one stored edge: 64 bytes plus its hour buckets.
type edge struct {
	ekey
	uncovered bool
	reason    uint32 // index into Store.reasons
	// first and last are the earliest and latest observations (Unix ns); hourOf(last) is
	// always the hour of the last bucket.
	first, last int64
	hours       []byte
}

type nsData struct {
	name  string
	since int64 // tracking start, Unix ns
	index edgeIndex
	edges []edge
	// lost and overflow are per-hour counts: flows the producer lost, and observations of
	// new edges that did not fit under the caps.
	lost, overflow []hourCount
	gaps           []gapRec // canonical, see normalizeGaps
	open           map[openKey]openGap
}

func newNSData(name string, since int64) *nsData {
	return &nsData{name: name, since: since, index: newEdgeIndex(), open: map[openKey]openGap{}}
}

var storeIDs atomic.Uint64

// Store is the soak-window store. It is safe for concurrent use.
type Store struct {
	id    uint64 // orders locks in Merge
	clock clock.PassiveClock
	opts  Options

	mu sync.Mutex
	ns map[string]*nsData
	// Interned peers, protocols and reasons. Peer and reason ids are recycled by sweep;
	// reason 0 is "".
	peers     []Peer
	peerIDs   map[Peer]uint32
	freePeers []uint32
	protos    []string
	protoIDs  map[string]uint16
	reasons   []string
	reasonIDs map[string]uint32
	freeRsns  []uint32
	edgeCount int
	// heartbeat is when the last snapshot was taken (Unix ns).
	heartbeat int64
	// snapshotLost is set on a store started because the snapshot could not be loaded:
	// namespaces tracked afterwards cannot claim history from before it.
	snapshotLost       int64
	snapshotLostDetail string
}

// New returns an empty store.
func New(opts Options, clk clock.PassiveClock) (*Store, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("soak options: %w", err)
	}
	if clk == nil {
		return nil, errors.New("soak: nil clock")
	}
	return &Store{
		id:        storeIDs.Add(1),
		clock:     clk,
		opts:      opts,
		ns:        map[string]*nsData{},
		peerIDs:   map[Peer]uint32{},
		protoIDs:  map[string]uint16{"": 0},
		protos:    []string{""},
		reasons:   []string{""},
		reasonIDs: map[string]uint32{"": 0},
	}, nil
}

// Options returns the options the store was built with.
func (s *Store) Options() Options { return s.opts }

func (s *Store) now(t time.Time) int64 {
	if t.IsZero() {
		t = s.clock.Now()
	}
	return t.UnixNano()
}

// Track starts governing namespace from since (the zero time means now). Tracking an already
// tracked namespace keeps its start. On a store started after a lost snapshot, tracking cannot
// start before the loss, and the lost stretch is recorded as a snapshot-lost gap.
func (s *Store) Track(namespace string, since time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ns[namespace]; ok {
		return
	}
	start := s.now(since)
	d := newNSData(namespace, start)
	if s.snapshotLost != 0 && start < s.snapshotLost {
		d.since = s.snapshotLost
		d.gaps = []gapRec{{start: start, end: s.snapshotLost, reason: GapSnapshotLost, source: "shadowgate",
			message: s.snapshotLostDetail}}
	}
	s.ns[namespace] = d
}

// Untrack stops governing namespace and forgets its data: tracking it again starts over.
func (s *Store) Untrack(namespace string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.ns[namespace]; ok {
		s.edgeCount -= len(d.edges)
		delete(s.ns, namespace)
	}
}

// Usage is the store's size, for metrics.
type Usage struct {
	Namespaces int
	// Edges stored, across namespaces (an edge judged by two namespaces counts twice).
	Edges int
	// Peers and Reasons interned.
	Peers, Reasons int
	// LastSaved is the heartbeat of the last snapshot written or loaded (zero if none).
	LastSaved time.Time
}

// Usage returns the store's size.
func (s *Store) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Usage{Namespaces: len(s.ns), Edges: s.edgeCount, Peers: len(s.peerIDs), Reasons: len(s.reasonIDs) - 1,
		LastSaved: unixTime(s.heartbeat)}
}

// Tracked returns the tracked namespaces, sorted.
func (s *Store) Tracked() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ns))
	for n := range s.ns {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Observe records one connection on key at (the zero time means now), judged by the given
// namespaces. Verdicts for untracked namespaces are ignored; a namespace listed twice counts
// once. Observing an edge a namespace already holds does not allocate, apart from growing
// the edge's buckets by a few bytes every few hours.
//
// An edge's verdict is sticky towards uncovered: once any observation found it uncovered it
// stays so until Reevaluate re-judges it, so two pods of one workload with different labels
// cannot hide each other. Reevaluate must therefore run after the judge that feeds Observe
// has switched to the new policies.
func (s *Store) Observe(key EdgeKey, at time.Time, verdicts ...Verdict) {
	s.observe(key, at, 1, verdicts)
}

// observe records n observations at once (tests build large stores with it).
func (s *Store) observe(key EdgeKey, at time.Time, n uint64, verdicts []Verdict) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now(at)
	var (
		k               ekey
		interned, known bool
	)
	for i := range verdicts {
		v := &verdicts[i]
		d := s.ns[v.Namespace]
		if d == nil || repeated(verdicts[:i], v.Namespace) {
			continue
		}
		if !interned {
			k, known = s.lookupKey(key)
			interned = true
		}
		if known {
			if idx, ok := d.index.get(d.edges, k); ok {
				e := &d.edges[idx]
				observeEdge(e, t, n)
				s.judge(e, v.Uncovered, v.Reason)
				continue
			}
		}
		if len(d.edges) >= s.opts.MaxEdgesPerNamespace || s.edgeCount >= s.opts.MaxEdges {
			d.overflow = addHour(d.overflow, hourOf(t), n)
			continue
		}
		if !known {
			var ok bool
			if k, ok = s.internKey(key); !ok {
				d.overflow = addHour(d.overflow, hourOf(t), n)
				continue
			}
			known = true
		}
		s.addEdge(d, edge{ekey: k, uncovered: v.Uncovered, reason: s.internReason(v.Reason), first: t, last: t,
			hours: appendHours(make([]byte, 0, 8), []hourCount{{hour: hourOf(t), count: n}})})
	}
}

func repeated(vs []Verdict, ns string) bool {
	for i := range vs {
		if vs[i].Namespace == ns {
			return true
		}
	}
	return false
}

func (s *Store) addEdge(d *nsData, e edge) {
	d.edges = append(d.edges, e)
	d.index.add(d.edges, uint32(len(d.edges)-1))
	s.edgeCount++
}

// observeEdge adds n observations at t to an existing edge.
func observeEdge(e *edge, t int64, n uint64) {
	h, last := hourOf(t), hourOf(e.last)
	switch {
	case h == last:
		e.hours = addLast(e.hours, n)
	case h > last:
		e.hours = grow(e.hours, uvarintLen(uint64(h-last))+uvarintLen(n))
		e.hours = binary.AppendUvarint(e.hours, uint64(h-last))
		e.hours = binary.AppendUvarint(e.hours, n)
	default:
		// An observation older than the edge's latest hour (a replay after a reconnect):
		// rare, so it may allocate.
		var buf [32]hourCount
		hs, _ := decodeHours(e.hours, buf[:0])
		hs = addHour(hs, h, n)
		e.hours = appendHours(e.hours[:0], hs)
	}
	e.first = min(e.first, t)
	e.last = max(e.last, t)
}

// judge folds one verdict into an edge: uncovered wins over covered, and between verdicts of
// the same kind the smallest reason is kept, so the result does not depend on arrival order.
func (s *Store) judge(e *edge, uncovered bool, reason string) {
	if uncovered != e.uncovered {
		if uncovered {
			e.uncovered, e.reason = true, s.internReason(reason)
		}
		return
	}
	if cur := s.reasons[e.reason]; reason != cur && reason < cur {
		e.reason = s.internReason(reason)
	}
}

// lookupKey finds the interned form of key without interning anything.
func (s *Store) lookupKey(key EdgeKey) (ekey, bool) {
	src, ok1 := s.peerIDs[key.Source]
	dst, ok2 := s.peerIDs[key.Destination]
	proto, ok3 := s.protoIDs[key.Protocol]
	return ekey{src: src, dst: dst, port: key.Port, proto: proto}, ok1 && ok2 && ok3
}

// internKey interns key's parts; it fails only when 65535 distinct protocols were seen.
func (s *Store) internKey(key EdgeKey) (ekey, bool) {
	proto, ok := s.protoIDs[key.Protocol]
	if !ok {
		if len(s.protos) > 0xffff {
			return ekey{}, false
		}
		proto = uint16(len(s.protos))
		s.protos = append(s.protos, key.Protocol)
		s.protoIDs[key.Protocol] = proto
	}
	return ekey{src: s.internPeer(key.Source), dst: s.internPeer(key.Destination), port: key.Port, proto: proto}, true
}

func (s *Store) internPeer(p Peer) uint32 {
	if id, ok := s.peerIDs[p]; ok {
		return id
	}
	var id uint32
	if n := len(s.freePeers); n > 0 {
		id, s.freePeers = s.freePeers[n-1], s.freePeers[:n-1]
		s.peers[id] = p
	} else {
		id = uint32(len(s.peers))
		s.peers = append(s.peers, p)
	}
	s.peerIDs[p] = id
	return id
}

func (s *Store) internReason(r string) uint32 {
	if id, ok := s.reasonIDs[r]; ok {
		return id
	}
	var id uint32
	if n := len(s.freeRsns); n > 0 {
		id, s.freeRsns = s.freeRsns[n-1], s.freeRsns[:n-1]
		s.reasons[id] = r
	} else {
		id = uint32(len(s.reasons))
		s.reasons = append(s.reasons, r)
	}
	s.reasonIDs[r] = id
	return id
}

// sweep releases peers and reasons no edge refers to any more, so interned tables shrink
// with the edges (a long-running daemon sees many short-lived CIDR buckets and pods).
func (s *Store) sweep() {
	usedPeers := make([]bool, len(s.peers))
	usedRsns := make([]bool, len(s.reasons))
	usedRsns[0] = true
	for _, d := range s.ns {
		for i := range d.edges {
			e := &d.edges[i]
			usedPeers[e.src], usedPeers[e.dst], usedRsns[e.reason] = true, true, true
		}
	}
	free := map[uint32]bool{}
	for _, id := range s.freePeers {
		free[id] = true
	}
	for id, used := range usedPeers {
		if !used && !free[uint32(id)] {
			delete(s.peerIDs, s.peers[id])
			s.peers[id] = Peer{}
			s.freePeers = append(s.freePeers, uint32(id))
		}
	}
	clear(free)
	for _, id := range s.freeRsns {
		free[id] = true
	}
	for id, used := range usedRsns {
		if !used && !free[uint32(id)] {
			delete(s.reasonIDs, s.reasons[id])
			s.reasons[id] = ""
			s.freeRsns = append(s.freeRsns, uint32(id))
		}
	}
}

// scoped calls f for each tracked namespace in scope.
func (s *Store) scoped(sc Scope, f func(*nsData)) {
	if sc.all {
		for _, d := range s.ns {
			f(d)
		}
		return
	}
	for i, n := range sc.namespaces {
		if d := s.ns[n]; d != nil && !slices.Contains(sc.namespaces[:i], n) {
			f(d)
		}
	}
}

// Lost records n flows the producer lost at (Hubble lost_events) for the namespaces in scope.
func (s *Store) Lost(scope Scope, at time.Time, n uint64) {
	if n == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := hourOf(s.now(at))
	s.scoped(scope, func(d *nsData) { d.lost = addHour(d.lost, h, n) })
}

// Health applies a source's health event to the namespaces in scope:
//   - Disconnected opens a source-disconnected gap, Stalled a source-stalled gap, Degraded a
//     node-unavailable gap per named node (one unnamed gap when it names none). A gap that is
//     already open keeps its start.
//   - Connected closes, at its time, the gaps of that source: of the named nodes only when it
//     names nodes, else all of them (a fresh connection re-reports unavailable nodes).
//   - CaughtUp closes the source's disconnected and stalled gaps and removes [Since, Time]
//     from them: that stretch was replayed, so no data is missing for it.
//
// The zero Time means now. Sources should send Connected when a stall ends or unavailable
// nodes come back, or the gap stays open (and fails the gate) until they do.
func (s *Store) Health(scope Scope, h flows.Health) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.now(h.Time)
	switch h.State {
	case flows.Disconnected:
		s.scoped(scope, func(d *nsData) { openGapAt(d, openKey{h.Source, GapDisconnected, ""}, t, h.Message) })
	case flows.Stalled:
		s.scoped(scope, func(d *nsData) { openGapAt(d, openKey{h.Source, GapStalled, ""}, t, h.Message) })
	case flows.Degraded:
		nodes := h.Nodes
		if len(nodes) == 0 {
			nodes = []string{""}
		}
		s.scoped(scope, func(d *nsData) {
			for _, n := range nodes {
				openGapAt(d, openKey{h.Source, GapNodeUnavailable, n}, t, h.Message)
			}
		})
	case flows.Connected:
		s.scoped(scope, func(d *nsData) {
			for k := range d.open {
				if k.source == h.Source && (len(h.Nodes) == 0 || (k.reason == GapNodeUnavailable && slices.Contains(h.Nodes, k.node))) {
					s.closeGap(d, k, t)
				}
			}
		})
	case flows.CaughtUp:
		transport := []GapReason{GapDisconnected, GapStalled}
		since := s.now(h.Since)
		if h.Since.IsZero() || since > t {
			return fmt.Errorf("caught-up from %s at %s: since %s must be set and not after the event", h.Source, h.Time, h.Since)
		}
		s.scoped(scope, func(d *nsData) {
			for _, r := range transport {
				if _, ok := d.open[openKey{h.Source, r, ""}]; ok {
					s.closeGap(d, openKey{h.Source, r, ""}, t)
				}
			}
			d.gaps = subtractGaps(d.gaps, h.Source, transport, since, t)
		})
	default:
		return fmt.Errorf("health from %s at %s: unknown state %q", h.Source, h.Time, h.State)
	}
	return nil
}

func openGapAt(d *nsData, k openKey, t int64, msg string) {
	if _, ok := d.open[k]; !ok {
		d.open[k] = openGap{start: t, message: msg}
	}
}

func (s *Store) closeGap(d *nsData, k openKey, t int64) {
	o := d.open[k]
	delete(d.open, k)
	s.addGaps(d, gapRec{start: o.start, end: t, reason: k.reason, source: k.source, node: k.node, message: o.message})
}

func (s *Store) addGaps(d *nsData, gs ...gapRec) {
	d.gaps = capGaps(normalizeGaps(append(d.gaps, gs...)), s.opts.MaxGapsPerNamespace)
}

// RecordGap records a closed gap for the namespaces in scope: for outages the caller learns
// about after the fact (the cluster snapshot could not be loaded, a source replay that could
// not reach back far enough, ...).
func (s *Store) RecordGap(scope Scope, g Gap) error {
	if g.Reason == "" || g.Start.IsZero() || !g.End.After(g.Start) {
		return fmt.Errorf("gap %q from %s to %s: a reason and an end after the start are required", g.Reason, g.Start, g.End)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := gapRec{start: g.Start.UnixNano(), end: g.End.UnixNano(), reason: g.Reason, source: g.Source, node: g.Node, message: g.Message}
	s.scoped(scope, func(d *nsData) { s.addGaps(d, r) })
	return nil
}

// Expire forgets what lies entirely before the window ending at now: hour buckets, edges
// left without buckets, lost and overflow counts, closed gaps. Open gaps and tracking starts
// stay. Run it periodically; views and the gate ignore expired data even before it runs.
func (s *Store) Expire(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := s.windowStartHour(now.UnixNano(), s.opts.Window)
	cutoff := from * nsPerHour
	var buf []hourCount
	for _, d := range s.ns {
		for i := 0; i < len(d.edges); {
			e := &d.edges[i]
			if firstHour(e.hours) >= from {
				i++
				continue
			}
			buf, _ = decodeHours(e.hours, buf[:0])
			buf = dropBefore(buf, from)
			if len(buf) > 0 {
				e.hours = appendHours(e.hours[:0], buf)
				i++
				continue
			}
			s.removeEdge(d, i)
		}
		d.index.shrink(d.edges)
		d.lost = dropBefore(d.lost, from)
		d.overflow = dropBefore(d.overflow, from)
		d.gaps = slices.DeleteFunc(d.gaps, func(g gapRec) bool { return g.end <= cutoff })
	}
	s.sweep()
}

// removeEdge deletes edge i by moving the last edge into its place.
func (s *Store) removeEdge(d *nsData, i int) {
	last := len(d.edges) - 1
	d.index.remove(d.edges, d.edges[i].ekey)
	if i != last {
		d.edges[i] = d.edges[last]
		d.index.move(d.edges, d.edges[i].ekey, uint32(i))
	}
	d.edges[last] = edge{}
	d.edges = d.edges[:last]
	s.edgeCount--
}

// windowStartHour is the first hour of the window of length w ending at now.
func (s *Store) windowStartHour(now int64, w time.Duration) int64 {
	return hourOf(now - int64(w))
}

// Judge re-judges one stored edge for one namespace. was is the edge's verdict so far:
// an edge stands for every flow between its peers, and a judge that can only stand one
// connection in for them may need to know which kind of flow made it uncovered.
type Judge func(namespace string, key EdgeKey, was bool) (uncovered bool, reason string)

// Reevaluate replaces the verdict of every stored edge with judge's, for when intents,
// workloads or policies changed: adding the missing intent makes a namespace clean at once,
// removing one shows the edges it leaves uncovered. The store is locked meanwhile, so judge
// must not call back into it.
func (s *Store) Reevaluate(judge Judge) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reevaluateLocked(judge, nil)
}

// ReevaluateWhere re-judges only the stored edges whose source is affected as a source
// or whose destination is affected as a destination, and returns how many it re-judged.
// It is for changes whose effect is known to be confined: a NetworkPolicy only ever
// applies to pods of its own namespace, in the directions it isolates, so when only the
// egress policies of some namespaces and the ingress policies of others changed, other
// edges keep their verdicts. The predicates are asked once per distinct peer, not once
// per edge.
func (s *Store) ReevaluateWhere(judge Judge, source, destination func(Peer) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var m mark
	m.src, m.dst = make([]bool, len(s.peers)), make([]bool, len(s.peers))
	for i, p := range s.peers {
		m.src[i], m.dst[i] = source(p), destination(p)
	}
	return s.reevaluateLocked(judge, &m)
}

// mark says, by interned peer, which edges to re-judge.
type mark struct{ src, dst []bool }

// reevaluateLocked re-judges the edges m marks, or all of them when m is nil.
func (s *Store) reevaluateLocked(judge Judge, m *mark) int {
	n := 0
	for _, d := range s.ns {
		for i := range d.edges {
			e := &d.edges[i]
			if m != nil && !m.src[e.ekey.src] && !m.dst[e.ekey.dst] {
				continue
			}
			n++
			unc, reason := judge(d.name, s.edgeKey(e.ekey), e.uncovered)
			e.uncovered = unc
			if s.reasons[e.reason] != reason {
				e.reason = s.internReason(reason)
			}
		}
	}
	s.sweep()
	return n
}

func (s *Store) edgeKey(k ekey) EdgeKey {
	return EdgeKey{Source: s.peers[k.src], Destination: s.peers[k.dst], Protocol: s.protos[k.proto], Port: k.port}
}

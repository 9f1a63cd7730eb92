package simulate

import (
	"errors"
	"net/netip"
	"sort"
	"time"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// Report is the JSON contract of `shadowgate simulate -o json`. Field names are stable;
// new fields may be added.
type Report struct {
	Enforced   []string          `json:"enforced"`
	Namespaces []NamespaceReport `json:"namespaces"`
	Uncovered  []Edge            `json:"uncovered"`
	// Edges lists every observed edge with its status, for the access graph.
	Edges    []Edge     `json:"edges"`
	Flows    FlowCounts `json:"flows"`
	Warnings []string   `json:"warnings,omitempty"`
}

// NamespaceReport summarizes one enforced namespace (or one where something would drop).
type NamespaceReport struct {
	Namespace string `json:"namespace"`
	Enforced  bool   `json:"enforced"`
	// Connections judged into the namespace (and out of it when egress is enforced).
	Connections    int64 `json:"connections"`
	WouldDrop      int64 `json:"wouldDrop"`
	UncoveredEdges int   `json:"uncoveredEdges"`
}

// Peer is one side of an edge: a workload, a node, or an external CIDR. The soak store
// keeps edges by the same peers.
type Peer = soak.Peer

// Peer kinds that are not workloads.
const (
	KindExternal  = soak.KindExternal
	KindNode      = soak.KindNode
	KindCrossNode = soak.KindCrossNode
)

// Edge is an aggregated connection between two peers on one port.
type Edge struct {
	Source      Peer      `json:"source"`
	Destination Peer      `json:"destination"`
	Port        int32     `json:"port"`
	Protocol    string    `json:"protocol"`
	Count       int64     `json:"count"`
	FirstSeen   time.Time `json:"firstSeen"`
	LastSeen    time.Time `json:"lastSeen"`
	Reason      string    `json:"reason"`
	// Status (in Edges): covered, would-drop, denied (the current policies already deny
	// it) or open (nothing isolates either side, even under enforcement).
	Status EdgeStatus `json:"status,omitempty"`
	// AllowedBy names the rules that admit the edge under enforcement ("ns/policy#rule").
	AllowedBy []string `json:"allowedBy,omitempty"`
	// Intents names the ClientIntents (and the targets as written) behind the compiled
	// rules that admit the edge.
	Intents []compile.IntentRef `json:"intents,omitempty"`
}

// EdgeStatus says how enforcement treats an edge.
type EdgeStatus string

const (
	StatusCovered   EdgeStatus = "covered"
	StatusWouldDrop EdgeStatus = "would-drop"
	StatusDenied    EdgeStatus = "denied"
	StatusOpen      EdgeStatus = "open"
)

// rank orders statuses so an edge shows the worst one any of its flows had.
func rank(s EdgeStatus) int {
	switch s {
	case StatusCovered:
		return 1
	case StatusDenied:
		return 2
	case StatusWouldDrop:
		return 3
	}
	return 0
}

// FlowCounts accounts for every event read: evaluated + sum(skipped) + sum(malformed) +
// lostEvents lines + nodeStatus lines = read.
type FlowCounts struct {
	Read      int64            `json:"read"`
	Evaluated int64            `json:"evaluated"`
	Skipped   map[string]int64 `json:"skipped"`
	Malformed map[string]int64 `json:"malformed"`
	// MalformedLines lists the first few malformed lines.
	MalformedLines []MalformedLine `json:"malformedLines,omitempty"`
	// LostEvents is the number of flows the producer reported lost (sum of lost_events).
	LostEvents      uint64 `json:"lostEvents"`
	LostEventLines  int64  `json:"lostEventLines"`
	NodeStatusLines int64  `json:"nodeStatusLines"`
}

// MalformedLine locates one malformed input line.
type MalformedLine struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
}

// edgeKey names an edge by its peers' numbers (see peerTable) and its protocol's: a flow
// finds its edge by four integers instead of two Peers of five strings.
type edgeKey struct {
	src, dst int32
	port     int32
	proto    uint16
}

// peerTable numbers the peers the report has seen, and remembers the number of each
// endpoint it derived a peer from, so that a flow's peers cost a lookup by pointer or
// address rather than a Peer to build and hash (and, for external endpoints, a CIDR to
// format).
type peerTable struct {
	ids    map[Peer]int32
	list   []Peer
	byPod  map[*cluster.Pod]int32
	byHost map[hostKey]int32
	// byCross numbers nodes as the sources of cross-node flows (KindCrossNode).
	byCross map[hostKey]int32
	byNet   map[netip.Prefix]int32
}

type hostKey struct {
	node string
	ip   netip.Addr
}

func (t *peerTable) intern(p Peer) int32 {
	if id, ok := t.ids[p]; ok {
		return id
	}
	id := int32(len(t.list))
	t.ids[p] = id
	t.list = append(t.list, p)
	return id
}

// podPeer returns the peer number of a pod end and whether its namespace is enforced,
// kept in the end's memo slot m when it has one.
func (a *aggregate) podPeer(p *cluster.Pod, m *podMemoSlot) (int32, bool) {
	if m != nil && m.pod == p && m.peer > 0 {
		return m.peer - 1, m.enforced
	}
	t := &a.peers
	id, ok := t.byPod[p]
	if !ok {
		id = t.intern(a.peer(evaluator.Endpoint{Kind: evaluator.Pod, Pod: p}))
		t.byPod[p] = id
	}
	enforced := a.s.enforced[p.Namespace]
	if m != nil && m.pod == p {
		m.peer, m.enforced = id+1, enforced
	}
	return id, enforced
}

func (a *aggregate) peerID(ep evaluator.Endpoint) int32 {
	t := &a.peers
	switch ep.Kind {
	case evaluator.Pod:
		id, _ := a.podPeer(ep.Pod, nil)
		return id
	case evaluator.Host:
		k := hostKey{ep.Node, ep.IP}
		if id, ok := t.byHost[k]; ok {
			return id
		}
		id := t.intern(a.peer(ep))
		t.byHost[k] = id
		return id
	default:
		var k netip.Prefix
		if ep.IP.IsValid() {
			k = bucket(ep.IP, a.s.opts.ExternalPrefixV4, a.s.opts.ExternalPrefixV6)
		}
		if id, ok := t.byNet[k]; ok {
			return id
		}
		id := t.intern(a.peer(ep))
		t.byNet[k] = id
		return id
	}
}

// crossNodeID is peerID for a node sending to a pod on another node.
func (a *aggregate) crossNodeID(ep evaluator.Endpoint) int32 {
	t := &a.peers
	k := hostKey{ep.Node, ep.IP}
	if id, ok := t.byCross[k]; ok {
		return id
	}
	p := a.peer(ep)
	p.Kind = KindCrossNode
	id := t.intern(p)
	t.byCross[k] = id
	return id
}

// CrossNode reports whether j's connection runs from a node to a pod on another node:
// the own-node exemption does not cover it, the pod's ingress policies judge it, and its
// edge's source is a KindCrossNode peer.
func (j *Judgement) CrossNode() bool {
	return j.Outcome != Skipped && j.Conn.Src.Kind == evaluator.Host && j.Conn.Dst.Kind == evaluator.Pod &&
		j.Enforced.Ingress.Exempt != evaluator.ExemptOwnNode
}

// EdgeKey is the soak store's key for a judged connection: the peers as the report names
// them (external addresses bucketed by the Simulator's prefixes, a node's cross-node
// flows under KindCrossNode), no port for a workload-level observation.
func (s *Simulator) EdgeKey(j *Judgement) soak.EdgeKey { return s.agg.edgeKey(j) }

func (a *aggregate) edgeKey(j *Judgement) soak.EdgeKey {
	k := soak.EdgeKey{Source: a.peer(j.Conn.Src), Destination: a.peer(j.Conn.Dst), Protocol: string(j.Conn.Protocol), Port: j.Conn.Port}
	if j.CrossNode() {
		k.Source.Kind = KindCrossNode
	}
	if j.Flow != nil && j.Flow.WorkloadLevel {
		k.Protocol, k.Port = "", 0
	}
	return k
}

// edgeTable holds every observed edge in one slice and finds it by key through an
// open-addressing table whose slots carry the key inline: a flow's edge costs one probe
// of 16 bytes and the record it updates, with no hashing of strings.
//
// A flow of a known edge updates only the edge's hot record (count, first and last seen,
// status rank): 64 bytes beside the 300 of the Edge, which report fills in from it.
type edgeTable struct {
	slots []edgeSlot
	list  []Edge
	keys  []edgeKey
	hot   []edgeHot
}

// edgeHot is what every flow of an edge updates. rank is rank(Status)+1, 0 while the
// edge has no status.
type edgeHot struct {
	count       int64
	first, last time.Time
	rank        uint8
}

func (h *edgeHot) seen(t time.Time) {
	h.count++
	if t.IsZero() {
		return
	}
	if h.first.IsZero() || t.Before(h.first) {
		h.first = t
	}
	if t.After(h.last) {
		h.last = t
	}
}

type edgeSlot struct {
	key edgeKey
	pos int32 // position in list, plus one; 0 is an empty slot
}

func hashEdge(k edgeKey) uint64 {
	h := (uint64(uint32(k.src))<<32 | uint64(uint32(k.dst))) * 0x9e3779b97f4a7c15
	h ^= (uint64(uint32(k.port))<<8 | uint64(k.proto)) * 0xbf58476d1ce4e5b9
	return h ^ h>>29
}

// get returns the position of the edge with key k, or -1.
func (t *edgeTable) get(k edgeKey) int32 {
	if len(t.slots) == 0 {
		return -1
	}
	mask := uint64(len(t.slots) - 1)
	for i := hashEdge(k) & mask; ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.pos == 0 {
			return -1
		}
		if s.key == k {
			return s.pos - 1
		}
	}
}

// add stores e under k, which must not be stored yet, and returns its position.
func (t *edgeTable) add(k edgeKey, e Edge) int32 {
	if (len(t.list)+1)*4 > len(t.slots)*3 {
		t.slots = make([]edgeSlot, max(64, 2*len(t.slots)))
		for i, k := range t.keys {
			t.insert(k, int32(i))
		}
	}
	t.list = append(t.list, e)
	t.keys = append(t.keys, k)
	t.hot = append(t.hot, edgeHot{})
	t.insert(k, int32(len(t.list)-1))
	return int32(len(t.list) - 1)
}

func (t *edgeTable) insert(k edgeKey, pos int32) {
	mask := uint64(len(t.slots) - 1)
	i := hashEdge(k) & mask
	for t.slots[i].pos != 0 {
		i = (i + 1) & mask
	}
	t.slots[i] = edgeSlot{key: k, pos: pos + 1}
}

// protoCode numbers a protocol for edge keys; the report needs its name back.
func (a *aggregate) protoCode(p string) uint16 {
	switch p {
	case "TCP":
		return 1
	case "UDP":
		return 2
	case "SCTP":
		return 3
	}
	for i, q := range a.protos {
		if q == p {
			return uint16(i)
		}
	}
	if len(a.protos) == 1<<16-1 {
		// Connections only carry the protocols NetworkPolicy knows (TCP, UDP, SCTP); past
		// 65535 others, the rest share the last code.
		return 1<<16 - 1
	}
	a.protos = append(a.protos, p)
	return uint16(len(a.protos) - 1)
}

type nsStats struct {
	connections, wouldDrop int64
	pos                    int32 // in aggregate.nsList
}

type aggregate struct {
	s      *Simulator
	peers  peerTable
	counts FlowCounts
	ns     map[string]*nsStats
	nsList []*nsStats // by nsStats.pos
	// skips counts the skip reasons skipIndex knows (the rest go to counts.Skipped
	// directly), so that the most common flows (replies) hash no string.
	skips  [len(skipReasons)]int64
	edges  map[edgeKey]*Edge
	all    edgeTable
	protos []string // by protocol code, see protoCode
	// dropIn records the namespaces whose enforcement drops each edge.
	dropIn map[edgeKey][]string
}

func newAggregate(s *Simulator) *aggregate {
	a := &aggregate{s: s, ns: map[string]*nsStats{}, edges: map[edgeKey]*Edge{}, dropIn: map[edgeKey][]string{},
		protos: []string{"", "TCP", "UDP", "SCTP"}}
	a.peers = peerTable{
		ids: map[Peer]int32{}, byPod: map[*cluster.Pod]int32{}, byHost: map[hostKey]int32{}, byCross: map[hostKey]int32{}, byNet: map[netip.Prefix]int32{},
	}
	a.counts.Skipped = map[string]int64{}
	a.counts.Malformed = map[string]int64{}
	for ns := range s.enforced {
		a.stats(ns)
	}
	return a
}

func (a *aggregate) stats(ns string) *nsStats {
	st, ok := a.ns[ns]
	if !ok {
		st = &nsStats{pos: int32(len(a.nsList))}
		a.ns[ns] = st
		a.nsList = append(a.nsList, st)
	}
	return st
}

// skipReasons are the skip reasons judge gives, counted in aggregate.skips.
var skipReasons = [...]string{SkipReply, SkipNonIP, SkipL7, SkipSock, SkipUnsupportedProtocol, SkipUnresolvedSource, SkipUnresolvedDest, SkipNoPort}

func skipIndex(reason string) int {
	switch reason {
	case SkipReply:
		return 0
	case SkipNonIP:
		return 1
	case SkipL7:
		return 2
	case SkipSock:
		return 3
	case SkipUnsupportedProtocol:
		return 4
	case SkipUnresolvedSource:
		return 5
	case SkipUnresolvedDest:
		return 6
	case SkipNoPort:
		return 7
	}
	return -1
}

// skipped returns the skip counts by reason.
func (a *aggregate) skipped() map[string]int64 {
	out := copyCounts(a.counts.Skipped)
	for i, n := range a.skips {
		if n > 0 {
			out[skipReasons[i]] += n
		}
	}
	return out
}

func (a *aggregate) add(j *Judgement, jd judged) {
	a.counts.Read++
	if j.Outcome == Skipped {
		if i := skipIndex(j.Reason); i >= 0 {
			a.skips[i]++
		} else {
			a.counts.Skipped[j.Reason]++
		}
		return
	}
	a.counts.Evaluated++
	// A connection between memoized pods finds its edge and namespace counters in its
	// connection memo slot, once place has put them there.
	var edge, dstStats, srcStats int32
	if cs := jd.conn; cs != nil && cs.edge > 0 {
		edge, dstStats, srcStats = cs.edge-1, cs.dstStats, cs.srcStats
	} else {
		edge, dstStats, srcStats = a.place(j, jd.sm, jd.dm)
		if cs != nil {
			cs.edge, cs.dstStats, cs.srcStats = edge+1, dstStats, srcStats
		}
	}
	if dstStats > 0 {
		a.nsList[dstStats-1].connections++
	}
	if srcStats > 0 {
		a.nsList[srcStats-1].connections++
	}
	h := &a.all.hot[edge]
	h.seen(j.Flow.Time)
	if st := status(j); h.rank == 0 || uint8(rank(st)+1) > h.rank {
		e := &a.all.list[edge]
		e.Status, e.Reason, e.AllowedBy = st, j.Reason, ruleNames(j.Enforced)
		e.Intents = a.s.ruleIntents(j.Enforced)
		h.rank = uint8(rank(st) + 1)
	}
	if !j.WouldDrop {
		return
	}
	k := a.all.keys[edge]
	dropped := droppedIn(j)
	for _, ns := range dropped {
		a.stats(ns).wouldDrop++
	}
	u, ok := a.edges[k]
	if !ok {
		e := &a.all.list[edge]
		a.dropIn[k] = dropped
		u = &Edge{Source: e.Source, Destination: e.Destination, Port: k.port, Protocol: e.Protocol, Reason: uncoveredReason(j), Status: StatusWouldDrop}
		a.edges[k] = u
	}
	seen(u, j.Flow.Time)
}

// place finds (or adds) the edge of a judged connection, and the namespace counters
// (nsStats.pos plus one, 0 for none) its flows count for: the destination's namespace
// when it is enforced (ingress) and, when egress is enforced, the source's.
func (a *aggregate) place(j *Judgement, sm, dm *podMemoSlot) (edge, dstStats, srcStats int32) {
	var k edgeKey
	dstNS := ""
	if j.Conn.Dst.Kind == evaluator.Pod {
		var enforced bool
		k.dst, enforced = a.podPeer(j.Conn.Dst.Pod, dm)
		if enforced {
			dstNS = j.Conn.Dst.Pod.Namespace
			dstStats = a.stats(dstNS).pos + 1
		}
	} else {
		k.dst = a.peerID(j.Conn.Dst)
	}
	if j.Conn.Src.Kind == evaluator.Pod {
		var enforced bool
		k.src, enforced = a.podPeer(j.Conn.Src.Pod, sm)
		if a.s.opts.Compile.Egress && enforced && j.Conn.Src.Pod.Namespace != dstNS {
			srcStats = a.stats(j.Conn.Src.Pod.Namespace).pos + 1
		}
	} else if j.CrossNode() {
		k.src = a.crossNodeID(j.Conn.Src)
	} else {
		k.src = a.peerID(j.Conn.Src)
	}
	k.port, k.proto = j.Conn.Port, a.protoCode(string(j.Conn.Protocol))
	edge = a.all.get(k)
	if edge < 0 {
		edge = a.all.add(k, Edge{Source: a.peers.list[k.src], Destination: a.peers.list[k.dst], Port: k.port, Protocol: string(j.Conn.Protocol), Reason: j.Reason})
	}
	return edge, dstStats, srcStats
}

func seen(e *Edge, t time.Time) {
	e.Count++
	if t.IsZero() {
		return
	}
	if e.FirstSeen.IsZero() || t.Before(e.FirstSeen) {
		e.FirstSeen = t
	}
	if t.After(e.LastSeen) {
		e.LastSeen = t
	}
}

func status(j *Judgement) EdgeStatus {
	switch {
	case j.WouldDrop:
		return StatusWouldDrop
	case !j.Current.Allowed:
		return StatusDenied
	case len(j.Enforced.Ingress.Isolated) > 0 || len(j.Enforced.Egress.Isolated) > 0,
		j.Enforced.Ingress.Exempt != evaluator.NotExempt && j.Enforced.Ingress.Exempt != evaluator.ExemptNotPod:
		return StatusCovered
	}
	return StatusOpen
}

// ruleIntents collects the ClientIntents behind the compiled rules that admit a verdict,
// read from the rules annotation the compiler writes beside each policy.
func (s *Simulator) ruleIntents(v evaluator.Verdict) []compile.IntentRef {
	var out []compile.IntentRef
	seen := map[compile.IntentRef]bool{}
	for _, d := range []evaluator.Direction{v.Egress, v.Ingress} {
		for _, r := range d.AllowedBy {
			origins := s.origins[r.Policy]
			if r.Index < 0 || r.Index >= len(origins) {
				continue
			}
			for _, ref := range origins[r.Index].Intents {
				if !seen[ref] {
					seen[ref] = true
					out = append(out, ref)
				}
			}
		}
	}
	return out
}

func ruleNames(v evaluator.Verdict) []string {
	var out []string
	for _, d := range []evaluator.Direction{v.Egress, v.Ingress} {
		for _, r := range d.AllowedBy {
			out = append(out, r.String())
		}
	}
	return out
}

// droppedIn names the namespaces whose enforcement would drop the connection.
func droppedIn(j *Judgement) []string {
	var out []string
	if !j.Enforced.Ingress.Allowed && j.Conn.Dst.Kind == evaluator.Pod {
		out = append(out, j.Conn.Dst.Pod.Namespace)
	}
	if !j.Enforced.Egress.Allowed && j.Conn.Src.Kind == evaluator.Pod &&
		(len(out) == 0 || out[0] != j.Conn.Src.Pod.Namespace) {
		out = append(out, j.Conn.Src.Pod.Namespace)
	}
	return out
}

func uncoveredReason(j *Judgement) string {
	switch {
	case !j.Enforced.Ingress.Allowed && j.Conn.Src.Kind == evaluator.External:
		return "external traffic not allowed into the enforced namespace: " + j.Enforced.ReasonFor(j.Conn)
	case !j.Enforced.Ingress.Allowed && j.Conn.Src.Kind == evaluator.Host:
		return "traffic from another node not allowed into the enforced namespace: " + j.Enforced.ReasonFor(j.Conn)
	case !j.Enforced.Ingress.Allowed:
		return "no ClientIntents cover this call: " + j.Enforced.ReasonFor(j.Conn)
	default:
		return "egress not covered by ClientIntents: " + j.Enforced.ReasonFor(j.Conn)
	}
}

func (a *aggregate) peer(ep evaluator.Endpoint) Peer {
	switch ep.Kind {
	case evaluator.Pod:
		w := ep.Pod.Workload
		return Peer{Namespace: w.Namespace, Workload: w.Name, Kind: w.Kind}
	case evaluator.Host:
		p := Peer{Kind: KindNode, Node: ep.Node}
		if p.Node == "" && ep.IP.IsValid() {
			p.Node = ep.IP.String()
		}
		return p
	default:
		cidr := ""
		if ep.IP.IsValid() {
			cidr = bucket(ep.IP, a.s.opts.ExternalPrefixV4, a.s.opts.ExternalPrefixV6).String()
		}
		return Peer{Kind: KindExternal, CIDR: cidr}
	}
}

func (a *aggregate) malformed(ev flows.Event) {
	a.counts.Read++
	a.counts.Malformed[ev.Reason]++
	if len(a.counts.MalformedLines) < a.s.opts.MaxMalformed {
		a.counts.MalformedLines = append(a.counts.MalformedLines, MalformedLine{Line: ev.Line, Reason: ev.Reason, Detail: ev.Detail})
	}
}

func (a *aggregate) lost(l *flows.Lost) {
	a.counts.Read++
	a.counts.LostEventLines++
	a.counts.LostEvents += l.NumEvents
}

func (a *aggregate) nodeStatus(*flows.NodeStatus) {
	a.counts.Read++
	a.counts.NodeStatusLines++
}

func (a *aggregate) report() *Report {
	r := &Report{Enforced: []string{}, Namespaces: []NamespaceReport{}, Uncovered: []Edge{}, Edges: []Edge{}, Flows: a.counts}
	r.Flows.Skipped = a.skipped()
	r.Flows.Malformed = copyCounts(a.counts.Malformed)
	r.Flows.MalformedLines = append([]MalformedLine(nil), a.counts.MalformedLines...)
	for ns := range a.s.enforced {
		r.Enforced = append(r.Enforced, ns)
	}
	sort.Strings(r.Enforced)
	uncoveredByNS := map[string]int{}
	for k, e := range a.edges {
		r.Uncovered = append(r.Uncovered, *e)
		for _, ns := range a.dropIn[k] {
			uncoveredByNS[ns]++
		}
	}
	sortEdges(r.Uncovered)
	r.Edges = append(r.Edges, a.all.list...)
	for i := range r.Edges {
		h := &a.all.hot[i]
		r.Edges[i].Count, r.Edges[i].FirstSeen, r.Edges[i].LastSeen = h.count, h.first, h.last
	}
	sortEdges(r.Edges)
	for ns, st := range a.ns {
		r.Namespaces = append(r.Namespaces, NamespaceReport{
			Namespace: ns, Enforced: a.s.enforced[ns], Connections: st.connections, WouldDrop: st.wouldDrop,
			UncoveredEdges: uncoveredByNS[ns],
		})
	}
	sort.Slice(r.Namespaces, func(i, j int) bool { return r.Namespaces[i].Namespace < r.Namespaces[j].Namespace })
	for _, w := range a.s.compiled.Warnings {
		r.Warnings = append(r.Warnings, w.String())
	}
	return r
}

func copyCounts(m map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// WouldDrop reports whether anything would be dropped.
func (r *Report) WouldDrop() bool { return len(r.Uncovered) > 0 }

func joinErrs(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return errors.Join(errs...)
}

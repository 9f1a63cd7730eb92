// Package simulate judges flows against the policy set in force and the policy set that
// enforcement would apply, and aggregates what would be dropped into a report.
package simulate

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"net/netip"
	"sort"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
)

// Skip reasons: stable tokens, part of the JSON contract.
const (
	SkipReply               = "reply"
	SkipNonIP               = "non-ip"
	SkipL7                  = "l7"
	SkipSock                = "sock-trace"
	SkipUnsupportedProtocol = "unsupported-protocol"
	SkipUnresolvedSource    = "unresolved-source"
	SkipUnresolvedDest      = "unresolved-destination"
	SkipNoPort              = "no-port"
)

// Outcome of judging one flow.
type Outcome string

const (
	Allowed Outcome = "allowed"
	Denied  Outcome = "denied"
	Skipped Outcome = "skipped"
)

// Judgement is the decision on one event.
type Judgement struct {
	Line    int
	Outcome Outcome
	// Reason is the skip reason, or the verdict's explanation.
	Reason string
	Flow   *flows.Flow
	Conn   evaluator.Connection
	// Current is the verdict under the snapshot's own policies; Enforced under the snapshot's
	// policies plus the compiled policies of the enforced namespaces.
	Current, Enforced evaluator.Verdict
	// WouldDrop: the current set allows the connection and the enforced set denies it.
	WouldDrop bool
}

// Options configure a Simulator.
type Options struct {
	// Compile selects the enforced namespaces and how policies are compiled. An empty
	// Compile.Namespaces means no namespace is enforced.
	Compile compile.Options
	// ExternalPrefixV4 and ExternalPrefixV6 bucket external addresses in the report (an
	// edge per CIDR, not per client IP). 32 / 128 keep single addresses.
	ExternalPrefixV4, ExternalPrefixV6 int
	// MaxMalformed is how many malformed lines the report lists by line number.
	MaxMalformed int
}

// DefaultOptions returns the defaults the CLI uses.
func DefaultOptions() Options {
	return Options{
		Compile:          compile.Options{External: compile.ExternalOnlyIfBlocked},
		ExternalPrefixV4: 24,
		ExternalPrefixV6: 64,
		MaxMalformed:     10,
	}
}

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs []error
	if err := o.Compile.Validate(); err != nil {
		errs = append(errs, err)
	}
	if o.ExternalPrefixV4 < 0 || o.ExternalPrefixV4 > 32 {
		errs = append(errs, fmt.Errorf("external IPv4 prefix %d: must be 0..32", o.ExternalPrefixV4))
	}
	if o.ExternalPrefixV6 < 0 || o.ExternalPrefixV6 > 128 {
		errs = append(errs, fmt.Errorf("external IPv6 prefix %d: must be 0..128", o.ExternalPrefixV6))
	}
	if o.MaxMalformed < 0 {
		errs = append(errs, fmt.Errorf("max malformed %d: must be >= 0", o.MaxMalformed))
	}
	return joinErrs(errs)
}

// Simulator judges flows. It is not safe for concurrent use (the resolver caches ghost
// pods); run one per goroutine.
type Simulator struct {
	opts     Options
	snap     *cluster.Snapshot
	compiled *compile.Result
	enforced map[string]bool
	current  evaluator.Evaluator
	enforce  evaluator.Evaluator
	res      *resolver
	agg      *aggregate
	reasons  reasonMemo
	denied   deniedMemo
	// origins are the compiled policies' rule origins (the rules annotation), by policy.
	origins map[evaluator.PolicyRef][]compile.RuleOrigin
	// compiler keeps the compilation up to date across updates (update.go); nil until
	// the first one.
	compiler *compile.Compiler
}

// New compiles the enforced namespaces' policies and builds both evaluators.
func New(snap *cluster.Snapshot, opts Options) (*Simulator, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	// The compiler reads no namespaces as "every targeted namespace"; here it means none
	// (plain evaluation of the snapshot), so the compiler is not asked.
	compiled := &compile.Result{}
	if len(opts.Compile.Namespaces) > 0 {
		var err error
		if compiled, err = compile.Compile(snap, opts.Compile); err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
	}
	s := &Simulator{
		opts:     opts,
		snap:     snap,
		compiled: compiled,
		enforced: map[string]bool{},
		current:  evaluator.NewEngine(snap, snap.NetworkPolicies),
		enforce:  evaluator.NewEngine(snap, Merge(snap.NetworkPolicies, compiled.Policies)),
		res:      newResolver(snap),
		reasons:  reasonMemo{},
	}
	for _, ns := range compiled.Namespaces {
		s.enforced[ns] = true
	}
	s.origins = ruleOrigins(compiled.Policies)
	s.agg = newAggregate(s)
	return s, nil
}

// Compiled returns what the compiler produced for the enforced namespaces.
func (s *Simulator) Compiled() *compile.Result { return s.compiled }

// Merge overlays compiled policies on the snapshot's: a compiled policy replaces a
// snapshot policy with the same namespace/name (a snapshot taken while enforcing already
// holds shadowgate's own policies, perhaps stale).
func Merge(base, overlay []*networkingv1.NetworkPolicy) []*networkingv1.NetworkPolicy {
	byKey := make(map[string]*networkingv1.NetworkPolicy, len(base)+len(overlay))
	for _, p := range base {
		byKey[p.Namespace+"/"+p.Name] = p
	}
	for _, p := range overlay {
		byKey[p.Namespace+"/"+p.Name] = p
	}
	out := make([]*networkingv1.NetworkPolicy, 0, len(byKey))
	for _, p := range byKey {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Judge decides one event. Malformed, lost and node-status events are recorded by Observe
// only; Judge is for flows.
func (s *Simulator) Judge(f *flows.Flow, line int) Judgement {
	var j Judgement
	s.judge(&j, f, line)
	return j
}

// judged is what judge leaves the aggregation besides the Judgement: the memo slots of
// the ends (nil where there is none) and of the connection (nil when it has none), for
// the aggregation to keep its numbers in.
type judged struct {
	sm, dm *podMemoSlot
	conn   *connSlot
}

// judge is Judge, into *j (which it overwrites).
func (s *Simulator) judge(j *Judgement, f *flows.Flow, line int) judged {
	*j = Judgement{Line: line, Flow: f, Outcome: Skipped}
	if f.WorkloadLevel {
		*j = s.judgeWorkloadLevel(*j)
		return judged{}
	}
	if reason := classify(f); reason != "" {
		j.Reason = reason
		return judged{}
	}
	// Hubble observes a flow at the endpoint its direction names: egress at the source,
	// ingress at the destination.
	src, sm, ok := s.res.resolveMemo(&f.Source, f.NodeName, f.TrafficDirection == "EGRESS")
	if !ok {
		j.Reason = SkipUnresolvedSource
		return judged{}
	}
	dst, dm, ok := s.res.resolveMemo(&f.Destination, f.NodeName, f.TrafficDirection == "INGRESS")
	if !ok {
		j.Reason = SkipUnresolvedDest
		return judged{}
	}
	j.Conn = evaluator.Connection{Src: src, Dst: dst, Protocol: corev1.Protocol(f.Protocol), Port: int32(f.DestinationPort)}
	var cs *connSlot
	if cur, enf, err := s.engines(); err != nil {
		j.Current = s.current.Evaluate(j.Conn)
		j.Enforced = s.enforce.Evaluate(j.Conn)
		j.Reason = s.reasons.reason(j.Enforced, j.Conn)
	} else {
		if dm == sm {
			dm = nil // one slot cannot hold two ends' addresses
		}
		// A connection is judged as every connection between ends of the same classes
		// (connMemo): its judgement is kept by the classes, protocol and port while
		// neither engine changes.
		m := &s.res.conns
		m.check(cur.Version(), enf.Version())
		key := connKeyOf(m.endClass(&src, sm, cur, enf, s.agg), m.endClass(&dst, dm, cur, enf, s.agg), j.Conn.Protocol, j.Conn.Port)
		if key.src != 0 && src.Kind == evaluator.Host && dst.Kind == evaluator.Pod {
			// The own-node exemption reads which node and which pod: the destination's
			// class is then the pod itself.
			key.dst = ownClass | dm.idx
		}
		if key.src != 0 {
			cs = m.slot(key)
			if cs.key == key {
				j.Current, j.Enforced = *cs.cur, *cs.enf
				j.WouldDrop = j.Current.Allowed && !j.Enforced.Allowed
				j.Outcome = outcomeOf(&j.Enforced)
				if j.Enforced.Allowed {
					j.Reason = cs.reason
				} else {
					// A denial's explanation names the peer.
					j.Reason = s.denied.of(cs.enf, &j.Conn)
				}
				return judged{sm: sm, dm: dm, conn: cs}
			}
		}
		// Both ends resolved once per engine (memoized per busy pod), both verdicts by
		// reference: a flow reads no pod table.
		var scratch [2]refPair
		sr := refsOf(sm, &j.Conn.Src, cur, enf, &scratch[0])
		dr := refsOf(dm, &j.Conn.Dst, cur, enf, &scratch[1])
		cv := cur.EvaluateRef(&sr.cur, &dr.cur, j.Conn.Protocol, j.Conn.Port)
		ev := enf.EvaluateRef(&sr.enf, &dr.enf, j.Conn.Protocol, j.Conn.Port)
		j.Current, j.Enforced = *cv, *ev
		if ev.Allowed {
			j.Reason = s.reasons.of(ev, &j.Conn)
		} else {
			j.Reason = s.denied.of(ev, &j.Conn)
		}
		if cs != nil {
			*cs = connSlot{key: key, cur: cv, enf: ev}
			if ev.Allowed {
				cs.reason = j.Reason
			}
		}
	}
	j.WouldDrop = j.Current.Allowed && !j.Enforced.Allowed
	j.Outcome = outcomeOf(&j.Enforced)
	return judged{sm: sm, dm: dm, conn: cs}
}

func outcomeOf(enforced *evaluator.Verdict) Outcome {
	if enforced.Allowed {
		return Allowed
	}
	return Denied
}

// connMemo remembers judgements by the classes of their ends. A class is what a verdict
// and the report read of an end: its Keys in both engines (evaluator.Ref.Key) and its
// report peer (a pod's workload, a node, an external /24), so that the pods of a workload
// share one, and so do the addresses of an ipBlock in one /24. A flow of a connection
// seen before then reads the memo slot of each end's pod (which names its class; a node
// or an external address finds its class in addrs) and one 64-byte slot here, instead
// of both ends' Refs, two verdict caches, the explanation memos and the report's edge
// table. A slot holds shared, immutable verdicts and what they explain, which stand while
// neither engine changes (evaluator.Version): other Versions start a new generation,
// which empties the memo and makes every end's class be found again. Pod changes build
// a new resolver, and a new memo with it. Direct-mapped: a miss overwrites, and the
// table doubles (emptied) while it is more than half used, up to maxConnSlots.
type connMemo struct {
	slots    []connSlot
	shift    uint8 // 64 - log2(len(slots))
	used     int
	cur, enf evaluator.Version
	// gen numbers the Versions the memo has seen (podMemoSlot.gen); classes numbers
	// the classes of this generation from 1.
	gen     uint32
	classes map[podClass]uint32
	// addrs remembers the classes of nodes and external endpoints (addrClass);
	// addrsUsed counts its slots of this generation.
	addrs     []addrSlot
	addrsUsed int
}

// podClass is what a judgement and its aggregation read of one end (see
// evaluator.Ref.Key): its Keys in both engines, and its report peer.
type podClass struct {
	cur, enf evaluator.RefKey
	peer     int32
	// node is a node end itself: the own-node exemption reads its name and address,
	// and report peers do not tell every pair apart.
	node hostKey
}

// connKey names a connection by its ends' classes, the protocol's code (1 TCP, 2 UDP,
// 3 SCTP) and the port; src 0 is no key.
type connKey struct {
	src, dst uint32
	port     int32
	proto    uint32
}

// connSlot is one remembered judgement. reason is the explanation of an allowed
// verdict (a denial's names the peer, so it is not shared). edge and the namespace
// counters are the aggregation's (see aggregate.add), 0 until it has filled them in.
type connSlot struct {
	key      connKey
	cur, enf *evaluator.Verdict
	reason   string
	// edge is the position of the connection's edge in aggregate.all plus one;
	// dstStats and srcStats the positions of the namespace counters it adds to, plus
	// one (0: none).
	edge, dstStats, srcStats int32
}

// The memo's size bounds: at most 16 MiB (2^18 slots of 64 bytes). Profile M's
// generated traffic has some 15,000 distinct keys in 100,000 lines, L's some 21,000.
const (
	minConnSlots = 1 << 10
	maxConnSlots = 1 << 18
)

func connKeyOf(src, dst uint32, proto corev1.Protocol, port int32) connKey {
	if src == 0 || dst == 0 {
		return connKey{}
	}
	var code uint32
	switch proto {
	case corev1.ProtocolTCP:
		code = 1
	case corev1.ProtocolUDP:
		code = 2
	case corev1.ProtocolSCTP:
		code = 3
	default:
		return connKey{}
	}
	return connKey{src: src, dst: dst, port: port, proto: code}
}

func (k connKey) hash() uint64 {
	h := (uint64(k.src)<<32 | uint64(k.dst)) * 0x9e3779b97f4a7c15
	h ^= (uint64(uint32(k.port))<<8 | uint64(k.proto)) * 0xbf58476d1ce4e5b9
	return h ^ h>>29
}

// check starts a new generation unless cur and enf are the Versions of the current one.
func (m *connMemo) check(cur, enf evaluator.Version) {
	if cur == m.cur && enf == m.enf && m.slots != nil {
		return
	}
	m.reset(max(minConnSlots, len(m.slots)))
	m.cur, m.enf = cur, enf
	m.gen++
	m.classes, m.addrsUsed = map[podClass]uint32{}, 0
}

// ownClass marks a class that is one pod, podMemoSlot.idx.
const ownClass = 1 << 31

// endClass returns the class of an end resolved to ep, with its pod's memo slot p (nil
// if none), 0 when it has none: a pod not at its slot's address, or one without a slot.
func (m *connMemo) endClass(ep *evaluator.Endpoint, p *podMemoSlot, cur, enf *evaluator.Engine, a *aggregate) uint32 {
	switch {
	case p != nil && ep.IP == p.ep.IP:
		return m.classOf(p, cur, enf, a)
	case ep.Kind == evaluator.Pod || (p != nil && ep.Kind == evaluator.Host):
		// A pod found otherwise, or a host-network pod at another address.
		return 0
	}
	return m.addrClass(ep, cur, enf, a)
}

// addrClass returns the class of a node or external endpoint, remembered by the
// endpoint in a direct-mapped table.
func (m *connMemo) addrClass(ep *evaluator.Endpoint, cur, enf *evaluator.Engine, a *aggregate) uint32 {
	ip := ep.IP.As16()
	h := (binary.LittleEndian.Uint64(ip[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(ip[8:])*0xbf58476d1ce4e5b9 ^
		uint64(len(ep.Node))) + uint64(ep.Kind)
	h ^= h >> 29
	if m.addrs == nil {
		m.addrs = make([]addrSlot, minAddrSlots)
	}
	s := &m.addrs[h&uint64(len(m.addrs)-1)]
	if s.gen == m.gen && s.kind == ep.Kind && s.ip == ep.IP && s.node == ep.Node {
		return s.class
	}
	if s.gen != m.gen {
		// A slot new to this generation: the table doubles while more than half of
		// it is in use, up to maxAddrSlots.
		if m.addrsUsed++; m.addrsUsed*2 > len(m.addrs) && len(m.addrs) < maxAddrSlots {
			m.addrs, m.addrsUsed = make([]addrSlot, 2*len(m.addrs)), 1
			s = &m.addrs[h&uint64(len(m.addrs)-1)]
		}
	}
	*s = addrSlot{ip: ep.IP, node: ep.Node, kind: ep.Kind, gen: m.gen}
	r := refPair{cur: cur.Resolve(*ep), enf: enf.Resolve(*ep)}
	if !cur.Fresh(&r.cur) || !enf.Fresh(&r.enf) {
		return 0
	}
	s.class = m.intern(classFor(ep, &r, a))
	return s.class
}

// addrSlot remembers the class of a node or external endpoint in generation gen.
type addrSlot struct {
	ip    netip.Addr
	node  string
	kind  evaluator.EndpointKind
	gen   uint32
	class uint32
}

const (
	minAddrSlots = 1 << 10
	maxAddrSlots = 1 << 16
)

// maxClasses bounds the classes of a generation (an update starts the next one). Past
// it, ends of new classes (external addresses in ever new /24s, say) are judged without
// the memo.
const maxClasses = 1 << 20

func (m *connMemo) intern(c podClass) uint32 {
	id, ok := m.classes[c]
	if !ok {
		if len(m.classes) >= maxClasses {
			return 0
		}
		id = uint32(len(m.classes) + 1)
		m.classes[c] = id
	}
	return id
}

// classOf returns the class of the pod of slot p at its own address (p.ep).
func (m *connMemo) classOf(p *podMemoSlot, cur, enf *evaluator.Engine, a *aggregate) uint32 {
	if p.gen == m.gen {
		return p.class
	}
	p.gen, p.class = m.gen, 0
	var scratch refPair
	r := refsOf(p, &p.ep, cur, enf, &scratch)
	if !cur.Fresh(&r.cur) || !enf.Fresh(&r.enf) {
		return 0
	}
	p.class = m.intern(classFor(&p.ep, r, a))
	return p.class
}

// classFor is the class of an end resolved to ep, r.
func classFor(ep *evaluator.Endpoint, r *refPair, a *aggregate) podClass {
	c := podClass{cur: r.cur.Key(), enf: r.enf.Key(), peer: a.peerID(*ep)}
	if ep.Kind == evaluator.Host {
		c.node = hostKey{ep.Node, ep.IP}
	}
	return c
}

// slot returns the slot for k: holding k's judgement if it is remembered, else the one
// to fill in. A key may sit in either slot of an aligned pair (128 bytes, which the
// adjacent-line prefetch brings in together); a full pair gives up the slot its hash
// names.
func (m *connMemo) slot(k connKey) *connSlot {
	h := k.hash()
	i := h >> m.shift &^ 1
	a, b := &m.slots[i], &m.slots[i+1]
	switch {
	case a.key == k:
		return a
	case b.key == k:
		return b
	case a.key.src != 0 && b.key.src != 0:
		return &m.slots[i+h&1]
	}
	if m.used++; m.used*2 > len(m.slots) && len(m.slots) < maxConnSlots {
		m.reset(2 * len(m.slots))
		m.used++
		i = h >> m.shift &^ 1
	}
	if m.slots[i].key.src == 0 {
		return &m.slots[i]
	}
	return &m.slots[i+1]
}

// reset empties the memo into n slots (a power of two).
func (m *connMemo) reset(n int) {
	if len(m.slots) == n {
		clear(m.slots)
	} else {
		m.slots = make([]connSlot, n)
	}
	m.shift, m.used = uint8(64-bits.Len(uint(n-1))), 0
}

// deniedMemo remembers the explanations of denied verdicts judged by reference. Such an
// explanation names the verdict's isolating policies, the service and the peer endpoint
// of each denied direction; a verdict from EvaluateRef is immutable, so its address and
// the connection stand for all of that. Direct-mapped, like reasonMemo.
type deniedMemo struct{ slots []deniedSlot }

type deniedSlot struct {
	v      *evaluator.Verdict
	c      evaluator.Connection
	reason string
}

const deniedBits = 13

func (m *deniedMemo) of(v *evaluator.Verdict, c *evaluator.Connection) string {
	if m.slots == nil {
		m.slots = make([]deniedSlot, 1<<deniedBits)
	}
	h := uint64(uintptr(unsafe.Pointer(v)))*0x9e3779b97f4a7c15 ^
		uint64(uintptr(unsafe.Pointer(c.Src.Pod)))*0xbf58476d1ce4e5b9 ^
		uint64(uintptr(unsafe.Pointer(c.Dst.Pod)))*0x94d049bb133111eb ^ uint64(uint32(c.Port))
	slot := &m.slots[h>>(64-deniedBits)]
	if slot.v != v || slot.c != *c {
		*slot = deniedSlot{v: v, c: *c, reason: v.ReasonFor(*c)}
	}
	return slot.reason
}

// refsOf returns ep resolved by both engines: from the memo slot m when it holds ep's pod
// at ep's address and both Refs are fresh (re-resolving into it otherwise), else resolved
// into scratch.
func refsOf(m *podMemoSlot, ep *evaluator.Endpoint, cur, enf *evaluator.Engine, scratch *refPair) *refPair {
	if m == nil || m.pod != ep.Pod {
		*scratch = refPair{cur: cur.Resolve(*ep), enf: enf.Resolve(*ep)}
		return scratch
	}
	if m.ip != ep.IP || !cur.Fresh(&m.refs.cur) || !enf.Fresh(&m.refs.enf) {
		m.ip, m.refs = ep.IP, refPair{cur: cur.Resolve(*ep), enf: enf.Resolve(*ep)}
	}
	return &m.refs
}

// reasonMemo remembers the explanations of allowed verdicts. An allowed verdict's
// explanation names only its rules and exemptions, never the connection (see
// evaluator.Verdict.Reason), and an Engine hands every connection with the same cache
// key the same verdict, sharing its slices: a verdict is recognized by its slices
// (which evaluators return read-only) and explained once instead of once per flow. An
// open-addressing table hashed by the slices' addresses (no strings hashed) that starts
// over past maxReasons: an evaluator that does not share slices (the Oracle) only ever
// misses, and the bound keeps it from growing.
type reasonMemo struct {
	index   []uint32 // 0 is empty, else a position in entries plus one
	entries []reasonSlot
}

type reasonSlot struct {
	k      reasonKey
	reason string
}

type reasonKey struct {
	egress, ingress    ruleList
	egExempt, inExempt evaluator.Exemption
}

type ruleList struct {
	first *evaluator.RuleRef
	n     int
}

// maxReasons bounds the memo.
const maxReasons = 1 << 15

func listOf(rs []evaluator.RuleRef) ruleList {
	if len(rs) == 0 {
		return ruleList{}
	}
	return ruleList{first: &rs[0], n: len(rs)}
}

func (m *reasonMemo) reason(v evaluator.Verdict, c evaluator.Connection) string { return m.of(&v, &c) }

func (m *reasonMemo) of(v *evaluator.Verdict, c *evaluator.Connection) string {
	if !v.Allowed {
		return v.ReasonFor(*c)
	}
	k := reasonKey{listOf(v.Egress.AllowedBy), listOf(v.Ingress.AllowedBy), v.Egress.Exempt, v.Ingress.Exempt}
	h := k.hash()
	if len(m.index) > 0 {
		mask := uint64(len(m.index) - 1)
		for i := h & mask; ; i = (i + 1) & mask {
			p := m.index[i]
			if p == 0 {
				break
			}
			if e := &m.entries[p-1]; e.k == k {
				return e.reason
			}
		}
	}
	if len(m.entries) >= maxReasons {
		m.entries, m.index = m.entries[:0], nil
	}
	if (len(m.entries)+1)*2 > len(m.index) {
		m.index = make([]uint32, max(256, 2*len(m.index)))
		for i := range m.entries {
			m.insert(m.entries[i].k.hash(), uint32(i+1))
		}
	}
	r := v.ReasonFor(*c)
	m.entries = append(m.entries, reasonSlot{k: k, reason: r})
	m.insert(h, uint32(len(m.entries)))
	return r
}

func (m *reasonMemo) insert(h uint64, pos uint32) {
	mask := uint64(len(m.index) - 1)
	i := h & mask
	for m.index[i] != 0 {
		i = (i + 1) & mask
	}
	m.index[i] = pos
}

func (k *reasonKey) hash() uint64 {
	h := (uint64(uintptr(unsafe.Pointer(k.egress.first)))^uint64(k.egress.n)<<48)*0x9e3779b97f4a7c15 ^
		(uint64(uintptr(unsafe.Pointer(k.ingress.first)))^uint64(k.ingress.n)<<48)*0xbf58476d1ce4e5b9 ^
		uint64(len(k.egExempt))<<8 ^ uint64(len(k.inExempt))
	return h ^ h>>29
}

// judgeWorkloadLevel judges an observation that names two workloads but no port (the
// Otterize network-mapper): the question is whether the client may reach the server at all,
// so it is asked on each port the server's pods declare, and the first port enforcement
// allows (else the first the current policies allow, else the first) stands for the edge.
func (s *Simulator) judgeWorkloadLevel(j Judgement) Judgement {
	f := j.Flow
	src, ok := s.res.resolve(&f.Source, "", false)
	if !ok || src.Kind != evaluator.Pod {
		j.Reason = SkipUnresolvedSource
		return j
	}
	dst, ok := s.res.resolve(&f.Destination, "", false)
	if !ok || dst.Kind != evaluator.Pod {
		j.Reason = SkipUnresolvedDest
		return j
	}
	candidates := []evaluator.Connection{}
	seen := map[cluster.ContainerPort]bool{}
	for _, p := range dst.Pod.Ports {
		k := cluster.ContainerPort{Port: p.Port, Protocol: p.Protocol}
		if !seen[k] {
			seen[k] = true
			candidates = append(candidates, evaluator.Connection{Src: src, Dst: dst, Protocol: p.Protocol, Port: p.Port})
		}
	}
	if len(candidates) == 0 {
		// Nothing declared: only rules without ports can admit it, as with port 0.
		candidates = append(candidates, evaluator.Connection{Src: src, Dst: dst, Protocol: corev1.ProtocolTCP})
	}
	pick := -1
	var cur, enf []evaluator.Verdict
	for i, c := range candidates {
		cur, enf = append(cur, s.current.Evaluate(c)), append(enf, s.enforce.Evaluate(c))
		if enf[i].Allowed {
			pick = i
			break
		}
	}
	if pick < 0 {
		pick = 0
		for i := range cur {
			if cur[i].Allowed {
				pick = i
				break
			}
		}
	}
	j.Conn, j.Current, j.Enforced = candidates[pick], cur[pick], enf[pick]
	j.WouldDrop = j.Current.Allowed && !j.Enforced.Allowed
	j.Outcome = Denied
	if j.Enforced.Allowed {
		j.Outcome = Allowed
	}
	j.Reason = j.Enforced.ReasonFor(j.Conn)
	return j
}

// classify returns the skip reason of a flow that is not a new connection to judge, or "".
func classify(f *flows.Flow) string {
	switch {
	case !f.Source.IP.IsValid() || !f.Destination.IP.IsValid():
		return SkipNonIP
	case f.Type == "L7":
		// The proxy's L7 records repeat connections the L3/L4 records already carry.
		return SkipL7
	case f.Type == "SOCK":
		return SkipSock
	case isReply(f):
		// A reply belongs to the connection it answers; it is never judged on its own.
		return SkipReply
	}
	switch f.Protocol {
	case "TCP", "UDP", "SCTP":
	default:
		// NetworkPolicy says nothing about ICMP; implementations differ.
		return SkipUnsupportedProtocol
	}
	if f.DestinationPort == 0 {
		return SkipNoPort
	}
	return ""
}

// isReply: is_reply when the observation point knew; otherwise a TCP SYN-ACK is the
// answer to a connection, while any other forward packet (even without SYN) is traffic of
// the connection it belongs to and is judged.
func isReply(f *flows.Flow) bool {
	if f.IsReply != nil {
		return *f.IsReply
	}
	return f.Protocol == "TCP" && f.TCPFlags.SYN && f.TCPFlags.ACK
}

// Observe judges a flow event and adds it to the report; other events are counted.
// It returns the judgement for flow events (zero Judgement otherwise).
func (s *Simulator) Observe(ev flows.Event) Judgement {
	switch ev.Kind {
	case flows.KindFlow:
		var j Judgement
		s.agg.add(&j, s.judge(&j, ev.Flow, ev.Line))
		return j
	case flows.KindMalformed:
		s.agg.malformed(ev)
		return Judgement{Line: ev.Line, Outcome: Skipped, Reason: "malformed:" + ev.Reason}
	case flows.KindLost:
		s.agg.lost(ev.Lost)
	case flows.KindNodeStatus:
		s.agg.nodeStatus(ev.NodeStatus)
	}
	return Judgement{Line: ev.Line, Outcome: Skipped, Reason: "event"}
}

// Report returns the report of everything observed so far.
func (s *Simulator) Report() *Report { return s.agg.report() }

func bucket(ip netip.Addr, v4, v6 int) netip.Prefix {
	ip = ip.Unmap()
	bits := v6
	if ip.Is4() {
		bits = v4
	}
	p, err := ip.Prefix(bits)
	if err != nil {
		return netip.PrefixFrom(ip, ip.BitLen())
	}
	return p
}

// ruleOrigins reads the compiler's rules annotation of every compiled policy. A policy
// without one (or with one that does not parse) simply names no intents.
func ruleOrigins(ps []*networkingv1.NetworkPolicy) map[evaluator.PolicyRef][]compile.RuleOrigin {
	out := make(map[evaluator.PolicyRef][]compile.RuleOrigin, len(ps))
	for _, p := range ps {
		raw, ok := p.Annotations[compile.RulesAnnotation]
		if !ok {
			continue
		}
		var origins []compile.RuleOrigin
		if err := json.Unmarshal([]byte(raw), &origins); err == nil {
			out[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = origins
		}
	}
	return out
}

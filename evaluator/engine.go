package evaluator

import (
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Engine returns the Oracle's verdicts at a per-connection cost that does not grow with
// the number of policies, and follows pod, namespace and policy changes incrementally
// (update.go). It is safe for concurrent use.
//
// Work is moved out of the hot path in three layers:
//
//   - Every policy is compiled once: selectors are converted and deduplicated into
//     tables indexed by the labels they require (selectors.go), ipBlocks are folded
//     into address classes (ipclass.go), and policies are indexed by namespace.
//   - Pods are interned to identities (identity.go) by what a pod contributes to a
//     verdict: namespace, labels and named container ports. Selectors are matched once
//     per identity, and the identity records which policies isolate it per direction.
//     Snapshot pods are interned up front, other pods on first sight.
//   - Verdicts are cached by cacheKey (cache.go).
//
// A cache hit, which is nearly every evaluation once traffic has been seen, is a handful
// of reads that take no lock: the pod table (podtable.go), the address class of each
// end, and the cache. Everything else (a miss, a pod seen for the first time, an
// update) takes mu. A caller that sees the same endpoints again and again resolves them
// once (Resolve, ref.go) and judges by reference (EvaluateRef): a hit is then the cache
// slot alone, with no pod-table read and no copy of the verdict.
//
// Why the cache key is complete: judge, which computes the verdict on a miss, takes the
// key and nothing else (besides the engine's tables, which every change that could
// alter a verdict replaces together with the cache), so two connections with equal keys
// get equal verdicts by construction. The key holds, per end, the normalized kind, the
// pod identity, and the address class (which ipBlocks contain the address); plus
// protocol, port, and whether the source is the destination's own node. What an
// Endpoint carries beyond that cannot change a verdict: pod names and workloads are read
// by no rule, an address matters only through the ipBlocks containing it, a node's name
// and address only through own-node, a pod's unnamed ports never, and the one other
// relation between the two ends, a pod talking to itself, is decided before the cache is
// consulted.
//
// Verdicts returned by Evaluate share their Isolated and AllowedBy slices with the cache
// and with other verdicts: callers must treat the elements as read-only (copy before
// sorting; appending is safe, the slices are clipped so that append copies).
//
// A pod passed in a Connection is remembered by its address, like the snapshot's pods:
// it must not be modified afterwards (replace it through UpdatePod instead).
type Engine struct {
	// cur holds what the hot path reads besides the pod table; it is replaced, never
	// modified, whenever a change could alter a verdict.
	cur  atomic.Pointer[engineView]
	pods podTable

	// mu guards everything below, and the miss path.
	mu          sync.Mutex
	podSels     selectorTable
	nsSels      selectorTable
	blocks      []ipBlock
	blockIndex  map[string]int
	policies    map[PolicyRef]*enginePolicy
	byNamespace map[string][]*enginePolicy // sorted by name
	idents      map[string]*podIdent
	// byLabel and byLabelKey index identities by their labels, for matching new
	// selectors.
	byLabel    map[labelKV]map[*podIdent]struct{}
	byLabelKey map[string]map[*podIdent]struct{}
	nextID     uint32
	pruneAt    int
	namespaces map[string]*nsIdent
	nsLabels   map[string]labels.Set
	// tracked are the pods the snapshot and UpdatePod gave, by namespace/name.
	tracked    map[podName]*cluster.Pod
	cacheLimit int
	protoNames []corev1.Protocol // by code, for protocols beyond TCP, UDP and SCTP
	// Scratch buffers for interning.
	scratchKey   []byte
	scratchKeys  []string
	scratchPorts []cluster.ContainerPort
}

var _ Evaluator = (*Engine)(nil)

// engineView is the immutable part of the engine the hot path reads.
type engineView struct {
	ips   *ipIndex
	cache *verdictCache
	// protos numbers protocols other than TCP, UDP and SCTP for the cache key.
	protos map[corev1.Protocol]uint8
}

type podName struct{ namespace, name string }

// Direction indexes for per-direction tables.
const (
	ingress = 0
	egress  = 1
)

type enginePolicy struct {
	ref    PolicyRef
	podSel int // index into Engine.podSels; -1 when spec.podSelector does not convert
	// isolates[dir] is whether the effective policyTypes include dir.
	isolates [2]bool
	rules    [2][]engineRule
}

type engineRule struct {
	index   int
	anyPeer bool
	peers   []enginePeer
	anyPort bool
	ports   []enginePort
}

type peerKind uint8

const (
	peerNever peerKind = iota // invalid peer: matches nothing
	peerIPBlock
	peerSelector
)

type enginePeer struct {
	kind  peerKind
	block int // for peerIPBlock: index into Engine.blocks
	// For peerSelector, -1 means "not specified": a missing namespaceSelector restricts
	// to namespace ns (the policy's), a missing podSelector admits every pod.
	podSel int
	nsSel  int
	ns     string
}

type portKind uint8

const (
	portNever portKind = iota
	portAll
	portRange
	portNamed
)

type enginePort struct {
	kind   portKind
	proto  corev1.Protocol
	lo, hi int32
	name   string
}

// cacheKey identifies a verdict (see Engine for why it is complete). It holds no
// pointers, so the cache's entries cost the garbage collector nothing to scan beyond
// their verdicts, and it hashes as three words.
type cacheKey struct {
	src, dst           uint32 // identity ids; 0 for an end that is not a pod
	srcClass, dstClass uint32 // address classes
	port               int32
	srcKind, dstKind   uint8
	proto              uint8 // protocolCode
	// ownNode: the source is the node the destination pod runs on.
	ownNode bool
}

// Protocol codes in cache keys; others are numbered from protoFirstExtra as they come.
const (
	protoTCP uint8 = iota + 1
	protoUDP
	protoSCTP
	protoFirstExtra
)

// NewEngine compiles the policies against the snapshot (see NewOracle for the
// arguments). Neither argument may be modified afterwards.
func NewEngine(s *cluster.Snapshot, policies []*networkingv1.NetworkPolicy) *Engine {
	if s == nil {
		s = &cluster.Snapshot{}
	}
	e := &Engine{
		podSels:     newSelectorTable(),
		nsSels:      newSelectorTable(),
		blockIndex:  map[string]int{},
		policies:    map[PolicyRef]*enginePolicy{},
		byNamespace: map[string][]*enginePolicy{},
		idents:      map[string]*podIdent{},
		byLabel:     map[labelKV]map[*podIdent]struct{}{},
		byLabelKey:  map[string]map[*podIdent]struct{}{},
		namespaces:  map[string]*nsIdent{},
		nsLabels:    make(map[string]labels.Set, len(s.Namespaces)),
		tracked:     make(map[podName]*cluster.Pod, len(s.Pods)),
		cacheLimit:  defaultCacheEntries,
		pruneAt:     minPrunable,
	}
	for name, ns := range s.Namespaces {
		e.nsLabels[name] = ns.Labels
	}
	for _, p := range dedupe(policies) {
		pol := e.compilePolicy(p)
		e.policies[pol.ref] = pol
		// dedupe sorts, so each namespace's list comes out sorted by name.
		e.byNamespace[p.Namespace] = append(e.byNamespace[p.Namespace], pol)
	}
	e.publishLocked(true)
	entries := make(map[*cluster.Pod]podEntry, len(s.Pods))
	for _, p := range s.Pods {
		e.tracked[podName{p.Namespace, p.Name}] = p
		if p.HostNetwork {
			continue // judged as its node, never as a pod (see normalize)
		}
		id := e.internLocked(p)
		id.pods++
		entries[p] = e.entryLocked(p, id, true)
	}
	e.pods.bulkLoad(entries)
	return e
}

// entryLocked makes p's pod table entry.
func (e *Engine) entryLocked(p *cluster.Pod, id *podIdent, tracked bool) podEntry {
	pe := podEntry{id: id.id, ident: id, tracked: tracked, ips: e.cur.Load().ips}
	if len(p.IPs) > 0 {
		pe.ip = normalIP(p.IPs[0])
		pe.class = pe.ips.classOf(pe.ip)
	}
	return pe
}

// normalIP compares addresses as they are on the wire: unmapped and without zone.
func normalIP(ip netip.Addr) netip.Addr {
	if ip.Is4In6() || ip.Zone() != "" {
		return ip.Unmap().WithZone("")
	}
	return ip
}

// publishLocked installs a new view: a new address index from the current blocks and,
// when verdicts may have changed (fresh), a new cache.
func (e *Engine) publishLocked(fresh bool) {
	old := e.cur.Load()
	v := &engineView{}
	if old != nil {
		*v = *old
	}
	if old == nil || len(old.ips.blocks) != len(e.blocks) {
		ips := newIPIndex(e.blocks)
		ips.owner = e
		v.ips = &ips
	}
	if fresh || v.cache == nil {
		v.cache = newVerdictCache(e.cacheLimit)
	}
	e.cur.Store(v)
}

// compilePolicy converts p into the engine's form, adding its selectors and blocks to
// the tables.
func (e *Engine) compilePolicy(p *networkingv1.NetworkPolicy) *enginePolicy {
	ep := &enginePolicy{ref: refOf(p), podSel: e.podSelector(&p.Spec.PodSelector)}
	ep.isolates[ingress] = hasType(p, networkingv1.PolicyTypeIngress)
	ep.isolates[egress] = hasType(p, networkingv1.PolicyTypeEgress)
	// Rules of a direction the policy does not isolate are never consulted: the pod is
	// not isolated by this policy for that direction.
	if ep.isolates[ingress] {
		for i, r := range p.Spec.Ingress {
			ep.rules[ingress] = append(ep.rules[ingress], e.compileRule(p.Namespace, i, r.From, r.Ports))
		}
	}
	if ep.isolates[egress] {
		for i, r := range p.Spec.Egress {
			ep.rules[egress] = append(ep.rules[egress], e.compileRule(p.Namespace, i, r.To, r.Ports))
		}
	}
	return ep
}

func (e *Engine) compileRule(ns string, index int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) engineRule {
	r := engineRule{index: index, anyPeer: len(peers) == 0, anyPort: len(ports) == 0}
	for i := range peers {
		r.peers = append(r.peers, e.compilePeer(ns, &peers[i]))
	}
	for i := range ports {
		r.ports = append(r.ports, compilePort(&ports[i]))
	}
	return r
}

func (e *Engine) compilePeer(ns string, p *networkingv1.NetworkPolicyPeer) enginePeer {
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return enginePeer{kind: peerNever}
		}
		b, ok := parseIPBlock(p.IPBlock)
		if !ok {
			return enginePeer{kind: peerNever}
		}
		i, seen := e.blockIndex[b.key()]
		if !seen {
			i = len(e.blocks)
			e.blockIndex[b.key()] = i
			e.blocks = append(e.blocks, b)
		}
		return enginePeer{kind: peerIPBlock, block: i}
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return enginePeer{kind: peerNever}
	}
	out := enginePeer{kind: peerSelector, podSel: -1, nsSel: -1, ns: ns}
	if p.PodSelector != nil {
		if out.podSel = e.podSelector(p.PodSelector); out.podSel < 0 {
			return enginePeer{kind: peerNever}
		}
	}
	if p.NamespaceSelector != nil {
		i, added := e.nsSels.add(p.NamespaceSelector)
		if i < 0 {
			return enginePeer{kind: peerNever}
		}
		if added {
			// Existing namespaces have not met this selector yet.
			for _, ns := range e.namespaces {
				if e.nsSels.sels[i].Matches(ns.labels) {
					ns.sels = insertSorted(ns.sels, int32(i))
				}
			}
		}
		out.nsSel = i
	}
	return out
}

// podSelector adds a pod selector to the table; a new one is matched against the
// existing identities that carry its anchor label (see selectorTable), which keeps a
// policy event from costing a pass over every identity of a large cluster.
func (e *Engine) podSelector(sel *metav1.LabelSelector) int {
	i, added := e.podSels.add(sel)
	if !added {
		return i
	}
	s := e.podSels.sels[i]
	match := func(id *podIdent) {
		if s.Matches(id.labels) {
			id.sels = insertSorted(id.sels, int32(i))
		}
	}
	switch a := e.podSels.anchorOf(i); {
	case a.none:
		for _, id := range e.idents {
			match(id)
		}
	case a.values == nil:
		for id := range e.byLabelKey[a.key] {
			match(id)
		}
	default:
		for _, v := range a.values {
			for id := range e.byLabel[labelKV{a.key, v}] {
				match(id)
			}
		}
	}
	return i
}

func insertSorted(s []int32, v int32) []int32 {
	i, found := slices.BinarySearch(s, v)
	if found {
		return s
	}
	// A new backing array: judge may be reading the old one only under mu, which
	// the caller holds, but keeping identities' slices immutable is the simpler rule.
	out := make([]int32, 0, len(s)+1)
	out = append(out, s[:i]...)
	out = append(out, v)
	return append(out, s[i:]...)
}

func compilePort(p *networkingv1.NetworkPolicyPort) enginePort {
	out := enginePort{proto: corev1.ProtocolTCP}
	if p.Protocol != nil {
		out.proto = *p.Protocol
	}
	switch {
	case p.Port == nil:
		out.kind = portAll
	case p.Port.Type == intstr.String:
		if p.Port.StrVal == "" {
			out.kind = portNever
		} else {
			out.kind, out.name = portNamed, p.Port.StrVal
		}
	default:
		out.kind, out.lo, out.hi = portRange, p.Port.IntVal, p.Port.IntVal
		if p.EndPort != nil {
			out.hi = *p.EndPort
		}
	}
	return out
}

// end is one end of a connection, normalized, as the key and judge see it.
type end struct {
	view
	id    *podIdent // for kind == Pod, resolved under mu only
	pid   uint32
	class uint32
}

// Evaluate judges c. The returned Verdict's slices are shared: read-only.
func (e *Engine) Evaluate(c Connection) Verdict {
	v := e.cur.Load()
	if k, ok := e.fastKey(v, &c); ok {
		if vd, hit := v.cache.get(&k); hit {
			return *vd
		}
	}
	return e.evaluateSlow(&c)
}

// fastKey computes the cache key without locking. ok is false for a self connection, a
// pod not yet in the pod table or an unnumbered protocol, which the slow path handles.
func (e *Engine) fastKey(v *engineView, c *Connection) (cacheKey, bool) {
	proto, ok := protocolCode(v, c.Protocol)
	if !ok {
		return cacheKey{}, false
	}
	var src, dst end
	if !e.fastEnd(v, &c.Src, &src) || !e.fastEnd(v, &c.Dst, &dst) || isSelf(src.view, dst.view) {
		return cacheKey{}, false
	}
	return keyOf(&src, &dst, proto, c.Port), true
}

func (e *Engine) fastEnd(v *engineView, ep *Endpoint, out *end) bool {
	if ep.Kind == Pod && ep.Pod != nil {
		// The common case, normalize inlined. The table holds no host-network pod
		// (they are judged as their node), so a pod found in it is a pod end.
		if pe, ok := e.pods.get(ep.Pod); ok {
			ip := ep.IP
			if !ip.IsValid() {
				ip = pe.ip // the primary address, or none
			}
			out.view = view{kind: Pod, pod: ep.Pod}
			out.pid = pe.id
			if ip == pe.ip && pe.ips == v.ips {
				out.ip, out.class = ip, pe.class
			} else {
				out.ip = normalIP(ip)
				out.class = v.ips.classOf(out.ip)
			}
			return true
		}
		if !ep.Pod.HostNetwork {
			return false // not seen yet: the slow path interns it
		}
	}
	out.view = normalize(*ep)
	if out.kind == Pod {
		pe, ok := e.pods.get(out.pod)
		if !ok {
			return false
		}
		out.pid = pe.id
	}
	out.class = v.ips.classOf(out.ip)
	return true
}

func keyOf(src, dst *end, proto uint8, port int32) cacheKey {
	k := cacheKey{
		src: src.pid, dst: dst.pid, srcClass: src.class, dstClass: dst.class,
		port: port, srcKind: uint8(src.kind), dstKind: uint8(dst.kind), proto: proto,
	}
	k.ownNode = dst.kind == Pod && fromOwnNode(src.view, dst.pod)
	return k
}

func protocolCode(v *engineView, p corev1.Protocol) (uint8, bool) {
	if code := commonProtocol(p); code != 0 {
		return code, true
	}
	code, ok := v.protos[p]
	return code, ok
}

// evaluateSlow is the miss path: it resolves everything under mu, interning pods it has
// not seen, and fills the cache.
func (e *Engine) evaluateSlow(c *Connection) Verdict {
	src, dst := normalize(c.Src), normalize(c.Dst)
	if isSelf(src, dst) {
		return selfVerdict
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	proto, cacheable := e.protocolCodeLocked(c.Protocol)
	v := e.cur.Load()
	s, d := e.endLocked(v, src), e.endLocked(v, dst)
	k := keyOf(&s, &d, proto, c.Port)
	if cacheable {
		if vd, hit := v.cache.get(&k); hit {
			return *vd
		}
	}
	vd := e.judge(&k, v.ips, s.id, d.id, c.Protocol)
	if cacheable {
		return *v.cache.putRef(&k, &vd)
	}
	return vd
}

// protocolCodeLocked numbers a protocol for cache keys; false when the code space is
// used up (every protocol name ever seen has one), and verdicts for it go uncached.
func (e *Engine) protocolCodeLocked(p corev1.Protocol) (uint8, bool) {
	v := e.cur.Load()
	if code, ok := protocolCode(v, p); ok {
		return code, true
	}
	if len(e.protoNames) >= 255-int(protoFirstExtra) {
		return 0, false
	}
	code := protoFirstExtra + uint8(len(e.protoNames))
	e.protoNames = append(e.protoNames, p)
	protos := make(map[corev1.Protocol]uint8, len(v.protos)+1)
	for name, c := range v.protos {
		protos[name] = c
	}
	protos[p] = code
	nv := *v
	nv.protos = protos
	e.cur.Store(&nv)
	return code, true
}

// endLocked resolves an end, interning a pod the engine has not seen.
func (e *Engine) endLocked(v *engineView, w view) end {
	out := end{view: w, class: v.ips.classOf(w.ip)}
	if w.kind != Pod {
		return out
	}
	if pe, ok := e.pods.get(w.pod); ok {
		out.id, out.pid = pe.ident, pe.id
		return out
	}
	// A pod the engine does not track (created after the snapshot, or a copy of one):
	// judged by its own content, and remembered so that its next evaluation is a
	// lock-free hit like any other.
	if len(e.idents) > e.pruneAt {
		e.pruneLocked()
		e.pruneAt = 2*len(e.idents) + minPrunable
	}
	id := e.internLocked(w.pod)
	e.pods.set(w.pod, e.entryLocked(w.pod, id, false))
	out.id, out.pid = id, id.id
	return out
}

// judge computes the verdict for k (see Engine for why nothing else may matter); src
// and dst are the identities k names. mu must be held.
func (e *Engine) judge(k *cacheKey, ips *ipIndex, src, dst *podIdent, proto corev1.Protocol) Verdict {
	var v Verdict
	if EndpointKind(k.srcKind) != Pod {
		v.Egress = Direction{Allowed: true, Exempt: ExemptNotPod}
	} else {
		v.Egress = direction(egress, src, EndpointKind(k.dstKind), dst, k.dstClass, k, ips, proto, dst)
	}
	switch {
	case EndpointKind(k.dstKind) != Pod:
		v.Ingress = Direction{Allowed: true, Exempt: ExemptNotPod}
	case k.ownNode:
		v.Ingress = Direction{Allowed: true, Exempt: ExemptOwnNode}
	default:
		v.Ingress = direction(ingress, dst, EndpointKind(k.srcKind), src, k.srcClass, k, ips, proto, dst)
	}
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	return v
}

// direction decides dir for subject, the identity whose policies apply, against the
// other end (peerKind, peer, peerClass); dstID is where named ports resolve. Policies
// and rules are visited in sorted order, so AllowedBy comes out sorted.
func direction(dir int, subject *podIdent, peerKind EndpointKind, peer *podIdent, peerClass uint32, k *cacheKey, ips *ipIndex, proto corev1.Protocol, dstID *podIdent) Direction {
	if len(subject.isolating[dir]) == 0 {
		return Direction{Allowed: true}
	}
	d := Direction{Isolated: subject.isolated[dir]}
	for _, pol := range subject.isolating[dir] {
		for ri := range pol.rules[dir] {
			r := &pol.rules[dir][ri]
			if ruleMatches(r, ips, peerKind, peer, peerClass, proto, k.port, EndpointKind(k.dstKind), dstID) {
				d.AllowedBy = append(d.AllowedBy, RuleRef{Policy: pol.ref, Index: r.index})
			}
		}
	}
	d.AllowedBy = slices.Clip(d.AllowedBy)
	d.Allowed = len(d.AllowedBy) > 0
	return d
}

func ruleMatches(r *engineRule, ips *ipIndex, peerKind EndpointKind, peer *podIdent, peerClass uint32, proto corev1.Protocol, port int32, dstKind EndpointKind, dst *podIdent) bool {
	if !r.anyPeer {
		ok := false
		for i := range r.peers {
			if peerMatches(&r.peers[i], ips, peerKind, peer, peerClass) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.anyPort {
		return true
	}
	for i := range r.ports {
		if r.ports[i].matches(proto, port, dstKind, dst) {
			return true
		}
	}
	return false
}

func peerMatches(p *enginePeer, ips *ipIndex, kind EndpointKind, id *podIdent, class uint32) bool {
	switch p.kind {
	case peerIPBlock:
		return ips.contains(class, p.block)
	case peerSelector:
		if kind != Pod {
			return false
		}
		if p.nsSel < 0 {
			if id.ns.name != p.ns {
				return false
			}
		} else if !sortedHas(id.ns.sels, p.nsSel) {
			return false
		}
		return p.podSel < 0 || id.selectedBy(p.podSel)
	}
	return false
}

// matches reports whether the port admits proto/port on dst, where named ports resolve.
func (p *enginePort) matches(proto corev1.Protocol, port int32, dstKind EndpointKind, dst *podIdent) bool {
	if p.proto != proto {
		return false
	}
	switch p.kind {
	case portAll:
		return true
	case portRange:
		return p.lo <= port && port <= p.hi
	case portNamed:
		if dstKind != Pod {
			return false
		}
		for _, cp := range dst.named {
			if cp.Name == p.name && cp.Protocol == proto && cp.Port == port {
				return true
			}
		}
	}
	return false
}

// ipBlock is a parsed, valid NetworkPolicy ipBlock.
type ipBlock struct {
	cidr   netip.Prefix
	except []netip.Prefix
}

func parseIPBlock(b *networkingv1.IPBlock) (ipBlock, bool) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return ipBlock{}, false
	}
	out := ipBlock{cidr: cidr.Masked()}
	for _, s := range b.Except {
		e, err := netip.ParsePrefix(s)
		if err != nil {
			return ipBlock{}, false
		}
		out.except = append(out.except, e.Masked())
	}
	sort.Slice(out.except, func(i, j int) bool { return out.except[i].String() < out.except[j].String() })
	return out, true
}

func (b ipBlock) key() string {
	var s strings.Builder
	s.WriteString(b.cidr.String())
	for _, e := range b.except {
		s.WriteByte(' ')
		s.WriteString(e.String())
	}
	return s.String()
}

func (b ipBlock) contains(ip netip.Addr) bool {
	if !b.cidr.Contains(ip) {
		return false
	}
	for _, e := range b.except {
		if e.Contains(ip) {
			return false
		}
	}
	return true
}

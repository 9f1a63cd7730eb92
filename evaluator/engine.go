package evaluator

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Engine returns the Oracle's verdicts at a per-connection cost that does not grow with
// the number of policies. It is safe for concurrent use.
//
// Work is moved out of the hot path in three layers:
//
//   - At construction every policy is compiled once: selectors are converted and
//     deduplicated, ipBlocks are folded into address classes (ipclass.go), and policies
//     are indexed by namespace.
//   - Pods are interned to identities (podIdent) by what a pod contributes to a
//     verdict: namespace, labels and named container ports. Every selector is matched
//     once per identity, and the identity records which policies isolate it per
//     direction. Snapshot pods are interned up front; other pods on first sight.
//   - Verdicts are cached by cacheKey.
//
// Why the cache key is complete: judge, which computes the verdict on a miss, takes the
// key and nothing else (besides the Engine's tables, fixed at construction), so two
// connections with equal keys get equal verdicts by construction. The key holds, per
// end, the normalized kind, the pod identity, and the address class (which ipBlocks
// contain the address); plus protocol, port, and whether the source is the
// destination's own node. What an Endpoint carries beyond that cannot change a
// verdict: pod names and workloads are read by no rule, an address matters only through
// the ipBlocks containing it, a node's name and address only through own-node, a pod's
// unnamed ports never, and the one other relation between the two ends, a pod talking
// to itself, is decided before the cache is consulted.
//
// Verdicts returned by Evaluate share their Isolated and AllowedBy slices with the cache
// and with other verdicts: callers must treat the elements as read-only (copy before
// sorting; appending is safe, the slices are clipped so that append copies).
//
// A cache hit allocates nothing for snapshot pods, nodes and external endpoints. A pod
// the snapshot does not hold costs a few allocations per evaluation, to build the key
// its identity is looked up by.
type Engine struct {
	snap        *cluster.Snapshot
	policies    []enginePolicy   // sorted by namespace/name
	byNamespace map[string][]int // indexes into policies, in order
	podSels     []labels.Selector
	nsSels      []labels.Selector
	ips         ipIndex

	// pods maps every snapshot pod to its identity; read-only after NewEngine, so the
	// hot path reads it without a lock.
	pods map[*cluster.Pod]*podIdent

	// mu guards interning, which continues after construction for pods that are not in
	// the snapshot. Identities are immutable once published.
	mu         sync.RWMutex
	idents     map[string]*podIdent
	namespaces map[string]*nsIdent

	cache verdictCache
}

var _ Evaluator = (*Engine)(nil)

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
	block int // for peerIPBlock: index into ipIndex blocks
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

// nsIdent is a namespace with the namespace selectors that select it.
type nsIdent struct {
	name string
	sels bitset // over Engine.nsSels
}

// podIdent is everything a pod contributes to a verdict.
type podIdent struct {
	id   uint32 // spreads cache keys over shards
	ns   *nsIdent
	sels bitset // over Engine.podSels
	// named holds the container ports that have a name, with the protocol defaulted.
	named []cluster.ContainerPort
	// isolating[dir] lists the policies (indexes, sorted by name) that select the pod and
	// isolate it for dir, and isolated[dir] their names, shared by every verdict.
	isolating [2][]int
	isolated  [2][]PolicyRef
}

// side is one end of a connection as far as a verdict can tell.
type side struct {
	kind  EndpointKind
	pod   *podIdent // set iff kind == Pod
	class uint32    // address class, see ipIndex
}

type cacheKey struct {
	src, dst side
	proto    corev1.Protocol
	port     int32
	// ownNode: the source is the node the destination pod runs on.
	ownNode bool
}

// NewEngine compiles the policies against the snapshot (see NewOracle for the
// arguments). Neither argument may be modified afterwards.
func NewEngine(s *cluster.Snapshot, policies []*networkingv1.NetworkPolicy) *Engine {
	if s == nil {
		s = &cluster.Snapshot{}
	}
	e := &Engine{
		snap:        s,
		byNamespace: map[string][]int{},
		pods:        make(map[*cluster.Pod]*podIdent, len(s.Pods)),
		idents:      map[string]*podIdent{},
		namespaces:  map[string]*nsIdent{},
	}
	c := compiler{e: e, podSels: map[string]int{}, nsSels: map[string]int{}, blocks: map[string]int{}}
	for _, p := range dedupe(policies) {
		e.byNamespace[p.Namespace] = append(e.byNamespace[p.Namespace], len(e.policies))
		e.policies = append(e.policies, c.policy(p))
	}
	e.ips = newIPIndex(c.blockList)
	for _, p := range s.Pods {
		if p.HostNetwork {
			continue // judged as its node, never as a pod (see normalize)
		}
		e.pods[p] = e.intern(p)
	}
	e.cache.init(defaultCacheEntries)
	return e
}

// compiler carries the deduplication tables used while compiling policies.
type compiler struct {
	e         *Engine
	podSels   map[string]int
	nsSels    map[string]int
	blocks    map[string]int
	blockList []ipBlock
}

func (c *compiler) policy(p *networkingv1.NetworkPolicy) enginePolicy {
	ep := enginePolicy{ref: refOf(p), podSel: c.selector(&p.Spec.PodSelector, c.podSels, &c.e.podSels)}
	ep.isolates[ingress] = hasType(p, networkingv1.PolicyTypeIngress)
	ep.isolates[egress] = hasType(p, networkingv1.PolicyTypeEgress)
	// Rules of a direction the policy does not isolate are never consulted: the pod is
	// not isolated by this policy for that direction.
	if ep.isolates[ingress] {
		for i, r := range p.Spec.Ingress {
			ep.rules[ingress] = append(ep.rules[ingress], c.rule(p.Namespace, i, r.From, r.Ports))
		}
	}
	if ep.isolates[egress] {
		for i, r := range p.Spec.Egress {
			ep.rules[egress] = append(ep.rules[egress], c.rule(p.Namespace, i, r.To, r.Ports))
		}
	}
	return ep
}

func (c *compiler) rule(ns string, index int, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) engineRule {
	r := engineRule{index: index, anyPeer: len(peers) == 0, anyPort: len(ports) == 0}
	for i := range peers {
		r.peers = append(r.peers, c.peer(ns, &peers[i]))
	}
	for i := range ports {
		r.ports = append(r.ports, compilePort(&ports[i]))
	}
	return r
}

func (c *compiler) peer(ns string, p *networkingv1.NetworkPolicyPeer) enginePeer {
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return enginePeer{kind: peerNever}
		}
		b, ok := parseIPBlock(p.IPBlock)
		if !ok {
			return enginePeer{kind: peerNever}
		}
		i, seen := c.blocks[b.key()]
		if !seen {
			i = len(c.blockList)
			c.blocks[b.key()] = i
			c.blockList = append(c.blockList, b)
		}
		return enginePeer{kind: peerIPBlock, block: i}
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return enginePeer{kind: peerNever}
	}
	out := enginePeer{kind: peerSelector, podSel: -1, nsSel: -1, ns: ns}
	if p.PodSelector != nil {
		if out.podSel = c.selector(p.PodSelector, c.podSels, &c.e.podSels); out.podSel < 0 {
			return enginePeer{kind: peerNever}
		}
	}
	if p.NamespaceSelector != nil {
		if out.nsSel = c.selector(p.NamespaceSelector, c.nsSels, &c.e.nsSels); out.nsSel < 0 {
			return enginePeer{kind: peerNever}
		}
	}
	return out
}

// selector converts sel and returns its index in *table, adding it unless an equivalent
// one is there already, or -1 when it does not convert. Converted selectors print
// canonically (requirements sorted by key, values validated so they cannot contain the
// separators), so equal strings mean equal selectors.
func (c *compiler) selector(sel *metav1.LabelSelector, seen map[string]int, table *[]labels.Selector) int {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return -1
	}
	key := s.String()
	if i, ok := seen[key]; ok {
		return i
	}
	seen[key] = len(*table)
	*table = append(*table, s)
	return len(*table) - 1
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

// intern returns the identity of p, creating it if needed.
func (e *Engine) intern(p *cluster.Pod) *podIdent {
	named := namedPorts(p.Ports)
	key := identKey(p.Namespace, p.Labels, named)
	e.mu.RLock()
	id, ok := e.idents[key]
	e.mu.RUnlock()
	if ok {
		return id
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if id, ok := e.idents[key]; ok {
		return id
	}
	id = &podIdent{id: uint32(len(e.idents) + 1), ns: e.namespaceLocked(p.Namespace), named: named}
	id.sels = newBitset(len(e.podSels))
	for i, s := range e.podSels {
		if s.Matches(p.Labels) {
			id.sels.set(i)
		}
	}
	for _, pi := range e.byNamespace[p.Namespace] {
		pol := &e.policies[pi]
		if pol.podSel < 0 || !id.sels.has(pol.podSel) {
			continue
		}
		for dir := range 2 {
			if pol.isolates[dir] {
				id.isolating[dir] = append(id.isolating[dir], pi)
				id.isolated[dir] = append(id.isolated[dir], pol.ref)
			}
		}
	}
	for dir := range 2 {
		// Clipped so that a caller appending to a verdict's Isolated gets a copy
		// instead of writing into storage that other verdicts share.
		id.isolated[dir] = slices.Clip(id.isolated[dir])
	}
	e.idents[key] = id
	return id
}

func (e *Engine) namespaceLocked(name string) *nsIdent {
	if ns, ok := e.namespaces[name]; ok {
		return ns
	}
	ns := &nsIdent{name: name, sels: newBitset(len(e.nsSels))}
	l := e.snap.NamespaceLabels(name)
	for i, s := range e.nsSels {
		if s.Matches(l) {
			ns.sels.set(i)
		}
	}
	e.namespaces[name] = ns
	return ns
}

// namedPorts returns the ports a named NetworkPolicy port can resolve to, in a canonical
// order without duplicates.
func namedPorts(ports []cluster.ContainerPort) []cluster.ContainerPort {
	var out []cluster.ContainerPort
	for _, cp := range ports {
		if cp.Name != "" {
			out = append(out, cluster.ContainerPort{Name: cp.Name, Port: cp.Port, Protocol: containerProtocol(cp)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Protocol != b.Protocol {
			return a.Protocol < b.Protocol
		}
		return a.Port < b.Port
	})
	out = compactPorts(out)
	return out
}

func compactPorts(s []cluster.ContainerPort) []cluster.ContainerPort {
	if len(s) < 2 {
		return s
	}
	out := s[:1]
	for _, cp := range s[1:] {
		if cp != out[len(out)-1] {
			out = append(out, cp)
		}
	}
	return out
}

// identKey encodes an identity injectively: every string is length-prefixed, so no
// label value can forge a separator.
func identKey(ns string, l labels.Set, named []cluster.ContainerPort) string {
	keys := make([]string, 0, len(l))
	for k := range l {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	field(ns)
	b.WriteString(strconv.Itoa(len(keys)))
	for _, k := range keys {
		field(k)
		field(l[k])
	}
	for _, cp := range named {
		field(cp.Name)
		field(string(cp.Protocol))
		b.WriteString(strconv.Itoa(int(cp.Port)))
		b.WriteByte(';')
	}
	return b.String()
}

// Evaluate judges c. The returned Verdict's slices are shared: read-only.
func (e *Engine) Evaluate(c Connection) Verdict {
	src, dst := normalize(c.Src), normalize(c.Dst)
	if isSelf(src, dst) {
		return selfVerdict
	}
	k := cacheKey{src: e.side(src), dst: e.side(dst), proto: c.Protocol, port: c.Port}
	k.ownNode = dst.kind == Pod && fromOwnNode(src, dst.pod)
	if v, ok := e.cache.get(&k); ok {
		return v
	}
	v := e.judge(&k)
	e.cache.put(&k, v)
	return v
}

func (e *Engine) side(v view) side {
	s := side{kind: v.kind, class: e.ips.classOf(v.ip)}
	if v.kind == Pod {
		var ok bool
		if s.pod, ok = e.pods[v.pod]; !ok {
			// A pod the snapshot does not hold (or a copy of one): judged by its own
			// content, interned so that its identity is cached like any other.
			s.pod = e.intern(v.pod)
		}
	}
	return s
}

// judge computes the verdict for k from k alone (see Engine for why that matters).
func (e *Engine) judge(k *cacheKey) Verdict {
	var v Verdict
	if k.src.kind != Pod {
		v.Egress = Direction{Allowed: true, Exempt: ExemptNotPod}
	} else {
		v.Egress = e.direction(egress, k.src.pod, k.dst, k)
	}
	switch {
	case k.dst.kind != Pod:
		v.Ingress = Direction{Allowed: true, Exempt: ExemptNotPod}
	case k.ownNode:
		v.Ingress = Direction{Allowed: true, Exempt: ExemptOwnNode}
	default:
		v.Ingress = e.direction(ingress, k.dst.pod, k.src, k)
	}
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	return v
}

// direction decides dir for subject, the pod whose policies apply, against peer, the
// other end. Policies and rules are visited in sorted order, so AllowedBy comes out
// sorted.
func (e *Engine) direction(dir int, subject *podIdent, peer side, k *cacheKey) Direction {
	if len(subject.isolating[dir]) == 0 {
		return Direction{Allowed: true}
	}
	d := Direction{Isolated: subject.isolated[dir]}
	for _, pi := range subject.isolating[dir] {
		pol := &e.policies[pi]
		for ri := range pol.rules[dir] {
			if r := &pol.rules[dir][ri]; e.ruleMatches(r, peer, k) {
				d.AllowedBy = append(d.AllowedBy, RuleRef{Policy: pol.ref, Index: r.index})
			}
		}
	}
	d.AllowedBy = slices.Clip(d.AllowedBy)
	d.Allowed = len(d.AllowedBy) > 0
	return d
}

func (e *Engine) ruleMatches(r *engineRule, peer side, k *cacheKey) bool {
	if !r.anyPeer {
		ok := false
		for i := range r.peers {
			if e.peerMatches(&r.peers[i], peer) {
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
		if r.ports[i].matches(k.proto, k.port, k.dst) {
			return true
		}
	}
	return false
}

func (e *Engine) peerMatches(p *enginePeer, peer side) bool {
	switch p.kind {
	case peerIPBlock:
		return e.ips.contains(peer.class, p.block)
	case peerSelector:
		if peer.kind != Pod {
			return false
		}
		id := peer.pod
		if p.nsSel < 0 {
			if id.ns.name != p.ns {
				return false
			}
		} else if !id.ns.sels.has(p.nsSel) {
			return false
		}
		return p.podSel < 0 || id.sels.has(p.podSel)
	}
	return false
}

// matches reports whether the port admits proto/port on dst, where named ports resolve.
func (p *enginePort) matches(proto corev1.Protocol, port int32, dst side) bool {
	if p.proto != proto {
		return false
	}
	switch p.kind {
	case portAll:
		return true
	case portRange:
		return p.lo <= port && port <= p.hi
	case portNamed:
		if dst.kind != Pod {
			return false
		}
		for _, cp := range dst.pod.named {
			if cp.Name == p.name && cp.Protocol == proto && cp.Port == port {
				return true
			}
		}
	}
	return false
}

// bitset is a fixed-size set of small integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) set(i int)      { b[i/64] |= 1 << (i % 64) }
func (b bitset) has(i int) bool { return b[i/64]&(1<<(i%64)) != 0 }

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

package evaluator

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Ref is an endpoint resolved against one Engine: what the cache key needs of it
// (identity, address class, kind), computed once, so that judging a connection between
// two Refs reads neither the pod table nor the pods. It is a small value (64 bytes, one
// cache line when aligned) with no allocation behind it; copy it, keep it, share it
// between goroutines. The zero Ref is an External endpoint without an address.
//
// A Ref never goes wrong, only slow. Its identity number names the content of the pod
// object it was resolved from (namespace, labels, named ports), which is what Evaluate
// judges for that object too, and identity numbers are never reused: pod, namespace and
// policy updates leave its meaning intact (UpdatePod installs a new object; a Ref to the
// old one keeps judging the old one, exactly like a Connection naming it). Its address
// class is only valid under the address index it was computed with, which a policy
// update may replace: EvaluateRef then recomputes the class on every call until the
// caller resolves again (Fresh says when). A Ref handed to another Engine is re-resolved
// by that engine on every call.
type Ref struct {
	// ips is the address index class was computed under; its owner is the engine
	// that resolved the Ref, and id is that engine's identity number (0 for an end
	// that is not a pod).
	ips   *ipIndex
	pod   *cluster.Pod // for kind Pod
	id    uint32
	class uint32
	// The normalized endpoint (see view), packed: the address as its 16 bytes and
	// family (0 invalid, 4 or 6; normalized addresses are unmapped and zoneless).
	addr [16]byte
	node string
	kind uint8
	fam  uint8
}

func newRef(ips *ipIndex, id, class uint32, w *view) Ref {
	r := Ref{ips: ips, pod: w.pod, id: id, class: class, node: w.node, kind: uint8(w.kind)}
	switch {
	case w.ip.Is4():
		r.fam = 4
	case w.ip.Is6():
		r.fam = 6
	}
	r.addr = w.ip.As16()
	return r
}

// view unpacks r as both evaluators see an endpoint.
func (r *Ref) view() view {
	w := view{kind: EndpointKind(r.kind), pod: r.pod, node: r.node}
	switch r.fam {
	case 4:
		w.ip = netip.AddrFrom16(r.addr).Unmap()
	case 6:
		w.ip = netip.AddrFrom16(r.addr)
	}
	if w.kind == Pod && w.pod == nil {
		w.kind = External // the zero Ref
	}
	return w
}

// Resolve resolves ep for EvaluateRef. It takes no lock for a pod the engine knows
// (snapshot pods, pods given to UpdatePod, pods seen before); a pod seen for the first
// time is interned, once, like Evaluate does.
func (e *Engine) Resolve(ep Endpoint) Ref {
	v := e.cur.Load()
	var x end
	if e.fastEnd(v, &ep, &x) {
		return newRef(v.ips, x.pid, x.class, &x.view)
	}
	w := normalize(ep)
	e.mu.Lock()
	defer e.mu.Unlock()
	v = e.cur.Load()
	x = e.endLocked(v, w)
	return newRef(v.ips, x.pid, x.class, &w)
}

// Fresh reports whether r takes the fastest path on e: it was resolved by e, under e's
// current address index. A Ref that is not fresh is still judged right.
func (e *Engine) Fresh(r *Ref) bool { return r.ips == e.cur.Load().ips }

// Version names the state of e that verdicts and Refs' freshness depend on. While two
// calls return equal Versions, EvaluateRef gives equal verdicts for the same Refs,
// protocol and port, and Fresh the same answer: a caller may keep what it derived from
// verdicts and compare Versions instead of asking again. Every namespace or policy
// change (anything that starts a new verdict cache or address index) makes a new
// Version; a Version holds the state it names, so it is never reused.
type Version struct{ v *engineView }

// Version returns e's current Version (see the type).
func (e *Engine) Version() Version { return Version{e.cur.Load()} }

// RefKey is what a verdict reads of one end (see Ref.Key).
type RefKey struct {
	id, class uint32
	kind      uint8
}

// Key returns what EvaluateRef reads of r, with one exception. Two connections are
// judged alike by one engine under one Version when their sources' Keys are equal and
// their destinations' Keys are equal, on the same protocol and port, provided every Ref
// is fresh (Fresh) and neither connection is
//
//   - a pod talking to itself (the same pod at both ends), or
//   - from a node (Host) to a pod, where the own-node exemption reads which node and
//     which pod.
//
// The cache key holds nothing else of an end (see Engine). A caller may so share one
// judgement among the pods of a workload, or the addresses of an ipBlock.
func (r *Ref) Key() RefKey {
	return RefKey{id: r.id, class: r.class, kind: r.kind}
}

// Endpoint returns the endpoint r was resolved from, normalized as every verdict sees
// it: a host-network pod is its node, an endpoint of unknown kind is External, and the
// address is unmapped and zoneless.
func (r *Ref) Endpoint() Endpoint {
	w := r.view()
	return Endpoint{Kind: w.kind, Pod: w.pod, IP: w.ip, Node: w.node}
}

// EvaluateRef judges the connection from src to dst on proto and port, as Evaluate
// judges the Connection of the endpoints they were resolved from. The verdict is
// immutable and shared with every connection that has the same cache key (and, often,
// with others with the same verdict): it must not be modified. A hit takes no lock and
// allocates nothing.
func (e *Engine) EvaluateRef(src, dst *Ref, proto corev1.Protocol, port int32) *Verdict {
	v := e.cur.Load()
	code := commonProtocol(proto)
	// The common case builds the key's words straight from the Refs. The rest (another
	// protocol, a Ref not fresh, a pod talking to itself, a node to a pod) takes
	// evaluateRefOther, which is lock-free too on a hit.
	if code == 0 || src.ips != v.ips || dst.ips != v.ips || src.pod == dst.pod || (src.kind == uint8(Host) && dst.kind == uint8(Pod)) {
		return e.evaluateRefOther(v, src, dst, proto, port)
	}
	k := packedKey{
		uint64(src.id) | uint64(dst.id)<<32,
		uint64(src.class) | uint64(dst.class)<<32,
		uint64(uint32(port)) | uint64(src.kind)<<32 | uint64(dst.kind)<<40 | uint64(code)<<48,
	}
	if vd, hit := v.cache.getPacked(&k); hit {
		return vd
	}
	return e.evaluateRefSlow(src, dst, proto, port)
}

// commonProtocol is protocolCode for TCP, UDP and SCTP, without the map lookup for other
// protocols, so that it inlines into EvaluateRef; 0 for any other protocol.
func commonProtocol(p corev1.Protocol) uint8 {
	switch p {
	case corev1.ProtocolTCP:
		return protoTCP
	case corev1.ProtocolUDP:
		return protoUDP
	case corev1.ProtocolSCTP:
		return protoSCTP
	}
	return 0
}

// evaluateRefOther is EvaluateRef beyond its common case.
func (e *Engine) evaluateRefOther(v *engineView, src, dst *Ref, proto corev1.Protocol, port int32) *Verdict {
	code, ok := protocolCode(v, proto)
	if !ok || !e.owns(src) || !e.owns(dst) {
		return e.evaluateRefSlow(src, dst, proto, port)
	}
	sv, dv := src.view(), dst.view()
	if isSelf(sv, dv) {
		return &selfVerdict
	}
	k := cacheKey{
		src: src.id, dst: dst.id, srcClass: src.class, dstClass: dst.class,
		port: port, srcKind: src.kind, dstKind: dst.kind, proto: code,
	}
	// Resolved before the address index changed: the identities stand, the classes
	// are found again.
	if src.ips != v.ips {
		k.srcClass = v.ips.classOf(sv.ip)
	}
	if dst.ips != v.ips {
		k.dstClass = v.ips.classOf(dv.ip)
	}
	k.ownNode = dv.kind == Pod && fromOwnNode(sv, dv.pod)
	if vd, hit := v.cache.get(&k); hit {
		return vd
	}
	return e.evaluateRefSlow(src, dst, proto, port)
}

// owns reports whether e resolved r (a zero Ref has no owner).
func (e *Engine) owns(r *Ref) bool { return r.ips != nil && r.ips.owner == e }

// evaluateRefSlow is EvaluateRef's miss path, evaluateSlow's counterpart.
func (e *Engine) evaluateRefSlow(src, dst *Ref, proto corev1.Protocol, port int32) *Verdict {
	sv, dv := src.view(), dst.view()
	if isSelf(sv, dv) {
		return &selfVerdict
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	code, cacheable := e.protocolCodeLocked(proto)
	v := e.cur.Load()
	s, d := e.refEndLocked(v, src, sv), e.refEndLocked(v, dst, dv)
	k := keyOf(&s, &d, code, port)
	if cacheable {
		if vd, hit := v.cache.get(&k); hit {
			return vd
		}
	}
	vd := e.judge(&k, v.ips, s.id, d.id, proto)
	if cacheable {
		return v.cache.putRef(&k, &vd)
	}
	out := new(Verdict)
	*out = vd
	return out
}

// refEndLocked resolves r's end (w, unpacked) for judging. A pod's identity is looked
// up again (the identity r names may have been pruned since, and judge needs its
// tables), but the key keeps r's number: both name the same content, so the verdict is
// the same, and the cached entry is then one the lock-free path finds for r.
func (e *Engine) refEndLocked(v *engineView, r *Ref, w view) end {
	x := e.endLocked(v, w)
	if e.owns(r) && x.kind == Pod {
		x.pid = r.id
	}
	return x
}

package evaluator

// The Oracle is the specification of networking.k8s.io/v1 NetworkPolicy as shadowgate
// reads it, written to be checked against the API reference line by line rather than to
// be fast. The Engine must return exactly the same Verdicts; differential_test.go holds it
// to that.
//
// Decisions where the API reference leaves room, or where inputs the API server would
// reject must still get a deterministic verdict (Validate reports all of the latter):
//
//   - ipBlock matches any address on the wire, including pod and node addresses. The
//     reference only says ipBlock "describes a particular CIDR"; the upstream e2e suite
//     (test/e2e/network/netpol, "should enforce except clause while egress access to
//     server in CIDR block" and the other ipBlock cases) expects pod IPs to match, and
//     Cilium, whose flows we judge, behaves the same. Host and External endpoints are
//     matched by ipBlocks only. An endpoint without an address matches no ipBlock.
//   - An ipBlock whose cidr or any except entry does not parse matches nothing: we cannot
//     tell what it was meant to carve out. CIDRs are compared as written; only addresses
//     are unmapped.
//   - A selector that does not convert (metav1.LabelSelectorAsSelector fails: unknown
//     operator, In without values, invalid label value...) selects nothing. A peer with
//     no field set, or with an ipBlock next to a selector, matches nothing.
//   - A named port resolves on the destination pod (for ingress and egress rules alike)
//     against container ports with that name and the rule's protocol; it never matches a
//     destination that is not a pod, and an empty name matches nothing. endPort is ignored
//     on a named port or without a port; an endPort below port matches nothing.
//   - policyTypes values other than Ingress and Egress are ignored; a set but useless
//     policyTypes isolates nothing.
//   - Policies are deduplicated by namespace/name, last one wins (see dedupe).
//   - Ingress from the destination's own node is exempt; egress to it is not (Cilium
//     enforces egress to the host like any other destination).

import (
	"net/netip"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Oracle evaluates every policy for every connection. It is safe for concurrent use.
type Oracle struct {
	snap     *cluster.Snapshot
	policies []*networkingv1.NetworkPolicy
}

var _ Evaluator = (*Oracle)(nil)

// NewOracle returns an Oracle over the snapshot's namespaces and the given policies (the
// snapshot's own NetworkPolicies are not implied: pass them in). A nil snapshot is an
// empty one. Neither argument may be modified afterwards.
func NewOracle(s *cluster.Snapshot, policies []*networkingv1.NetworkPolicy) *Oracle {
	if s == nil {
		s = &cluster.Snapshot{}
	}
	return &Oracle{snap: s, policies: dedupe(policies)}
}

// Evaluate judges c.
func (o *Oracle) Evaluate(c Connection) Verdict {
	src, dst := normalize(c.Src), normalize(c.Dst)
	if isSelf(src, dst) {
		return selfVerdict
	}
	var v Verdict
	if src.kind != Pod {
		v.Egress = Direction{Allowed: true, Exempt: ExemptNotPod}
	} else {
		v.Egress = o.judge(networkingv1.PolicyTypeEgress, src.pod, dst, dst, c)
	}
	switch {
	case dst.kind != Pod:
		v.Ingress = Direction{Allowed: true, Exempt: ExemptNotPod}
	case fromOwnNode(src, dst.pod):
		v.Ingress = Direction{Allowed: true, Exempt: ExemptOwnNode}
	default:
		v.Ingress = o.judge(networkingv1.PolicyTypeIngress, dst.pod, src, dst, c)
	}
	v.Allowed = v.Egress.Allowed && v.Ingress.Allowed
	return v
}

var selfVerdict = Verdict{
	Allowed: true,
	Egress:  Direction{Allowed: true, Exempt: ExemptSelf},
	Ingress: Direction{Allowed: true, Exempt: ExemptSelf},
}

// judge decides one direction for subject, the pod whose policies apply: peer is the
// other end, and dst is where named ports resolve.
func (o *Oracle) judge(dir networkingv1.PolicyType, subject *cluster.Pod, peer, dst view, c Connection) Direction {
	var d Direction
	for _, p := range o.policies {
		if p.Namespace != subject.Namespace || !selects(&p.Spec.PodSelector, subject.Labels) || !hasType(p, dir) {
			continue
		}
		ref := refOf(p)
		d.Isolated = append(d.Isolated, ref)
		if dir == networkingv1.PolicyTypeIngress {
			for i, r := range p.Spec.Ingress {
				if o.ruleMatches(p.Namespace, r.From, r.Ports, peer, dst, c) {
					d.AllowedBy = append(d.AllowedBy, RuleRef{Policy: ref, Index: i})
				}
			}
		} else {
			for i, r := range p.Spec.Egress {
				if o.ruleMatches(p.Namespace, r.To, r.Ports, peer, dst, c) {
					d.AllowedBy = append(d.AllowedBy, RuleRef{Policy: ref, Index: i})
				}
			}
		}
	}
	sort.Slice(d.Isolated, func(i, j int) bool { return lessRef(d.Isolated[i], d.Isolated[j]) })
	sort.Slice(d.AllowedBy, func(i, j int) bool { return lessRule(d.AllowedBy[i], d.AllowedBy[j]) })
	d.Allowed = len(d.Isolated) == 0 || len(d.AllowedBy) > 0
	return d
}

// hasType reports whether p isolates for dir: policyTypes as given, or when unset,
// Ingress always and Egress when there is at least one egress rule.
func hasType(p *networkingv1.NetworkPolicy, dir networkingv1.PolicyType) bool {
	if len(p.Spec.PolicyTypes) == 0 {
		return dir == networkingv1.PolicyTypeIngress || len(p.Spec.Egress) > 0
	}
	for _, t := range p.Spec.PolicyTypes {
		if t == dir {
			return true
		}
	}
	return false
}

// ruleMatches: an empty peer list admits every peer and an empty port list every
// port; otherwise some peer and some port must both match.
func (o *Oracle) ruleMatches(policyNS string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort, peer, dst view, c Connection) bool {
	peerOK := len(peers) == 0
	for i := range peers {
		if o.peerMatches(policyNS, &peers[i], peer) {
			peerOK = true
			break
		}
	}
	if !peerOK {
		return false
	}
	if len(ports) == 0 {
		return true
	}
	for i := range ports {
		if portMatches(&ports[i], dst, c) {
			return true
		}
	}
	return false
}

func (o *Oracle) peerMatches(policyNS string, p *networkingv1.NetworkPolicyPeer, e view) bool {
	if p.IPBlock != nil {
		if p.PodSelector != nil || p.NamespaceSelector != nil {
			return false
		}
		return ipBlockMatches(p.IPBlock, e.ip)
	}
	if p.PodSelector == nil && p.NamespaceSelector == nil {
		return false
	}
	if e.kind != Pod {
		return false
	}
	if p.NamespaceSelector == nil {
		if e.pod.Namespace != policyNS {
			return false
		}
	} else if !selects(p.NamespaceSelector, o.snap.NamespaceLabels(e.pod.Namespace)) {
		return false
	}
	return p.PodSelector == nil || selects(p.PodSelector, e.pod.Labels)
}

// selects applies a selector with the API machinery's own semantics; one that does not
// convert selects nothing.
func selects(sel *metav1.LabelSelector, l labels.Set) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(l)
}

func ipBlockMatches(b *networkingv1.IPBlock, ip netip.Addr) bool {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		return false
	}
	except := make([]netip.Prefix, 0, len(b.Except))
	for _, s := range b.Except {
		e, err := netip.ParsePrefix(s)
		if err != nil {
			return false
		}
		except = append(except, e)
	}
	if !ip.IsValid() || !cidr.Contains(ip) {
		return false
	}
	for _, e := range except {
		if e.Contains(ip) {
			return false
		}
	}
	return true
}

func portMatches(p *networkingv1.NetworkPolicyPort, dst view, c Connection) bool {
	proto := corev1.ProtocolTCP
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	if proto != c.Protocol {
		return false
	}
	if p.Port == nil {
		return true
	}
	if p.Port.Type == intstr.String {
		return namedPortMatches(p.Port.StrVal, proto, dst, c.Port)
	}
	if p.EndPort != nil {
		return p.Port.IntVal <= c.Port && c.Port <= *p.EndPort
	}
	return p.Port.IntVal == c.Port
}

func namedPortMatches(name string, proto corev1.Protocol, dst view, port int32) bool {
	if name == "" || dst.kind != Pod {
		return false
	}
	for _, cp := range dst.pod.Ports {
		if cp.Name == name && containerProtocol(cp) == proto && cp.Port == port {
			return true
		}
	}
	return false
}

// containerProtocol applies the API default (TCP) to a container port.
func containerProtocol(cp cluster.ContainerPort) corev1.Protocol {
	if cp.Protocol == "" {
		return corev1.ProtocolTCP
	}
	return cp.Protocol
}

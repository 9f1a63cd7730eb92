package evaluator

import (
	"net/netip"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// view is an Endpoint as both evaluators judge it. The Oracle and the Engine share this
// one normalization so that they can only disagree on policy semantics, which is what
// the differential test is there to catch; the normalization itself is covered by named
// cases in semantics_test.go.
type view struct {
	kind EndpointKind
	pod  *cluster.Pod // set iff kind == Pod
	ip   netip.Addr   // unmapped, zoneless; invalid when unknown
	node string       // for kind == Host
}

// normalize resolves the facts an Endpoint leaves implicit:
//
//   - A host-network pod is judged as its node: NetworkPolicy does not apply to the host
//     network namespace, so it is never isolated and pod selectors never select it (only
//     ipBlocks match its address, as for any node).
//   - A Pod endpoint without a Pod, or an unknown kind, is judged as External: nothing but
//     an ipBlock can match it, which is the only safe reading of an endpoint we know
//     nothing about.
//   - A pod endpoint without an address on the wire is assumed to use the pod's primary
//     address (status.podIPs[0]); a pod with no address at all (a synthesized pod)
//     matches no ipBlock.
//   - Addresses are compared unmapped (::ffff:10.0.0.1 is 10.0.0.1) and without IPv6
//     zone, as they are on the wire.
func normalize(e Endpoint) view {
	v := view{kind: e.Kind, ip: e.IP, node: e.Node}
	switch e.Kind {
	case Pod:
		if e.Pod == nil {
			v.kind = External
			break
		}
		if !v.ip.IsValid() && len(e.Pod.IPs) > 0 {
			v.ip = e.Pod.IPs[0]
		}
		if e.Pod.HostNetwork {
			v.kind = Host
			if !v.ip.IsValid() {
				v.ip = e.Pod.HostIP
			}
			if v.node == "" {
				v.node = e.Pod.NodeName
			}
			break
		}
		v.pod = e.Pod
		v.node = ""
	case Host:
	default:
		v.kind = External
	}
	if v.kind == External {
		v.node = ""
	}
	if v.ip.IsValid() {
		v.ip = v.ip.Unmap().WithZone("")
	}
	return v
}

// isSelf reports whether a connection goes from a pod to itself, which no policy can
// block (in either direction).
func isSelf(src, dst view) bool {
	return src.kind == Pod && dst.kind == Pod && src.pod == dst.pod
}

// fromOwnNode reports whether src is the node dst runs on: ingress from it is always
// allowed, so that kubelet probes keep working. The node is recognized by name or by
// address; both must be known to count, since two unknowns are not a match.
func fromOwnNode(src view, dst *cluster.Pod) bool {
	if src.kind != Host {
		return false
	}
	if src.node != "" && src.node == dst.NodeName {
		return true
	}
	return src.ip.IsValid() && dst.HostIP.IsValid() && src.ip == dst.HostIP.Unmap().WithZone("")
}

package simulate

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/flows"
)

// Cilium label sources that name reserved identities.
const (
	labelWorld      = "reserved:world"
	labelWorldIPv4  = "reserved:world-ipv4"
	labelWorldIPv6  = "reserved:world-ipv6"
	labelHost       = "reserved:host"
	labelRemoteNode = "reserved:remote-node"
	labelK8sPrefix  = "k8s:"
	labelNamespace  = "io.kubernetes.pod.namespace"
)

// resolver maps a Hubble endpoint onto the snapshot. Order, as documented in the README:
// namespace/pod_name in the snapshot, else the IP, else Hubble's own workloads and labels;
// reserved:world and IPs outside every pod and node are external; reserved:host and
// reserved:remote-node are nodes.
type resolver struct {
	snap *cluster.Snapshot
	// pods finds a snapshot pod by namespace and name without building the
	// "namespace/name" key Snapshot.Pod needs, which was an allocation per flow end.
	pods map[podKey]*cluster.Pod
	// ghosts are pods that Hubble saw but the snapshot does not have (created after the
	// snapshot was taken), built from Hubble's labels and workloads, one per namespace/pod.
	ghosts map[string]*cluster.Pod
	// byWorkload finds a representative pod for a workload named by Hubble.
	byWorkload map[cluster.WorkloadID]*cluster.Pod
}

type podKey struct{ namespace, name string }

func newResolver(s *cluster.Snapshot) *resolver {
	r := &resolver{
		snap: s, pods: make(map[podKey]*cluster.Pod, len(s.Pods)),
		ghosts: map[string]*cluster.Pod{}, byWorkload: map[cluster.WorkloadID]*cluster.Pod{},
	}
	for _, p := range s.Pods {
		r.pods[podKey{p.Namespace, p.Name}] = p
	}
	for _, p := range s.Pods {
		if p.HostNetwork {
			continue
		}
		if _, ok := r.byWorkload[p.Workload]; !ok {
			r.byWorkload[p.Workload] = p
		}
		// Hubble reports workloads without the namespace-independent kind subtleties
		// (a ReplicaSet-less Deployment is "Deployment"); also index by name alone.
		anyKind := cluster.WorkloadID{Namespace: p.Workload.Namespace, Name: p.Workload.Name}
		if _, ok := r.byWorkload[anyKind]; !ok {
			r.byWorkload[anyKind] = p
		}
	}
	return r
}

// resolve returns the endpoint, or ok=false when nothing identifies it.
// observer is the node that observed the flow (reserved:host is that node); local says
// the endpoint is on that node (Hubble observed the flow at this endpoint), which is how a
// pod missing from the snapshot learns its node.
func (r *resolver) resolve(ep *flows.Endpoint, observer string, local bool) (evaluator.Endpoint, bool) {
	out := evaluator.Endpoint{IP: ep.IP}
	if hasLabel(ep.Labels, labelHost) {
		out.Kind = evaluator.Host
		out.Node = observer
		if n, ok := r.snap.NodeByIP(ep.IP); ok {
			out.Node = n
		}
		return out, true
	}
	if hasLabel(ep.Labels, labelRemoteNode) {
		out.Kind = evaluator.Host
		if n, ok := r.snap.NodeByIP(ep.IP); ok {
			out.Node = n
		}
		return out, true
	}
	if ep.PodName != "" && ep.Namespace != "" {
		if p := r.pods[podKey{ep.Namespace, ep.PodName}]; p != nil {
			return podEndpoint(p, ep.IP), true
		}
	}
	if ep.IP.IsValid() {
		if p := r.snap.PodByIP(ep.IP); p != nil {
			return podEndpoint(p, ep.IP), true
		}
		if n, ok := r.snap.NodeByIP(ep.IP); ok {
			out.Kind = evaluator.Host
			out.Node = n
			return out, true
		}
	}
	if ep.Namespace != "" {
		node := ""
		if local {
			node = observer
		}
		if p := r.ghost(ep, node); p != nil {
			return podEndpoint(p, ep.IP), true
		}
	}
	if hasLabel(ep.Labels, labelWorld) || hasLabel(ep.Labels, labelWorldIPv4) || hasLabel(ep.Labels, labelWorldIPv6) || ep.IP.IsValid() {
		out.Kind = evaluator.External
		return out, true
	}
	return out, false
}

func podEndpoint(p *cluster.Pod, ip netip.Addr) evaluator.Endpoint {
	if p.HostNetwork {
		return evaluator.Endpoint{Kind: evaluator.Host, IP: ip, Node: p.NodeName}
	}
	if !ip.IsValid() && len(p.IPs) > 0 {
		ip = p.IPs[0]
	}
	return evaluator.Endpoint{Kind: evaluator.Pod, Pod: p, IP: ip}
}

// ghost finds or builds a pod for an endpoint the snapshot does not know (created after
// the snapshot was taken, or a snapshot of controllers alone): a copy of a pod of the
// workload Hubble names, else a pod made from Hubble's k8s: labels. Ghosts are kept per
// namespace/pod name so each keeps its own node: the kubelet's probes from that node must
// meet the own-node exemption.
func (r *resolver) ghost(ep *flows.Endpoint, node string) *cluster.Pod {
	key := ep.Namespace + "/" + ep.PodName
	if p, ok := r.ghosts[key]; ok && ep.PodName != "" {
		if p.NodeName == "" && node != "" {
			// The engine remembers pods by address and they are read-only once seen: learn
			// the node on a fresh copy instead of changing the one already judged.
			cp := *p
			cp.NodeName = node
			p = &cp
			r.ghosts[key] = p
		}
		return p
	}
	var rep *cluster.Pod
	for _, w := range ep.Workloads {
		if rep = r.byWorkload[cluster.WorkloadID{Namespace: ep.Namespace, Name: w.Name, Kind: w.Kind}]; rep != nil {
			break
		}
		if rep = r.byWorkload[cluster.WorkloadID{Namespace: ep.Namespace, Name: w.Name}]; rep != nil {
			break
		}
	}
	var p *cluster.Pod
	switch {
	case rep != nil && ep.PodName == "":
		// Nothing tells this pod from its siblings: the representative stands for all.
		return rep
	case rep != nil:
		cp := *rep
		cp.Name, cp.NodeName, cp.IPs, cp.HostIP, cp.Synthesized = ep.PodName, node, nil, netip.Addr{}, true
		cp.Origin = "hubble workloads, as " + rep.Key()
		p = &cp
	default:
		lbls := k8sLabels(ep.Labels)
		if lbls == nil || ep.PodName == "" {
			return nil
		}
		id := cluster.WorkloadID{Namespace: ep.Namespace, Name: ep.PodName, Kind: "Pod"}
		if len(ep.Workloads) > 0 {
			id = cluster.WorkloadID{Namespace: ep.Namespace, Name: ep.Workloads[0].Name, Kind: ep.Workloads[0].Kind}
		}
		p = &cluster.Pod{Namespace: ep.Namespace, Name: ep.PodName, Labels: lbls, Workload: id, NodeName: node, Synthesized: true, Origin: "hubble labels"}
	}
	if ep.IP.IsValid() {
		p.IPs = []netip.Addr{ep.IP}
	}
	r.ghosts[key] = p
	return p
}

// k8sLabels extracts the pod labels from Cilium's "k8s:key=value" security labels, leaving
// out the ones Cilium derives (namespace, service account, cluster), which are not pod
// labels.
func k8sLabels(ls []string) labels.Set {
	var out labels.Set
	for _, l := range ls {
		if !strings.HasPrefix(l, labelK8sPrefix) {
			continue
		}
		kv := strings.TrimPrefix(l, labelK8sPrefix)
		k, v, _ := strings.Cut(kv, "=")
		if k == labelNamespace || strings.HasPrefix(k, "io.cilium.") || strings.HasPrefix(k, "io.kubernetes.pod.") {
			continue
		}
		if out == nil {
			out = labels.Set{}
		}
		out[k] = v
	}
	return out
}

func hasLabel(ls []string, want string) bool {
	for _, l := range ls {
		if l == want {
			return true
		}
	}
	return false
}

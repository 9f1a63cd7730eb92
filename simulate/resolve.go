package simulate

import (
	"net/netip"
	"strings"
	"unsafe"

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
	// memo sits in front of pods. The flow decoders intern strings, so the namespace and
	// pod name of a busy pod arrive as the same two string pointers line after line: a
	// table keyed by those pointers answers with a probe of a small index, where the map
	// hashes and compares both strings and misses cache on large clusters. Strings that
	// are not interned only miss.
	memo podMemo
	// conns remembers judgements by the classes of their ends (see connMemo). Its keys
	// may name memo slots, so it goes with them.
	conns connMemo
	// ofWorkload lists each workload's pods (host-network ones left out) in snapshot
	// order, for re-judging stored edges; built on first use, since a replay never needs
	// it.
	ofWorkload map[cluster.WorkloadID][]*cluster.Pod
}

type podKey struct{ namespace, name string }

// podMemoSlot remembers a snapshot pod found by name, and keeps its endpoint resolved by
// both engines (refs, for the address ip), so a busy pod is resolved once, not once per
// flow and engine.
//
// What a flow reads of a slot once its connection is in the connMemo (class and ep) comes
// first and fills 64 bytes, and slots are 256 bytes, so that it is one cache line.
type podMemoSlot struct {
	// class is the pod's class in the connMemo generation gen (0: none).
	class, gen uint32
	// ep is podEndpoint(pod, netip.Addr{}), so that a flow end reads the slot, not the pod.
	ep  evaluator.Endpoint
	pod *cluster.Pod
	// peer is the pod's report peer number plus one (0: not numbered yet), enforced
	// whether its namespace is enforced (valid once peer is set); see aggregate.add.
	peer     int32
	enforced bool
	ip       netip.Addr
	refs     refPair
	// idx is the slot's position in podMemo.entries plus one.
	idx uint32
	_   [20]byte
}

// endpoint is podEndpoint(m.pod, ip).
func (m *podMemoSlot) endpoint(ip netip.Addr) evaluator.Endpoint {
	out := m.ep
	if ip.IsValid() {
		out.IP = ip
	}
	return out
}

// refPair is an endpoint resolved by the current and the enforced engine.
type refPair struct{ cur, enf evaluator.Ref }

// podMemo finds memo entries by string addresses: an open-addressing table of keys (the
// address pairs seen, inline, so that a probe reads one line of it), each naming the
// entry of its pod. Entries are per pod, so they are bounded by the snapshot's pods; keys
// grow with the distinct address pairs and start over past maxKeys (decoders empty their
// string tables when full, so addresses churn in a long run), without losing the
// entries.
type podMemo struct {
	index   []memoKey
	keys    int // in index
	entries []podMemoSlot
	byPod   map[*cluster.Pod]uint32
	maxKeys int
}

// memoKey holds the strings themselves, so while it exists their addresses cannot be
// reused for other text: equal addresses and lengths mean equal strings. entry is a
// position in podMemo.entries plus one; 0 is an empty key.
type memoKey struct {
	namespace, name string
	entry           uint32
}

func memoHash(namespace, name string) uint64 {
	h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(namespace))))*0x9e3779b97f4a7c15 ^
		uint64(uintptr(unsafe.Pointer(unsafe.StringData(name))))*0xbf58476d1ce4e5b9
	return h ^ h>>31
}

func sameString(a, b string) bool {
	return len(a) == len(b) && unsafe.StringData(a) == unsafe.StringData(b)
}

func (m *podMemo) get(namespace, name string) *podMemoSlot {
	if len(m.index) == 0 {
		return nil
	}
	mask := uint64(len(m.index) - 1)
	for i := memoHash(namespace, name) & mask; ; i = (i + 1) & mask {
		k := &m.index[i]
		if k.entry == 0 {
			return nil
		}
		if sameString(k.name, name) && sameString(k.namespace, namespace) {
			return &m.entries[k.entry-1]
		}
	}
}

// add remembers pod under the addresses of namespace and name, which get did not find.
// Entries handed out before may move (callers check the pod they hold).
func (m *podMemo) add(namespace, name string, pod *cluster.Pod) *podMemoSlot {
	e, ok := m.byPod[pod]
	if !ok {
		e = uint32(len(m.entries))
		m.entries = append(m.entries, podMemoSlot{idx: e + 1, pod: pod, ep: podEndpoint(pod, netip.Addr{})})
		m.byPod[pod] = e
	}
	if m.keys >= m.maxKeys {
		clear(m.index)
		m.keys = 0
	}
	if (m.keys+1)*2 > len(m.index) {
		old := m.index
		m.index = make([]memoKey, max(1024, 2*len(m.index)))
		for i := range old {
			if old[i].entry != 0 {
				m.insert(old[i])
			}
		}
	}
	m.insert(memoKey{namespace: namespace, name: name, entry: e + 1})
	m.keys++
	return &m.entries[e]
}

func (m *podMemo) insert(k memoKey) {
	mask := uint64(len(m.index) - 1)
	i := memoHash(k.namespace, k.name) & mask
	for m.index[i].entry != 0 {
		i = (i + 1) & mask
	}
	m.index[i] = k
}

// pod finds the snapshot pod namespace/name (both non-empty) and its memo slot, or nil.
// The resolver's pods never change (an update builds a new resolver), so a slot is
// never stale.
func (r *resolver) pod(namespace, name string) *podMemoSlot {
	if m := r.memo.get(namespace, name); m != nil {
		return m
	}
	p := r.pods[podKey{namespace, name}]
	if p == nil {
		return nil
	}
	return r.memo.add(namespace, name, p)
}

// workloadPods returns the pods of workload w that are not on the host network, in
// snapshot order.
func (r *resolver) workloadPods(w cluster.WorkloadID) []*cluster.Pod {
	if r.ofWorkload == nil {
		r.ofWorkload = make(map[cluster.WorkloadID][]*cluster.Pod, len(r.snap.Workloads))
		for _, p := range r.snap.Pods {
			if !p.HostNetwork {
				r.ofWorkload[p.Workload] = append(r.ofWorkload[p.Workload], p)
			}
		}
	}
	return r.ofWorkload[w]
}

func newResolver(s *cluster.Snapshot) *resolver {
	r := &resolver{
		snap: s, pods: make(map[podKey]*cluster.Pod, len(s.Pods)),
		ghosts: map[string]*cluster.Pod{}, byWorkload: map[cluster.WorkloadID]*cluster.Pod{},
		memo: podMemo{maxKeys: 4*len(s.Pods) + 4096, byPod: map[*cluster.Pod]uint32{}},
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

// moved returns the resolver of next, which differs from r's snapshot in the pods
// changed (new or changed) and gone, as newResolver(next) would build it: the name and
// workload indexes are patched for those pods instead of rebuilt (r's are taken over),
// and the memos, which hold pods and their Refs, start empty. TestResolverMoved holds it
// to newResolver.
func (r *resolver) moved(next *cluster.Snapshot, changed, gone []*cluster.Pod) *resolver {
	n := &resolver{
		snap: next, pods: r.pods, ghosts: map[string]*cluster.Pod{}, byWorkload: r.byWorkload,
		memo: podMemo{maxKeys: 4*len(next.Pods) + 4096, byPod: map[*cluster.Pod]uint32{}},
	}
	affected := map[cluster.WorkloadID]bool{}
	touch := func(p *cluster.Pod) {
		affected[p.Workload] = true
		affected[cluster.WorkloadID{Namespace: p.Workload.Namespace, Name: p.Workload.Name}] = true
	}
	for _, p := range gone {
		delete(n.pods, podKey{p.Namespace, p.Name})
		touch(p)
	}
	for _, p := range changed {
		k := podKey{p.Namespace, p.Name}
		if old := n.pods[k]; old != nil {
			touch(old)
		}
		n.pods[k] = p
		touch(p)
	}
	for w := range affected {
		if rep := representative(next, w); rep != nil {
			n.byWorkload[w] = rep
		} else {
			delete(n.byWorkload, w)
		}
	}
	return n
}

// representative is newResolver's byWorkload entry for w: the first pod in snapshot
// order, not on the host network, of workload w or, for w without a kind, of any
// workload of w's namespace and name.
func representative(s *cluster.Snapshot, w cluster.WorkloadID) *cluster.Pod {
	// A workload's pods are in its namespace (Build derives identities within it), whose
	// pods are contiguous in key order; pods of no identity are looked for everywhere.
	pods := s.Pods
	if w.Namespace != "" {
		pods = cluster.PodsIn(pods, w.Namespace)
	}
	for _, p := range pods {
		if p.HostNetwork || p.Workload.Namespace != w.Namespace || p.Workload.Name != w.Name {
			continue
		}
		if w.Kind == "" || p.Workload.Kind == w.Kind {
			return p
		}
	}
	return nil
}

// resolve returns the endpoint, or ok=false when nothing identifies it.
// observer is the node that observed the flow (reserved:host is that node); local says
// the endpoint is on that node (Hubble observed the flow at this endpoint), which is how a
// pod missing from the snapshot learns its node.
func (r *resolver) resolve(ep *flows.Endpoint, observer string, local bool) (evaluator.Endpoint, bool) {
	out, _, ok := r.resolveMemo(ep, observer, local)
	return out, ok
}

// resolveMemo is resolve, and the memo slot of a snapshot pod found by name (nil for
// any other endpoint).
func (r *resolver) resolveMemo(ep *flows.Endpoint, observer string, local bool) (evaluator.Endpoint, *podMemoSlot, bool) {
	out := evaluator.Endpoint{IP: ep.IP}
	reserved := reservedOf(ep.Labels)
	if reserved&reservedHost != 0 {
		out.Kind = evaluator.Host
		out.Node = observer
		if n, ok := r.snap.NodeByIP(ep.IP); ok {
			out.Node = n
		}
		return out, nil, true
	}
	if reserved&reservedRemoteNode != 0 {
		out.Kind = evaluator.Host
		if n, ok := r.snap.NodeByIP(ep.IP); ok {
			out.Node = n
		}
		return out, nil, true
	}
	if ep.PodName != "" && ep.Namespace != "" {
		if m := r.pod(ep.Namespace, ep.PodName); m != nil {
			return m.endpoint(ep.IP), m, true
		}
	}
	if ep.IP.IsValid() {
		if p := r.snap.PodByIP(ep.IP); p != nil {
			return podEndpoint(p, ep.IP), nil, true
		}
		if n, ok := r.snap.NodeByIP(ep.IP); ok {
			out.Kind = evaluator.Host
			out.Node = n
			return out, nil, true
		}
	}
	if ep.Namespace != "" {
		node := ""
		if local {
			node = observer
		}
		if p := r.ghost(ep, node); p != nil {
			return podEndpoint(p, ep.IP), nil, true
		}
	}
	if reserved&reservedWorld != 0 || ep.IP.IsValid() {
		out.Kind = evaluator.External
		return out, nil, true
	}
	return out, nil, false
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

// Reserved labels an endpoint carries, as bits.
const (
	reservedHost = 1 << iota
	reservedRemoteNode
	reservedWorld // any of reserved:world, reserved:world-ipv4, reserved:world-ipv6
)

// reservedOf reads the reserved labels in ls in one pass (a pod's labels are many and
// none is reserved).
func reservedOf(ls []string) int {
	const prefix = "reserved:"
	out := 0
	for _, l := range ls {
		if len(l) < len(prefix) || l[:len(prefix)] != prefix {
			continue
		}
		switch l {
		case labelHost:
			out |= reservedHost
		case labelRemoteNode:
			out |= reservedRemoteNode
		case labelWorld, labelWorldIPv4, labelWorldIPv6:
			out |= reservedWorld
		}
	}
	return out
}

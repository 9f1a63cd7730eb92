package soak

import (
	"strconv"
	"strings"
)

// Peer is one side of an edge: a workload, a node, or an external CIDR. simulate.Peer is an
// alias of it, so the JSON shape is the report's.
type Peer struct {
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload,omitempty"`
	// Kind is the workload kind (Deployment, StatefulSet, Pod, ...), or "Node",
	// "CrossNode" or "External".
	Kind string `json:"kind"`
	CIDR string `json:"cidr,omitempty"`
	Node string `json:"node,omitempty"`
}

// Peer kinds that are not workloads.
//
// A node sending to a pod is two peers, because enforcement treats its flows two ways:
// ingress from the pod's own node is always allowed (the kubelet's probes), ingress from
// any other node is judged by the pod's policies like any caller. KindNode is the pod's
// own node, and a node in every other position (a pod's egress to it); KindCrossNode is a
// node whose flows reached the pod on another node. Keeping them apart lets a reload
// re-judge each exactly: a stored edge that stood for both could only be judged one way,
// so a policy change that removed an allowance for cross-node traffic left an edge
// covered by its probes (fail-open). Snapshots written before KindCrossNode hold both
// kinds of flow under KindNode; JudgeEdge keeps judging those by what they were.
const (
	KindExternal  = "External"
	KindNode      = "Node"
	KindCrossNode = "CrossNode"
)

// IsNode reports whether p is a node, of either kind.
func (p Peer) IsNode() bool { return p.Kind == KindNode || p.Kind == KindCrossNode }

func (p Peer) String() string {
	switch p.Kind {
	case KindExternal:
		return "external " + p.CIDR
	case KindNode:
		if p.Node == "" {
			return "node"
		}
		return "node " + p.Node
	case KindCrossNode:
		if p.Node == "" {
			return "another node"
		}
		return "node " + p.Node + " (cross-node)"
	}
	return p.Namespace + "/" + p.Workload
}

func comparePeers(a, b Peer) int {
	if c := strings.Compare(a.Namespace, b.Namespace); c != 0 {
		return c
	}
	if c := strings.Compare(a.Workload, b.Workload); c != 0 {
		return c
	}
	if c := strings.Compare(a.Kind, b.Kind); c != 0 {
		return c
	}
	if c := strings.Compare(a.CIDR, b.CIDR); c != 0 {
		return c
	}
	return strings.Compare(a.Node, b.Node)
}

// EdgeKey identifies an edge. Port 0 with Protocol "" is a workload-level observation that
// names no port (the Otterize network-mapper): it asks whether the source may reach the
// destination at all.
type EdgeKey struct {
	Source      Peer   `json:"source"`
	Destination Peer   `json:"destination"`
	Protocol    string `json:"protocol,omitempty"`
	Port        int32  `json:"port,omitempty"`
}

// String renders the key as people read it in gate reasons: "shop/cart→data/redis:6379/TCP",
// "shop/cart→data/redis" for a workload-level edge.
func (k EdgeKey) String() string {
	s := k.Source.String() + "→" + k.Destination.String()
	if k.Port != 0 {
		s += ":" + strconv.Itoa(int(k.Port))
	}
	if k.Protocol != "" {
		s += "/" + k.Protocol
	}
	return s
}

// CompareEdgeKeys orders keys by source, destination, protocol and port; every list the
// package returns uses it to break ties, so views are deterministic.
func CompareEdgeKeys(a, b EdgeKey) int {
	if c := comparePeers(a.Source, b.Source); c != 0 {
		return c
	}
	if c := comparePeers(a.Destination, b.Destination); c != 0 {
		return c
	}
	if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	switch {
	case a.Port < b.Port:
		return -1
	case a.Port > b.Port:
		return 1
	}
	return 0
}

// Verdict is how one namespace's enforcement would treat a connection. A connection is judged
// by the destination's namespace (ingress) and, when egress is enforced, by the source's: the
// two can disagree, so each namespace gets its own verdict.
type Verdict struct {
	Namespace string
	// Uncovered: enforcing Namespace would drop the connection.
	Uncovered bool
	Reason    string
}

// Scope selects the tracked namespaces an ingestion event affects. The zero Scope selects
// none, so a caller that resolved a node to no namespaces records nothing rather than
// everything.
type Scope struct {
	all        bool
	namespaces []string
}

// AllNamespaces selects every tracked namespace (e.g. the relay itself disconnected).
func AllNamespaces() Scope { return Scope{all: true} }

// Namespaces selects the listed namespaces (e.g. those with pods on a node whose ring buffer
// overflowed); untracked ones are ignored.
func Namespaces(ns ...string) Scope { return Scope{namespaces: ns} }

func (sc Scope) String() string {
	if sc.all {
		return "all namespaces"
	}
	return "namespaces [" + strings.Join(sc.namespaces, " ") + "]"
}

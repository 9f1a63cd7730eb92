// Package evaluator decides whether a connection is allowed by a set of Kubernetes
// NetworkPolicies, with the exact networking.k8s.io/v1 semantics, and explains why.
//
// Two implementations share one contract (Evaluator): Oracle walks every policy for
// every connection, shaped like the API reference, and is kept as the test oracle;
// Engine precomputes which policies select which pods and caches verdicts per identity
// pair and port, so its per-connection cost does not grow with the number of policies.
package evaluator

import (
	"net/netip"

	corev1 "k8s.io/api/core/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// EndpointKind says what is at one end of a connection.
type EndpointKind int

const (
	// Pod is a (non-host-network) pod in the snapshot.
	Pod EndpointKind = iota
	// Host is a node: reserved:host / reserved:remote-node in Hubble, a node IP, or a
	// host-network pod. Pod selectors never select it; ipBlocks match its IP.
	Host
	// External is anything outside the cluster (reserved:world, or an IP that belongs to
	// no pod or node). Only ipBlocks match it.
	External
)

func (k EndpointKind) String() string {
	switch k {
	case Pod:
		return "pod"
	case Host:
		return "host"
	case External:
		return "external"
	}
	return "unknown"
}

// Endpoint is one end of a connection.
type Endpoint struct {
	Kind EndpointKind
	Pod  *cluster.Pod // set for Kind == Pod
	IP   netip.Addr   // the address on the wire, when known
	// Node is the node name for Host endpoints, when known. Ingress from the destination
	// pod's own node is always allowed.
	Node string
}

// Connection is a new connection from Src to Dst, judged on the destination pod and its
// target port (after Service translation, as Hubble reports it).
type Connection struct {
	Src      Endpoint
	Dst      Endpoint
	Protocol corev1.Protocol // TCP, UDP or SCTP
	Port     int32
}

// PolicyRef names a NetworkPolicy.
type PolicyRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (p PolicyRef) String() string { return p.Namespace + "/" + p.Name }

// RuleRef names one ingress or egress rule of a policy (Index is 0-based).
type RuleRef struct {
	Policy PolicyRef `json:"policy"`
	Index  int       `json:"rule"`
}

// Exemption is why a direction was allowed without consulting any policy.
type Exemption string

const (
	NotExempt Exemption = ""
	// ExemptSelf: a pod cannot block traffic to itself.
	ExemptSelf Exemption = "same-pod"
	// ExemptOwnNode: ingress from the destination pod's own node is always allowed.
	ExemptOwnNode Exemption = "from-own-node"
	// ExemptNotPod: policies only isolate pods; hosts and external endpoints are not
	// isolated on their side.
	ExemptNotPod Exemption = "not-a-pod"
)

// Direction is the verdict of one side: egress on the source pod, ingress on the
// destination pod.
type Direction struct {
	Allowed bool `json:"allowed"`
	// Isolated lists the policies that select the pod for this direction, sorted. Empty
	// means the pod is not isolated and the direction is allowed.
	Isolated []PolicyRef `json:"isolatedBy,omitempty"`
	// AllowedBy lists every rule that admits the connection, sorted.
	AllowedBy []RuleRef `json:"allowedBy,omitempty"`
	Exempt    Exemption `json:"exempt,omitempty"`
}

// Verdict is the decision on one connection and its explanation.
type Verdict struct {
	Allowed bool      `json:"allowed"`
	Egress  Direction `json:"egress"`
	Ingress Direction `json:"ingress"`
}

// Evaluator judges connections against a fixed policy set and snapshot. The slices in a
// returned Verdict may be shared with other verdicts (Engine caches them): read-only.
type Evaluator interface {
	Evaluate(c Connection) Verdict
}

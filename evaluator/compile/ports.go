package compile

import (
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

func numericPort(proto corev1.Protocol, port int32) networkingv1.NetworkPolicyPort {
	p := intstr.FromInt32(port)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

func namedPort(proto corev1.Protocol, name string) networkingv1.NetworkPolicyPort {
	p := intstr.FromString(name)
	return networkingv1.NetworkPolicyPort{Protocol: &proto, Port: &p}
}

// portKey orders ports by protocol, then numbers before names, then value; it is also
// the identity used to merge equal ports.
func portKey(p networkingv1.NetworkPolicyPort) string {
	proto := corev1.ProtocolTCP // the API server's default
	if p.Protocol != nil {
		proto = *p.Protocol
	}
	var b strings.Builder
	b.WriteString(string(proto))
	switch {
	case p.Port == nil:
		b.WriteString("/*")
	case p.Port.Type == intstr.Int:
		fmt.Fprintf(&b, "/0/%05d", p.Port.IntVal)
	default:
		b.WriteString("/1/" + p.Port.StrVal)
	}
	if p.EndPort != nil {
		fmt.Fprintf(&b, "-%05d", *p.EndPort)
	}
	return b.String()
}

// portSet accumulates the ports of one rule. all wins over any list: a rule that some
// target allows on every port allows every port.
type portSet struct {
	all   bool
	ports map[string]networkingv1.NetworkPolicyPort
}

func (s *portSet) addAll() { s.all = true }

func (s *portSet) add(ports ...networkingv1.NetworkPolicyPort) {
	if s.ports == nil {
		s.ports = map[string]networkingv1.NetworkPolicyPort{}
	}
	for _, p := range ports {
		s.ports[portKey(p)] = p
	}
}

// list returns the sorted ports, or nil for all ports.
func (s *portSet) list() []networkingv1.NetworkPolicyPort {
	if s.all {
		return nil
	}
	return sortedPorts(s.ports)
}

func sortedPorts(m map[string]networkingv1.NetworkPolicyPort) []networkingv1.NetworkPolicyPort {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]networkingv1.NetworkPolicyPort, 0, len(keys))
	for _, k := range keys {
		out = append(out, deepCopyPort(m[k]))
	}
	return out
}

// portsKey identifies a whole port list; "*" is all ports.
func portsKey(ports []networkingv1.NetworkPolicyPort) string {
	if len(ports) == 0 {
		return "*"
	}
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = portKey(p)
	}
	sort.Strings(keys)
	return strings.Join(keys, ",")
}

func deepCopyPort(p networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicyPort {
	return *p.DeepCopy()
}

// serviceTargetPort is the port a Service forwards sp to, as a NetworkPolicy port. An
// unset targetPort defaults to the port, as the API server does. A named targetPort stays
// named: NetworkPolicy resolves it on each destination pod, which is also what kube-proxy
// does for the Service, so the two agree even when pods name different numbers.
func serviceTargetPort(sp corev1.ServicePort) networkingv1.NetworkPolicyPort {
	proto := sp.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	switch {
	case sp.TargetPort.Type == intstr.String && sp.TargetPort.StrVal != "":
		return namedPort(proto, sp.TargetPort.StrVal)
	case sp.TargetPort.Type == intstr.Int && sp.TargetPort.IntVal != 0:
		return numericPort(proto, sp.TargetPort.IntVal)
	}
	return numericPort(proto, sp.Port)
}

func serviceTargetPorts(svc *cluster.Service) []networkingv1.NetworkPolicyPort {
	out := make([]networkingv1.NetworkPolicyPort, 0, len(svc.Ports))
	for _, sp := range svc.Ports {
		out = append(out, serviceTargetPort(sp))
	}
	return out
}

// resolvePort finds the number a NetworkPolicy port means on pod p; ok is false for a
// name the pod does not declare with that protocol.
func resolvePort(np networkingv1.NetworkPolicyPort, p *cluster.Pod) (corev1.Protocol, int32, bool) {
	proto := corev1.ProtocolTCP
	if np.Protocol != nil {
		proto = *np.Protocol
	}
	if np.Port == nil {
		return proto, 0, false
	}
	if np.Port.Type == intstr.Int {
		return proto, np.Port.IntVal, true
	}
	for _, cp := range p.Ports {
		cpProto := cp.Protocol
		if cpProto == "" {
			cpProto = corev1.ProtocolTCP
		}
		if cp.Name == np.Port.StrVal && cpProto == proto {
			return proto, cp.Port, true
		}
	}
	return proto, 0, false
}

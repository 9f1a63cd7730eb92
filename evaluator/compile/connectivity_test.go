package compile

import (
	"net/netip"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// assertConnectivity judges the compiled set with the evaluator and checks the promise
// the compiler makes, resolving intents on its own rather than through the compiler:
//
//   - every client pod reaches every server pod of each in-scope intent on the ports the
//     target allows, through the whole set (snapshot policies included), on each side
//     the compiler enforces;
//   - a pod that is no client (a stranger, in the client's namespace) is refused by the
//     intent policies alone (default deny, allow and egress policies): the allows are not
//     wider than the intents;
//   - with egress, clients reach kube-dns and their internet addresses;
//   - unless External is off, outside clients reach every exposed Service's pods.
//
// Pods the compiler warns it cannot select (no labels, host network) are left out.
func assertConnectivity(t *testing.T, s *cluster.Snapshot, o Options, res *Result) {
	t.Helper()
	// The Engine is what shadowgate judges flows with; the Oracle is its specification.
	// Both must agree that the compiled set keeps the compiler's promise.
	for _, ev := range []struct {
		name string
		new  func(*cluster.Snapshot, []*networkingv1.NetworkPolicy) evaluator.Evaluator
	}{
		{"engine", func(s *cluster.Snapshot, p []*networkingv1.NetworkPolicy) evaluator.Evaluator {
			return evaluator.NewEngine(s, p)
		}},
		{"oracle", func(s *cluster.Snapshot, p []*networkingv1.NetworkPolicy) evaluator.Evaluator {
			return evaluator.NewOracle(s, p)
		}},
	} {
		t.Run(ev.name, func(t *testing.T) { assertConnectivityWith(t, ev.new, s, o, res) })
	}
}

func assertConnectivityWith(t *testing.T, newEvaluator func(*cluster.Snapshot, []*networkingv1.NetworkPolicy) evaluator.Evaluator, s *cluster.Snapshot, o Options, res *Result) {
	t.Helper()
	enforced := map[string]bool{}
	namespaces := o.Namespaces
	if len(namespaces) == 0 {
		namespaces = TargetedNamespaces(s)
	}
	for _, ns := range namespaces {
		enforced[ns] = true
	}
	full := newEvaluator(s, append(append([]*networkingv1.NetworkPolicy{}, s.NetworkPolicies...), res.Policies...))
	var intentOnly []*networkingv1.NetworkPolicy
	for _, p := range res.Policies {
		if p.Name == DefaultDenyName || p.Annotations[RulesAnnotation] != "" {
			intentOnly = append(intentOnly, p)
		}
	}
	strict := newEvaluator(s, intentOnly)

	for _, ci := range s.Intents {
		clients := podsNamed(s, ci.Namespace, ci.Client.Name, ci.Client.Kind)
		egress := o.Egress && enforced[ci.Namespace]
		stranger := &cluster.Pod{Namespace: ci.Namespace, Name: "stranger", Labels: labels.Set{"shadowgate-test": "stranger"}, IPs: []netip.Addr{netip.MustParseAddr("10.255.255.1")}}
		for _, tg := range ci.Targets {
			ns := tg.Namespace
			if ns == "" {
				ns = ci.Namespace
			}
			var servers []*cluster.Pod
			var ports []networkingv1.NetworkPolicyPort // nil: all ports
			switch tg.Type {
			case intents.TargetWorkload, intents.TargetKafka, intents.TargetHTTP:
				servers = podsNamed(s, ns, tg.Name, tg.Kind)
			case intents.TargetService:
				svc := s.Service(ns, tg.Name)
				if svc == nil || len(svc.Selector) == 0 {
					continue
				}
				for _, p := range s.Pods {
					if p.Namespace == ns && labels.SelectorFromSet(svc.Selector).Matches(p.Labels) && selectable(p) {
						servers = append(servers, p)
					}
				}
				for _, sp := range svc.Ports {
					ports = append(ports, serviceTargetPort(sp))
				}
			case intents.TargetInternet:
				if egress {
					assertInternet(t, full, ci, tg, clients)
				}
				continue
			default:
				continue
			}
			if !enforced[ns] && !egress {
				continue
			}
			for _, srv := range servers {
				for _, conn := range connections(srv, ports) {
					for _, cl := range clients {
						conn.Src = evaluator.Endpoint{Kind: evaluator.Pod, Pod: cl}
						// Only the enforced sides are the compiler's to open: the other
						// side may be isolated by policies of its own.
						v := full.Evaluate(conn)
						if (enforced[ns] && !v.Ingress.Allowed) || (egress && !v.Egress.Allowed) {
							t.Errorf("%s target %q: %s -> %s %s/%d denied: %+v", ci.Key(), tg.Raw, cl.Key(), srv.Key(), conn.Protocol, conn.Port, v)
						}
					}
					if enforced[ns] {
						conn.Src = evaluator.Endpoint{Kind: evaluator.Pod, Pod: stranger}
						if v := strict.Evaluate(conn); v.Ingress.Allowed {
							t.Errorf("%s target %q: stranger in %s -> %s %s/%d admitted by %v", ci.Key(), tg.Raw, ci.Namespace, srv.Key(), conn.Protocol, conn.Port, v.Ingress.AllowedBy)
						}
					}
				}
			}
		}
		if egress {
			dns := &cluster.Pod{Namespace: "kube-system", Name: "coredns", Labels: labels.Set{"k8s-app": "kube-dns"}, IPs: []netip.Addr{netip.MustParseAddr("10.255.0.10")}}
			for _, cl := range clients {
				c := evaluator.Connection{Src: evaluator.Endpoint{Kind: evaluator.Pod, Pod: cl}, Dst: evaluator.Endpoint{Kind: evaluator.Pod, Pod: dns}, Protocol: corev1.ProtocolUDP, Port: 53}
				if o.DNS == nil && !full.Evaluate(c).Egress.Allowed {
					t.Errorf("%s: %s cannot resolve names", ci.Key(), cl.Key())
				}
			}
		}
	}

	if o.External == ExternalOff {
		return
	}
	for _, svc := range s.Services {
		if !enforced[svc.Namespace] || len(svc.Selector) == 0 ||
			(svc.Type != corev1.ServiceTypeLoadBalancer && svc.Type != corev1.ServiceTypeNodePort) {
			continue
		}
		var ports []networkingv1.NetworkPolicyPort
		for _, sp := range svc.Ports {
			ports = append(ports, serviceTargetPort(sp))
		}
		for _, p := range s.Pods {
			if p.Namespace != svc.Namespace || !labels.SelectorFromSet(svc.Selector).Matches(p.Labels) || !selectable(p) {
				continue
			}
			for _, conn := range connections(p, ports) {
				conn.Src = evaluator.Endpoint{Kind: evaluator.External, IP: netip.MustParseAddr("198.51.100.99")}
				if v := full.Evaluate(conn); !v.Allowed {
					t.Errorf("Service %s/%s (%s): outside -> %s %s/%d denied: %+v", svc.Namespace, svc.Name, svc.Type, p.Key(), conn.Protocol, conn.Port, v)
				}
			}
		}
	}
}

// podsNamed returns the selectable pods of the identity an intent names.
func podsNamed(s *cluster.Snapshot, ns, name, kind string) []*cluster.Pod {
	var out []*cluster.Pod
	for _, p := range s.Pods {
		w := p.Workload
		if w.Namespace == ns && w.Name == name && (kind == "" || w.Kind == "" || strings.EqualFold(kind, w.Kind)) && selectable(p) {
			out = append(out, p)
		}
	}
	return out
}

func selectable(p *cluster.Pod) bool { return len(p.Labels) > 0 && !p.HostNetwork }

// connections to dst on ports, resolving names on dst; all ports is probed on the
// pod's declared ports, or on an arbitrary one when it declares none.
func connections(dst *cluster.Pod, ports []networkingv1.NetworkPolicyPort) []evaluator.Connection {
	if ports == nil {
		for _, cp := range dst.Ports {
			proto := cp.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			ports = append(ports, numericPort(proto, cp.Port))
		}
		if ports == nil {
			ports = []networkingv1.NetworkPolicyPort{numericPort(corev1.ProtocolTCP, 8080)}
		}
	}
	var out []evaluator.Connection
	for _, np := range ports {
		proto := *np.Protocol
		port := np.Port.IntVal
		if np.Port.Type == intstr.String {
			port = 0
			for _, cp := range dst.Ports {
				if cp.Name == np.Port.StrVal && cp.Protocol == proto {
					port = cp.Port
				}
			}
			if port == 0 {
				continue // the Service cannot deliver there either
			}
		}
		out = append(out, evaluator.Connection{Dst: evaluator.Endpoint{Kind: evaluator.Pod, Pod: dst}, Protocol: proto, Port: port})
	}
	return out
}

func assertInternet(t *testing.T, ev evaluator.Evaluator, ci *intents.ClientIntents, tg intents.Target, clients []*cluster.Pod) {
	t.Helper()
	ports := tg.Internet.Ports
	if len(ports) == 0 {
		ports = []int32{443}
	}
	for _, ip := range tg.Internet.IPs {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			prefix, err := netip.ParsePrefix(ip)
			if err != nil {
				continue
			}
			addr = prefix.Masked().Addr()
		}
		for _, cl := range clients {
			for _, port := range ports {
				c := evaluator.Connection{
					Src: evaluator.Endpoint{Kind: evaluator.Pod, Pod: cl}, Dst: evaluator.Endpoint{Kind: evaluator.External, IP: addr},
					Protocol: corev1.ProtocolTCP, Port: port,
				}
				if v := ev.Evaluate(c); !v.Allowed {
					t.Errorf("%s target %q: %s -> %s TCP/%d denied: %+v", ci.Key(), tg.Raw, cl.Key(), addr, port, v)
				}
			}
		}
	}
}

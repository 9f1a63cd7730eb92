package compile

import (
	"fmt"
	"net/netip"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// Addresses that stand for "a client outside the cluster" when checking whether an
// exposed Service would be cut off (RFC 5737 and RFC 3849 documentation ranges: they
// belong to nobody, so no real policy admits them by accident of ownership).
var (
	probeIPv4 = netip.MustParseAddr("203.0.113.1")
	probeIPv6 = netip.MustParseAddr("2001:db8::1")
)

// exposure is a Service reachable from outside the cluster, with the target ports it
// is reachable on and why.
type exposure struct {
	svc     *cluster.Service
	ports   portSet
	reasons map[string]bool
}

// exposures collects, per Service of an enforced namespace, what is exposed: every port
// of a LoadBalancer or NodePort Service, and the backend ports of Ingresses. Ingress
// traffic arrives from the ingress controller's pods, wherever they run; a rule with no
// from admits them as well as outside clients.
func (c *compiler) exposures() []*exposure {
	byKey := map[string]*exposure{}
	get := func(svc *cluster.Service) *exposure {
		k := svc.Namespace + "/" + svc.Name
		if byKey[k] == nil {
			byKey[k] = &exposure{svc: svc, reasons: map[string]bool{}}
		}
		return byKey[k]
	}
	for _, svc := range c.s.Services {
		if !c.enforced[svc.Namespace] {
			continue
		}
		if svc.Type == corev1.ServiceTypeLoadBalancer || svc.Type == corev1.ServiceTypeNodePort {
			e := get(svc)
			e.ports.add(serviceTargetPorts(svc)...)
			e.reasons[fmt.Sprintf("Service %s/%s (%s)", svc.Namespace, svc.Name, svc.Type)] = true
		}
	}
	for _, ing := range c.s.Ingresses {
		if !c.enforced[ing.Namespace] {
			continue
		}
		object := "Ingress " + ing.Namespace + "/" + ing.Name
		for _, b := range ing.Backends {
			svc := c.s.Service(ing.Namespace, b.Service)
			if svc == nil {
				c.warn(object, "backend Service %s/%s not found in the snapshot", ing.Namespace, b.Service)
				continue
			}
			sp, ok := backendPort(svc, b.Port)
			if !ok {
				c.warn(object, "backend Service %s/%s has no port %s", ing.Namespace, b.Service, describeBackendPort(b.Port))
				continue
			}
			e := get(svc)
			e.ports.add(serviceTargetPort(sp))
			e.reasons["Ingress "+ing.Namespace+"/"+ing.Name] = true
		}
	}
	out := make([]*exposure, 0, len(byKey))
	for _, k := range sortedKeys(byKey) {
		out = append(out, byKey[k])
	}
	return out
}

func backendPort(svc *cluster.Service, p networkingv1.ServiceBackendPort) (corev1.ServicePort, bool) {
	for _, sp := range svc.Ports {
		if (p.Name != "" && sp.Name == p.Name) || (p.Name == "" && sp.Port == p.Number) {
			return sp, true
		}
	}
	return corev1.ServicePort{}, false
}

func describeBackendPort(p networkingv1.ServiceBackendPort) string {
	if p.Name != "" {
		return fmt.Sprintf("named %q", p.Name)
	}
	return fmt.Sprint(p.Number)
}

// externalPlans renders the external allowances. others is every other compiled plan,
// which (with the snapshot's own policies) decides whether an exposed Service would be
// cut off in ExternalOnlyIfBlocked mode.
func (c *compiler) externalPlans(others []*plan) []*plan {
	if c.o.External == ExternalOff {
		return nil
	}
	compiled := make([]*networkingv1.NetworkPolicy, len(others))
	for i, pl := range others {
		compiled[i] = pl.p
	}
	return c.externalPlansOf(c.exposures(), c.s.NetworkPolicies, compiled)
}

// externalPlansOf renders the allowances of exps, judged against the snapshot's policies
// and the compiled ones. Only policies of the exposed pods' namespaces matter (the probe
// comes from outside, so only ingress rules decide), which lets the incremental Compiler
// pass one namespace's.
func (c *compiler) externalPlansOf(exps []*exposure, snapshot, compiled []*networkingv1.NetworkPolicy) []*plan {
	var oracle evaluator.Evaluator
	if c.o.External == ExternalOnlyIfBlocked {
		set := make([]*networkingv1.NetworkPolicy, 0, len(snapshot)+len(compiled))
		for _, p := range snapshot {
			// Policies an earlier compilation applied are replaced by this one: a stale
			// external allowance must not count as the reason to omit a fresh one.
			if p.Labels[ManagedByLabel] != ManagedByValue {
				set = append(set, p)
			}
		}
		set = append(set, compiled...)
		oracle = evaluator.NewOracle(c.s, set)
	}
	var plans []*plan
	for _, e := range exps {
		svc := e.svc
		object := "Service " + svc.Namespace + "/" + svc.Name
		if len(svc.Selector) == 0 {
			c.warn(object, "exposed outside the cluster but has no selector: its endpoints cannot be selected; no external allowance")
			continue
		}
		sel := newSelector(&metav1.LabelSelector{MatchLabels: svc.Selector})
		ports := e.ports.list()
		if len(ports) == 0 {
			// A rule without ports admits every port; a Service without ports exposes none.
			continue
		}
		if oracle != nil && !c.blocked(oracle, sel, svc.Namespace, ports) {
			continue
		}
		p := policy(svc.Namespace)
		p.Spec.PodSelector = *sel.sel
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: ports}}
		p.Annotations = map[string]string{ExposedByAnnotation: strings.Join(sortedKeys(e.reasons), ",")}
		plans = append(plans, &plan{
			p:       p,
			base:    policyName(externalPrefix, svc.Name),
			purpose: "external/" + svc.Name,
			subject: "the external allowance of " + object,
		})
	}
	return plans
}

// blocked reports whether some pod the Service selects would drop a connection from
// outside on one of the ports. Ports named but not declared by a pod are skipped for that
// pod: the Service cannot deliver to them either.
func (c *compiler) blocked(ev evaluator.Evaluator, sel selector, ns string, ports []networkingv1.NetworkPolicyPort) bool {
	for _, pod := range c.ix.podsInNS[ns] {
		if !sel.matches(pod.Labels) {
			continue
		}
		src := probeIPv4
		if onlyIPv6(pod) {
			src = probeIPv6
		}
		for _, np := range ports {
			proto, port, ok := resolvePort(np, pod)
			if !ok {
				continue
			}
			v := ev.Evaluate(evaluator.Connection{
				Src:      evaluator.Endpoint{Kind: evaluator.External, IP: src},
				Dst:      evaluator.Endpoint{Kind: evaluator.Pod, Pod: pod},
				Protocol: proto,
				Port:     port,
			})
			if !v.Allowed {
				return true
			}
		}
	}
	return false
}

func onlyIPv6(p *cluster.Pod) bool {
	if len(p.IPs) == 0 {
		return false
	}
	for _, ip := range p.IPs {
		if ip.Unmap().Is4() {
			return false
		}
	}
	return true
}

package evaluator

import (
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// ErrDuplicatePolicy reports a namespace/name given twice to an evaluator.
var ErrDuplicatePolicy = errors.New("duplicate NetworkPolicy")

// PolicyError is a problem in one field of one of the policies given to Validate.
type PolicyError struct {
	Input  int // position in the slice given to Validate
	Policy PolicyRef
	Field  string // field path, e.g. spec.ingress[0].from[1].ipBlock.cidr
	Err    error
}

func (e *PolicyError) Error() string {
	if e.Policy == (PolicyRef{}) && e.Field == "" {
		return fmt.Sprintf("policies[%d]: %v", e.Input, e.Err)
	}
	return fmt.Sprintf("NetworkPolicy %s (policies[%d]): %s: %v", e.Policy, e.Input, e.Field, e.Err)
}

func (e *PolicyError) Unwrap() error { return e.Err }

// Validate reports, all at once (errors.Join of *PolicyError), what in policies the
// evaluators can only judge by a documented choice (see oracle.go): duplicate
// names, which they resolve last-one-wins, and the invalid forms the API server would
// reject, which they judge as matching nothing. Policies that pass are judged exactly as
// a conformant CNI would. Callers that build policy sets from several sources (a
// snapshot plus compiled policies) should call it and decide whether to stop.
func Validate(policies []*networkingv1.NetworkPolicy) error {
	var errs []error
	first := map[PolicyRef]int{}
	for i, p := range policies {
		if p == nil {
			errs = append(errs, &PolicyError{Input: i, Err: errors.New("nil NetworkPolicy")})
			continue
		}
		v := validator{input: i, ref: refOf(p)}
		if j, ok := first[v.ref]; ok {
			v.add("metadata.name", fmt.Errorf("%w: also policies[%d]", ErrDuplicatePolicy, j))
		} else {
			first[v.ref] = i
		}
		v.policy(&p.Spec)
		errs = append(errs, v.errs...)
	}
	return errors.Join(errs...)
}

type validator struct {
	input int
	ref   PolicyRef
	errs  []error
}

func (v *validator) add(field string, err error) {
	v.errs = append(v.errs, &PolicyError{Input: v.input, Policy: v.ref, Field: field, Err: err})
}

func (v *validator) policy(spec *networkingv1.NetworkPolicySpec) {
	v.selector("spec.podSelector", &spec.PodSelector)
	for i, t := range spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			v.add(fmt.Sprintf("spec.policyTypes[%d]", i), fmt.Errorf("unsupported value %q: must be Ingress or Egress", t))
		}
	}
	for i, r := range spec.Ingress {
		v.rule(fmt.Sprintf("spec.ingress[%d]", i), "from", r.From, r.Ports)
	}
	for i, r := range spec.Egress {
		v.rule(fmt.Sprintf("spec.egress[%d]", i), "to", r.To, r.Ports)
	}
}

func (v *validator) rule(path, peersField string, peers []networkingv1.NetworkPolicyPeer, ports []networkingv1.NetworkPolicyPort) {
	for i := range peers {
		v.peer(fmt.Sprintf("%s.%s[%d]", path, peersField, i), &peers[i])
	}
	for i := range ports {
		v.port(fmt.Sprintf("%s.ports[%d]", path, i), &ports[i])
	}
}

func (v *validator) peer(path string, p *networkingv1.NetworkPolicyPeer) {
	switch {
	case p.IPBlock == nil && p.PodSelector == nil && p.NamespaceSelector == nil:
		v.add(path, errors.New("must specify a peer (podSelector, namespaceSelector or ipBlock); matches nothing"))
		return
	case p.IPBlock != nil && (p.PodSelector != nil || p.NamespaceSelector != nil):
		v.add(path, errors.New("ipBlock may not be combined with podSelector or namespaceSelector; matches nothing"))
	}
	if p.PodSelector != nil {
		v.selector(path+".podSelector", p.PodSelector)
	}
	if p.NamespaceSelector != nil {
		v.selector(path+".namespaceSelector", p.NamespaceSelector)
	}
	if p.IPBlock != nil {
		v.ipBlock(path+".ipBlock", p.IPBlock)
	}
}

func (v *validator) selector(path string, sel *metav1.LabelSelector) {
	if _, err := metav1.LabelSelectorAsSelector(sel); err != nil {
		v.add(path, fmt.Errorf("invalid selector, selects nothing: %w", err))
	}
}

func (v *validator) ipBlock(path string, b *networkingv1.IPBlock) {
	cidr, err := netip.ParsePrefix(b.CIDR)
	if err != nil {
		v.add(path+".cidr", fmt.Errorf("invalid CIDR, the ipBlock matches nothing: %w", err))
	}
	for i, s := range b.Except {
		field := fmt.Sprintf("%s.except[%d]", path, i)
		e, err := netip.ParsePrefix(s)
		switch {
		case err != nil:
			v.add(field, fmt.Errorf("invalid CIDR, the ipBlock matches nothing: %w", err))
		case cidr.IsValid() && (e.Addr().BitLen() != cidr.Addr().BitLen() || e.Bits() <= cidr.Bits() || !cidr.Contains(e.Addr())):
			v.add(field, fmt.Errorf("%s is not a strict subset of cidr %s", s, b.CIDR))
		}
	}
}

func (v *validator) port(path string, p *networkingv1.NetworkPolicyPort) {
	if p.Protocol != nil {
		switch *p.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			v.add(path+".protocol", fmt.Errorf("unsupported protocol %q: must be TCP, UDP or SCTP", *p.Protocol))
		}
	}
	switch {
	case p.Port == nil:
		if p.EndPort != nil {
			v.add(path+".endPort", errors.New("endPort requires port; ignored, every port matches"))
		}
		return
	case p.Port.Type == intstr.String:
		if p.Port.StrVal == "" {
			v.add(path+".port", errors.New("empty port name matches nothing"))
		}
		if p.EndPort != nil {
			v.add(path+".endPort", errors.New("endPort requires a numeric port; ignored"))
		}
		return
	}
	if p.Port.IntVal < 1 || p.Port.IntVal > 65535 {
		v.add(path+".port", fmt.Errorf("port %d out of range 1-65535", p.Port.IntVal))
	}
	if p.EndPort != nil {
		switch {
		case *p.EndPort < p.Port.IntVal:
			v.add(path+".endPort", fmt.Errorf("endPort %d below port %d, the port matches nothing", *p.EndPort, p.Port.IntVal))
		case *p.EndPort > 65535:
			v.add(path+".endPort", fmt.Errorf("endPort %d out of range 1-65535", *p.EndPort))
		}
	}
}

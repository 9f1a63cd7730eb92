package cluster

import (
	"net/netip"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// validate checks what the model relies on, the way the API server checks it, so that
// an object the server would reject is reported instead of modelled. It is not a full
// API validation: only fields the model reads are checked.
func validate(kind string, obj metav1.Object) field.ErrorList {
	var errs field.ErrorList
	if obj.GetName() == "" {
		errs = append(errs, field.Required(field.NewPath("metadata", "name"), ""))
	}
	spec := field.NewPath("spec")
	switch o := obj.(type) {
	case *corev1.Pod:
		errs = append(errs, validatePodIPs(o)...)
	case *corev1.Service:
		errs = append(errs, validateServiceIPs(o)...)
	case *appsv1.Deployment:
		errs = append(errs, validateWorkloadSelector(o.Spec.Selector, &o.Spec.Template, spec, true)...)
	case *appsv1.StatefulSet:
		errs = append(errs, validateWorkloadSelector(o.Spec.Selector, &o.Spec.Template, spec, true)...)
	case *appsv1.DaemonSet:
		errs = append(errs, validateWorkloadSelector(o.Spec.Selector, &o.Spec.Template, spec, true)...)
	case *appsv1.ReplicaSet:
		errs = append(errs, validateWorkloadSelector(o.Spec.Selector, &o.Spec.Template, spec, true)...)
	case *batchv1.Job:
		errs = append(errs, validateWorkloadSelector(o.Spec.Selector, &o.Spec.Template, spec, false)...)
	case *networkingv1.NetworkPolicy:
		errs = append(errs, ValidateNetworkPolicy(o)...)
	case *unstructured.Unstructured:
		if _, _, err := intents.FromUnstructured(o); err != nil {
			if ie, ok := err.(*intents.Error); ok {
				for _, fe := range ie.Fields {
					if fe.Field != "metadata.name" { // already reported above
						errs = append(errs, fe)
					}
				}
			} else {
				errs = append(errs, field.Invalid(spec, omitValue, err.Error()))
			}
		}
	}
	return errs
}

var selectorOpts = metavalidation.LabelSelectorValidationOptions{}

// validateWorkloadSelector checks spec.selector as apps/v1 validation does: required
// (unless optional, as for Jobs), a valid selector, and matching the template labels.
func validateWorkloadSelector(sel *metav1.LabelSelector, tmpl *corev1.PodTemplateSpec, spec *field.Path, required bool) field.ErrorList {
	p := spec.Child("selector")
	if sel == nil {
		if required {
			return field.ErrorList{field.Required(p, "")}
		}
		return nil
	}
	errs := metavalidation.ValidateLabelSelector(sel, selectorOpts, p)
	if len(errs) > 0 {
		return errs
	}
	if required && len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		return field.ErrorList{field.Invalid(p, sel, "empty selector is invalid for this workload")}
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return field.ErrorList{field.Invalid(p, sel, err.Error())}
	}
	if !s.Matches(labels.Set(tmpl.Labels)) {
		return field.ErrorList{field.Invalid(spec.Child("template", "metadata", "labels"), tmpl.Labels,
			"`selector` does not match template `labels`")}
	}
	return nil
}

func validatePodIPs(p *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	status := field.NewPath("status")
	check := func(path *field.Path, ip string) {
		if ip == "" {
			return
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			errs = append(errs, field.Invalid(path, ip, "must be a valid IP address"))
		}
	}
	check(status.Child("podIP"), p.Status.PodIP)
	for i, ip := range p.Status.PodIPs {
		check(status.Child("podIPs").Index(i).Child("ip"), ip.IP)
	}
	check(status.Child("hostIP"), p.Status.HostIP)
	for i, ip := range p.Status.HostIPs {
		check(status.Child("hostIPs").Index(i).Child("ip"), ip.IP)
	}
	return errs
}

func validateServiceIPs(s *corev1.Service) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	check := func(path *field.Path, ip string) {
		if ip == "" || ip == corev1.ClusterIPNone {
			return
		}
		if _, err := netip.ParseAddr(ip); err != nil {
			errs = append(errs, field.Invalid(path, ip, `must be a valid IP address or "None"`))
		}
	}
	check(spec.Child("clusterIP"), s.Spec.ClusterIP)
	for i, ip := range s.Spec.ClusterIPs {
		check(spec.Child("clusterIPs").Index(i), ip)
	}
	return errs
}

// ValidateNetworkPolicy checks a policy as the API server's networking/v1 validation
// does for every field the evaluator reads: label selectors (operators, values, keys),
// peers (at least one field; ipBlock alone), ipBlock CIDRs and their excepts (each a
// strict subset of cidr), ports (protocol TCP/UDP/SCTP, port number or IANA name,
// endPort only with a numeric port and not below it) and policyTypes.
//
// CIDRs are parsed the way net/netip does, which is what the evaluator uses: leading
// zeros and IPv4-mapped IPv6 addresses are rejected (as the server's strict validation
// does), while host bits after the prefix length are accepted (as the server has always
// accepted them) and mean the masked network.
func ValidateNetworkPolicy(np *networkingv1.NetworkPolicy) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	errs = append(errs, metavalidation.ValidateLabelSelector(&np.Spec.PodSelector, selectorOpts, spec.Child("podSelector"))...)
	for i, rule := range np.Spec.Ingress {
		p := spec.Child("ingress").Index(i)
		for j := range rule.Ports {
			errs = append(errs, validatePolicyPort(&rule.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range rule.From {
			errs = append(errs, validatePeer(&rule.From[j], p.Child("from").Index(j))...)
		}
	}
	for i, rule := range np.Spec.Egress {
		p := spec.Child("egress").Index(i)
		for j := range rule.Ports {
			errs = append(errs, validatePolicyPort(&rule.Ports[j], p.Child("ports").Index(j))...)
		}
		for j := range rule.To {
			errs = append(errs, validatePeer(&rule.To[j], p.Child("to").Index(j))...)
		}
	}
	allowed := []string{string(networkingv1.PolicyTypeIngress), string(networkingv1.PolicyTypeEgress)}
	for i, t := range np.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			errs = append(errs, field.NotSupported(spec.Child("policyTypes").Index(i), t, allowed))
		}
	}
	if len(np.Spec.PolicyTypes) > 2 {
		errs = append(errs, field.Invalid(spec.Child("policyTypes"), np.Spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	return errs
}

func validatePeer(peer *networkingv1.NetworkPolicyPeer, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	n := 0
	if peer.PodSelector != nil {
		n++
		errs = append(errs, metavalidation.ValidateLabelSelector(peer.PodSelector, selectorOpts, p.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		errs = append(errs, metavalidation.ValidateLabelSelector(peer.NamespaceSelector, selectorOpts, p.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		errs = append(errs, validateIPBlock(peer.IPBlock, p.Child("ipBlock"))...)
	}
	switch {
	case n == 0:
		errs = append(errs, field.Required(p, "must specify a peer"))
	case n > 1 && peer.IPBlock != nil:
		errs = append(errs, field.Forbidden(p, "may not specify both ipBlock and another peer"))
	}
	return errs
}

func validateIPBlock(b *networkingv1.IPBlock, p *field.Path) field.ErrorList {
	if b.CIDR == "" {
		return field.ErrorList{field.Required(p.Child("cidr"), "")}
	}
	cidr, errs := parseCIDR(p.Child("cidr"), b.CIDR)
	for i, ex := range b.Except {
		ep := p.Child("except").Index(i)
		exPrefix, exErrs := parseCIDR(ep, ex)
		if len(exErrs) > 0 {
			errs = append(errs, exErrs...)
			continue
		}
		if !cidr.IsValid() {
			continue
		}
		if !cidr.Masked().Contains(exPrefix.Addr()) || exPrefix.Bits() <= cidr.Bits() {
			errs = append(errs, field.Invalid(ep, ex, "must be a strict subset of `cidr`"))
		}
	}
	return errs
}

func parseCIDR(p *field.Path, s string) (netip.Prefix, field.ErrorList) {
	prefix, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, field.ErrorList{field.Invalid(p, s, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)")}
	}
	if prefix.Addr().Is4In6() {
		return netip.Prefix{}, field.ErrorList{field.Invalid(p, s, "must not have an IPv4-mapped IPv6 address")}
	}
	return prefix, nil
}

var policyProtocols = []string{string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP)}

func validatePolicyPort(port *networkingv1.NetworkPolicyPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Protocol != nil {
		switch *port.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			errs = append(errs, field.NotSupported(p.Child("protocol"), *port.Protocol, policyProtocols))
		}
	}
	switch {
	case port.Port == nil:
		if port.EndPort != nil {
			errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, "may not be specified when `port` is not specified"))
		}
	case port.Port.Type == intstr.Int:
		for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
			errs = append(errs, field.Invalid(p.Child("port"), port.Port.IntVal, msg))
		}
		if port.EndPort != nil {
			if *port.EndPort < port.Port.IntVal {
				errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, "must be greater than or equal to `port`"))
			}
			for _, msg := range validation.IsValidPortNum(int(*port.EndPort)) {
				errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, msg))
			}
		}
	default:
		if port.EndPort != nil {
			errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, "may not be specified when `port` is non-numeric"))
		}
		for _, msg := range validation.IsValidPortName(port.Port.StrVal) {
			errs = append(errs, field.Invalid(p.Child("port"), port.Port.StrVal, msg))
		}
	}
	return errs
}

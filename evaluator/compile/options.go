package compile

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ExternalMode says when pods exposed outside the cluster (LoadBalancer and NodePort
// Services, Ingress backends) get a policy that admits any source on their ports.
type ExternalMode string

const (
	// ExternalAlways emits the allowance for every exposed Service.
	ExternalAlways ExternalMode = "always"
	// ExternalOnlyIfBlocked emits it only when the rest of the policy set would drop a
	// connection from an outside address to one of the Service's pods. It is the default:
	// it keeps exposed workloads reachable without adding policies a cluster already
	// covers with its own.
	ExternalOnlyIfBlocked ExternalMode = "only-if-blocked"
	// ExternalOff never emits it.
	ExternalOff ExternalMode = "off"
)

// ExternalModes lists the valid modes, for flag help and validation messages.
var ExternalModes = []ExternalMode{ExternalAlways, ExternalOnlyIfBlocked, ExternalOff}

func (m ExternalMode) String() string { return string(m) }

// Set implements pflag.Value so the mode can be a command-line flag.
func (m *ExternalMode) Set(v string) error {
	for _, ok := range ExternalModes {
		if ExternalMode(v) == ok {
			*m = ok
			return nil
		}
	}
	return fmt.Errorf("unknown external mode %q (want one of %v)", v, ExternalModes)
}

// Type implements pflag.Value.
func (m *ExternalMode) Type() string { return "mode" }

// Options says what to compile.
type Options struct {
	// Namespaces to enforce. Empty means every namespace some ClientIntents target
	// (TargetedNamespaces).
	Namespaces []string `json:"namespaces,omitempty"`
	// Egress adds default-deny egress and per-client egress allowances in enforced
	// namespaces. Off by default, as in Otterize: egress enforcement breaks every pod
	// whose outbound calls are not all declared.
	Egress bool `json:"egress,omitempty"`
	// External is empty for the default, ExternalOnlyIfBlocked.
	External ExternalMode `json:"external,omitempty"`
	// AlwaysAllow are peers admitted into every pod of every enforced namespace
	// (monitoring scrapers, mesh control planes, ...).
	AlwaysAllow []AlwaysAllow `json:"alwaysAllow,omitempty"`
	// DNS is where enforced clients resolve names; nil means DefaultDNS().
	DNS *DNSConfig `json:"dns,omitempty"`
}

// AlwaysAllow is a peer admitted into every pod of every enforced namespace.
type AlwaysAllow struct {
	// Name becomes the policy name shadowgate-allow-<name>.
	Name string `json:"name"`
	// NamespaceSelector and PodSelector form one NetworkPolicyPeer; at least one is
	// required, so that an entry cannot silently admit the whole cluster.
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
	PodSelector       *metav1.LabelSelector `json:"podSelector,omitempty"`
	// Ports limits the allowance; empty means all ports.
	Ports []networkingv1.NetworkPolicyPort `json:"ports,omitempty"`
}

// DNSConfig locates the cluster DNS for egress allowances.
type DNSConfig struct {
	NamespaceSelector *metav1.LabelSelector            `json:"namespaceSelector,omitempty"`
	PodSelector       *metav1.LabelSelector            `json:"podSelector,omitempty"`
	Ports             []networkingv1.NetworkPolicyPort `json:"ports,omitempty"`
}

// DefaultDNS is kube-dns (and CoreDNS, which keeps the k8s-app=kube-dns label) in
// kube-system on UDP and TCP 53; TCP carries truncated answers.
func DefaultDNS() *DNSConfig {
	return &DNSConfig{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "kube-system"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		Ports: []networkingv1.NetworkPolicyPort{
			numericPort(corev1.ProtocolUDP, 53),
			numericPort(corev1.ProtocolTCP, 53),
		},
	}
}

// DefaultOptions are the options with every default filled in.
func DefaultOptions() Options {
	return Options{External: ExternalOnlyIfBlocked, DNS: DefaultDNS()}
}

// withDefaults fills the zero-valued fields that have defaults.
func (o Options) withDefaults() Options {
	if o.External == "" {
		o.External = ExternalOnlyIfBlocked
	}
	if o.DNS == nil {
		o.DNS = DefaultDNS()
	}
	return o
}

// Validate reports every bad field at once.
func (o Options) Validate() error {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, ns := range o.Namespaces {
		p := field.NewPath("namespaces").Index(i)
		for _, msg := range validation.IsDNS1123Label(ns) {
			errs = append(errs, field.Invalid(p, ns, msg))
		}
		if seen[ns] {
			errs = append(errs, field.Duplicate(p, ns))
		}
		seen[ns] = true
	}
	if o.External != "" {
		if err := new(ExternalMode).Set(string(o.External)); err != nil {
			valid := make([]string, len(ExternalModes))
			for i, m := range ExternalModes {
				valid[i] = string(m)
			}
			errs = append(errs, field.NotSupported(field.NewPath("external"), o.External, valid))
		}
	}
	names := map[string]bool{}
	for i, a := range o.AlwaysAllow {
		p := field.NewPath("alwaysAllow").Index(i)
		switch {
		case a.Name == "":
			errs = append(errs, field.Required(p.Child("name"), "names the policy shadowgate-allow-<name>"))
		default:
			// The name must make a valid policy name and must not be mistaken for a
			// hash-truncated one, so it is held to a label, not a subdomain.
			for _, msg := range validation.IsDNS1123Label(a.Name) {
				errs = append(errs, field.Invalid(p.Child("name"), a.Name, msg))
			}
			if names[a.Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), a.Name))
			}
			names[a.Name] = true
		}
		errs = append(errs, validatePeer(a.NamespaceSelector, a.PodSelector, p)...)
		errs = append(errs, validatePorts(a.Ports, p.Child("ports"))...)
	}
	if o.DNS != nil {
		p := field.NewPath("dns")
		errs = append(errs, validatePeer(o.DNS.NamespaceSelector, o.DNS.PodSelector, p)...)
		errs = append(errs, validatePorts(o.DNS.Ports, p.Child("ports"))...)
	}
	return errs.ToAggregate()
}

func validatePeer(ns, pod *metav1.LabelSelector, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if ns == nil && pod == nil {
		errs = append(errs, field.Required(p, "namespaceSelector or podSelector is required"))
	}
	opts := metav1validation.LabelSelectorValidationOptions{}
	errs = append(errs, metav1validation.ValidateLabelSelector(ns, opts, p.Child("namespaceSelector"))...)
	errs = append(errs, metav1validation.ValidateLabelSelector(pod, opts, p.Child("podSelector"))...)
	return errs
}

// validatePorts applies the API server's rules for NetworkPolicyPort, so that a bad
// option fails here rather than when the policies are applied.
func validatePorts(ports []networkingv1.NetworkPolicyPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, port := range ports {
		errs = append(errs, validatePort(port, p.Index(i))...)
	}
	return errs
}

func validatePort(port networkingv1.NetworkPolicyPort, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Protocol != nil {
		switch *port.Protocol {
		case corev1.ProtocolTCP, corev1.ProtocolUDP, corev1.ProtocolSCTP:
		default:
			errs = append(errs, field.NotSupported(p.Child("protocol"), *port.Protocol,
				[]string{string(corev1.ProtocolTCP), string(corev1.ProtocolUDP), string(corev1.ProtocolSCTP)}))
		}
	}
	if port.Port == nil {
		if port.EndPort != nil {
			errs = append(errs, field.Required(p.Child("port"), "required when endPort is set"))
		}
		return errs
	}
	if port.Port.Type == intstr.Int {
		for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
			errs = append(errs, field.Invalid(p.Child("port"), port.Port.IntVal, msg))
		}
		if port.EndPort != nil {
			if *port.EndPort < port.Port.IntVal {
				errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, "must be greater than or equal to port"))
			}
			for _, msg := range validation.IsValidPortNum(int(*port.EndPort)) {
				errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, msg))
			}
		}
		return errs
	}
	if port.EndPort != nil {
		errs = append(errs, field.Invalid(p.Child("endPort"), *port.EndPort, "may not be specified when port is not a number"))
	}
	for _, msg := range validation.IsValidPortName(port.Port.StrVal) {
		errs = append(errs, field.Invalid(p.Child("port"), port.Port.StrVal, msg))
	}
	return errs
}

package compile

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// validateNetworkPolicy applies what the API server checks on create
// (k8s.io/kubernetes pkg/apis/networking/validation, with strict IP validation) for the
// fields the compiler writes. It is deliberately written apart from Options.Validate so
// that a mistake in one is not repeated in the other.
func validateNetworkPolicy(p *networkingv1.NetworkPolicy) field.ErrorList {
	errs := apivalidation.ValidateObjectMeta(&p.ObjectMeta, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	spec := field.NewPath("spec")
	opts := metav1validation.LabelSelectorValidationOptions{}
	errs = append(errs, metav1validation.ValidateLabelSelector(&p.Spec.PodSelector, opts, spec.Child("podSelector"))...)
	for i, r := range p.Spec.Ingress {
		path := spec.Child("ingress").Index(i)
		for j, port := range r.Ports {
			errs = append(errs, apiPort(port, path.Child("ports").Index(j))...)
		}
		for j, peer := range r.From {
			errs = append(errs, apiPeer(peer, path.Child("from").Index(j))...)
		}
	}
	for i, r := range p.Spec.Egress {
		path := spec.Child("egress").Index(i)
		for j, port := range r.Ports {
			errs = append(errs, apiPort(port, path.Child("ports").Index(j))...)
		}
		for j, peer := range r.To {
			errs = append(errs, apiPeer(peer, path.Child("to").Index(j))...)
		}
	}
	types := spec.Child("policyTypes")
	seen := map[networkingv1.PolicyType]bool{}
	for i, t := range p.Spec.PolicyTypes {
		if t != networkingv1.PolicyTypeIngress && t != networkingv1.PolicyTypeEgress {
			errs = append(errs, field.NotSupported(types.Index(i), t, []string{"Ingress", "Egress"}))
		}
		if seen[t] {
			errs = append(errs, field.Duplicate(types.Index(i), t))
		}
		seen[t] = true
	}
	if len(p.Spec.PolicyTypes) > 2 {
		errs = append(errs, field.Invalid(types, p.Spec.PolicyTypes, "may not specify more than two policyTypes"))
	}
	return errs
}

func apiPort(port networkingv1.NetworkPolicyPort, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	if port.Protocol != nil && *port.Protocol != corev1.ProtocolTCP && *port.Protocol != corev1.ProtocolUDP && *port.Protocol != corev1.ProtocolSCTP {
		errs = append(errs, field.NotSupported(path.Child("protocol"), *port.Protocol, []string{"TCP", "UDP", "SCTP"}))
	}
	switch {
	case port.Port == nil:
		if port.EndPort != nil {
			errs = append(errs, field.Required(path.Child("port"), "when endPort is specified"))
		}
	case port.Port.Type == intstr.Int:
		for _, msg := range validation.IsValidPortNum(int(port.Port.IntVal)) {
			errs = append(errs, field.Invalid(path.Child("port"), port.Port.IntVal, msg))
		}
		if port.EndPort != nil && *port.EndPort < port.Port.IntVal {
			errs = append(errs, field.Invalid(path.Child("endPort"), *port.EndPort, "must be greater than or equal to `port`"))
		}
	default:
		if port.EndPort != nil {
			errs = append(errs, field.Forbidden(path.Child("endPort"), "may not be specified when `port` is non-numeric"))
		}
		for _, msg := range validation.IsValidPortName(port.Port.StrVal) {
			errs = append(errs, field.Invalid(path.Child("port"), port.Port.StrVal, msg))
		}
	}
	return errs
}

func apiPeer(peer networkingv1.NetworkPolicyPeer, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	opts := metav1validation.LabelSelectorValidationOptions{}
	n := 0
	if peer.PodSelector != nil {
		n++
		errs = append(errs, metav1validation.ValidateLabelSelector(peer.PodSelector, opts, path.Child("podSelector"))...)
	}
	if peer.NamespaceSelector != nil {
		n++
		errs = append(errs, metav1validation.ValidateLabelSelector(peer.NamespaceSelector, opts, path.Child("namespaceSelector"))...)
	}
	if peer.IPBlock != nil {
		n++
		errs = append(errs, apiIPBlock(peer.IPBlock, path.Child("ipBlock"))...)
	}
	switch {
	case n == 0:
		errs = append(errs, field.Required(path, "must specify a peer"))
	case peer.IPBlock != nil && n > 1:
		errs = append(errs, field.Forbidden(path, "may not specify more than 1 peer"))
	}
	return errs
}

// apiIPBlock requires canonical CIDRs, as the API server's strict IP validation does for
// new objects, and except entries strictly inside the cidr.
func apiIPBlock(b *networkingv1.IPBlock, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	cidr, err := strictPrefix(b.CIDR)
	if err != "" {
		return append(errs, field.Invalid(path.Child("cidr"), b.CIDR, err))
	}
	for i, e := range b.Except {
		ex, err := strictPrefix(e)
		if err != "" {
			errs = append(errs, field.Invalid(path.Child("except").Index(i), e, err))
			continue
		}
		if ex.Bits() <= cidr.Bits() || !cidr.Contains(ex.Addr()) {
			errs = append(errs, field.Invalid(path.Child("except").Index(i), e, "must be a strict subset of `cidr`"))
		}
	}
	return errs
}

func strictPrefix(s string) (netip.Prefix, string) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return p, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
	case p.Masked() != p || p.String() != s:
		return p, "must be in canonical form (\"" + p.Masked().String() + "\")"
	}
	return p, ""
}

// checkValid fails t for every compiled policy the API server would reject.
func checkValid(t *testing.T, policies []*networkingv1.NetworkPolicy) {
	t.Helper()
	for _, p := range policies {
		for _, e := range validateNetworkPolicy(p) {
			t.Errorf("NetworkPolicy %s/%s: %v", p.Namespace, p.Name, e)
		}
	}
}

// TestValidatorFixtures keeps the API-server validator honest: the good fixtures pass,
// and every bad fixture fails on the field its want-error annotation names.
func TestValidatorFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		bad  bool
	}{{"testdata/validation/good.yaml", false}, {"testdata/validation/bad.yaml", true}} {
		data, err := os.ReadFile(tc.file)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range parse(t, string(data)) {
			t.Run(tc.file+"/"+p.Name, func(t *testing.T) {
				errs := validateNetworkPolicy(p)
				if !tc.bad {
					for _, e := range errs {
						t.Errorf("unexpected error: %v", e)
					}
					return
				}
				want := p.Annotations["test/want-error"]
				if want == "" {
					t.Fatal("bad fixture without a test/want-error annotation")
				}
				if len(errs) == 0 {
					t.Fatalf("no error, want one containing %q", want)
				}
				if !strings.Contains(errs.ToAggregate().Error(), want) {
					t.Errorf("errors = %v, want one containing %q", errs.ToAggregate(), want)
				}
			})
		}
	}
}

package compile

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestOptionsValidate(t *testing.T) {
	sel := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "obs"}}
	port := func(p intstr.IntOrString, proto string, end *int32) networkingv1.NetworkPolicyPort {
		np := networkingv1.NetworkPolicyPort{Port: &p, EndPort: end}
		if proto != "" {
			v := corev1.Protocol(proto)
			np.Protocol = &v
		}
		return np
	}
	end := func(v int32) *int32 { return &v }
	cases := map[string]struct {
		opts Options
		want []string
	}{
		"zero options": {opts: Options{}},
		"defaults":     {opts: DefaultOptions()},
		"complete and valid": {opts: Options{
			Namespaces: []string{"shop", "payments"}, Egress: true, External: ExternalAlways,
			AlwaysAllow: []AlwaysAllow{
				{Name: "monitoring", NamespaceSelector: sel, Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromInt32(9100), "TCP", end(9200)), port(intstr.FromString("metrics"), "", nil)}},
				{Name: "mesh", PodSelector: sel},
			},
			DNS: &DNSConfig{PodSelector: sel},
		}},
		"every bad field is reported at once": {
			opts: Options{
				Namespaces: []string{"Shop", "shop", "shop"},
				External:   "sometimes",
				AlwaysAllow: []AlwaysAllow{
					{NamespaceSelector: sel},
					{Name: "Monitoring.Stack", PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "In"}}}},
					{Name: "mesh"},
					{Name: "mesh", PodSelector: sel, Ports: []networkingv1.NetworkPolicyPort{
						port(intstr.FromInt32(0), "ICMP", nil), port(intstr.FromInt32(90), "", end(80)), port(intstr.FromString("http"), "", end(90)),
					}},
				},
				DNS: &DNSConfig{Ports: []networkingv1.NetworkPolicyPort{port(intstr.FromString("not_a_name"), "", nil)}},
			},
			want: []string{
				`namespaces[0]: Invalid value: "Shop": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				`namespaces[2]: Duplicate value: "shop"`,
				`external: Unsupported value: "sometimes": supported values: "always", "only-if-blocked", "off"`,
				`alwaysAllow[0].name: Required value: names the policy shadowgate-allow-<name>`,
				`alwaysAllow[1].name: Invalid value: "Monitoring.Stack": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
				"alwaysAllow[1].podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
				`alwaysAllow[2]: Required value: namespaceSelector or podSelector is required`,
				`alwaysAllow[3].name: Duplicate value: "mesh"`,
				`alwaysAllow[3].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP"`,
				`alwaysAllow[3].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive`,
				`alwaysAllow[3].ports[1].endPort: Invalid value: 80: must be greater than or equal to port`,
				`alwaysAllow[3].ports[2].endPort: Invalid value: 90: may not be specified when port is not a number`,
				`dns: Required value: namespaceSelector or podSelector is required`,
				`dns.ports[0].port: Invalid value: "not_a_name": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)`,
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var got []string
			if err := tc.opts.Validate(); err != nil {
				var agg utilerrors.Aggregate
				if !errors.As(err, &agg) {
					t.Fatalf("Validate() = %T %v, want an aggregate of field errors", err, err)
				}
				for _, e := range agg.Errors() {
					got = append(got, e.Error())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExternalModeSet(t *testing.T) {
	cases := map[string]struct {
		in      string
		want    ExternalMode
		wantErr string
	}{
		"always":          {in: "always", want: ExternalAlways},
		"only-if-blocked": {in: "only-if-blocked", want: ExternalOnlyIfBlocked},
		"off":             {in: "off", want: ExternalOff},
		"unknown":         {in: "Always", wantErr: `unknown external mode "Always" (want one of [always only-if-blocked off])`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var m ExternalMode
			err := m.Set(tc.in)
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tc.wantErr {
				t.Fatalf("Set(%q) error = %q, want %q", tc.in, gotErr, tc.wantErr)
			}
			if m != tc.want {
				t.Errorf("Set(%q) = %q, want %q", tc.in, m, tc.want)
			}
		})
	}
}

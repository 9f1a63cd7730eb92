package evaluator

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

func TestEngineIsolates(t *testing.T) {
	pol := func(name string, types []networkingv1.PolicyType, egress bool) *networkingv1.NetworkPolicy {
		p := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
			Spec: networkingv1.NetworkPolicySpec{PolicyTypes: types}}
		if egress {
			p.Spec.Egress = []networkingv1.NetworkPolicyEgressRule{{}}
		}
		return p
	}
	snap := &cluster.Snapshot{}
	snap.Index()
	e := NewEngine(snap, []*networkingv1.NetworkPolicy{
		pol("no-types", nil, false),
		pol("no-types-egress-rules", nil, true),
		pol("egress-only", []networkingv1.PolicyType{networkingv1.PolicyTypeEgress}, true),
		pol("both", []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}, false),
	})
	cases := map[string]struct{ in, out, ok bool }{
		"no-types":              {in: true, ok: true},
		"no-types-egress-rules": {in: true, out: true, ok: true},
		"egress-only":           {out: true, ok: true},
		"both":                  {in: true, out: true, ok: true},
		"absent":                {},
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			in, out, ok := e.Isolates(PolicyRef{Namespace: "ns", Name: name})
			if in != want.in || out != want.out || ok != want.ok {
				t.Errorf("Isolates = (in %v, out %v, ok %v), want (in %v, out %v, ok %v)", in, out, ok, want.in, want.out, want.ok)
			}
		})
	}
	e.UpdatePolicies(nil, []PolicyRef{{Namespace: "ns", Name: "both"}})
	if _, _, ok := e.Isolates(PolicyRef{Namespace: "ns", Name: "both"}); ok {
		t.Error("Isolates after the policy was removed: ok, want not held")
	}
}

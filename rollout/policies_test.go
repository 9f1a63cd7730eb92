package rollout

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/rollout/api/v1alpha1"
)

func testRollout() *v1alpha1.NamespaceRollout {
	return &v1alpha1.NamespaceRollout{ObjectMeta: metav1.ObjectMeta{Name: "shop", UID: types.UID("uid-1")},
		Spec: v1alpha1.NamespaceRolloutSpec{Namespace: "shop"}}
}

// desiredPolicy is a compiled policy as the controller applies it.
func desiredPolicy() *networkingv1.NetworkPolicy {
	port := intstr.FromInt32(8080)
	p := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "shadowgate-allow-cart", Namespace: "shop",
			Labels:          map[string]string{compile.ManagedByLabel: compile.ManagedByValue},
			Annotations:     map[string]string{compile.IntentsAnnotation: "shop/checkout"},
			OwnerReferences: []metav1.OwnerReference{ownerRef(testRollout())}},
		Spec: networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "cart"}},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{
				From:  []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "checkout"}}}},
				Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
			}},
		},
	}
	return p
}

func TestUpToDate(t *testing.T) {
	tcp := corev1.ProtocolTCP
	cases := map[string]struct {
		live func(*networkingv1.NetworkPolicy)
		want bool
	}{
		"as applied": {func(*networkingv1.NetworkPolicy) {}, true},
		"the API server's defaults filled": {func(p *networkingv1.NetworkPolicy) {
			p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			p.Spec.Ingress[0].Ports[0].Protocol = &tcp
		}, true},
		"someone else's extra label":      {func(p *networkingv1.NetworkPolicy) { p.Labels["team"] = "shop" }, true},
		"someone else's extra annotation": {func(p *networkingv1.NetworkPolicy) { p.Annotations["note"] = "x" }, true},
		"managed-by label removed":        {func(p *networkingv1.NetworkPolicy) { delete(p.Labels, compile.ManagedByLabel) }, false},
		"annotation edited":               {func(p *networkingv1.NetworkPolicy) { p.Annotations[compile.IntentsAnnotation] = "x/y" }, false},
		"owner reference removed":         {func(p *networkingv1.NetworkPolicy) { p.OwnerReferences = nil }, false},
		"rule widened":                    {func(p *networkingv1.NetworkPolicy) { p.Spec.Ingress[0].From = nil }, false},
		"rule added": {func(p *networkingv1.NetworkPolicy) {
			p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{})
		}, false},
		"egress isolation added": {func(p *networkingv1.NetworkPolicy) {
			p.Spec.PolicyTypes = []networkingv1.PolicyType{"Ingress", "Egress"}
		}, false},
		"selector changed": {func(p *networkingv1.NetworkPolicy) { p.Spec.PodSelector.MatchLabels["tier"] = "x" }, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			want := desiredPolicy()
			live := desiredPolicy()
			tc.live(live)
			if got := upToDate(live, want); got != tc.want {
				t.Errorf("upToDate = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestOwnedBy(t *testing.T) {
	nsr := testRollout()
	cases := map[string]struct {
		edit func(*networkingv1.NetworkPolicy)
		want bool
	}{
		"label and owner":                         {func(*networkingv1.NetworkPolicy) {}, true},
		"owner of an earlier rollout of the name": {func(p *networkingv1.NetworkPolicy) { p.OwnerReferences[0].UID = "old" }, true},
		"label only (applied by hand)":            {func(p *networkingv1.NetworkPolicy) { p.OwnerReferences = nil }, false},
		"owner only":                              {func(p *networkingv1.NetworkPolicy) { p.Labels = nil }, false},
		"another rollout's":                       {func(p *networkingv1.NetworkPolicy) { p.OwnerReferences[0].Name = "other" }, false},
		"another group's kind of the same name":   {func(p *networkingv1.NetworkPolicy) { p.OwnerReferences[0].APIVersion = "example.com/v1" }, false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := desiredPolicy()
			tc.edit(p)
			if got := ownedBy(p, nsr); got != tc.want {
				t.Errorf("ownedBy = %t, want %t", got, tc.want)
			}
		})
	}
}

func TestHashPolicies(t *testing.T) {
	a := []*networkingv1.NetworkPolicy{desiredPolicy()}
	if hashPolicies(a) != hashPolicies([]*networkingv1.NetworkPolicy{desiredPolicy()}) {
		t.Error("the same set hashes differently")
	}
	b := desiredPolicy()
	b.Spec.Ingress[0].From = nil
	if hashPolicies(a) == hashPolicies([]*networkingv1.NetworkPolicy{b}) {
		t.Error("different sets hash the same")
	}
	if len(hashPolicies(a)) != 16 {
		t.Errorf("hash %q, want 16 hex digits", hashPolicies(a))
	}
}

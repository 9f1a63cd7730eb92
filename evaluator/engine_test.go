package evaluator

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// enginePolicies isolate both directions of the fixture's shop pods, with peers of every
// kind, so that cached verdicts carry Isolated and AllowedBy slices.
const enginePolicies = defaultDenyShop + "---" + cartFromFrontend + "---" + redisFromNodes + "---" +
	cartFromPodIPsButFrontend + "---" + `
metadata: {namespace: shop, name: egress}
spec:
  podSelector: {}
  egress:
  - to: [{podSelector: {}}]
  - to: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]
    ports: [{port: 443}]
`

func TestEngineCacheHitDoesNotAllocate(t *testing.T) {
	e := NewEngine(fx, parsePolicies(t, enginePolicies))
	cases := map[string]Connection{
		"pod to pod, allowed":           tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		"pod to pod, denied":            tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		"pod to itself":                 tcp(pod("shop/cart-1"), pod("shop/cart-1"), 8080),
		"external to pod":               tcp(external("203.0.113.7"), pod("shop/redis-0"), 6379),
		"own node to pod":               tcp(node("n1", n1IP), pod("shop/cart-1"), 8080),
		"host-network pod to pod":       tcp(pod("kube-system/node-exporter"), pod("shop/redis-0"), 6379),
		"pod to external":               tcp(pod("shop/frontend-abc"), external("203.0.113.7"), 443),
		"pod to IPv4-mapped external":   tcp(pod("shop/frontend-abc"), external("::ffff:203.0.113.7"), 443),
		"pod without address to a node": tcp(pod("shop/cart-synth"), node("n2", n2IP), 10250),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			want := e.Evaluate(c)
			var got Verdict
			if allocs := testing.AllocsPerRun(100, func() { got = e.Evaluate(c) }); allocs != 0 {
				t.Errorf("Evaluate on a cache hit allocated %v times per call, want 0", allocs)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("cached verdict differs from the first (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEngineCacheKey pins what the cache key ignores and what it keeps: pods that no
// policy can tell apart share one entry, pods an ipBlock tells apart do not.
func TestEngineCacheKey(t *testing.T) {
	replica := *fx.Pod("shop", "frontend-abc")
	replica.Name, replica.IPs = "frontend-def", []netip.Addr{netip.MustParseAddr("10.244.1.99")}
	cases := map[string]struct {
		policies    string
		conns       []Connection
		wantEntries int
	}{
		"replicas share an entry": {
			policies: cartFromFrontend,
			conns: []Connection{
				tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
				tcp(Endpoint{Kind: Pod, Pod: &replica, IP: replica.IPs[0]}, pod("shop/cart-1"), 8080),
			},
			wantEntries: 1,
		},
		"external addresses in one ipBlock class share an entry": {
			policies: cartIngress("world", `from: [{ipBlock: {cidr: 0.0.0.0/0, except: [10.0.0.0/8]}}]`),
			conns: []Connection{
				tcp(external("203.0.113.7"), pod("shop/cart-1"), 8080),
				tcp(external("198.51.100.1"), pod("shop/cart-1"), 8080),
				tcp(external("::ffff:8.8.8.8"), pod("shop/cart-1"), 8080),
			},
			wantEntries: 1,
		},
		"an except tells replicas apart": {
			policies: cartFromPodIPsButFrontend,
			conns: []Connection{
				tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
				tcp(Endpoint{Kind: Pod, Pod: &replica, IP: replica.IPs[0]}, pod("shop/cart-1"), 8080),
			},
			wantEntries: 2,
		},
		"ports and protocols are kept apart": {
			policies: cartFromFrontend,
			conns: []Connection{
				tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
				tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8081),
				udp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
			},
			wantEntries: 3,
		},
		"the own node is kept apart from other nodes": {
			policies: defaultDenyShop,
			conns: []Connection{
				tcp(node("n1", n1IP), pod("shop/cart-1"), 8080),
				tcp(node("n2", n2IP), pod("shop/cart-1"), 8080),
			},
			wantEntries: 2,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			policies := parsePolicies(t, tc.policies)
			e, o := NewEngine(fx, policies), NewOracle(fx, policies)
			for _, c := range tc.conns {
				if diff := cmp.Diff(o.Evaluate(c), e.Evaluate(c)); diff != "" {
					t.Errorf("%s (-oracle +engine):\n%s", c, diff)
				}
			}
			if got := e.cacheLen(); got != tc.wantEntries {
				t.Errorf("cache holds %d verdicts, want %d", got, tc.wantEntries)
			}
		})
	}
}

func TestEngineCacheBounded(t *testing.T) {
	policies := parsePolicies(t, enginePolicies)
	e, o := NewEngine(fx, policies), NewOracle(fx, policies)
	const limit = 64
	e.setCacheLimit(limit)
	for port := range int32(5000) {
		c := tcp(external("203.0.113.7"), pod("shop/cart-1"), port)
		if diff := cmp.Diff(o.Evaluate(c), e.Evaluate(c)); diff != "" {
			t.Fatalf("%s (-oracle +engine):\n%s", c, diff)
		}
	}
	if got := e.cacheLen(); got > limit {
		t.Errorf("cache holds %d verdicts, limit %d", got, limit)
	}
}

func TestEngineNilSnapshot(t *testing.T) {
	p := &cluster.Pod{Namespace: "shop", Name: "a"}
	c := tcp(Endpoint{Kind: Pod, Pod: p}, external("203.0.113.7"), 443)
	policies := parsePolicies(t, noEgressShop)
	want := verdict(isolated{"shop/no-egress"}.denied(), notPod)
	for name, ev := range map[string]Evaluator{"oracle": NewOracle(nil, policies), "engine": NewEngine(nil, policies)} {
		if diff := cmp.Diff(want, ev.Evaluate(c)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", name, diff)
		}
	}
}

func TestDedupe(t *testing.T) {
	p := func(ns, name string, rules int) *networkingv1.NetworkPolicy {
		np := parsePolicies(t, fmt.Sprintf("metadata: {namespace: %s, name: %s}", ns, name))[0]
		np.Spec.Ingress = make([]networkingv1.NetworkPolicyIngressRule, rules)
		return np
	}
	type named struct {
		Ref   PolicyRef
		Rules int
	}
	cases := map[string]struct {
		in   []*networkingv1.NetworkPolicy
		want []named
	}{
		"sorted by namespace then name": {
			in:   []*networkingv1.NetworkPolicy{p("b", "a", 0), p("a", "b", 0), p("a", "a", 0)},
			want: []named{{PolicyRef{"a", "a"}, 0}, {PolicyRef{"a", "b"}, 0}, {PolicyRef{"b", "a"}, 0}},
		},
		"last duplicate wins": {
			in:   []*networkingv1.NetworkPolicy{p("a", "x", 1), p("a", "z", 0), p("a", "x", 2)},
			want: []named{{PolicyRef{"a", "x"}, 2}, {PolicyRef{"a", "z"}, 0}},
		},
		"nil entries are dropped": {
			in:   []*networkingv1.NetworkPolicy{nil, p("a", "x", 0), nil},
			want: []named{{PolicyRef{"a", "x"}, 0}},
		},
		"empty": {want: []named{}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := []named{}
			for _, np := range dedupe(tc.in) {
				got = append(got, named{refOf(np), len(np.Spec.Ingress)})
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("dedupe (-want +got):\n%s", diff)
			}
		})
	}
}

// TestEngineVerdictsSurviveCallerAppends: cached verdicts share their slices, which are
// clipped so that two callers appending to the same verdict get separate copies.
func TestEngineVerdictsSurviveCallerAppends(t *testing.T) {
	// Three isolating policies, three admitting rules: slices appended to three
	// elements have a capacity of four unless clipped.
	e := NewEngine(fx, parsePolicies(t, cartFromFrontend+"---"+cartFromShopPods+"---"+cartIngress("web", `ports: [{port: 8080}]`)))
	c := tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080)
	want := e.Evaluate(c)
	if len(want.Ingress.Isolated) != 3 || len(want.Ingress.AllowedBy) != 3 {
		t.Fatalf("test needs 3 isolating policies and 3 admitting rules, got %+v", want.Ingress)
	}
	want.Ingress.Isolated = slices.Clone(want.Ingress.Isolated)
	want.Ingress.AllowedBy = slices.Clone(want.Ingress.AllowedBy)
	first, second := PolicyRef{Namespace: "x", Name: "first"}, PolicyRef{Namespace: "x", Name: "second"}
	a := append(e.Evaluate(c).Ingress.Isolated, first)
	b := append(e.Evaluate(c).Ingress.Isolated, second)
	if a[len(a)-1] != first || b[len(b)-1] != second {
		t.Errorf("appends to two verdicts' Isolated share storage: got %v and %v", a[len(a)-1], b[len(b)-1])
	}
	ra := append(e.Evaluate(c).Ingress.AllowedBy, RuleRef{Index: 1})
	rb := append(e.Evaluate(c).Ingress.AllowedBy, RuleRef{Index: 2})
	if ra[len(ra)-1].Index != 1 || rb[len(rb)-1].Index != 2 {
		t.Errorf("appends to two verdicts' AllowedBy share storage: got %v and %v", ra[len(ra)-1], rb[len(rb)-1])
	}
	if diff := cmp.Diff(want, e.Evaluate(c)); diff != "" {
		t.Errorf("verdict after callers appended (-want +got):\n%s", diff)
	}
}

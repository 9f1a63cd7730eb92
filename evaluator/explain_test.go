package evaluator

import (
	"net/netip"
	"testing"
)

func TestReason(t *testing.T) {
	cases := map[string]struct {
		v    Verdict
		want string
	}{
		"not isolated": {
			v:    verdict(open, open),
			want: "allowed: not isolated",
		},
		"hosts and external endpoints are not worth mentioning": {
			v:    verdict(notPod, open),
			want: "allowed: not isolated",
		},
		"same pod": {
			v:    selfVerdict,
			want: "allowed: same pod",
		},
		"own node": {
			v:    verdict(notPod, Direction{Allowed: true, Exempt: ExemptOwnNode}),
			want: "allowed: ingress from own node",
		},
		"one rule": {
			v:    verdict(open, isolated{"shop/allow-cart", "shop/default-deny"}.by("shop/allow-cart#0")),
			want: "allowed: ingress rule shop/allow-cart#0",
		},
		"rules on both sides": {
			v: verdict(isolated{"shop/egress"}.by("shop/egress#1"),
				isolated{"shop/a", "shop/b"}.by("shop/a#0", "shop/b#2")),
			want: "allowed: egress rule shop/egress#1; ingress rules shop/a#0, shop/b#2",
		},
		"ingress denied": {
			v:    verdict(open, isolated{"shop/allow-cart", "shop/default-deny"}.denied()),
			want: "denied: ingress isolated by shop/allow-cart, shop/default-deny; no rule allows it",
		},
		"egress denied, ingress allowed": {
			v:    verdict(isolated{"shop/no-egress"}.denied(), isolated{"shop/a"}.by("shop/a#0")),
			want: "denied: egress isolated by shop/no-egress; no rule allows it",
		},
		"both denied": {
			v:    verdict(isolated{"shop/no-egress"}.denied(), isolated{"shop/default-deny"}.denied()),
			want: "denied: egress isolated by shop/no-egress; no rule allows it; ingress isolated by shop/default-deny; no rule allows it",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.v.Reason(); got != tc.want {
				t.Errorf("Reason() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestReasonFor(t *testing.T) {
	c := tcp(pod("shop/frontend-abc"), pod("shop/redis-0"), 6379)
	cases := map[string]struct {
		v    Verdict
		want string
	}{
		"ingress names the source": {
			v:    verdict(open, isolated{"shop/allow-cart", "shop/default-deny"}.denied()),
			want: "denied: ingress isolated by shop/allow-cart, shop/default-deny; no rule allows TCP/6379 from shop/frontend-abc",
		},
		"egress names the destination": {
			v:    verdict(isolated{"shop/no-egress"}.denied(), open),
			want: "denied: egress isolated by shop/no-egress; no rule allows TCP/6379 to shop/redis-0",
		},
		"allowed verdicts read as without the connection": {
			v:    verdict(open, isolated{"shop/a"}.by("shop/a#0")),
			want: "allowed: ingress rule shop/a#0",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.v.ReasonFor(c); got != tc.want {
				t.Errorf("ReasonFor() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEndpointString(t *testing.T) {
	cases := map[string]struct {
		e    Endpoint
		want string
	}{
		"pod":                      {pod("shop/cart-1"), "shop/cart-1"},
		"pod kind without a pod":   {Endpoint{Kind: Pod, IP: worldIP}, "203.0.113.7"},
		"node with name and IP":    {node("n1", n1IP), "node n1 (192.168.0.1)"},
		"node with name":           {node("n1", netip.Addr{}), "node n1"},
		"node with IP":             {node("", n1IP), "node 192.168.0.1"},
		"node unknown":             {Endpoint{Kind: Host}, "unknown node"},
		"external":                 {external("2001:db8::1"), "2001:db8::1"},
		"external without address": {Endpoint{Kind: External}, "unknown external endpoint"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := tc.e.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

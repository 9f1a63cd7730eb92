package evaluator

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

func TestEvaluateRefHitDoesNotAllocate(t *testing.T) {
	e := NewEngine(fx, parsePolicies(t, enginePolicies))
	cases := map[string]Connection{
		"pod to pod, allowed":         tcp(pod("shop/frontend-abc"), pod("shop/cart-1"), 8080),
		"pod to pod, denied":          tcp(pod("payments/api-1"), pod("shop/cart-1"), 8080),
		"pod to itself":               tcp(pod("shop/cart-1"), pod("shop/cart-1"), 8080),
		"external to pod":             tcp(external("203.0.113.7"), pod("shop/redis-0"), 6379),
		"own node to pod":             tcp(node("n1", n1IP), pod("shop/cart-1"), 8080),
		"host-network pod to pod":     tcp(pod("kube-system/node-exporter"), pod("shop/redis-0"), 6379),
		"pod to IPv4-mapped external": tcp(pod("shop/frontend-abc"), external("::ffff:203.0.113.7"), 443),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			rc := resolveConn(e, c)
			want := rc.eval(e)
			var got *Verdict
			if allocs := testing.AllocsPerRun(100, func() { got = e.EvaluateRef(&rc.src, &rc.dst, c.Protocol, c.Port) }); allocs != 0 {
				t.Errorf("EvaluateRef on a cache hit allocated %v times per call, want 0", allocs)
			}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("cached verdict differs from the first (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRefFresh: a Ref is fresh on its engine until an update replaces the address
// classes, and never fresh on another engine; either way it is judged right.
func TestRefFresh(t *testing.T) {
	policies := parsePolicies(t, enginePolicies)
	e, other := NewEngine(fx, policies), NewEngine(fx, policies)
	c := tcp(external("10.1.2.3"), pod("shop/redis-0"), 6379)
	rc := resolveConn(e, c)
	if !e.Fresh(&rc.src) || !e.Fresh(&rc.dst) {
		t.Fatalf("Refs are not fresh on the engine that resolved them")
	}
	if other.Fresh(&rc.src) {
		t.Errorf("a Ref is fresh on an engine that did not resolve it")
	}
	// A pod update keeps the classes.
	e.UpdatePod(&cluster.Pod{Namespace: "shop", Name: "late", Labels: labels.Set{"app": "late"}, IPs: []netip.Addr{netip.MustParseAddr("10.244.1.99")}})
	if !e.Fresh(&rc.src) {
		t.Errorf("a pod update made a Ref stale")
	}
	// A new ipBlock cuts 10.0.0.0/8 in two: the Ref's class is no longer the index's.
	allow := parsePolicies(t, `
metadata: {namespace: shop, name: from-10-1}
spec:
  podSelector: {}
  ingress:
  - from: [{ipBlock: {cidr: 10.1.0.0/16}}]
`)
	e.UpdatePolicies(allow, nil)
	if e.Fresh(&rc.src) {
		t.Errorf("a Ref is still fresh after its address classes were replaced")
	}
	// Fill the new cache with verdicts for addresses of every class around the Ref's,
	// so that a stale class number that now means another class would hit.
	o := NewOracle(fx, append(policies, allow...))
	for _, a := range []string{"10.0.0.1", "10.1.0.1", "10.2.0.1", "10.244.1.10", "10.244.2.20", "192.168.0.1", "203.0.113.7", "255.255.255.255"} {
		warm := tcp(external(a), pod("shop/redis-0"), 6379)
		if diff := cmp.Diff(o.Evaluate(warm), e.Evaluate(warm)); diff != "" {
			t.Errorf("%s (-oracle +engine):\n%s", warm, diff)
		}
	}
	want := o.Evaluate(c)
	if diff := cmp.Diff(want, rc.eval(e)); diff != "" {
		t.Errorf("stale Ref (-oracle +engine):\n%s", diff)
	}
	if !want.Allowed {
		t.Errorf("the new policy does not admit %s; the test no longer tells a stale class from a fresh one", c)
	}
	rc = resolveConn(e, c)
	if !e.Fresh(&rc.src) {
		t.Errorf("a Ref resolved again is not fresh")
	}
	if diff := cmp.Diff(want, rc.eval(e)); diff != "" {
		t.Errorf("re-resolved Ref (-oracle +engine):\n%s", diff)
	}
}

// TestRefOutlivesPruning: the identity a ghost pod's Ref names is pruned with the
// untracked pods; the Ref is judged by the pod's content all the same.
func TestRefOutlivesPruning(t *testing.T) {
	policies := parsePolicies(t, enginePolicies)
	e, o := NewEngine(fx, policies), NewOracle(fx, policies)
	dst := pod("shop/cart-1")
	ghost := &cluster.Pod{Namespace: "shop", Name: "ghost", Labels: labels.Set{"app": "frontend", "build": "kept"}}
	c := tcp(Endpoint{Kind: Pod, Pod: ghost}, dst, 8080)
	rc := resolveConn(e, c)
	for i := range 3*minPrunable + 100 {
		p := &cluster.Pod{Namespace: "shop", Name: fmt.Sprintf("ghost-%d", i), Labels: labels.Set{"app": "frontend", "build": fmt.Sprint(i)}}
		e.Resolve(Endpoint{Kind: Pod, Pod: p})
	}
	if rc.src.identKnownForTest(e) {
		t.Fatalf("the ghost's identity survived pruning; the test needs it gone")
	}
	for pass := range 2 {
		if diff := cmp.Diff(o.Evaluate(c), rc.eval(e)); diff != "" {
			t.Errorf("pass %d, Ref of a pruned identity (-oracle +engine):\n%s", pass, diff)
		}
	}
}

// identKnownForTest reports whether e still holds the identity of r's pod.
func (r *Ref) identKnownForTest(e *Engine) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	ports := namedPorts(nil, r.pod.Ports)
	key, _ := identKey(nil, nil, r.pod.Namespace, r.pod.Labels, ports)
	_, ok := e.idents[string(key)]
	return ok
}

// TestVerdictCacheConcurrent has one writer filling and evicting a small cache while
// readers check that every hit returns the verdict of the key they asked for: a torn
// read of a slot being rewritten would pair a key with another key's verdict.
func TestVerdictCacheConcurrent(t *testing.T) {
	// Four slots for sixteen keys: every insertion rewrites a slot some reader is
	// probing.
	c := newVerdictCache(cacheWays)
	verdictOf := func(k *cacheKey) Verdict {
		// Distinct keys get distinct verdicts, so a mismatch cannot hide.
		return Verdict{Egress: Direction{AllowedBy: []RuleRef{{Policy: PolicyRef{Name: "p"}, Index: int(k.port)}}}}
	}
	keyOf := func(i int) cacheKey {
		return cacheKey{src: uint32(i % 3), dst: 1, port: int32(i), proto: protoTCP}
	}
	const keys = 16
	deadline := time.Now().Add(300 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	hits, failures := 0, 0
	for g := range 2 {
		wg.Go(func() {
			n := 0
			for i := 0; time.Now().Before(deadline); i++ {
				for j := range keys {
					k := keyOf((i + j + g) % keys)
					if v, ok := c.get(&k); ok {
						n++
						if got := v.Egress.AllowedBy[0].Index; got != int(k.port) {
							mu.Lock()
							if failures++; failures <= 3 {
								t.Errorf("key with port %d returned the verdict of port %d", k.port, got)
							}
							mu.Unlock()
						}
					}
				}
			}
			mu.Lock()
			hits += n
			mu.Unlock()
		})
	}
	for i := 0; time.Now().Before(deadline); i++ {
		k := keyOf(i * 7 % keys)
		c.put(&k, verdictOf(&k))
	}
	wg.Wait()
	if hits == 0 {
		t.Errorf("readers never hit; the test checked nothing")
	}
	if n := c.len(); n > cacheWays {
		t.Errorf("cache holds %d entries, bound %d", n, cacheWays)
	}
}

// TestVerdictCacheSharesVerdicts: equal verdicts are stored once, so EvaluateRef hands
// out one pointer for them.
func TestVerdictCacheSharesVerdicts(t *testing.T) {
	c := newVerdictCache(1 << 10)
	denied := Verdict{Ingress: Direction{Isolated: []PolicyRef{{Namespace: "a", Name: "deny"}}}}
	var first *Verdict
	for i := range 100 {
		k := cacheKey{src: uint32(i), dst: 1, port: 80, proto: protoTCP}
		got := c.put(&k, Verdict{Ingress: Direction{Isolated: []PolicyRef{{Namespace: "a", Name: "deny"}}}})
		if first == nil {
			first = got
		}
		if got != first {
			t.Fatalf("verdict %d was stored again", i)
		}
		if hit, ok := c.get(&k); !ok || hit != first {
			t.Fatalf("key %d: got %p, %v, want the shared verdict", i, hit, ok)
		}
	}
	if diff := cmp.Diff(denied, *first); diff != "" {
		t.Errorf("shared verdict (-want +got):\n%s", diff)
	}
	other := c.put(&cacheKey{src: 1, dst: 2, proto: protoTCP}, Verdict{Allowed: true})
	if other == first {
		t.Errorf("different verdicts share a pointer")
	}
	if n := len(*c.verdicts.Load()); n != 2 {
		t.Errorf("verdict table holds %d verdicts, want 2", n)
	}
}

// TestZeroRef: a Ref that was never resolved is an External endpoint without an
// address, on every engine.
func TestZeroRef(t *testing.T) {
	policies := parsePolicies(t, enginePolicies)
	e, o := NewEngine(fx, policies), NewOracle(fx, policies)
	var zero Ref
	dst := e.Resolve(pod("shop/redis-0"))
	for pass := range 2 {
		want := o.Evaluate(tcp(Endpoint{Kind: External}, pod("shop/redis-0"), 6379))
		if diff := cmp.Diff(want, *e.EvaluateRef(&zero, &dst, "TCP", 6379)); diff != "" {
			t.Errorf("pass %d (-oracle +engine):\n%s", pass, diff)
		}
	}
	if got := zero.Endpoint(); got != (Endpoint{Kind: External}) {
		t.Errorf("endpoint of the zero Ref = %s, want an External endpoint without address", got)
	}
}

// TestRefEndpoint: a Ref gives back the endpoint it was resolved from, normalized.
func TestRefEndpoint(t *testing.T) {
	e := NewEngine(fx, parsePolicies(t, enginePolicies))
	cart := pod("shop/cart-1")
	cases := map[string]struct{ ep, want Endpoint }{
		"pod without address":     {cart, Endpoint{Kind: Pod, Pod: cart.Pod, IP: netip.MustParseAddr("10.244.1.11")}},
		"IPv4-mapped external":    {external("::ffff:203.0.113.7"), Endpoint{Kind: External, IP: netip.MustParseAddr("203.0.113.7")}},
		"IPv6 external with zone": {Endpoint{Kind: External, IP: netip.MustParseAddr("fe80::1%eth0")}, Endpoint{Kind: External, IP: netip.MustParseAddr("fe80::1")}},
		"node":                    {node("n1", n1IP), Endpoint{Kind: Host, Node: "n1", IP: n1IP}},
		"host-network pod":        {pod("kube-system/node-exporter"), Endpoint{Kind: Host, Node: "n1", IP: n1IP}},
		"unknown kind":            {Endpoint{Kind: EndpointKind(9), Node: "n1"}, Endpoint{Kind: External}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := e.Resolve(tc.ep)
			if got := r.Endpoint(); got != tc.want {
				t.Errorf("Endpoint() = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestVerdictCacheInternsByContent: verdicts are shared when, and only when, every field
// is equal, including when their hashes collide (forced here): the hash only finds
// candidates.
func TestVerdictCacheInternsByContent(t *testing.T) {
	ref := func(ns, name string) PolicyRef { return PolicyRef{Namespace: ns, Name: name} }
	rule := func(ns, name string, i int) RuleRef { return RuleRef{Policy: ref(ns, name), Index: i} }
	base := Verdict{
		Egress:  Direction{Allowed: true},
		Ingress: Direction{Allowed: true, Isolated: []PolicyRef{ref("a", "p")}, AllowedBy: []RuleRef{rule("a", "p", 0)}},
		Allowed: true,
	}
	variants := map[string]Verdict{
		"another rule index": func() Verdict {
			v := base
			v.Ingress.AllowedBy = []RuleRef{rule("a", "p", 1)}
			return v
		}(),
		"name split differently": func() Verdict {
			v := base
			v.Ingress.Isolated = []PolicyRef{ref("a/", "p")}
			return v
		}(),
		"rule on the other side": func() Verdict {
			v := base
			v.Egress, v.Ingress = v.Ingress, v.Egress
			return v
		}(),
		"exempt": func() Verdict {
			v := base
			v.Egress.Exempt = ExemptNotPod
			return v
		}(),
		"denied": func() Verdict {
			v := base
			v.Allowed, v.Ingress.Allowed, v.Ingress.AllowedBy = false, false, nil
			return v
		}(),
	}
	for name, variant := range variants {
		for _, collide := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/collide=%v", name, collide), func(t *testing.T) {
				c := newVerdictCache(1 << 10)
				first := c.putRef(&cacheKey{src: 1, dst: 2, proto: protoTCP}, &base)
				if collide {
					// Make the variant's hash name the base verdict.
					c.byHash[hashVerdict(c.seed, &variant)] = c.byHash[hashVerdict(c.seed, &base)]
				}
				v := variant
				got := c.putRef(&cacheKey{src: 3, dst: 4, proto: protoTCP}, &v)
				if got == first {
					t.Fatalf("a different verdict was handed the shared %+v", *first)
				}
				if diff := cmp.Diff(variant, *got); diff != "" {
					t.Errorf("stored verdict (-want +got):\n%s", diff)
				}
				if again := c.putRef(&cacheKey{src: 5, dst: 6, proto: protoTCP}, &v); again != got {
					t.Errorf("an equal verdict was stored again")
				}
				if again := c.putRef(&cacheKey{src: 7, dst: 8, proto: protoTCP}, &base); again != first {
					t.Errorf("the base verdict was stored again")
				}
				if n := len(*c.verdicts.Load()); n != 2 {
					t.Errorf("verdict table holds %d verdicts, want 2", n)
				}
			})
		}
	}
}

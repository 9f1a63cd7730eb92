package compile

import (
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/intents"
)

// randomRun is how many events each random test applies per run, and how many seeds it
// runs: fewer under -short and the race detector, which slows them tenfold.
func randomRun(events, short int) (int, uint64) {
	if testing.Short() || raceEnabled {
		return short, 1
	}
	return events, 2
}

// fixtures loads the fixtures the random tests start from, by path.
func fixtures(t *testing.T) map[string]*cluster.Snapshot {
	t.Helper()
	out := map[string]*cluster.Snapshot{}
	for _, path := range []string{"testdata/shop", "testdata/broken"} {
		s, err := cluster.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		out[path] = s
	}
	return out
}

// incrementalOptions are the option sets the incremental Compiler is held to Compile
// with: every external mode, egress, fixed and targeted namespaces.
func incrementalOptions() map[string]Options {
	return map[string]Options{
		"targeted, only-if-blocked":       {AlwaysAllow: []AlwaysAllow{monitoring}},
		"targeted, egress":                {Egress: true, AlwaysAllow: []AlwaysAllow{monitoring}},
		"external always":                 {External: ExternalAlways},
		"external off":                    {External: ExternalOff},
		"fixed namespaces, egress":        {Namespaces: []string{"shop", "payments"}, Egress: true},
		"fixed namespaces, only-if-block": {Namespaces: []string{"shop", "payments", "platform", "data"}},
	}
}

// TestCompilerMatchesCompile: a fresh Compiler is Compile, on every golden fixture.
func TestCompilerMatchesCompile(t *testing.T) {
	for _, fixture := range []string{"testdata/shop", "testdata/broken"} {
		s, err := cluster.Load(fixture)
		if err != nil {
			t.Fatal(err)
		}
		for name, o := range incrementalOptions() {
			t.Run(fixture+"/"+name, func(t *testing.T) {
				k, err := NewCompiler(s, o)
				if err != nil {
					t.Fatal(err)
				}
				assertSameResult(t, s, o, k)
			})
		}
	}
}

// TestCompilerRandomIntentEvents applies random sequences of ClientIntents events (add a
// target, drop a target, change the client, delete, restore, create) and requires,
// after each one, that the Compiler's result is byte-identical to Compile of the new
// snapshot and that its deltas, applied in order, give exactly that policy set.
func TestCompilerRandomIntentEvents(t *testing.T) {
	events, seeds := randomRun(20, 6)
	for fixture, s := range fixtures(t) {
		for name, o := range incrementalOptions() {
			for seed := range seeds {
				t.Run(fmt.Sprintf("%s/%s/seed=%d", fixture, name, seed), func(t *testing.T) {
					randomIntentEvents(t, s, o, seed, events)
				})
			}
		}
	}
}

// randomIntentEvents is the property behind TestCompilerRandomIntentEvents.
func randomIntentEvents(t *testing.T, s *cluster.Snapshot, o Options, seed uint64, events int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	k, err := NewCompiler(s, o)
	if err != nil {
		t.Fatal(err)
	}
	applied := policyMap(k.Result().Policies)
	pool := targetPool(s)
	removed := []*intents.ClientIntents{}
	cur := s
	for i := range events {
		next, what := randomIntentEvent(rng, cur, pool, &removed, i)
		if next == nil {
			continue
		}
		var d *Delta
		if rng.IntN(4) == 0 {
			d, err = k.Update(next)
		} else {
			_, keys := diffKeys(cur, next)
			d, err = k.UpdateIntents(next, keys)
		}
		if err != nil {
			t.Fatalf("event %d (%s): %v", i, what, err)
		}
		for _, ref := range d.Remove {
			if _, ok := applied[ref]; !ok {
				t.Fatalf("event %d (%s): removes %v, which was never handed out", i, what, ref)
			}
			delete(applied, ref)
		}
		for _, p := range d.Upsert {
			applied[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = p
		}
		want, err := Compile(next, o)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(policyMap(want.Policies), applied); diff != "" {
			t.Fatalf("event %d (%s): policies after the deltas (-Compile +applied):\n%s", i, what, diff)
		}
		assertResult(t, want, k)
		if t.Failed() {
			t.Fatalf("event %d (%s)", i, what)
		}
		cur = next
	}
}

func diffKeys(prev, next *cluster.Snapshot) (*cluster.Snapshot, []string) {
	return next, ChangedIntents(prev, next)
}

func assertSameResult(t *testing.T, s *cluster.Snapshot, o Options, k *Compiler) {
	t.Helper()
	want, err := Compile(s, o)
	if err != nil {
		t.Fatal(err)
	}
	assertResult(t, want, k)
}

func assertResult(t *testing.T, want *Result, k *Compiler) {
	t.Helper()
	// JSON holds every field and is several times cheaper than the YAML of Manifests,
	// which is rendered only to show a difference.
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, err := json.Marshal(k.Result())
	if err != nil {
		t.Fatal(err)
	}
	if string(wantJSON) == string(gotJSON) {
		return
	}
	wantYAML, _ := want.Manifests()
	gotYAML, _ := k.Result().Manifests()
	t.Errorf("Compiler result (-Compile +Compiler):\n%s", cmp.Diff(string(wantYAML), string(gotYAML)))
	if diff := cmp.Diff(want.Namespaces, k.Result().Namespaces); diff != "" {
		t.Errorf("namespaces (-Compile +Compiler):\n%s", diff)
	}
}

func policyMap(ps []*networkingv1.NetworkPolicy) map[evaluator.PolicyRef]*networkingv1.NetworkPolicy {
	out := map[evaluator.PolicyRef]*networkingv1.NetworkPolicy{}
	for _, p := range ps {
		out[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = p
	}
	return out
}

// targetPool is every target some ClientIntents of s names, plus one per identity of
// the snapshot (so events can call servers nobody called) and one unknown workload.
func targetPool(s *cluster.Snapshot) []intents.Target {
	var pool []intents.Target
	for _, ci := range s.Intents {
		for _, t := range ci.Targets {
			if t.Namespace == "" {
				t.Namespace = ci.Namespace
				t.Raw = t.Name + "." + ci.Namespace
			}
			pool = append(pool, t)
		}
	}
	ids := map[cluster.WorkloadID]bool{}
	for _, p := range s.Pods {
		if !p.Workload.IsZero() {
			ids[p.Workload] = true
		}
	}
	for _, id := range sortedIDs(ids) {
		pool = append(pool, intents.Target{Type: intents.TargetWorkload, Name: id.Name, Namespace: id.Namespace, Raw: id.Name + "." + id.Namespace})
	}
	pool = append(pool, intents.Target{Type: intents.TargetWorkload, Name: "nobody", Namespace: "shop", Raw: "nobody.shop"})
	return pool
}

// randomIntentEvent returns the next snapshot and what changed, or nil when the drawn
// event does not apply.
func randomIntentEvent(rng *rand.Rand, s *cluster.Snapshot, pool []intents.Target, removed *[]*intents.ClientIntents, i int) (*cluster.Snapshot, string) {
	pick := func() *intents.ClientIntents {
		if len(s.Intents) == 0 {
			return nil
		}
		return s.Intents[rng.IntN(len(s.Intents))]
	}
	switch rng.IntN(6) {
	case 0: // a new target
		ci := pick()
		if ci == nil {
			return nil, ""
		}
		n := copyIntents(ci)
		n.Targets = append(n.Targets, pool[rng.IntN(len(pool))])
		next, _ := ReplaceIntents(s, []*intents.ClientIntents{n}, nil)
		return next, "add a target to " + ci.Key()
	case 1: // a target dropped
		ci := pick()
		if ci == nil || len(ci.Targets) == 0 {
			return nil, ""
		}
		n := copyIntents(ci)
		j := rng.IntN(len(n.Targets))
		n.Targets = slices.Delete(n.Targets, j, j+1)
		next, _ := ReplaceIntents(s, []*intents.ClientIntents{n}, nil)
		return next, "drop a target of " + ci.Key()
	case 2: // the client renamed to another workload of its namespace, or to nobody
		ci := pick()
		if ci == nil {
			return nil, ""
		}
		n := copyIntents(ci)
		t := pool[rng.IntN(len(pool))]
		n.Client = intents.Workload{Name: t.Name, Kind: t.Kind}
		next, _ := ReplaceIntents(s, []*intents.ClientIntents{n}, nil)
		return next, "change the client of " + ci.Key()
	case 3: // deleted
		ci := pick()
		if ci == nil {
			return nil, ""
		}
		*removed = append(*removed, ci)
		next, _ := ReplaceIntents(s, nil, []string{ci.Key()})
		return next, "delete " + ci.Key()
	case 4: // a deleted one restored
		if len(*removed) == 0 {
			return nil, ""
		}
		ci := (*removed)[rng.IntN(len(*removed))]
		next, _ := ReplaceIntents(s, []*intents.ClientIntents{ci}, nil)
		return next, "restore " + ci.Key()
	default: // a new ClientIntents for a random client with random targets
		t := pool[rng.IntN(len(pool))]
		n := &intents.ClientIntents{Namespace: t.Namespace, Name: fmt.Sprintf("new-%d", i), APIVersion: "k8s.otterize.com/v2beta1",
			Client: intents.Workload{Name: t.Name}}
		for range 1 + rng.IntN(3) {
			n.Targets = append(n.Targets, pool[rng.IntN(len(pool))])
		}
		next, _ := ReplaceIntents(s, []*intents.ClientIntents{n}, nil)
		return next, "create " + n.Key()
	}
}

func copyIntents(ci *intents.ClientIntents) *intents.ClientIntents {
	n := *ci
	n.Targets = slices.Clone(ci.Targets)
	return &n
}

// TestCompilerUpdateRecompiles: a change outside the ClientIntents (a pod gone) is
// compiled from scratch, and the delta still names only what changed.
func TestCompilerUpdateRecompiles(t *testing.T) {
	s, err := cluster.Load("testdata/shop")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Egress: true}
	k, err := NewCompiler(s, o)
	if err != nil {
		t.Fatal(err)
	}
	before := policyMap(k.Result().Policies)
	next := *s
	next.Pods = nil
	for _, p := range s.Pods {
		if p.Workload.Name != "frontend" {
			next.Pods = append(next.Pods, p)
		}
	}
	next.Index()
	d, err := k.Update(&next)
	if err != nil {
		t.Fatal(err)
	}
	if d.Empty() {
		t.Fatal("removing the frontend pods changed nothing")
	}
	for _, p := range d.Upsert {
		ref := evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}
		if old, ok := before[ref]; ok && cmp.Equal(old, p) {
			t.Errorf("upsert %v is unchanged", ref)
		}
	}
	assertSameResult(t, &next, o, k)

	// Nothing changed: nothing to do.
	d, err = k.Update(&next)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Empty() {
		t.Errorf("an identical snapshot gave %d upserts and %d removals", len(d.Upsert), len(d.Remove))
	}
}

// TestCompilerUnsortedIntents: a snapshot assembled by hand may list its ClientIntents in
// any order; the Compiler finds them by key all the same.
func TestCompilerUnsortedIntents(t *testing.T) {
	s, err := cluster.Load("testdata/shop")
	if err != nil {
		t.Fatal(err)
	}
	reversed := *s
	reversed.Intents = slices.Clone(s.Intents)
	slices.Reverse(reversed.Intents)
	o := Options{Egress: true}
	k, err := NewCompiler(&reversed, o)
	if err != nil {
		t.Fatal(err)
	}
	assertSameResult(t, &reversed, o, k)
	first := reversed.Intents[len(reversed.Intents)-1]
	next := *s
	next.Intents = slices.Clone(reversed.Intents[:len(reversed.Intents)-1])
	if _, err := k.Update(&next); err != nil {
		t.Fatal(err)
	}
	assertSameResult(t, &next, o, k)
	if k.Policy(first.Namespace, "x") != nil {
		t.Error("Policy found a policy that does not exist")
	}
}

// TestCompilerRandomPolicyEvents applies random sequences of events to the cluster's own
// NetworkPolicies (a deny-all, an allowance from anywhere, one from a namespace, a
// policy shadowgate manages, a policy removed or rewritten), mixed with ClientIntents
// events, through Update, which redoes only the external allowances of the namespaces
// whose policies changed; after each one the result must be byte-identical to Compile.
func TestCompilerRandomPolicyEvents(t *testing.T) {
	events, seeds := randomRun(16, 6)
	for fixture, s := range fixtures(t) {
		for name, o := range incrementalOptions() {
			for seed := range seeds {
				t.Run(fmt.Sprintf("%s/%s/seed=%d", fixture, name, seed), func(t *testing.T) {
					rng := rand.New(rand.NewPCG(seed, 11))
					k, err := NewCompiler(s, o)
					if err != nil {
						t.Fatal(err)
					}
					pool := targetPool(s)
					removed := []*intents.ClientIntents{}
					cur := s
					for i := range events {
						var next *cluster.Snapshot
						var what string
						if rng.IntN(3) == 0 {
							next, what = randomIntentEvent(rng, cur, pool, &removed, i)
						}
						if next == nil {
							next, what = randomPolicyEvent(rng, cur, i)
						}
						updateAndCompare(t, k, next, o, fmt.Sprintf("event %d (%s)", i, what))
						cur = next
					}
				})
			}
		}
	}
}

// updateAndCompare moves k to next with Update and requires the result of Compile.
func updateAndCompare(t *testing.T, k *Compiler, next *cluster.Snapshot, o Options, what string) {
	t.Helper()
	if _, err := k.Update(next); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	want, err := Compile(next, o)
	if err != nil {
		t.Fatal(err)
	}
	assertResult(t, want, k)
	if t.Failed() {
		t.Fatal(what)
	}
}

// randomPolicyEvent returns s with one of the cluster's own NetworkPolicies added,
// rewritten or removed, everything else shared.
func randomPolicyEvent(rng *rand.Rand, s *cluster.Snapshot, i int) (*cluster.Snapshot, string) {
	next := *s
	next.NetworkPolicies = slices.Clone(s.NetworkPolicies)
	var namespaces []string
	for ns := range s.Namespaces {
		namespaces = append(namespaces, ns)
	}
	slices.Sort(namespaces)
	ns := namespaces[rng.IntN(len(namespaces))]
	p := &networkingv1.NetworkPolicy{}
	p.Namespace, p.Name = ns, fmt.Sprintf("random-%d", i)
	port := intstr.FromInt32([]int32{80, 443, 8080}[rng.IntN(3)])
	switch k := rng.IntN(6); {
	case k == 0 && len(next.NetworkPolicies) > 0:
		j := rng.IntN(len(next.NetworkPolicies))
		gone := next.NetworkPolicies[j]
		next.NetworkPolicies = slices.Delete(next.NetworkPolicies, j, j+1)
		return &next, "remove policy " + gone.Namespace + "/" + gone.Name
	case k == 1 && len(next.NetworkPolicies) > 0:
		j := rng.IntN(len(next.NetworkPolicies))
		q := next.NetworkPolicies[j].DeepCopy()
		q.Spec.Ingress = nil // now a deny-all for what it selects
		q.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		next.NetworkPolicies[j] = q
		return &next, "rewrite policy " + q.Namespace + "/" + q.Name + " as a deny-all"
	case k == 2:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
	case k == 3:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From:  []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}},
			Ports: []networkingv1.NetworkPolicyPort{{Port: &port}},
		}}
	case k == 4:
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{
			From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{}}},
		}}
	default:
		// A policy an earlier compilation applied: the external check leaves it out.
		p.Labels = map[string]string{ManagedByLabel: ManagedByValue}
		p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
		p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{Ports: []networkingv1.NetworkPolicyPort{{Port: &port}}}}
	}
	next.NetworkPolicies = append(next.NetworkPolicies, p)
	return &next, "add policy " + ns + "/" + p.Name
}

// TestCompilerRandomPodEvents applies random sequences of pod events through Update: a
// rollout's new replica, a pod rescheduled with new addresses (both invisible to the
// compilation, which Update must see and skip), a pod deleted, relabelled, given other
// ports, the host network or only an IPv6 address, and a pod of no workload; after each
// one the result must be byte-identical to Compile, and the invisible ones must not
// have recompiled.
func TestCompilerRandomPodEvents(t *testing.T) {
	events, seeds := randomRun(24, 8)
	for fixture, s := range fixtures(t) {
		// Two worlds for the external check. In one every namespace admits IPv4 from
		// anywhere, so whether a pod has only IPv6 addresses decides whether its Services
		// are blocked from outside; in the other every namespace denies all ingress, so
		// whether a pod declares the Service's named port does.
		worlds := map[string]*cluster.Snapshot{}
		for _, kind := range []string{"ipv4-world", "deny-all"} {
			w := *s
			w.NetworkPolicies = slices.Clone(s.NetworkPolicies)
			for ns := range s.Namespaces {
				p := &networkingv1.NetworkPolicy{}
				p.Namespace, p.Name = ns, kind
				p.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
				if kind == "ipv4-world" {
					p.Spec.Ingress = []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}}}
				}
				w.NetworkPolicies = append(w.NetworkPolicies, p)
			}
			worlds[kind] = &w
		}
		for name, o := range incrementalOptions() {
			for kind, world := range worlds {
				for seed := range seeds {
					t.Run(fmt.Sprintf("%s/%s/%s/seed=%d", fixture, kind, name, seed), func(t *testing.T) {
						s := world
						rng := rand.New(rand.NewPCG(seed, 13))
						k, err := NewCompiler(s, o)
						if err != nil {
							t.Fatal(err)
						}
						cur := s
						for i := range events {
							next, what, invisible := randomPodEvent(rng, cur, i)
							before := k.c
							updateAndCompare(t, k, next, o, fmt.Sprintf("event %d (%s)", i, what))
							if invisible && k.c != before {
								t.Fatalf("event %d (%s): recompiled for a change the compilation cannot see", i, what)
							}
							cur = next
						}
					})
				}
			}
		}
	}
}

// addrLike is a new address of the family pod p has (the external check probes an
// IPv6-only pod from an IPv6 address).
func addrLike(p *cluster.Pod, net byte, i int) netip.Addr {
	if onlyIPv6(p) {
		return netip.MustParseAddr(fmt.Sprintf("fd%02x::%x", net, i+1))
	}
	return netip.AddrFrom4([4]byte{10, net, byte(i >> 8), byte(i)})
}

// randomPodEvent returns s with one pod event applied, and whether the compilation can
// see it.
func randomPodEvent(rng *rand.Rand, s *cluster.Snapshot, i int) (*cluster.Snapshot, string, bool) {
	next := *s
	next.Pods = slices.Clone(s.Pods)
	j := rng.IntN(len(next.Pods))
	orig := next.Pods[j]
	p := *orig
	what, invisible := "", false
	switch rng.IntN(8) {
	case 0:
		p.Name = fmt.Sprintf("%s-replica-%d", orig.Name, i)
		p.IPs = []netip.Addr{addrLike(orig, 250, i)}
		next.Pods = append(next.Pods, &p)
		what, invisible = "new replica of "+orig.Key(), !orig.Workload.IsZero()
	case 1:
		p.NodeName, p.HostIP = "node-elsewhere", netip.MustParseAddr("192.168.99.1")
		p.IPs = []netip.Addr{addrLike(orig, 251, i)}
		next.Pods[j] = &p
		what, invisible = "rescheduled "+orig.Key(), true
	case 2:
		next.Pods = slices.Delete(next.Pods, j, j+1)
		what = "deleted " + orig.Key()
	case 3:
		// Half the time a pod whose labels are its selector (no controller's), where a
		// label is the identity's selector.
		if bare := slices.IndexFunc(next.Pods, func(q *cluster.Pod) bool { return q.Selector == nil }); bare >= 0 && rng.IntN(2) == 0 {
			j, orig = bare, next.Pods[bare]
			p = *orig
		}
		p.Labels = maps.Clone(orig.Labels)
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		if rng.IntN(2) == 0 {
			p.Labels["canary"] = fmt.Sprint(i % 2)
		} else {
			p.Labels["app"] = fmt.Sprintf("relabelled-%d", i%3) // out of its Services, into others' strays
		}
		next.Pods[j] = &p
		what = "relabelled " + orig.Key()
	case 4:
		switch {
		case len(orig.Ports) > 0 && rng.IntN(2) == 0:
			p.Ports = nil // named ports no longer resolve on it
			what = "ports removed from " + orig.Key()
		case orig.Selector != nil && rng.IntN(2) == 0:
			sel := orig.Selector.DeepCopy()
			if sel.MatchLabels == nil {
				sel.MatchLabels = map[string]string{}
			}
			sel.MatchLabels["rollout"] = fmt.Sprint(i)
			p.Selector = sel
			what = "controller selector changed on " + orig.Key()
		default:
			p.Ports = append(slices.Clone(orig.Ports), cluster.ContainerPort{Name: fmt.Sprintf("p%d", i), Port: int32(9000 + i), Protocol: corev1.ProtocolTCP})
			what = "new port on " + orig.Key()
		}
		next.Pods[j] = &p
	case 5:
		p.HostNetwork = !orig.HostNetwork
		next.Pods[j] = &p
		what = "host network flipped on " + orig.Key()
	case 6:
		p.IPs = []netip.Addr{netip.MustParseAddr(fmt.Sprintf("fd00::%x", i+1))}
		next.Pods[j] = &p
		what = "IPv6 only: " + orig.Key()
	default:
		p.Name, p.Workload, p.Selector = fmt.Sprintf("bare-%d", i), cluster.WorkloadID{}, nil
		p.IPs = []netip.Addr{netip.AddrFrom4([4]byte{10, 252, byte(i >> 8), byte(i)})}
		next.Pods = append(next.Pods, &p)
		what = "bare pod beside " + orig.Key()
	}
	next.Index()
	return &next, what, invisible
}

package evaluator

import (
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

var updateN = flag.Int("update.n", 30, "number of random update sequences TestEngineUpdates runs")

// TestEngineUpdates applies random sequences of pod, namespace and policy events to an
// Engine and requires, after every event, the verdicts of the Oracle and of a freshly
// built Engine over the changed world. Connections from earlier steps are kept, so pods
// that were replaced or deleted since are still judged, by their content, and the
// updated engine is checked with a cache warmed before the event.
func TestEngineUpdates(t *testing.T) {
	for i := range *updateN {
		seed := *differentialSeed + uint64(i)
		w := newWorld(seed)
		u := newUpdater(w)
		engine := NewEngine(w.snap, w.policies)
		conns := slices.Clone(w.conns[:20])
		// refs are the connections resolved when they were drawn, and kept across
		// every later event: stale Refs must be judged like the connections they came
		// from, never by what their pods or classes have become.
		var refs []refConn
		for _, c := range conns {
			refs = append(refs, resolveConn(engine, c))
		}
		var events []string
		for step := range 10 {
			events = append(events, u.step(engine))
			snap, policies := u.world()
			for range 8 {
				c := u.g.conn(snap)
				conns = append(conns, c)
				refs = append(refs, resolveConn(engine, c))
			}
			if len(conns) > 60 {
				conns = conns[len(conns)-60:]
				refs = refs[len(refs)-60:]
			}
			fresh, oracle := NewEngine(snap, policies), NewOracle(snap, policies)
			for ci, c := range conns {
				want := oracle.Evaluate(c)
				if diff := cmp.Diff(want, fresh.Evaluate(c)); diff != "" {
					t.Fatalf("seed %d step %d: a fresh engine disagrees with the oracle on %s (-oracle +engine):\n%s", seed, step, c, diff)
				}
				if diff := cmp.Diff(want, engine.Evaluate(c)); diff != "" {
					t.Fatalf("seed %d (-differential.seed=%d -update.n=1) step %d, connection %d %s: the updated engine disagrees with the oracle (-oracle +updated):\n%s\nevents:\n  %s",
						seed, seed, step, ci, c, diff, strings.Join(events, "\n  "))
				}
				if diff := cmp.Diff(want, refs[ci].eval(engine)); diff != "" {
					t.Fatalf("seed %d (-differential.seed=%d -update.n=1) step %d, connection %d %s: the updated engine disagrees with the oracle on Refs resolved before the events (-oracle +updated):\n%s\nevents:\n  %s",
						seed, seed, step, ci, c, diff, strings.Join(events, "\n  "))
				}
			}
		}
	}
}

// updater holds the world an engine is being updated towards.
type updater struct {
	g        *gen
	pods     map[podName]*cluster.Pod
	nsLabels map[string]labels.Set
	policies map[PolicyRef]*networkingv1.NetworkPolicy
	next     int
}

func newUpdater(w *world) *updater {
	u := &updater{
		g:        &gen{r: rand.New(rand.NewPCG(w.seed, 0x0bda7e))},
		pods:     map[podName]*cluster.Pod{},
		nsLabels: map[string]labels.Set{},
		policies: map[PolicyRef]*networkingv1.NetworkPolicy{},
	}
	for i := range 3 {
		u.g.nodes = append(u.g.nodes, netip.AddrFrom4([4]byte{192, 168, 0, byte(i + 1)}))
	}
	for _, p := range w.snap.Pods {
		u.pods[podName{p.Namespace, p.Name}] = p
	}
	for name, ns := range w.snap.Namespaces {
		u.nsLabels[name] = ns.Labels
	}
	for _, p := range dedupe(w.policies) {
		u.policies[refOf(p)] = p
	}
	return u
}

// step applies one random event to the world and to e, and describes it.
func (u *updater) step(e *Engine) string {
	g := u.g
	switch g.r.IntN(7) {
	case 0:
		u.next++
		p := g.pod(fmt.Sprintf("new-%d", u.next))
		u.pods[podName{p.Namespace, p.Name}] = p
		e.UpdatePod(p)
		return "add pod " + p.Key()
	case 1:
		if len(u.pods) == 0 {
			return "nothing to replace"
		}
		old := u.pods[pickOf(g.r, u.podNames())]
		p := *old
		switch g.r.IntN(3) {
		case 0:
			p.Labels = g.labels()
		case 1:
			p.Ports = g.containerPorts()
		default:
			p.HostNetwork = !p.HostNetwork
			if p.HostNetwork {
				p.IPs = []netip.Addr{p.HostIP}
			} else {
				p.IPs = []netip.Addr{g.podIP()}
			}
		}
		u.pods[podName{p.Namespace, p.Name}] = &p
		e.UpdatePod(&p)
		return fmt.Sprintf("replace pod %s: labels=%v ports=%v hostNetwork=%v", p.Key(), p.Labels, p.Ports, p.HostNetwork)
	case 2:
		if len(u.pods) == 0 {
			return "nothing to delete"
		}
		k := pickOf(g.r, u.podNames())
		delete(u.pods, k)
		e.DeletePod(k.namespace, k.name)
		return "delete pod " + k.namespace + "/" + k.name
	case 3, 4:
		var upsert []*networkingv1.NetworkPolicy
		var names []string
		for range 1 + g.r.IntN(2) {
			p := g.policy()
			upsert = append(upsert, p)
			u.policies[refOf(p)] = p
			names = append(names, refOf(p).String())
		}
		e.UpdatePolicies(upsert, nil)
		return "upsert policies " + strings.Join(names, ", ")
	case 5:
		var remove []PolicyRef
		if len(u.policies) > 0 {
			remove = append(remove, pickOf(g.r, slices.SortedFunc(maps.Keys(u.policies), comparePolicyRefs)))
		}
		remove = append(remove, PolicyRef{Namespace: "ns0", Name: "never-existed"})
		for _, r := range remove {
			delete(u.policies, r)
		}
		e.UpdatePolicies(nil, remove)
		return fmt.Sprintf("remove policies %v", remove)
	default:
		name := g.pick(genPolicyNamespaces)
		if g.chance(3) {
			delete(u.nsLabels, name)
			e.DeleteNamespace(name)
			return "delete namespace " + name
		}
		l := labels.Set{corev1.LabelMetadataName: name}
		for _, k := range []string{"team", "env"} {
			if g.r.IntN(3) > 0 {
				l[k] = g.pick(genValues)
			}
		}
		u.nsLabels[name] = l
		e.UpdateNamespace(&cluster.Namespace{Name: name, Labels: l})
		return fmt.Sprintf("namespace %s labels %v", name, l)
	}
}

// podNames lists the pods in a stable order, so that a seed replays the same events.
func (u *updater) podNames() []podName {
	return slices.SortedFunc(maps.Keys(u.pods), func(a, b podName) int {
		return strings.Compare(a.namespace+"/"+a.name, b.namespace+"/"+b.name)
	})
}

func comparePolicyRefs(a, b PolicyRef) int {
	switch {
	case lessRef(a, b):
		return -1
	case lessRef(b, a):
		return 1
	}
	return 0
}

// world returns the snapshot and policy set the updates have led to.
func (u *updater) world() (*cluster.Snapshot, []*networkingv1.NetworkPolicy) {
	s := &cluster.Snapshot{Namespaces: map[string]*cluster.Namespace{}}
	for name, l := range u.nsLabels {
		s.Namespaces[name] = &cluster.Namespace{Name: name, Labels: l}
	}
	for _, p := range u.pods {
		s.Pods = append(s.Pods, p)
	}
	s.Index()
	policies := slices.Collect(maps.Values(u.policies))
	return s, policies
}

// TestEngineUpdatesConcurrent evaluates from several goroutines while events are applied
// (for the race detector, which watches the lock-free reads), then checks the engine
// against the Oracle once it has settled.
func TestEngineUpdatesConcurrent(t *testing.T) {
	w := newWorld(*differentialSeed + 7)
	u := newUpdater(w)
	engine := NewEngine(w.snap, w.policies)
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				c := w.conns[(i*7+g)%len(w.conns)]
				engine.Evaluate(c)
				rc := resolveConn(engine, c)
				rc.eval(engine)
			}
		})
	}
	for range 40 {
		u.step(engine)
	}
	close(done)
	wg.Wait()
	snap, policies := u.world()
	oracle := NewOracle(snap, policies)
	for _, c := range append(w.conns, u.g.conn(snap), u.g.conn(snap)) {
		if diff := cmp.Diff(oracle.Evaluate(c), engine.Evaluate(c)); diff != "" {
			t.Errorf("%s (-oracle +engine):\n%s", c, diff)
		}
	}
}

// TestEngineForgetsUntrackedPods: pods evaluated without being tracked (created after
// the snapshot) are interned on sight; once they far outnumber the tracked identities
// they are dropped, so a long-running engine stays bounded, and verdicts stay right.
func TestEngineForgetsUntrackedPods(t *testing.T) {
	policies := parsePolicies(t, enginePolicies)
	e, o := NewEngine(fx, policies), NewOracle(fx, policies)
	dst := pod("shop/cart-1")
	const n = 3*minPrunable + 100
	var last Connection
	for i := range n {
		p := &cluster.Pod{Namespace: "shop", Name: fmt.Sprintf("ghost-%d", i), Labels: labels.Set{"app": "frontend", "build": fmt.Sprint(i)}}
		last = tcp(Endpoint{Kind: Pod, Pod: p}, dst, 8080)
		if i%997 == 0 {
			if diff := cmp.Diff(o.Evaluate(last), e.Evaluate(last)); diff != "" {
				t.Fatalf("ghost %d (-oracle +engine):\n%s", i, diff)
			}
			continue
		}
		e.Evaluate(last)
	}
	e.mu.Lock()
	idents, byBuild := len(e.idents), len(e.byLabelKey["build"])
	e.mu.Unlock()
	if idents > 2*minPrunable+64 {
		t.Errorf("engine holds %d identities after %d untracked pods, want them pruned", idents, n)
	}
	if byBuild > idents {
		t.Errorf("label index holds %d identities with a build label, more than the %d identities left", byBuild, idents)
	}
	// Pruned pods are interned again when they come back.
	if diff := cmp.Diff(o.Evaluate(last), e.Evaluate(last)); diff != "" {
		t.Errorf("after pruning (-oracle +engine):\n%s", diff)
	}
	for _, p := range fx.Pods {
		c := tcp(Endpoint{Kind: Pod, Pod: p}, dst, 8080)
		if diff := cmp.Diff(o.Evaluate(c), e.Evaluate(c)); diff != "" {
			t.Errorf("snapshot pod %s after pruning (-oracle +engine):\n%s", p.Key(), diff)
		}
	}
}

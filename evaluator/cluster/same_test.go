package cluster

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func equalTestPod() *Pod {
	return &Pod{
		Namespace: "shop", Name: "web-1", Labels: map[string]string{"app": "web"},
		IPs: []netip.Addr{netip.MustParseAddr("10.1.1.11")}, HostIP: netip.MustParseAddr("10.0.0.1"), NodeName: "node-1",
		Ports:    []ContainerPort{{Name: "http", Port: 8080, Protocol: corev1.ProtocolTCP}},
		Workload: WorkloadID{Namespace: "shop", Name: "web", Kind: "Deployment"},
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a"}}}},
		Origin: "pods.yaml#1",
	}
}

// TestPodSameComparesEveryField changes each field of a Pod, and of its selector, in
// turn: Same must see every change, and agree with reflect.DeepEqual (whose work it
// does faster) on each pair, nil against empty included.
func TestPodSameComparesEveryField(t *testing.T) {
	mutations := map[string]func(p *Pod){
		"Namespace":   func(p *Pod) { p.Namespace = "other" },
		"Name":        func(p *Pod) { p.Name = "web-2" },
		"Labels":      func(p *Pod) { p.Labels = map[string]string{"app": "api"} },
		"Labels nil":  func(p *Pod) { p.Labels = nil },
		"Labels none": func(p *Pod) { p.Labels = map[string]string{} },
		"IPs":         func(p *Pod) { p.IPs = []netip.Addr{netip.MustParseAddr("10.1.1.12")} },
		"IPs nil":     func(p *Pod) { p.IPs = nil },
		"HostIP":      func(p *Pod) { p.HostIP = netip.MustParseAddr("10.0.0.2") },
		"NodeName":    func(p *Pod) { p.NodeName = "node-2" },
		"HostNetwork": func(p *Pod) { p.HostNetwork = true },
		"Ports":       func(p *Pod) { p.Ports[0].Port = 9090 },
		"Ports nil":   func(p *Pod) { p.Ports = nil },
		"Workload":    func(p *Pod) { p.Workload.Kind = "StatefulSet" },
		"Selector":    func(p *Pod) { p.Selector = nil },
		"Selector.MatchLabels": func(p *Pod) {
			p.Selector.MatchLabels = map[string]string{"app": "api"}
		},
		"Selector.MatchLabels nil":          func(p *Pod) { p.Selector.MatchLabels = nil },
		"Selector.MatchExpressions nil":     func(p *Pod) { p.Selector.MatchExpressions = nil },
		"Selector.MatchExpressions.Key":     func(p *Pod) { p.Selector.MatchExpressions[0].Key = "zone" },
		"Selector.MatchExpressions.Op":      func(p *Pod) { p.Selector.MatchExpressions[0].Operator = metav1.LabelSelectorOpNotIn },
		"Selector.MatchExpressions.Values":  func(p *Pod) { p.Selector.MatchExpressions[0].Values = []string{"b"} },
		"Selector.MatchExpressions.no vals": func(p *Pod) { p.Selector.MatchExpressions[0].Values = nil },
		"Synthesized":                       func(p *Pod) { p.Synthesized = true },
		"Origin":                            func(p *Pod) { p.Origin = "pods.yaml#2" },
	}
	// Every field of Pod is changed by some case: a new field fails here until Same and
	// this table know it.
	covered := map[string]bool{}
	for name := range mutations {
		for i := 0; i < len(name); i++ {
			if name[i] == ' ' || name[i] == '.' {
				name = name[:i]
				break
			}
		}
		covered[name] = true
	}
	for f := range reflect.TypeFor[Pod]().Fields() {
		if !covered[f.Name] {
			t.Errorf("no case changes Pod.%s", f.Name)
		}
	}
	if a, b := equalTestPod(), equalTestPod(); !a.Same(b) || !reflect.DeepEqual(a, b) {
		t.Fatal("two copies of the same pod differ")
	}
	for name, mutate := range mutations {
		t.Run(name, func(t *testing.T) {
			a, b := equalTestPod(), equalTestPod()
			mutate(b)
			if got, want := a.Same(b), reflect.DeepEqual(a, b); got != want || got {
				t.Errorf("Same = %v, reflect.DeepEqual = %v: want both false", got, want)
			}
			if b.Same(a) {
				t.Error("Same is not symmetric")
			}
		})
	}
	var nilPod *Pod
	if nilPod.Same(equalTestPod()) || equalTestPod().Same(nil) || !nilPod.Same(nil) {
		t.Error("nil pods: want equal to nil only")
	}
}

// TestReusePods: a snapshot rebuilt from the same objects, one pod changed, takes the
// previous snapshot's pods for every other pod, finds them by name and by address, and
// is the same snapshot by value as before the reuse.
func TestReusePods(t *testing.T) {
	o, prev := goodSnapshot(t)
	if len(prev.Pods) < 3 {
		t.Fatalf("the fixture has %d pods: want at least 3", len(prev.Pods))
	}
	// The changed pod: the first one the objects hold, relabelled.
	changed := o.Pods[0].DeepCopy()
	changed.Labels = map[string]string{"relabelled": "yes"}
	next := *o
	next.Pods = append([]*corev1.Pod{changed}, o.Pods[1:]...)
	fresh, err := Build(&next)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Build(&next)
	if err != nil {
		t.Fatal(err)
	}

	n := fresh.ReusePods(prev)
	if n != len(fresh.Pods)-1 {
		t.Errorf("reused %d pods, want all %d but the changed one", n, len(fresh.Pods)-1)
	}
	for _, p := range fresh.Pods {
		old := prev.Pod(p.Namespace, p.Name)
		isChanged := p.Namespace == changed.Namespace && p.Name == changed.Name
		if (old == p) == isChanged {
			t.Errorf("pod %s: shared with the previous snapshot %v, changed %v", p.Key(), old == p, isChanged)
		}
		if got := fresh.Pod(p.Namespace, p.Name); got != p {
			t.Errorf("Pod(%s) is not the snapshot's pod", p.Key())
		}
		for _, ip := range p.IPs {
			if got := fresh.PodByIP(ip); !p.HostNetwork && got != p {
				t.Errorf("PodByIP(%s) is not the snapshot's pod %s", ip, p.Key())
			}
		}
	}
	if diff := cmp.Diff(want, fresh, cmpopts.IgnoreUnexported(Snapshot{}), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("after the reuse (-fresh build +reused):\n%s", diff)
	}
	if fresh.ReusePods(fresh) != 0 || fresh.ReusePods(nil) != 0 {
		t.Error("reusing from itself or from nothing replaced pods")
	}
}

// TestDiffPods: merging sorted pod lists finds what the map finds (new, changed, gone),
// and ComparePodKeys orders pods exactly as their keys do, namespaces that begin one
// another ("a", "a-b", "ab") included.
func TestDiffPods(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	namespaces := []string{"a", "a-b", "ab", "a0", "b", "kube-system"}
	names := []string{"x", "x-1", "x1", "y", "web-7c9d-a"}
	var pool []*Pod
	for _, ns := range namespaces {
		for _, n := range names {
			pool = append(pool, &Pod{Namespace: ns, Name: n, Labels: map[string]string{"app": n}})
		}
	}
	for i, a := range pool {
		for _, b := range pool[i:] {
			if got, want := ComparePodKeys(a, b), strings.Compare(a.Key(), b.Key()); got != want {
				t.Fatalf("ComparePodKeys(%s, %s) = %d, keys compare %d", a.Key(), b.Key(), got, want)
			}
			if got, want := ComparePodKeys(b, a), strings.Compare(b.Key(), a.Key()); got != want {
				t.Fatalf("ComparePodKeys(%s, %s) = %d, keys compare %d", b.Key(), a.Key(), got, want)
			}
		}
	}
	pick := func() []*Pod {
		var out []*Pod
		for _, p := range pool {
			switch rng.IntN(4) {
			case 0: // absent
			case 1: // a changed copy
				q := *p
				q.Labels = map[string]string{"app": p.Name, "v": "2"}
				out = append(out, &q)
			default:
				out = append(out, p)
			}
		}
		return out
	}
	record := func(into *[]string) func(*Pod) { return func(p *Pod) { *into = append(*into, p.Key()) } }
	for round := range 200 {
		prev, next := pick(), pick()
		slices.SortFunc(prev, func(a, b *Pod) int { return strings.Compare(a.Key(), b.Key()) })
		slices.SortFunc(next, func(a, b *Pod) int { return strings.Compare(a.Key(), b.Key()) })
		if round%2 == 1 {
			rng.Shuffle(len(next), func(i, j int) { next[i], next[j] = next[j], next[i] })
		}
		var changed, gone, wantChanged, wantGone []string
		DiffPods(prev, next, record(&changed), record(&gone))
		diffPodsByMap(prev, next, record(&wantChanged), record(&wantGone))
		slices.Sort(changed)
		slices.Sort(gone)
		slices.Sort(wantChanged)
		slices.Sort(wantGone)
		if diff := cmp.Diff(wantChanged, changed); diff != "" {
			t.Fatalf("round %d: changed (-map +merge):\n%s", round, diff)
		}
		if diff := cmp.Diff(wantGone, gone); diff != "" {
			t.Fatalf("round %d: gone (-map +merge):\n%s", round, diff)
		}
	}
}

// TestReuseUnchanged: rebuilt from the same objects, one pod and one NetworkPolicy
// changed, a snapshot takes the previous one's objects for everything else, and its
// previous collections whole where nothing in them changed; by value it is the fresh
// build.
func TestReuseUnchanged(t *testing.T) {
	o, prev := goodSnapshot(t)
	if len(o.NetworkPolicies) < 2 || len(prev.Services) == 0 || len(prev.Intents) == 0 || len(prev.Workloads) == 0 {
		t.Fatalf("the fixture lacks policies, Services, intents or workloads")
	}
	next := *o
	changedPod := o.Pods[0].DeepCopy()
	changedPod.Labels = map[string]string{"relabelled": "yes"}
	next.Pods = append([]*corev1.Pod{changedPod}, o.Pods[1:]...)
	changedPolicy := o.NetworkPolicies[0].DeepCopy()
	changedPolicy.Labels = map[string]string{"changed": "yes"}
	next.NetworkPolicies = append([]*networkingv1.NetworkPolicy{changedPolicy}, o.NetworkPolicies[1:]...)
	s, err := Build(&next)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Build(&next)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.ReuseUnchanged(prev); n == 0 {
		t.Fatal("reused nothing")
	}
	same := func(a, b any) bool { return reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer() }
	for name, ok := range map[string]bool{
		"namespaces": same(s.Namespaces, prev.Namespaces), "workloads": same(s.Workloads, prev.Workloads),
		"services": same(s.Services, prev.Services), "intents": same(s.Intents, prev.Intents),
	} {
		if !ok {
			t.Errorf("%s: unchanged, but not the previous snapshot's collection", name)
		}
	}
	if same(s.Pods, prev.Pods) || same(s.NetworkPolicies, prev.NetworkPolicies) {
		t.Error("a collection with a change is the previous snapshot's")
	}
	for i, p := range s.NetworkPolicies {
		if shared := slices.Contains(prev.NetworkPolicies, p); shared == (p.Name == changedPolicy.Name && p.Namespace == changedPolicy.Namespace) {
			t.Errorf("policy %d %s/%s: shared %v", i, p.Namespace, p.Name, shared)
		}
	}
	if diff := cmp.Diff(want, s, cmpopts.IgnoreUnexported(Snapshot{}), cmpopts.EquateComparable(netip.Addr{}, netip.Prefix{})); diff != "" {
		t.Errorf("after the reuse (-fresh build +reused):\n%s", diff)
	}
}

// goodSnapshot loads testdata/good's objects and builds them.
func goodSnapshot(t *testing.T) (*Objects, *Snapshot) {
	t.Helper()
	o, err := LoadObjects("testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	return o, s
}

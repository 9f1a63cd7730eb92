package simulate

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// TestResolverMoved: after random pod events (pods added, deleted, moved to another
// workload or kind, onto the host network and back), a resolver patched with moved
// indexes the same pods newResolver indexes (the objects a pod that did not change had,
// as the engines keep them), representatives of workloads included (kindless lookups,
// namespaces that begin one another, host-network pods left out).
func TestResolverMoved(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	namespaces := []string{"a", "a-b", "ab"}
	kinds := []string{"Deployment", "StatefulSet", ""}
	newPod := func(i int) *cluster.Pod {
		ns := namespaces[rng.IntN(len(namespaces))]
		return &cluster.Pod{Namespace: ns, Name: fmt.Sprintf("p%d", i), HostNetwork: rng.IntN(5) == 0,
			Workload: cluster.WorkloadID{Namespace: ns, Name: fmt.Sprintf("w%d", rng.IntN(4)), Kind: kinds[rng.IntN(len(kinds))]}}
	}
	snap := &cluster.Snapshot{}
	for i := range 40 {
		snap.Pods = append(snap.Pods, newPod(i))
	}
	snap.Index()
	r := newResolver(snap)
	for event := range 300 {
		next := *snap
		next.Pods = slices.Clone(snap.Pods)
		j := rng.IntN(len(next.Pods))
		switch rng.IntN(4) {
		case 0:
			next.Pods = append(next.Pods, newPod(1000+event))
		case 1:
			if len(next.Pods) > 5 {
				next.Pods = slices.Delete(next.Pods, j, j+1)
			}
		case 2:
			p := *next.Pods[j]
			p.Workload.Kind = kinds[rng.IntN(len(kinds))]
			p.Workload.Name = fmt.Sprintf("w%d", rng.IntN(4))
			next.Pods[j] = &p
		default:
			p := *next.Pods[j]
			p.HostNetwork = !p.HostNetwork
			next.Pods[j] = &p
		}
		next.Index()
		var changed, gone []*cluster.Pod
		cluster.DiffPods(snap.Pods, next.Pods, func(p *cluster.Pod) { changed = append(changed, p) }, func(p *cluster.Pod) { gone = append(gone, p) })
		r = r.moved(&next, changed, gone)
		want := newResolver(&next)
		// The same pods: the engines keep the object they were given for a pod that did
		// not change (Same), and so does the patched index.
		same := func(a, b *cluster.Pod) bool { return a.Same(b) }
		if !maps.EqualFunc(want.pods, r.pods, same) {
			t.Fatalf("event %d: pods index differs from a new resolver's", event)
		}
		if !maps.EqualFunc(want.byWorkload, r.byWorkload, same) {
			for w, p := range want.byWorkload {
				if !p.Same(r.byWorkload[w]) {
					t.Errorf("event %d: representative of %v: got %v, want %v", event, w, r.byWorkload[w], p.Key())
				}
			}
			t.Fatalf("event %d: workload index differs from a new resolver's (%d entries, want %d)", event, len(r.byWorkload), len(want.byWorkload))
		}
		if r.snap != &next {
			t.Fatalf("event %d: the resolver does not read the new snapshot", event)
		}
		snap = &next
	}
}

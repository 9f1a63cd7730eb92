package simulate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// tinyWorld is small enough that random events often hit the same servers and names.
var tinyWorld = bench.Profile{Name: "tiny", Namespaces: 4, Workloads: 8, Pods: 20, IntentTargets: 12, Policies: 4, Flows: 10}

// worldFlows returns n generated flow events of w.
func worldFlows(t *testing.T, w *bench.World, n int) []flows.Event {
	t.Helper()
	var buf bytes.Buffer
	if err := w.WriteFlows(&buf, n); err != nil {
		t.Fatal(err)
	}
	src := flows.NewReader("generated", &buf)
	defer src.Close()
	var out []flows.Event
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == flows.KindFlow {
			out = append(out, ev)
		}
	}
}

// assertSameAsNew requires sim to compile and judge exactly as a Simulator built from
// scratch on snap.
func assertSameAsNew(t *testing.T, sim *simulate.Simulator, snap *cluster.Snapshot, opts simulate.Options, evs []flows.Event, what string) {
	t.Helper()
	fresh, err := simulate.New(snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fresh.Compiled().Manifests()
	if err != nil {
		t.Fatal(err)
	}
	got, err := sim.Compiled().Manifests()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Fatalf("%s: compiled policies (-New +updated):\n%s", what, diff)
	}
	type judged struct {
		Outcome           simulate.Outcome
		Reason            string
		WouldDrop         bool
		Current, Enforced evaluator.Verdict
	}
	for _, ev := range evs {
		a, b := fresh.Judge(ev.Flow, ev.Line), sim.Judge(ev.Flow, ev.Line)
		wantJ := judged{a.Outcome, a.Reason, a.WouldDrop, normalVerdict(a.Current), normalVerdict(a.Enforced)}
		gotJ := judged{b.Outcome, b.Reason, b.WouldDrop, normalVerdict(b.Current), normalVerdict(b.Enforced)}
		// cmp.Diff only on a mismatch: it costs a hundred times DeepEqual per flow.
		if reflect.DeepEqual(wantJ, gotJ) {
			continue
		}
		if diff := cmp.Diff(wantJ, gotJ); diff != "" {
			t.Fatalf("%s: line %d judged (-New +updated):\n%s", what, ev.Line, diff)
		}
	}
}

// normalVerdict maps empty slices to nil: engines built differently may allocate them
// differently, and the contract is about their contents.
func normalVerdict(v evaluator.Verdict) evaluator.Verdict {
	for _, d := range []*evaluator.Direction{&v.Egress, &v.Ingress} {
		if len(d.Isolated) == 0 {
			d.Isolated = nil
		}
		if len(d.AllowedBy) == 0 {
			d.AllowedBy = nil
		}
	}
	return v
}

// TestUpdateIntentsJudgesAsNew applies random ClientIntents events to a Simulator and
// requires, after each, the compilation and every verdict of a Simulator built anew.
func TestUpdateIntentsJudgesAsNew(t *testing.T) {
	cases := map[string]struct {
		profile bench.Profile
		egress  bool
		events  int
	}{
		"tiny":            {profile: tinyWorld, events: 20},
		"tiny, egress":    {profile: tinyWorld, egress: true, events: 20},
		"profile S":       {profile: bench.ProfileS, events: 4},
		"profile S, egr.": {profile: bench.ProfileS, egress: true, events: 4},
	}
	for name, tc := range cases {
		if (updateRace || testing.Short()) && tc.profile.Name != tinyWorld.Name {
			// Building profile S under the race detector costs seconds a case; the tiny
			// world exercises the same paths.
			continue
		}
		t.Run(name, func(t *testing.T) {
			w := bench.Generate(tc.profile, 1)
			snap, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			evs := worldFlows(t, w, 800)
			opts := simulate.DefaultOptions()
			opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
			opts.Compile.Egress = tc.egress
			sim, err := simulate.New(snap, opts)
			if err != nil {
				t.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			cur := snap
			for i := range tc.events {
				upsert, remove, what := randomIntentChange(rng, cur, i)
				if err := sim.UpdateIntents(upsert, remove); err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				cur, _ = compile.ReplaceIntents(cur, upsert, remove)
				assertSameAsNew(t, sim, cur, opts, evs, fmt.Sprintf("event %d (%s)", i, what))
			}
		})
	}
}

func randomIntentChange(rng *rand.Rand, s *cluster.Snapshot, i int) ([]*intents.ClientIntents, []string, string) {
	server := func() intents.Target {
		p := s.Pods[rng.IntN(len(s.Pods))]
		return intents.Target{Type: intents.TargetWorkload, Name: p.Workload.Name, Namespace: p.Workload.Namespace,
			Raw: p.Workload.Name + "." + p.Workload.Namespace}
	}
	ci := s.Intents[rng.IntN(len(s.Intents))]
	switch rng.IntN(4) {
	case 0, 1:
		n := *ci
		n.Targets = append(slices.Clone(ci.Targets), server())
		return []*intents.ClientIntents{&n}, nil, "add a target to " + ci.Key()
	case 2:
		return nil, []string{ci.Key()}, "delete " + ci.Key()
	default:
		client := server()
		n := &intents.ClientIntents{Namespace: client.Namespace, Name: fmt.Sprintf("new-%d", i), APIVersion: "k8s.otterize.com/v2beta1",
			Client: intents.Workload{Name: client.Name}, Targets: []intents.Target{server(), server()}}
		return []*intents.ClientIntents{n}, nil, "create " + n.Key()
	}
}

// TestUpdateSnapshotJudgesAsNew reloads a changed snapshot, built from changed objects as
// a reload does: pods gone and new, a namespace relabelled, a cluster policy changed and
// one removed, a ClientIntents changed.
func TestUpdateSnapshotJudgesAsNew(t *testing.T) {
	w := bench.Generate(bench.ProfileS, 1)
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	evs := worldFlows(t, w, 2000)
	opts := simulate.DefaultOptions()
	opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
	sim, err := simulate.New(snap, opts)
	if err != nil {
		t.Fatal(err)
	}

	objs := *w.Objects()
	objs.Pods = slices.Clone(objs.Pods)
	// Every fifth pod goes; one comes back under a new name with new labels.
	var kept []*corev1.Pod
	for i, p := range objs.Pods {
		if i%5 != 0 {
			kept = append(kept, p)
		}
	}
	moved := objs.Pods[0].DeepCopy()
	moved.Name += "-next"
	moved.Labels = map[string]string{"app": "somebody-else"}
	objs.Pods = append(kept, moved)
	objs.Namespaces = slices.Clone(objs.Namespaces)
	ns := objs.Namespaces[len(objs.Namespaces)-1].DeepCopy()
	if ns.Labels == nil {
		ns.Labels = map[string]string{}
	}
	ns.Labels["team"] = "moved"
	objs.Namespaces[len(objs.Namespaces)-1] = ns
	objs.NetworkPolicies = slices.Clone(objs.NetworkPolicies[1:])
	changed := objs.NetworkPolicies[0].DeepCopy()
	changed.Spec.Ingress = append(changed.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
		PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "somebody-else"}},
	}}})
	objs.NetworkPolicies[0] = changed
	objs.ClientIntents = slices.Clone(objs.ClientIntents[1:])
	next, err := cluster.Build(&objs)
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Update(next, opts); err != nil {
		t.Fatal(err)
	}
	assertSameAsNew(t, sim, next, opts, evs, "reload")

	// Back to the first snapshot: everything undone.
	if err := sim.Update(snap, opts); err != nil {
		t.Fatal(err)
	}
	assertSameAsNew(t, sim, snap, opts, evs, "reload back")

	// Other enforced namespaces change what the report counts: not in place.
	other := opts
	other.Compile.Namespaces = opts.Compile.Namespaces[:1]
	if err := sim.Update(next, other); !errors.Is(err, simulate.ErrRebuild) {
		t.Errorf("Update with other options: %v, want ErrRebuild", err)
	}
}

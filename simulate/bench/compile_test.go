package bench_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// tiny is the smallest world the generator makes, so that random events often collide
// (the same server, the same name) and the test runs many of them.
var tiny = bench.Profile{Name: "tiny", Namespaces: 4, Workloads: 8, Pods: 20, IntentTargets: 12, Policies: 4, Flows: 10}

// TestCompilerOnGeneratedWorlds holds the incremental compiler to compile.Compile on the
// generated worlds: after every random ClientIntents event, its deltas applied in order
// give exactly Compile's policies, and its result is byte-identical to Compile's.
func TestCompilerOnGeneratedWorlds(t *testing.T) {
	cases := map[string]struct {
		profile bench.Profile
		egress  bool
		events  int
	}{
		"tiny":           {profile: tiny, events: 60},
		"tiny, egress":   {profile: tiny, egress: true, events: 60},
		"profile S":      {profile: bench.ProfileS, events: 25},
		"profile S, egr": {profile: bench.ProfileS, egress: true, events: 25},
	}
	for name, tc := range cases {
		if raceEnabled || testing.Short() {
			tc.events = min(tc.events, 5)
		}
		t.Run(name, func(t *testing.T) {
			snap, err := bench.Generate(tc.profile, 1).Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			o := compile.Options{Namespaces: compile.TargetedNamespaces(snap), Egress: tc.egress}
			k, err := compile.NewCompiler(snap, o)
			if err != nil {
				t.Fatal(err)
			}
			applied := policyMap(k.Result().Policies)
			rng := rand.New(rand.NewPCG(1, 2))
			for i := range tc.events {
				next, keys, what := intentEvent(rng, k.Snapshot(), i)
				d, err := k.UpdateIntents(next, keys)
				if err != nil {
					t.Fatalf("event %d (%s): %v", i, what, err)
				}
				for _, ref := range d.Remove {
					delete(applied, ref)
				}
				for _, p := range d.Upsert {
					applied[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = p
				}
				want, err := compile.Compile(next, o)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(policyMap(want.Policies), applied); diff != "" {
					t.Fatalf("event %d (%s): policies after the deltas (-Compile +applied):\n%s", i, what, diff)
				}
				wantYAML, _ := want.Manifests()
				gotYAML, _ := k.Result().Manifests()
				if diff := cmp.Diff(string(wantYAML), string(gotYAML)); diff != "" {
					t.Fatalf("event %d (%s): result (-Compile +Compiler):\n%s", i, what, diff)
				}
			}
		})
	}
}

func policyMap(ps []*networkingv1.NetworkPolicy) map[evaluator.PolicyRef]*networkingv1.NetworkPolicy {
	out := map[evaluator.PolicyRef]*networkingv1.NetworkPolicy{}
	for _, p := range ps {
		out[evaluator.PolicyRef{Namespace: p.Namespace, Name: p.Name}] = p
	}
	return out
}

// intentEvent draws one ClientIntents event on s: a target added (a workload of the
// cluster, often in another namespace), a target dropped, a ClientIntents deleted, or a
// new one created.
func intentEvent(rng *rand.Rand, s *cluster.Snapshot, i int) (*cluster.Snapshot, []string, string) {
	pods := s.Pods
	server := func() intents.Target {
		p := pods[rng.IntN(len(pods))]
		return intents.Target{Type: intents.TargetWorkload, Name: p.Workload.Name, Namespace: p.Workload.Namespace,
			Raw: p.Workload.Name + "." + p.Workload.Namespace}
	}
	ci := s.Intents[rng.IntN(len(s.Intents))]
	var next *cluster.Snapshot
	var keys []string
	var what string
	switch rng.IntN(5) {
	case 0, 1:
		n := *ci
		n.Targets = append(slices.Clone(ci.Targets), server())
		next, keys = compile.ReplaceIntents(s, []*intents.ClientIntents{&n}, nil)
		what = "add a target to " + ci.Key()
	case 2:
		n := *ci
		n.Targets = slices.Clone(ci.Targets)
		if len(n.Targets) > 0 {
			j := rng.IntN(len(n.Targets))
			n.Targets = slices.Delete(n.Targets, j, j+1)
		}
		next, keys = compile.ReplaceIntents(s, []*intents.ClientIntents{&n}, nil)
		what = "drop a target of " + ci.Key()
	case 3:
		next, keys = compile.ReplaceIntents(s, nil, []string{ci.Key()})
		what = "delete " + ci.Key()
	default:
		client := server()
		n := &intents.ClientIntents{Namespace: client.Namespace, Name: fmt.Sprintf("new-%d", i), APIVersion: "k8s.otterize.com/v2beta1",
			Client: intents.Workload{Name: client.Name}, Targets: []intents.Target{server(), server()}}
		next, keys = compile.ReplaceIntents(s, []*intents.ClientIntents{n}, nil)
		what = "create " + n.Key()
	}
	return next, keys, what
}

// BenchmarkFullCompile is compile.Compile alone, the part of simulate.New that an
// intent event no longer repeats.
func BenchmarkFullCompile(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if _, err := compile.Compile(f.snap, f.opts.Compile); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
}

// BenchmarkIntentEvent is two ClientIntents events through the incremental compiler: a
// client declares one more target, then withdraws it. Per op, so one event is half.
func BenchmarkIntentEvent(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		k, err := compile.NewCompiler(f.snap, f.opts.Compile)
		if err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			s := k.Snapshot()
			ci := s.Intents[rng.IntN(len(s.Intents))]
			p := s.Pods[rng.IntN(len(s.Pods))]
			n := *ci
			n.Targets = append(slices.Clone(ci.Targets), intents.Target{Type: intents.TargetWorkload, Name: p.Workload.Name, Namespace: p.Workload.Namespace})
			next, keys := compile.ReplaceIntents(s, []*intents.ClientIntents{&n}, nil)
			if _, err := k.UpdateIntents(next, keys); err != nil {
				b.Fatal(err)
			}
			back, keys := compile.ReplaceIntents(next, []*intents.ClientIntents{ci}, nil)
			if _, err := k.UpdateIntents(back, keys); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
}

// BenchmarkSimulatorIntentEvent is BenchmarkIntentEvent through Simulator.UpdateIntents:
// the compiler, the enforced engine, the Simulator's compiled result and rule origins.
func BenchmarkSimulatorIntentEvent(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		sim := f.simulator(b)
		// The first update builds the Simulator's compiler (a full compile).
		if err := sim.UpdateIntents(nil, nil); err != nil {
			b.Fatal(err)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			ci := f.snap.Intents[rng.IntN(len(f.snap.Intents))]
			p := f.snap.Pods[rng.IntN(len(f.snap.Pods))]
			n := *ci
			n.Targets = append(slices.Clone(ci.Targets), intents.Target{Type: intents.TargetWorkload, Name: p.Workload.Name, Namespace: p.Workload.Namespace})
			if err := sim.UpdateIntents([]*intents.ClientIntents{&n}, nil); err != nil {
				b.Fatal(err)
			}
			if err := sim.UpdateIntents([]*intents.ClientIntents{ci}, nil); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
}

// BenchmarkNewCompiler is what the first incremental update costs: a full compile that
// keeps its parts.
func BenchmarkNewCompiler(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		b.ReportAllocs()
		cpu := startCPU(b)
		for b.Loop() {
			if _, err := compile.NewCompiler(f.snap, f.opts.Compile); err != nil {
				b.Fatal(err)
			}
		}
		cpu.report(b)
	})
}

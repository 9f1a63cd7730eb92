package bench_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// Worlds are expensive to generate (seconds for L): each profile is built once per
// benchmark binary.
var (
	worldsMu sync.Mutex
	worlds   = map[string]*fixture{}
)

type fixture struct {
	world *bench.World
	snap  *cluster.Snapshot
	opts  simulate.Options
	lines [][]byte // replayLines generated lines
}

const replayLines = 100_000

func world(b *testing.B, p bench.Profile) *fixture {
	b.Helper()
	worldsMu.Lock()
	defer worldsMu.Unlock()
	if f, ok := worlds[p.Name]; ok {
		return f
	}
	w := bench.Generate(p, 1)
	snap, err := w.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	f := &fixture{world: w, snap: snap, opts: simulate.DefaultOptions()}
	f.opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
	g := w.NewFlowGen()
	for range replayLines {
		f.lines = append(f.lines, g.Append(nil))
	}
	worlds[p.Name] = f
	return f
}

func (f *fixture) simulator(b *testing.B) *simulate.Simulator {
	b.Helper()
	sim, err := simulate.New(f.snap, f.opts)
	if err != nil {
		b.Fatal(err)
	}
	return sim
}

// connections replays the fixture's lines and returns the connections judged.
func (f *fixture) connections(b *testing.B) []evaluator.Connection {
	b.Helper()
	sim := f.simulator(b)
	var out []evaluator.Connection
	for _, l := range f.lines {
		ev, ok := flows.ParseLine(l)
		if !ok || ev.Kind != flows.KindFlow {
			continue
		}
		if j := sim.Judge(ev.Flow, 0); j.Outcome != simulate.Skipped {
			out = append(out, j.Conn)
		}
	}
	return out
}

func forProfiles(b *testing.B, fn func(b *testing.B, f *fixture)) {
	for _, p := range bench.Profiles() {
		b.Run("profile="+p.Name, func(b *testing.B) { fn(b, world(b, p)) })
	}
}

// BenchmarkEngineHotPath is the verdict for a resolved connection with a warm cache, on
// the connections of each profile's generated traffic.
func BenchmarkEngineHotPath(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		conns := f.connections(b)
		res, err := compile.Compile(f.snap, f.opts.Compile)
		if err != nil {
			b.Fatal(err)
		}
		e := evaluator.NewEngine(f.snap, simulate.Merge(f.snap.NetworkPolicies, res.Policies))
		for _, c := range conns {
			e.Evaluate(c)
		}
		b.ReportAllocs()
		cpu := startCPU(b)
		i := 0
		for b.Loop() {
			e.Evaluate(conns[i%len(conns)])
			i++
		}
		cpu.report(b)
	})
}

// BenchmarkReplay is the end-to-end path per flow line: parse, resolve, evaluate against
// the current and enforced policies, aggregate, through a flows.FileSource reading
// memory. ns/op is per line.
func BenchmarkReplay(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		data := bytes.Join(f.lines, []byte("\n"))
		sim := f.simulator(b)
		ctx := context.Background()
		b.ReportAllocs()
		cpu := startCPU(b)
		var src *flows.FileSource
		for b.Loop() {
			if src == nil {
				src = flows.NewReader("bench", bytes.NewReader(data))
			}
			ev, err := src.Next(ctx)
			if errors.Is(err, io.EOF) {
				src.Close()
				src = nil
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			sim.Observe(ev)
		}
		if src != nil {
			src.Close()
		}
		cpu.report(b)
	})
}

// BenchmarkCompile is compile.Compile and both engines from a loaded snapshot, what
// simulate.New does.
func BenchmarkCompile(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		b.ReportAllocs()
		for b.Loop() {
			f.simulator(b)
		}
	})
}

// BenchmarkNewEngine is the enforced engine alone, from compiled policies.
func BenchmarkNewEngine(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		res, err := compile.Compile(f.snap, f.opts.Compile)
		if err != nil {
			b.Fatal(err)
		}
		policies := simulate.Merge(f.snap.NetworkPolicies, res.Policies)
		b.ReportAllocs()
		for b.Loop() {
			evaluator.NewEngine(f.snap, policies)
		}
	})
}

// BenchmarkUpdatePod adds a pod of a new identity (a rollout replica) and deletes it.
func BenchmarkUpdatePod(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		e := evaluator.NewEngine(f.snap, f.snap.NetworkPolicies)
		orig := f.snap.Pods[len(f.snap.Pods)/2]
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := *orig
			p.Name = orig.Name + "-next"
			p.Labels = map[string]string{"pod-template-hash": string(rune('a' + i%26))}
			for k, v := range orig.Labels {
				if k != "pod-template-hash" {
					p.Labels[k] = v
				}
			}
			e.UpdatePod(&p)
			e.DeletePod(p.Namespace, p.Name)
			i++
		}
	})
}

// BenchmarkUpdatePolicy replaces one policy with a version that has a new selector.
func BenchmarkUpdatePolicy(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		e := evaluator.NewEngine(f.snap, f.snap.NetworkPolicies)
		orig := f.snap.NetworkPolicies[len(f.snap.NetworkPolicies)/2]
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p := orig.DeepCopy()
			p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "caller-" + string(rune('a'+i%26))}},
			}}})
			e.UpdatePolicies([]*networkingv1.NetworkPolicy{p}, nil)
			i++
		}
	})
}

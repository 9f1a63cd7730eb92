package bench_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
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
// the connections of each profile's generated traffic: path=resolved is the issue's
// "resolved connection" (endpoints resolved to Refs once, outside the timed loop, as a
// caller that keeps them does), path=connection is Evaluate(Connection), which resolves
// both ends on every call.
func BenchmarkEngineHotPath(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		conns := f.connections(b)
		res, err := compile.Compile(f.snap, f.opts.Compile)
		if err != nil {
			b.Fatal(err)
		}
		e := evaluator.NewEngine(f.snap, simulate.Merge(f.snap.NetworkPolicies, res.Policies))
		refs := make([]resolvedConn, len(conns))
		for i, c := range conns {
			refs[i] = resolvedConn{src: e.Resolve(c.Src), dst: e.Resolve(c.Dst), proto: c.Protocol, port: c.Port}
			e.Evaluate(c)
		}
		b.Run("path=resolved", func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU(b)
			i := 0
			for b.Loop() {
				rc := &refs[i%len(refs)]
				e.EvaluateRef(&rc.src, &rc.dst, rc.proto, rc.port)
				i++
			}
			cpu.report(b)
		})
		b.Run("path=connection", func(b *testing.B) {
			b.ReportAllocs()
			cpu := startCPU(b)
			i := 0
			for b.Loop() {
				e.Evaluate(conns[i%len(conns)])
				i++
			}
			cpu.report(b)
		})
	})
}

// resolvedConn is a connection whose endpoints were resolved once.
type resolvedConn struct {
	src, dst evaluator.Ref
	proto    corev1.Protocol
	port     int32
}

// BenchmarkReplay is the end-to-end path per flow line: parse, resolve, evaluate against
// the current and enforced policies, aggregate, through a flows.FileSource reading
// memory, which Next parses on the benchmark's goroutine as it does a regular file, into
// one reused Flow (ReuseFlows, as bench run's replay and shadowgate simulate read)
// (BenchmarkReplayRead compares that with a pipe's reader goroutine, on one core).
// cpu-ns/op, per line, counts every goroutine.
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
				src.ReuseFlows() // as bench run's replay does: Observe keeps no Flow
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

// BenchmarkObserve is the simulator's share of the replay: the fixture's lines are
// parsed once, by one FileSource (so interned strings repeat line after line as they do
// in a replay), and the benchmark feeds the parsed events to Simulator.Observe: resolve,
// evaluate against both policy sets, aggregate. ns/op is per line.
func BenchmarkObserve(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		evs := f.events(b)
		sim := f.simulator(b)
		// One pass first: the start of a replay (first sightings, verdicts computed) is
		// not the steady state the benchmark is about.
		for _, ev := range evs {
			sim.Observe(ev)
		}
		b.ReportAllocs()
		cpu := startCPU(b)
		i := 0
		for b.Loop() {
			sim.Observe(evs[i])
			if i++; i == len(evs) {
				i = 0
			}
		}
		cpu.report(b)
	})
}

// events parses the fixture's lines through one FileSource.
func (f *fixture) events(b *testing.B) []flows.Event {
	b.Helper()
	src := flows.NewReader("bench", bytes.NewReader(bytes.Join(f.lines, []byte("\n"))))
	defer src.Close()
	var out []flows.Event
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, ev)
	}
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

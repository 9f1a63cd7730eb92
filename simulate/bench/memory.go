package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// The memory figure is measured in a child process: the parent holds generated worlds,
// flow files and engines of its own, and a process's resident set cannot be split between
// what a daemon would hold and what the harness holds. The child is this same binary,
// started with memoryChildEnv naming its spec file; it does nothing else.
const memoryChildEnv = "SHADOWGATE_BENCH_MEMORY_CHILD"

// memorySpec is what the parent asks of the child.
type memorySpec struct {
	Dir   string `json:"dir"`   // the world's manifests
	Edges int    `json:"edges"` // distinct edges to store
	Hours int    `json:"hours"` // distinct hours each edge is seen in, over the window
	Out   string `json:"out"`   // where the child writes its memoryResult
}

// memoryResult is what the child measured. Sizes are bytes.
type memoryResult struct {
	Pods       int `json:"pods"`
	Workloads  int `json:"workloads"`
	Namespaces int `json:"namespaces"` // tracked (enforced) namespaces
	Edges      int `json:"edges"`      // edges the store holds
	// RSSLoaded is VmRSS after GC with the snapshot loaded and compiled, both engines
	// built and the store empty; RSS after the store was filled. HWMLoad is VmHWM after
	// loading (parsing the manifests, compiling); HWMReload the peak from the filled
	// store through the reload and re-evaluation (a second snapshot and simulator live).
	RSSLoaded, RSS, HWMLoad, HWMReload uint64
	// HeapLoaded and Heap are the live heap (after GC) at the same two points.
	HeapLoaded, Heap uint64
	// Reevaluate is Live.Update after an intent change, the daemon's reload: the
	// ClientIntents recompiled incrementally and the stored edges it can affect
	// (Rejudged) re-judged. Full is the same re-judging of every stored edge
	// (Live.Swap), as after a change of pods or namespaces.
	ReevaluateWall, ReevaluateCPU time.Duration
	Rejudged                      int
	FullWall, FullCPU             time.Duration
	Uncovered                     int // edges uncovered after the re-evaluation
	Fill                          time.Duration
}

const (
	memoryRSSTarget     = 3 << 29 // 1.5 GiB
	memoryPerEdgeTarget = 200
	reevaluateTarget    = time.Second
)

// MeasureMemory runs only the memory figure of Run.
func MeasureMemory(ctx context.Context, o RunOptions) (Figure, error) {
	if err := o.Validate(); err != nil {
		return Figure{}, err
	}
	r := &runner{o: o, res: &Results{}}
	return r.memory(ctx), nil
}

// memory measures the soak store at scale: the daemon's state for MemoryProfile with
// MemoryEdges distinct edges over a 7-day window, and a re-evaluation of all of them after
// an intent change.
func (r *runner) memory(ctx context.Context) Figure {
	// The name is the row; the edge count measured is in the detail.
	f := Figure{Name: "re-evaluate 1 M stored edges; memory per stored edge", Target: "< 1 s; ≤ 200 B; < 1.5 GiB RSS", Status: Missed}
	res, err := r.runMemoryChild(ctx)
	if err != nil {
		f.Detail = err.Error()
		return f
	}
	perEdge := float64(res.Heap-min(res.Heap, res.HeapLoaded)) / float64(max(res.Edges, 1))
	// Like the other rows, judged by CPU time, which neighbours do not inflate; the
	// re-evaluation runs on one goroutine.
	reeval := cpuOr(res.ReevaluateCPU, res.ReevaluateWall)
	f.Value = fmt.Sprintf("%s CPU (%d re-judged); %.0f B/edge; RSS %.0f MiB", dur(reeval), res.Rejudged, perEdge, mib(res.RSS))
	f.Number, f.Unit = reeval.Seconds(), "s"
	ok := res.Edges == r.o.MemoryEdges && reeval < reevaluateTarget && perEdge <= memoryPerEdgeTarget && res.RSS < memoryRSSTarget
	f.Status = status(ok)
	f.Detail = fmt.Sprintf("profile %s (%d pods, %d workloads), %d edges stored in %d namespaces, each in %d hours of 7 days (filled in %s); "+
		"VmRSS after GC %.0f MiB (%.0f MiB before the store), VmHWM %.0f MiB while loading, %.0f MiB from the filled store through a reload; heap %.0f MiB (%.0f before the store); "+
		"reload after removing a ClientIntents (Live.Update: incremental compile, engines updated, the %d edges from namespaces whose egress policies changed or into namespaces whose ingress policies changed re-judged): %s wall, %s CPU, %d edges uncovered; "+
		"re-judging all %d edges (Live.Swap, as after a pod or namespace change): %s wall, %s CPU",
		r.o.MemoryProfile.Name, res.Pods, res.Workloads, res.Edges, res.Namespaces, r.o.MemoryHours, dur(res.Fill),
		mib(res.RSS), mib(res.RSSLoaded), mib(res.HWMLoad), mib(res.HWMReload), mib(res.Heap), mib(res.HeapLoaded),
		res.Rejudged, dur(res.ReevaluateWall), dur(res.ReevaluateCPU), res.Uncovered, res.Edges, dur(res.FullWall), dur(res.FullCPU))
	return f
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// runMemoryChild writes the world's manifests and runs the child on them.
func (r *runner) runMemoryChild(ctx context.Context) (memoryResult, error) {
	dir, err := os.MkdirTemp(r.o.TempDir, "shadowgate-bench-memory-*")
	if err != nil {
		return memoryResult{}, err
	}
	defer os.RemoveAll(dir)
	r.logf("memory: writing profile %s manifests to %s", r.o.MemoryProfile.Name, dir)
	w := Generate(r.o.MemoryProfile, r.o.Seed)
	if err := w.WriteManifests(filepath.Join(dir, ClusterDir)); err != nil {
		return memoryResult{}, fmt.Errorf("writing manifests: %w", err)
	}
	w = nil
	runtime.GC()
	spec := memorySpec{Dir: filepath.Join(dir, ClusterDir), Edges: r.o.MemoryEdges, Hours: r.o.MemoryHours, Out: filepath.Join(dir, "result.json")}
	b, err := json.Marshal(spec)
	if err != nil {
		return memoryResult{}, err
	}
	specPath := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return memoryResult{}, err
	}
	exe, err := os.Executable()
	if err != nil {
		return memoryResult{}, fmt.Errorf("finding this binary to re-run it: %w", err)
	}
	r.logf("memory: loading, compiling and filling %d edges in a child process", r.o.MemoryEdges)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), memoryChildEnv+"="+specPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return memoryResult{}, fmt.Errorf("child process: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	out, err := os.ReadFile(spec.Out)
	if err != nil {
		return memoryResult{}, fmt.Errorf("child process wrote no result: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var res memoryResult
	if err := json.Unmarshal(out, &res); err != nil {
		return memoryResult{}, fmt.Errorf("child result: %w", err)
	}
	return res, nil
}

// memoryChild does what the daemon does at start (load the manifests, compile, build both
// engines, start the soak store), fills the store, measures, then reloads a changed
// snapshot the way the daemon does (Live.Update), and finally re-judges every stored edge.
func memoryChild(specPath string) error {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var spec memorySpec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	snap, err := cluster.Load(spec.Dir)
	if err != nil {
		return err
	}
	sim, err := simulate.New(snap, daemonOptions(snap))
	if err != nil {
		return err
	}
	live, _, err := simulate.NewLive(sim, soak.DefaultOptions(), simulate.LiveConfig{Gate: soak.DefaultGateConfig(), Clock: clock.RealClock{}})
	if err != nil {
		return err
	}
	store := live.Store()
	res := memoryResult{Pods: len(snap.Pods), Workloads: len(snap.Workloads), Namespaces: len(store.Tracked())}
	res.RSSLoaded, res.HeapLoaded = settledMemory()

	res.HWMLoad = peakRSS()

	start := time.Now()
	// Filling is the harness's work (a day's worth of growth per edge at once): the
	// collector is told to run less often, and the peak it causes is not reported.
	gc := debug.SetGCPercent(400)
	if err := fillStore(store, snap, spec.Edges, spec.Hours, start); err != nil {
		return err
	}
	debug.SetGCPercent(gc)
	res.Fill = time.Since(start)
	res.Edges = store.Usage().Edges
	res.RSS, res.Heap = settledMemory()
	// Writing 5 to clear_refs resets VmHWM to the current resident set.
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)

	// An intent change: a ClientIntents is deleted and the snapshot reloaded in place.
	// The daemon loads the changed files first; that is not part of the update.
	if len(snap.Intents) == 0 {
		return errors.New("the world has no ClientIntents to change")
	}
	next, _ := compile.ReplaceIntents(snap, nil, []string{snap.Intents[0].Key()})
	if !slices.Equal(daemonOptions(next).Compile.Namespaces, daemonOptions(snap).Compile.Namespaces) {
		// The daemon would rebuild: another namespace would be enforced.
		return fmt.Errorf("removing %s changes the enforced namespaces", snap.Intents[0].Key())
	}
	// The compiler is built on the first update (one full compile), as the daemon's
	// first reload does; a no-op update builds it outside the timed part.
	if _, err := live.Update(snap, daemonOptions(snap)); err != nil {
		return err
	}
	cpu0 := cpuTime(false)
	t0 := time.Now()
	rl, err := live.Update(next, daemonOptions(snap))
	if err != nil {
		return err
	}
	res.ReevaluateWall, res.ReevaluateCPU = time.Since(t0), cpuTime(false)-cpu0
	res.Rejudged = rl.Rejudged
	for _, sum := range store.Summaries(time.Now()) {
		res.Uncovered += sum.UncoveredEdges
	}
	// Every edge, as a change of pods or namespaces would.
	cpu0, t0 = cpuTime(false), time.Now()
	live.Swap(sim)
	res.FullWall, res.FullCPU = time.Since(t0), cpuTime(false)-cpu0
	res.HWMReload = peakRSS()
	out, err := json.Marshal(res)
	if err != nil {
		return err
	}
	return os.WriteFile(spec.Out, out, 0o600)
}

// daemonOptions are `shadowgate simulate`'s defaults for a snapshot.
func daemonOptions(snap *cluster.Snapshot) simulate.Options {
	so := simulate.DefaultOptions()
	so.Compile.Namespaces = compile.TargetedNamespaces(snap)
	return so
}

// settledMemory returns VmRSS and the live heap after a full collection with the freed
// memory returned to the system.
func settledMemory() (rss, heap uint64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return procStatus("VmRSS:"), ms.HeapAlloc
}

// fillStore stores n distinct edges, the daemon's keys for them: a workload of the
// snapshot calling a workload of a tracked namespace on a port the latter declares. Each
// edge is seen in hours distinct hours spread over the 7 days before now, hour by hour as
// a live store grows. The edges are recorded straight into the store, as covered: judging
// n distinct connections is what the re-evaluation measures.
func fillStore(store *soak.Store, snap *cluster.Snapshot, n, hours int, now time.Time) error {
	type peer struct {
		p    soak.Peer
		port int32
		prot string
	}
	var srcs, dsts []peer
	seen := map[cluster.WorkloadID]bool{}
	tracked := map[string]bool{}
	for _, ns := range store.Tracked() {
		tracked[ns] = true
	}
	for _, p := range snap.Pods {
		if p.HostNetwork || seen[p.Workload] {
			continue
		}
		seen[p.Workload] = true
		w := p.Workload
		pr := peer{p: soak.Peer{Namespace: w.Namespace, Workload: w.Name, Kind: w.Kind}, port: 8080, prot: "TCP"}
		if len(p.Ports) > 0 {
			pr.port, pr.prot = p.Ports[0].Port, string(p.Ports[0].Protocol)
		}
		srcs = append(srcs, pr)
		if tracked[w.Namespace] {
			dsts = append(dsts, pr)
		}
	}
	if len(dsts) == 0 || len(srcs) == 0 {
		return errors.New("no workload in a tracked namespace to store edges of")
	}
	// Edge i: destination i mod D, source i/D mod S, and past D×S edges the port moves up.
	keys := make([]soak.EdgeKey, n)
	for i := range keys {
		d, s := dsts[i%len(dsts)], srcs[(i/len(dsts))%len(srcs)]
		keys[i] = soak.EdgeKey{Source: s.p, Destination: d.p, Protocol: d.prot, Port: d.port + int32(i/(len(dsts)*len(srcs)))}
	}
	window := 7 * 24
	start := now.Truncate(time.Hour).Add(-time.Duration(window-1) * time.Hour)
	for h := range hours {
		for i := range keys {
			at := start.Add(time.Duration((h*window/hours+i%7)%window) * time.Hour)
			store.Observe(keys[i], at, soak.Verdict{Namespace: keys[i].Destination.Namespace})
		}
	}
	return nil
}

// procStatus reads one kB field of /proc/self/status, in bytes (0 where there is none).
func procStatus(field string) uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(line, []byte(field)); ok {
			f := strings.Fields(string(v))
			if len(f) == 2 && f[1] == "kB" {
				if n, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					return n << 10
				}
			}
		}
	}
	return 0
}

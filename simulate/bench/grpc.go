package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
	"github.com/shadowgate/shadowgate/simulate"
)

const (
	grpcTarget = 300_000 // flows per second on two cores, profile M
	// grpcFlows bounds the flows the gRPC row sends: they are held marshaled in memory
	// (about 1 KB each for profile M), and converting them costs far more than sending.
	grpcFlows = 300_000
	// grpcCores is the "on 2 cores": server, client and simulator share them.
	grpcCores = 2
	// grpcRounds is how many runs of each placement the row takes the median of.
	grpcRounds = 3
)

// EncodeFlows returns the first n flows of w's traffic (WriteFlows's lines) as marshaled
// GetFlowsResponses, what a Hubble server sends, for the gRPC ingest measurement. Each
// jsonpb line goes through protojson, so this is slow; it runs on every CPU.
func EncodeFlows(w *World, n int) ([][]byte, error) {
	const chunk = 4096
	g := w.NewFlowGen()
	out := make([][]byte, 0, n)
	lines := make([][]byte, 0, chunk)
	workers := max(runtime.GOMAXPROCS(0), 1)
	for len(out) < n {
		lines = lines[:0]
		for len(lines) < min(chunk, n-len(out)) {
			lines = append(lines, g.Append(nil))
		}
		enc := make([][]byte, len(lines))
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for k := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := k; i < len(lines); i += workers {
					var resp observerpb.GetFlowsResponse
					if err := protojson.Unmarshal(lines[i], &resp); err != nil {
						errs[k] = fmt.Errorf("line %d: %w", len(out)+i+1, err)
						return
					}
					b, err := proto.Marshal(&resp)
					if err != nil {
						errs[k] = fmt.Errorf("line %d: %w", len(out)+i+1, err)
						return
					}
					enc[i] = b
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		out = append(out, enc...)
	}
	return out, nil
}

// GRPCResult is what MeasureGRPC saw.
type GRPCResult struct {
	Received int // flows and lost-events notices the source delivered
	Wall     time.Duration
	// CPU is the process's CPU time, the server's included when it ran in the process;
	// 0 where the platform does not say.
	CPU     time.Duration
	Mallocs uint64
	// Problem says why the run cannot count: a health event other than Connected, a
	// malformed message, a duplicate, fewer events than sent. Empty when nothing was lost.
	Problem string
}

// ServerPlace says where MeasureGRPC runs the test server.
type ServerPlace int

const (
	// ServerInProcess: the measured CPU time is the server's and shadowgate's.
	ServerInProcess ServerPlace = iota
	// ServerChild: the server is a child process (see grpcServerEnv); the measured CPU
	// time is shadowgate's alone, while the wall clock still shares the cores with it.
	ServerChild
)

func (p ServerPlace) String() string {
	if p == ServerChild {
		return "child"
	}
	return "in-process"
}

// MeasureGRPC serves msgs (marshaled GetFlowsResponses, see EncodeFlows) from the Hubble
// test server on loopback, in this process or a child, follows it with the real
// hubble.Source and, unless sim is nil, hands every event to sim as a file replay does,
// on GOMAXPROCS cores. It measures from connecting to the last message's event.
func MeasureGRPC(ctx context.Context, sim *simulate.Simulator, msgs [][]byte, clk clock.PassiveClock, cores int, place ServerPlace) (res GRPCResult, err error) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(cores))
	cfg := hubble.Default()
	cfg.ServerStatusInterval = 0
	if place == ServerChild {
		child, err := startChildServer(ctx, msgs)
		if err != nil {
			return GRPCResult{}, err
		}
		defer func() {
			if serr := child.stop(); serr != nil && err == nil {
				err = serr
			}
		}()
		cfg.Address = child.addr
	} else {
		srv, err := hubbletest.NewServer(hubbletest.Scenario{Streams: [][]hubbletest.Step{{hubbletest.SendEncoded(msgs)}}})
		if err != nil {
			return GRPCResult{}, err
		}
		defer srv.Stop()
		cfg.Address = srv.Addr()
	}

	runtime.GC()
	sp := startSpan(clk, false)
	src, err := hubble.New(cfg, nil)
	if err != nil {
		return GRPCResult{}, err
	}
	defer src.Close()
	for res.Received < len(msgs) && res.Problem == "" {
		ev, err := src.Next(ctx)
		if err != nil {
			return GRPCResult{}, err
		}
		switch ev.Kind {
		case flows.KindFlow, flows.KindLost:
			res.Received++
		case flows.KindHealth:
			if ev.Health.State != flows.Connected {
				res.Problem = fmt.Sprintf("after %d events: %s: %s", res.Received, ev.Health.State, ev.Health.Message)
			}
		default:
			res.Problem = fmt.Sprintf("after %d events: unexpected %s event %s %s", res.Received, ev.Kind, ev.Reason, ev.Detail)
		}
		if sim != nil {
			sim.Observe(ev)
		}
	}
	if sim != nil {
		sim.Report()
	}
	m := sp.stop()
	res.Wall, res.CPU, res.Mallocs = m.Wall, m.CPU, m.Mallocs
	if d := src.Stats().Duplicates; d > 0 && res.Problem == "" {
		res.Problem = fmt.Sprintf("%d duplicates dropped", d)
	}
	return res, nil
}

// grpcIngest is the gRPC row: profile flows sent by the test server, received by the
// Hubble source, judged by a fresh Simulator, on two cores. The server runs in a child
// process, so that the CPU time measured is shadowgate's own (a Relay runs elsewhere):
// the row is met when that time per flow allows 300 k flows/s on two cores. The detail
// adds the wall clock, with the server's share of the same two cores taken, the source
// alone, and a run with the server in this process (the figure of the first rounds).
func (r *runner) grpcIngest(ctx context.Context) error {
	n := min(r.o.Flows, grpcFlows)
	r.logf("encoding %d flows for the gRPC ingest", n)
	w := Generate(r.o.Profile, r.o.Seed)
	msgs, err := EncodeFlows(w, n)
	if err != nil {
		return fmt.Errorf("encoding flows: %w", err)
	}
	// The scaling runs drop the snapshot; the same seed builds the same one.
	snap := r.snap
	if snap == nil {
		if snap, err = w.Snapshot(); err != nil {
			return err
		}
	}
	size := 0
	for _, m := range msgs {
		size += len(m)
	}
	newSim := func() (*simulate.Simulator, error) {
		so := simulate.DefaultOptions()
		so.Compile.Namespaces = compile.TargetedNamespaces(snap)
		return simulate.New(snap, so)
	}
	r.logf("gRPC ingest of %d flows, source alone", n)
	alone, err := MeasureGRPC(ctx, nil, msgs, r.o.Clock, grpcCores, ServerChild)
	if err != nil {
		return err
	}
	// Each run into a fresh simulator moves by 10-20% with the state of the heap and the
	// machine: grpcRounds of each placement, alternated, and the median of each.
	load := loadAverage()
	var apart, inproc []GRPCResult
	for round := range grpcRounds {
		for _, place := range []ServerPlace{ServerChild, ServerInProcess} {
			sim, err := newSim()
			if err != nil {
				return err
			}
			r.logf("gRPC ingest of %d flows into the simulator, server %s (round %d of %d)", n, place, round+1, grpcRounds)
			res, err := MeasureGRPC(ctx, sim, msgs, r.o.Clock, grpcCores, place)
			if err != nil {
				return err
			}
			if place == ServerChild {
				apart = append(apart, res)
			} else {
				inproc = append(inproc, res)
			}
		}
	}
	problem := alone.Problem
	for _, res := range append(slices.Clone(apart), inproc...) {
		problem = cmp.Or(problem, res.Problem)
	}
	res, in := medianRun(apart), medianRun(inproc)
	rate := coresRate(res)
	f := Figure{Name: "gRPC ingest from the observer test server", Value: rateString(rate, "flows/s") + " of 2 cores", Number: rate, Unit: "flows/s",
		Allocs: float64(res.Mallocs) / float64(max(res.Received, 1)),
		Target: "≥ 300 k flows/s on 2 cores", Status: status(rate >= grpcTarget && problem == ""),
		Detail: fmt.Sprintf("%d responses (%d B on average) received of %d sent by a server in a child process, into a fresh simulator, median of %d runs: "+
			"shadowgate's CPU %.2f µs per flow (runs %s), %s on two cores of its own; %s wall (load %s), %s with the server sharing the two cores; "+
			"source alone: %.2f µs per flow, %s of two cores; "+
			"the server in this process, median of %d: %.2f µs per flow with the server's CPU (runs %s), %s of two cores, %s wall",
			res.Received, size/max(n, 1), len(msgs), len(apart),
			perFlowMicros(res), runsMicros(apart), rateString(rate, "flows/s"), dur(res.Wall), load, rateString(perSecond(res.Received, res.Wall), "flows/s"),
			perFlowMicros(alone), rateString(coresRate(alone), "flows/s"),
			len(inproc), perFlowMicros(in), runsMicros(inproc), rateString(coresRate(in), "flows/s"), rateString(perSecond(in.Received, in.Wall), "flows/s"))}
	if problem != "" {
		f.Detail += "; LOST DATA: " + problem
	}
	r.add(f)
	return nil
}

// coresRate is the rate the run's CPU time allows on grpcCores cores fully used: what a
// shared machine's wall clock cannot show.
func coresRate(res GRPCResult) float64 {
	return perSecond(res.Received*grpcCores, cpuOr(res.CPU, res.Wall))
}

// medianRun returns the run with the median CPU time per flow.
func medianRun(runs []GRPCResult) GRPCResult {
	sorted := slices.SortedFunc(slices.Values(runs), func(a, b GRPCResult) int { return cmp.Compare(perFlowMicros(a), perFlowMicros(b)) })
	return sorted[len(sorted)/2]
}

// runsMicros lists the runs' CPU per flow in µs, in the order they ran.
func runsMicros(runs []GRPCResult) string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = fmt.Sprintf("%.2f", perFlowMicros(r))
	}
	return strings.Join(out, ", ")
}

func perFlowMicros(res GRPCResult) float64 {
	return float64(cpuOr(res.CPU, res.Wall).Nanoseconds()) / 1e3 / float64(max(res.Received, 1))
}

package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// TestGRPCIngestMatchesFileReplay sends generated flows through the Hubble test server
// and the real source into a Simulator, and requires every flow to arrive and the report
// to be the one a file replay of the same lines gives.
func TestGRPCIngestMatchesFileReplay(t *testing.T) {
	const n = 20_000
	w := bench.Generate(bench.ProfileS, 3)
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	opts := simulate.DefaultOptions()
	opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
	report := func(run func(*simulate.Simulator)) string {
		t.Helper()
		sim, err := simulate.New(snap, opts)
		if err != nil {
			t.Fatal(err)
		}
		run(sim)
		b, err := json.MarshalIndent(sim.Report(), "", " ")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	msgs, err := bench.EncodeFlows(w, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != n {
		t.Fatalf("EncodeFlows returned %d messages, want %d", len(msgs), n)
	}
	want := report(func(sim *simulate.Simulator) {
		var buf bytes.Buffer
		if err := w.WriteFlows(&buf, n); err != nil {
			t.Fatal(err)
		}
		src := flows.NewReader("flows", &buf)
		defer src.Close()
		if _, err := bench.MeasureReplay(context.Background(), sim, src, clock.RealClock{}, 0); err != nil {
			t.Fatal(err)
		}
	})
	// The server in this process, and in a child process as bench run's row runs it.
	for _, place := range []bench.ServerPlace{bench.ServerInProcess, bench.ServerChild} {
		t.Run("server="+place.String(), func(t *testing.T) {
			got := report(func(sim *simulate.Simulator) {
				res, err := bench.MeasureGRPC(context.Background(), sim, msgs, clock.RealClock{}, 2, place)
				if err != nil {
					t.Fatal(err)
				}
				if res.Problem != "" || res.Received != n {
					t.Fatalf("received %d of %d: %s", res.Received, n, res.Problem)
				}
				if res.CPU < 0 || res.Wall <= 0 {
					t.Fatalf("measured %v CPU, %v wall", res.CPU, res.Wall)
				}
			})
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("report (-file replay +gRPC):\n%s", diff)
			}
		})
	}
}

// grpcProfile profiles the measured stretch of BenchmarkGRPCIngest only: -cpuprofile
// would be mostly the encoding of the messages and the GC it leaves behind.
var grpcProfile = flag.String("grpc.cpuprofile", "", "write a CPU profile of BenchmarkGRPCIngest's measured runs to `PREFIX`-sim=….prof")

func startGRPCProfile(b *testing.B, name string) (stop func()) {
	if *grpcProfile == "" {
		return func() {}
	}
	f, err := os.Create(*grpcProfile + "-" + strings.ReplaceAll(name, "/", "-") + ".prof")
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// BenchmarkGRPCIngest is the gRPC row of bench run on profile M: each op sends
// grpcBenchFlows generated flows through the test server, in a child process or this
// one, and the source, alone (sim=none) or into a Simulator (sim=M), on two cores. Per-flow figures are per flow,
// not per op; run it with -benchtime 1x and -cpuprofile to see where the row's time goes.
func BenchmarkGRPCIngest(b *testing.B) {
	const grpcBenchFlows = 200_000
	f := world(b, bench.ProfileM)
	msgs, err := bench.EncodeFlows(f.world, grpcBenchFlows)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		withSim bool
		place   bench.ServerPlace
	}{{false, bench.ServerChild}, {true, bench.ServerChild}, {true, bench.ServerInProcess}} {
		withSim := c.withSim
		name := "sim=none"
		if withSim {
			name = "sim=M"
		}
		name += "/server=" + c.place.String()
		b.Run(name, func(b *testing.B) {
			var flowsSeen int
			var wall, cpu time.Duration
			for b.Loop() {
				var sim *simulate.Simulator
				if withSim {
					b.StopTimer()
					sim = f.simulator(b)
					b.StartTimer()
				}
				stop := startGRPCProfile(b, name)
				res, err := bench.MeasureGRPC(b.Context(), sim, msgs, clock.RealClock{}, 2, c.place)
				stop()
				if err != nil {
					b.Fatal(err)
				}
				if res.Problem != "" || res.Received != len(msgs) {
					b.Fatalf("received %d of %d: %s", res.Received, len(msgs), res.Problem)
				}
				flowsSeen += res.Received
				wall += res.Wall
				cpu += res.CPU
			}
			b.ReportMetric(float64(flowsSeen)/wall.Seconds(), "flows/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(flowsSeen), "cpu-ns/flow")
		})
	}
}

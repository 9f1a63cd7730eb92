package bench_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// BenchmarkReplayRead is BenchmarkReplay on one core (GOMAXPROCS=1, as bench run's
// replay and scaling rows measure), for each way a FileSource reads: read=inline is a
// file or memory, parsed by Next on the consumer's goroutine; read=goroutine is a pipe,
// parsed by the source's own goroutine and handed over in batches. ns/op is per line.
func BenchmarkReplayRead(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		data := bytes.Join(f.lines, []byte("\n"))
		for _, mode := range []string{"inline", "goroutine"} {
			b.Run("read="+mode, func(b *testing.B) {
				open := func() *flows.FileSource {
					var src *flows.FileSource
					if mode == "inline" {
						src = flows.NewReader("bench", bytes.NewReader(data))
					} else {
						// Hiding the type makes it a reader that may block.
						src = flows.NewReader("bench", struct{ io.Reader }{bytes.NewReader(data)})
					}
					// As BenchmarkReplay; a reader goroutine ignores it.
					src.ReuseFlows()
					return src
				}
				sim := f.simulator(b)
				ctx := context.Background()
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
				b.ReportAllocs()
				cpu := startCPU(b)
				src := open()
				for b.Loop() {
					ev, err := src.Next(ctx)
					if errors.Is(err, io.EOF) {
						src.Close()
						src = open()
						continue
					}
					if err != nil {
						b.Fatal(err)
					}
					sim.Observe(ev)
				}
				src.Close()
				cpu.report(b)
			})
		}
	})
}

// TestReplayReuseFlowsSameReport: a whole replay of generated traffic reports the same
// with and without flows.FileSource.ReuseFlows, which is only sound if nothing Observe
// keeps points into a Flow (its UUID, its IsReply, the Flow itself).
func TestReplayReuseFlowsSameReport(t *testing.T) {
	cases := map[string]struct {
		profile bench.Profile
		egress  bool
		lines   int
	}{
		"S ingress": {profile: bench.ProfileS, lines: 20_000},
		"S egress":  {profile: bench.ProfileS, egress: true, lines: 20_000},
		"M ingress": {profile: bench.ProfileM, lines: 20_000},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := bench.Generate(tc.profile, 3)
			snap, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := w.WriteFlows(&buf, tc.lines); err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			report := func(reuse bool) *simulate.Report {
				opts := simulate.DefaultOptions()
				opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
				opts.Compile.Egress = tc.egress
				sim, err := simulate.New(snap, opts)
				if err != nil {
					t.Fatal(err)
				}
				src := flows.NewReader("generated", bytes.NewReader(data))
				defer src.Close()
				if reuse {
					src.ReuseFlows()
				}
				for {
					ev, err := src.Next(t.Context())
					if errors.Is(err, io.EOF) {
						return sim.Report()
					}
					if err != nil {
						t.Fatal(err)
					}
					sim.Observe(ev)
				}
			}
			want := report(false)
			got := report(true)
			if want.Flows.Evaluated == 0 || len(want.Edges) == 0 {
				t.Fatalf("replay judged nothing: %+v", want.Flows)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("report with ReuseFlows (-without +with):\n%s", diff)
			}
		})
	}
}

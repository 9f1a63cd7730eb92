package bench_test

import (
	"testing"

	"github.com/shadowgate/shadowgate/flows"
)

// BenchmarkJudge is Simulator.Judge on parsed events, without the report's aggregation:
// what the live path (soak store, gRPC ingest) asks of the simulator per flow. ns/op is
// per flow event (the fixture's other events are left out).
func BenchmarkJudge(b *testing.B) {
	forProfiles(b, func(b *testing.B, f *fixture) {
		var fs []*flows.Flow
		for _, ev := range f.events(b) {
			if ev.Kind == flows.KindFlow {
				fs = append(fs, ev.Flow)
			}
		}
		sim := f.simulator(b)
		// One pass first, as in BenchmarkObserve: the steady state, not first sightings.
		for _, fl := range fs {
			sim.Judge(fl, 0)
		}
		b.ReportAllocs()
		cpu := startCPU(b)
		i := 0
		for b.Loop() {
			sim.Judge(fs[i], 0)
			if i++; i == len(fs) {
				i = 0
			}
		}
		cpu.report(b)
	})
}

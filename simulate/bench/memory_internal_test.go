package bench

import (
	"testing"
	"time"

	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// BenchmarkReevaluate is Live.Swap on profile M with 200,000 stored edges: every edge
// re-judged by a new simulator after a ClientIntents was removed. ns/op is per edge.
func BenchmarkReevaluate(b *testing.B) {
	const edges = 200_000
	w := Generate(ProfileM, 1)
	snap, err := w.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	sim, err := simulate.New(snap, daemonOptions(snap))
	if err != nil {
		b.Fatal(err)
	}
	live, _, err := simulate.NewLive(sim, soak.DefaultOptions(), simulate.LiveConfig{Gate: soak.DefaultGateConfig(), Clock: clock.RealClock{}})
	if err != nil {
		b.Fatal(err)
	}
	if err := fillStore(live.Store(), snap, edges, 1, time.Now()); err != nil {
		b.Fatal(err)
	}
	next, err := w.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	next.Intents = next.Intents[1:]
	snaps := [2]*cluster.Snapshot{next, snap}
	i := 0
	for b.Loop() {
		// A fresh simulator each time: its verdict caches start cold, as after a reload.
		b.StopTimer()
		s, err := simulate.New(snaps[i%2], daemonOptions(snaps[i%2]))
		if err != nil {
			b.Fatal(err)
		}
		i++
		b.StartTimer()
		live.Swap(s)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/edges, "ns/edge")
}

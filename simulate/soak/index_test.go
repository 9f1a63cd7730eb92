package soak

import (
	"math/rand/v2"
	"testing"
)

// The index must agree with a map through any sequence of adds and swap-removals, across
// growth and shrinking, whatever the probe runs look like.
func TestEdgeIndexAgainstMap(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 7))
		d := &nsData{index: newEdgeIndex()}
		if seed%2 == 0 {
			d.index.seed = 0 // an unseeded hash clusters the small sequential ids more
		}
		s := &Store{}
		want := map[ekey]bool{}
		randKey := func() ekey {
			return ekey{src: rng.Uint32N(40), dst: rng.Uint32N(40), port: int32(rng.IntN(3)), proto: uint16(rng.IntN(2))}
		}
		for op := range 4000 {
			k := randKey()
			switch r := rng.IntN(10); {
			case r < 6:
				if !want[k] {
					s.addEdge(d, edge{ekey: k})
					want[k] = true
				}
			case r < 9 && len(d.edges) > 0:
				i := rng.IntN(len(d.edges))
				delete(want, d.edges[i].ekey)
				s.removeEdge(d, i)
			default:
				d.index.shrink(d.edges)
			}
			if d.index.n != len(d.edges) || len(d.edges) != len(want) {
				t.Fatalf("seed %d op %d: index holds %d, edges %d, want %d", seed, op, d.index.n, len(d.edges), len(want))
			}
			// Every stored key is found at its position (all of them now and then, one at
			// random otherwise); absent keys are not found.
			lo, hi := 0, len(d.edges)
			if op%64 != 0 && hi > 0 {
				lo = rng.IntN(hi)
				hi = lo + 1
			}
			for pos := lo; pos < hi; pos++ {
				if got, ok := d.index.get(d.edges, d.edges[pos].ekey); !ok || got != uint32(pos) {
					t.Fatalf("seed %d op %d: key at %d found at %d (%t)", seed, op, pos, got, ok)
				}
			}
			if k := randKey(); !want[k] {
				if _, ok := d.index.get(d.edges, k); ok {
					t.Fatalf("seed %d op %d: absent key %+v found", seed, op, k)
				}
			}
		}
	}
}

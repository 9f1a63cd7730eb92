package hubble

import (
	"math/rand/v2"
	"testing"
)

// TestIDSetAgreesWithMap adds and removes ids at random, as the de-duplication ring does
// (each id added once at a free ring position, removed at most once), and compares
// membership with a map after every step. The ids come from a small pool and the set is small, so probe chains wrap
// around the table and removals shift entries back across the end.
func TestIDSetAgreesWithMap(t *testing.T) {
	cases := map[string]struct {
		capacity, pool int
		seed           uint64
	}{
		"tiny table, many collisions": {capacity: 4, pool: 16, seed: 1},
		"ids differing only late":     {capacity: 64, pool: 256, seed: 2},
		"dedup window sized":          {capacity: 4096, pool: 20000, seed: 3},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(tc.seed, tc.seed))
			s := newIDSet(tc.capacity)
			// Every id's home is the same few slots when the seed is fixed to 0 and the ids
			// share their first bytes: the worst case for probing.
			if name == "tiny table, many collisions" {
				s.seed = 0
			}
			pool := make([][16]byte, tc.pool)
			for i := range pool {
				pool[i][15] = byte(i)
				pool[i][14] = byte(i >> 8)
				if name != "ids differing only late" {
					pool[i][0] = byte(rnd.Uint32())
				}
			}
			want := map[[16]byte]bool{}
			ring := make([]dedupEntry, tc.capacity)
			at := map[[16]byte]int{}
			var free []int
			for pos := range ring {
				free = append(free, pos)
			}
			for step := range 20000 {
				id := pool[rnd.IntN(len(pool))]
				switch {
				case want[id]:
					pos := at[id]
					s.remove(id, pos)
					ring[pos] = dedupEntry{}
					free = append(free, pos)
					delete(want, id)
				case len(want) < tc.capacity:
					pos := free[len(free)-1]
					free = free[:len(free)-1]
					ring[pos].id, at[id] = id, pos
					s.add(id, pos)
					want[id] = true
				}
				if s.len() != len(want) {
					t.Fatalf("step %d: len %d, want %d", step, s.len(), len(want))
				}
				for _, p := range pool[:min(len(pool), 64)] {
					if got := s.has(p, ring); got != want[p] {
						t.Fatalf("step %d: has(%x) = %v, want %v", step, p, got, want[p])
					}
				}
				if got := s.has(id, ring); got != want[id] {
					t.Fatalf("step %d: has(%x) = %v, want %v", step, id, got, want[id])
				}
			}
		})
	}
}

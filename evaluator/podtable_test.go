package evaluator

import (
	"fmt"
	"testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// TestPodTable: tracked and untracked entries live apart, but a pod has one entry at
// most, whichever way it last came in, and dropping the untracked ones keeps the rest.
func TestPodTable(t *testing.T) {
	pods := make([]*cluster.Pod, 600) // more than podShards, so that shards hold several
	for i := range pods {
		pods[i] = &cluster.Pod{Namespace: "ns", Name: fmt.Sprintf("p%d", i)}
	}
	tracked := func(id uint32) podEntry { return podEntry{id: id, tracked: true} }
	untracked := func(id uint32) podEntry { return podEntry{id: id} }
	type op struct {
		pod    int
		set    *podEntry // nil: remove
		drop   bool      // dropUntracked instead
		remove bool
	}
	set := func(pod int, e podEntry) op { return op{pod: pod, set: &e} }
	cases := map[string]struct {
		ops  []op
		want map[int]podEntry // every other pod is absent
	}{
		"untracked found": {
			ops:  []op{set(1, untracked(7))},
			want: map[int]podEntry{1: untracked(7)},
		},
		"tracked replaces untracked": {
			ops:  []op{set(1, untracked(7)), set(1, tracked(8))},
			want: map[int]podEntry{1: tracked(8)},
		},
		"untracked replaces tracked": {
			ops:  []op{set(1, tracked(8)), set(1, untracked(9))},
			want: map[int]podEntry{1: untracked(9)},
		},
		"remove after both": {
			ops:  []op{set(1, untracked(7)), set(1, tracked(8)), {pod: 1, remove: true}},
			want: map[int]podEntry{},
		},
		"remove untracked": {
			ops:  []op{set(1, untracked(7)), {pod: 1, remove: true}},
			want: map[int]podEntry{},
		},
		"drop keeps tracked": {
			ops:  []op{set(1, untracked(7)), set(2, tracked(8)), set(3, untracked(9)), set(3, tracked(10)), {drop: true}},
			want: map[int]podEntry{2: tracked(8), 3: tracked(10)},
		},
		"set after drop": {
			ops:  []op{set(1, untracked(7)), {drop: true}, set(1, untracked(11))},
			want: map[int]podEntry{1: untracked(11)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var tab podTable
			base := map[*cluster.Pod]podEntry{}
			for i := 100; i < len(pods); i++ {
				base[pods[i]] = tracked(uint32(i))
			}
			tab.bulkLoad(base)
			for _, o := range tc.ops {
				switch {
				case o.drop:
					tab.dropUntracked()
				case o.remove:
					tab.remove(pods[o.pod])
				default:
					tab.set(pods[o.pod], *o.set)
				}
			}
			for i, p := range pods {
				want, ok := tc.want[i]
				if i >= 100 {
					want, ok = tracked(uint32(i)), true
				}
				got, found := tab.get(p)
				if found != ok {
					t.Fatalf("pod %d: found %v, want %v", i, found, ok)
				}
				if ok && *got != want {
					t.Errorf("pod %d: got %+v, want %+v", i, *got, want)
				}
			}
			n := 0
			for si := range tab.shards {
				n += tab.shards[si].Load().n + tab.seen[si].Load().n
			}
			if wantN := len(pods) - 100 + len(tc.want); n != wantN {
				t.Errorf("table holds %d entries, want %d (a pod in both halves?)", n, wantN)
			}
		})
	}
}

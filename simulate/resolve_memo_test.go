package simulate

import (
	"strings"
	"testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
)

// TestPodMemo: the memo answers by string address, so it must give the map's answer
// whether names arrive as the same strings, as copies, or as more address pairs than it
// keeps, and its entries stay one per pod.
func TestPodMemo(t *testing.T) {
	snap, err := cluster.Load("testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		maxKeys int
		copies  bool
	}{
		"interned strings":                 {maxKeys: 1 << 10},
		"fresh copies every time":          {maxKeys: 1 << 10, copies: true},
		"more address pairs than it keeps": {maxKeys: 3, copies: true},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			r := newResolver(snap)
			r.memo.maxKeys = tc.maxKeys
			for round := range 4 {
				for _, p := range snap.Pods {
					ns, n := p.Namespace, p.Name
					if tc.copies {
						ns, n = strings.Clone(ns), strings.Clone(n)
					}
					m := r.pod(ns, n)
					if m == nil || m.pod != p {
						t.Fatalf("round %d: %s/%s: got %v, want the snapshot pod", round, ns, n, m)
					}
					if m := r.pod(ns, n+"-gone"); m != nil {
						t.Fatalf("round %d: %s/%s-gone: got pod %s, want none", round, ns, n, m.pod.Key())
					}
				}
			}
			if len(r.memo.entries) > len(snap.Pods) {
				t.Errorf("%d memo entries for %d pods", len(r.memo.entries), len(snap.Pods))
			}
			if len(r.memo.keys) > tc.maxKeys {
				t.Errorf("%d memo keys, bound %d", len(r.memo.keys), tc.maxKeys)
			}
		})
	}
}

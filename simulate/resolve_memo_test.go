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
			if r.memo.keys > tc.maxKeys {
				t.Errorf("%d memo keys, bound %d", r.memo.keys, tc.maxKeys)
			}
		})
	}
}

func TestReservedOf(t *testing.T) {
	cases := map[string]struct {
		labels []string
		want   int
	}{
		"none":               {labels: nil, want: 0},
		"pod labels":         {labels: []string{"k8s:app=cart", "k8s:io.kubernetes.pod.namespace=shop"}, want: 0},
		"host":               {labels: []string{"reserved:host"}, want: reservedHost},
		"remote node":        {labels: []string{"k8s:x=y", "reserved:remote-node"}, want: reservedRemoteNode},
		"world":              {labels: []string{"reserved:world"}, want: reservedWorld},
		"world ipv4":         {labels: []string{"reserved:world-ipv4"}, want: reservedWorld},
		"world ipv6":         {labels: []string{"reserved:world-ipv6"}, want: reservedWorld},
		"host and world":     {labels: []string{"reserved:world", "reserved:host"}, want: reservedHost | reservedWorld},
		"other reserved":     {labels: []string{"reserved:health", "reserved:"}, want: 0},
		"prefix of reserved": {labels: []string{"reserved:hos", "reserved:hostx"}, want: 0},
		"not at the start":   {labels: []string{"k8s:reserved:host"}, want: 0},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := reservedOf(tc.labels); got != tc.want {
				t.Errorf("reservedOf(%q) = %b, want %b", tc.labels, got, tc.want)
			}
		})
	}
}

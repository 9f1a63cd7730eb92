package simulate

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// edgeLess is the order reports have always had, formatted in full for each comparison:
// the reference sortEdges must agree with.
func edgeLess(a, b *Edge) bool {
	if a.Count != b.Count {
		return a.Count > b.Count
	}
	return edgeSortKey(a) < edgeSortKey(b)
}

func edgeSortKey(e *Edge) string {
	return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%05d",
		e.Destination.Namespace, e.Destination.Workload, e.Destination.Kind, e.Destination.CIDR, e.Destination.Node,
		e.Source.Namespace, e.Source.Workload, e.Source.Kind, e.Source.CIDR, e.Source.Node, e.Protocol, e.Port)
}

func TestAppendEdgeKeyMatchesSprintf(t *testing.T) {
	for _, port := range []int32{0, 7, 53, 8080, 65535, 99999, 100000, 123456, -1, -80, -2147483648, 2147483647} {
		e := Edge{Source: Peer{Namespace: "a", Workload: "w", Kind: "Deployment"}, Destination: Peer{Kind: KindExternal, CIDR: "10.0.0.0/24"}, Protocol: "TCP", Port: port}
		if got, want := string(appendEdgeKey(nil, &e)), edgeSortKey(&e); got != want {
			t.Errorf("port %d: key %q, want %q", port, got, want)
		}
	}
}

// TestSortEdgesAsEdgeLess sorts random edges whose fields share prefixes (so that the
// separator's place in the byte order matters: "app" against "app-2") and ties on count.
func TestSortEdgesAsEdgeLess(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	for round := range 50 {
		n := rng.IntN(300)
		es := make([]Edge, n)
		for i := range es {
			es[i] = Edge{
				Source:      Peer{Namespace: pick("app", "app-2", "ap", ""), Workload: pick("api", "api-v2", "web"), Kind: pick("Deployment", KindNode, KindExternal), Node: pick("", "node-1", "node-10")},
				Destination: Peer{Namespace: pick("app", "app-2", "b"), Workload: pick("db", "db-1"), Kind: "StatefulSet", CIDR: pick("", "10.0.0.0/24", "10.0.0.0/8")},
				Protocol:    pick("TCP", "UDP", "SCTP"), Port: int32(pick2(rng, 0, 53, 443, 8080, 65535, 100000, -1)),
				Count: int64(rng.IntN(4)),
			}
		}
		want := append([]Edge(nil), es...)
		sort.SliceStable(want, func(i, j int) bool { return edgeLess(&want[i], &want[j]) })
		got := append([]Edge(nil), es...)
		sortEdges(got)
		// Equal keys and counts may come in any order: compare what the order sees.
		view := func(es []Edge) []string {
			out := make([]string, len(es))
			for i := range es {
				out[i] = fmt.Sprintf("%d %s", es[i].Count, edgeSortKey(&es[i]))
			}
			return out
		}
		if diff := cmp.Diff(view(want), view(got)); diff != "" {
			t.Fatalf("round %d: order (-want +got):\n%s", round, diff)
		}
	}
}

func pick2(rng *rand.Rand, xs ...int) int { return xs[rng.IntN(len(xs))] }

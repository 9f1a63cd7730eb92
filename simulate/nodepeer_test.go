package simulate

import (
	"net/netip"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// TestRejudgeNodeEdge: an edge from a node to a workload stands for flows to the
// workload's pod on that node (exempt) and to its pods elsewhere (not). Re-judging it, as
// every reload does, must not clear an edge that a flow from another node made uncovered,
// nor flag one the kubelet's own-node probes made.
func TestRejudgeNodeEdge(t *testing.T) {
	cases := map[string]struct {
		dstIP         string // the web pod the flow reaches
		wantUncovered bool
	}{
		"from another node: stays uncovered": {dstIP: "10.1.2.11", wantUncovered: true},
		"from its own node: stays covered":   {dstIP: "10.1.1.11", wantUncovered: false},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			snap, err := cluster.Load("testdata/nodes")
			if err != nil {
				t.Fatal(err)
			}
			opts := DefaultOptions()
			opts.Compile.Namespaces = []string{"shop"}
			sim, err := New(snap, opts)
			if err != nil {
				t.Fatal(err)
			}
			clk := clocktesting.NewFakeClock(t0)
			l, _, err := NewLive(sim, soak.DefaultOptions(), LiveConfig{Gate: liveGate(), Clock: clk})
			if err != nil {
				t.Fatal(err)
			}
			no := false
			pod := map[string]string{"10.1.1.11": "web-7c9d-a", "10.1.2.11": "web-7c9d-b"}[tc.dstIP]
			node := map[string]string{"10.1.1.11": "node-1", "10.1.2.11": "node-2"}[tc.dstIP]
			l.Observe("file", flows.Event{Kind: flows.KindFlow, Line: 1, Flow: &flows.Flow{
				Time: t0, NodeName: node, Verdict: "FORWARDED", Type: "L3_L4", IsReply: &no, TrafficDirection: "INGRESS",
				Source:      flows.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Labels: []string{"reserved:host"}},
				Destination: flows.Endpoint{IP: netip.MustParseAddr(tc.dstIP), Namespace: "shop", PodName: pod, Labels: []string{"k8s:app=web"}},
				Protocol:    "TCP", SourcePort: 40000, DestinationPort: 8080, TCPFlags: flows.TCPFlags{SYN: true},
			}})
			check := func(when string) {
				t.Helper()
				edges := l.Store().Edges("shop", t0.Add(time.Minute))
				if len(edges) != 1 {
					t.Fatalf("%s: %d edges, want 1: %+v", when, len(edges), edges)
				}
				if e := edges[0]; e.Source.Kind != soak.KindNode || e.Uncovered != tc.wantUncovered {
					t.Fatalf("%s: edge %v uncovered %v (%s), want a node edge, uncovered %v", when, e.Key(), e.Uncovered, e.Reason, tc.wantUncovered)
				}
			}
			check("observed")
			l.Swap(sim)
			check("re-judged")
		})
	}
}

package simulate

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// The node fixtures: web-a runs on node-1 (testdata/nodes), web-b on node-2
// (testdata/nodes-web-b), and testdata/nodes-allow admits every node's address to web.
const (
	nodesBase  = "testdata/nodes"
	nodesWebB  = "testdata/nodes-web-b"
	nodesAllow = "testdata/nodes-allow"

	webA = "10.1.1.11" // on node-1
	webB = "10.1.2.11" // on node-2

	ownNodeEdge   = "node node-1→shop/web:8080/TCP"
	crossNodeEdge = "node node-1 (cross-node)→shop/web:8080/TCP"
)

// TestRejudgeNodeEdge: flows from a node to a workload are two edges, one for the pods
// on that node (exempt: KindNode) and one for its pods on other nodes (judged by their
// policies: KindCrossNode). Re-judging them, as every reload does, must neither clear
// cross-node traffic that enforcement drops nor flag the kubelet's own-node probes.
func TestRejudgeNodeEdge(t *testing.T) {
	cases := map[string]struct {
		observed []string // the snapshot the flows are judged against
		to       []string // the web pods node-1 sends to
		legacy   *bool    // a KindNode edge stored as before KindCrossNode, uncovered or not
		reload   []string // the snapshot of the reload
		// The edges of shop, uncovered or not, after observing and after the reload.
		want, wantReloaded map[string]bool
	}{
		"cross-node flow: uncovered, stays uncovered": {
			observed: []string{nodesBase, nodesWebB}, to: []string{webB}, reload: []string{nodesBase, nodesWebB},
			want: map[string]bool{crossNodeEdge: true}, wantReloaded: map[string]bool{crossNodeEdge: true},
		},
		"own-node probe: covered, stays covered": {
			observed: []string{nodesBase, nodesWebB}, to: []string{webA}, reload: []string{nodesBase, nodesWebB},
			want: map[string]bool{ownNodeEdge: false}, wantReloaded: map[string]bool{ownNodeEdge: false},
		},
		"both: two edges, each judged its own way": {
			observed: []string{nodesBase, nodesWebB}, to: []string{webA, webB}, reload: []string{nodesBase, nodesWebB},
			want:         map[string]bool{ownNodeEdge: false, crossNodeEdge: true},
			wantReloaded: map[string]bool{ownNodeEdge: false, crossNodeEdge: true},
		},
		// The fail-open this split closes: one edge for both kinds of flow was covered
		// by its probes whatever the policies said about the cross-node ones.
		"cross-node flow covered by an ipBlock: uncovered once the ipBlock is gone": {
			observed: []string{nodesBase, nodesWebB, nodesAllow}, to: []string{webA, webB}, reload: []string{nodesBase, nodesWebB},
			want:         map[string]bool{ownNodeEdge: false, crossNodeEdge: false},
			wantReloaded: map[string]bool{ownNodeEdge: false, crossNodeEdge: true},
		},
		"cross-node flow covered by an ipBlock: stays covered while it stands": {
			observed: []string{nodesBase, nodesWebB, nodesAllow}, to: []string{webB}, reload: []string{nodesBase, nodesWebB, nodesAllow},
			want: map[string]bool{crossNodeEdge: false}, wantReloaded: map[string]bool{crossNodeEdge: false},
		},
		"cross-node flow, then every pod on the sending node: stays uncovered": {
			observed: []string{nodesBase, nodesWebB}, to: []string{webB}, reload: []string{nodesBase},
			want: map[string]bool{crossNodeEdge: true}, wantReloaded: map[string]bool{crossNodeEdge: true},
		},
		"stored before the split, uncovered: judged as cross-node": {
			observed: []string{nodesBase, nodesWebB}, legacy: ptr(true), reload: []string{nodesBase, nodesWebB},
			want: map[string]bool{ownNodeEdge: true}, wantReloaded: map[string]bool{ownNodeEdge: true},
		},
		"stored before the split, covered: judged as the node's own": {
			observed: []string{nodesBase, nodesWebB}, legacy: ptr(false), reload: []string{nodesBase, nodesWebB},
			want: map[string]bool{ownNodeEdge: false}, wantReloaded: map[string]bool{ownNodeEdge: false},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sim := nodeSimulator(t, tc.observed...)
			l, _, err := NewLive(sim, soak.DefaultOptions(), LiveConfig{Gate: liveGate(), Clock: clocktesting.NewFakeClock(t0)})
			if err != nil {
				t.Fatal(err)
			}
			for i, ip := range tc.to {
				l.Observe("file", flows.Event{Kind: flows.KindFlow, Line: i + 1, Flow: fromNode1(ip)})
			}
			if tc.legacy != nil {
				key := soak.EdgeKey{Source: soak.Peer{Kind: soak.KindNode, Node: "node-1"},
					Destination: soak.Peer{Namespace: "shop", Workload: "web", Kind: "Deployment"}, Protocol: "TCP", Port: 8080}
				l.Store().Observe(key, t0, soak.Verdict{Namespace: "shop", Uncovered: *tc.legacy, Reason: "as stored"})
			}
			if diff := cmp.Diff(tc.want, nodeEdges(l)); diff != "" {
				t.Errorf("observed (-want +got):\n%s", diff)
			}
			l.Swap(nodeSimulator(t, tc.reload...))
			if diff := cmp.Diff(tc.wantReloaded, nodeEdges(l)); diff != "" {
				t.Errorf("re-judged (-want +got):\n%s", diff)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func nodeSimulator(t *testing.T, paths ...string) *Simulator {
	t.Helper()
	snap, err := cluster.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	opts := DefaultOptions()
	opts.Compile.Namespaces = []string{"shop"}
	sim, err := New(snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	return sim
}

// fromNode1 is a flow from node-1's address to the web pod at ip, observed where it
// arrives, as Hubble labels it there: the node itself or another node.
func fromNode1(ip string) *flows.Flow {
	observer, pod, label := "node-1", "web-7c9d-a", "reserved:host"
	if ip == webB {
		observer, pod, label = "node-2", "web-7c9d-b", "reserved:remote-node"
	}
	no := false
	return &flows.Flow{
		Time: t0, NodeName: observer, Verdict: "FORWARDED", Type: "L3_L4", IsReply: &no, TrafficDirection: "INGRESS",
		Source:      flows.Endpoint{IP: netip.MustParseAddr("10.0.0.1"), Labels: []string{label}},
		Destination: flows.Endpoint{IP: netip.MustParseAddr(ip), Namespace: "shop", PodName: pod, Labels: []string{"k8s:app=web"}},
		Protocol:    "TCP", SourcePort: 40000, DestinationPort: 8080, TCPFlags: flows.TCPFlags{SYN: true},
	}
}

// nodeEdges is shop's stored edges, uncovered or not, by name.
func nodeEdges(l *Live) map[string]bool {
	got := map[string]bool{}
	for _, e := range l.Store().Edges("shop", t0.Add(time.Minute)) {
		got[e.Key().String()] = e.Uncovered
	}
	return got
}

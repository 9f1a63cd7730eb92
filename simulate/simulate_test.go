package simulate

import (
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shadowgate/shadowgate/evaluator"
	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
)

func newTestSimulator(t *testing.T, enforce ...string) *Simulator {
	t.Helper()
	snap, err := cluster.Load("testdata/cluster")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	opts := DefaultOptions()
	opts.Compile.Namespaces = enforce
	sim, err := New(snap, opts)
	if err != nil {
		t.Fatalf("new: %v", err)
	}
	return sim
}

func pod(ns, name, ip string) flows.Endpoint {
	return flows.Endpoint{Namespace: ns, PodName: name, IP: addr(ip)}
}

func addr(s string) netip.Addr {
	if s == "" {
		return netip.Addr{}
	}
	return netip.MustParseAddr(s)
}

func tcp(src, dst flows.Endpoint, port uint32, mods ...func(*flows.Flow)) *flows.Flow {
	f := &flows.Flow{
		Time: time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC), NodeName: "node-2", Verdict: "FORWARDED",
		Type: "L3_L4", TrafficDirection: "INGRESS", Source: src, Destination: dst,
		Protocol: "TCP", SourcePort: 40000, DestinationPort: port, TCPFlags: flows.TCPFlags{SYN: true},
	}
	no := false
	f.IsReply = &no
	for _, m := range mods {
		m(f)
	}
	return f
}

var (
	web0   = pod("web", "web-0", "10.1.1.10")
	api0   = pod("api", "api-0", "10.1.2.10")
	batch0 = pod("api", "batch-0", "10.1.2.20")
)

// summary is what the table compares: the outcome, whether enforcement would drop it, and
// who the two ends resolved to.
type summary struct {
	Outcome   Outcome
	Reason    string // only for skipped flows (the verdict text is covered elsewhere)
	WouldDrop bool
	Src, Dst  string
}

func summarize(j Judgement) summary {
	s := summary{Outcome: j.Outcome, WouldDrop: j.WouldDrop}
	if j.Outcome == Skipped {
		s.Reason = j.Reason
		return s
	}
	s.Src, s.Dst = describe(j.Conn.Src), describe(j.Conn.Dst)
	return s
}

func describe(ep evaluator.Endpoint) string {
	switch ep.Kind {
	case evaluator.Pod:
		return "pod " + ep.Pod.Workload.String()
	case evaluator.Host:
		return "host " + ep.Node
	}
	return "external " + ep.IP.String()
}

func TestJudge(t *testing.T) {
	yes := true
	cases := map[string]struct {
		flow *flows.Flow
		want summary
	}{
		"covered call resolved by pod name": {
			flow: tcp(web0, api0, 8080),
			want: summary{Outcome: Allowed, Src: "pod web/web-0 (Pod)", Dst: "pod api/api-0 (Pod)"},
		},
		"uncovered call would be dropped": {
			flow: tcp(batch0, api0, 8080),
			want: summary{Outcome: Denied, WouldDrop: true, Src: "pod api/batch-0 (Pod)", Dst: "pod api/api-0 (Pod)"},
		},
		"endpoint without pod name resolved by IP": {
			flow: tcp(flows.Endpoint{IP: addr("10.1.2.20")}, api0, 8080),
			want: summary{Outcome: Denied, WouldDrop: true, Src: "pod api/batch-0 (Pod)", Dst: "pod api/api-0 (Pod)"},
		},
		"is_reply true is skipped": {
			flow: tcp(api0, web0, 40000, func(f *flows.Flow) { f.IsReply = &yes }),
			want: summary{Outcome: Skipped, Reason: SkipReply},
		},
		"SYN-ACK without is_reply is a reply": {
			flow: tcp(api0, batch0, 40000, func(f *flows.Flow) { f.IsReply = nil; f.TCPFlags = flows.TCPFlags{SYN: true, ACK: true} }),
			want: summary{Outcome: Skipped, Reason: SkipReply},
		},
		"established packet without SYN is still the connection's traffic": {
			flow: tcp(batch0, api0, 8080, func(f *flows.Flow) { f.IsReply = nil; f.TCPFlags = flows.TCPFlags{ACK: true, PSH: true} }),
			want: summary{Outcome: Denied, WouldDrop: true, Src: "pod api/batch-0 (Pod)", Dst: "pod api/api-0 (Pod)"},
		},
		"non-IP flow is skipped": {
			flow: tcp(flows.Endpoint{Namespace: "web", PodName: "web-0"}, flows.Endpoint{Namespace: "api", PodName: "api-0"}, 8080),
			want: summary{Outcome: Skipped, Reason: SkipNonIP},
		},
		"L7 record is skipped": {
			flow: tcp(batch0, api0, 8080, func(f *flows.Flow) { f.Type = "L7" }),
			want: summary{Outcome: Skipped, Reason: SkipL7},
		},
		"ICMP is skipped": {
			flow: tcp(batch0, api0, 0, func(f *flows.Flow) { f.Protocol = "ICMPv4" }),
			want: summary{Outcome: Skipped, Reason: SkipUnsupportedProtocol},
		},
		"kubelet probe from the pod's own node is allowed": {
			flow: tcp(flows.Endpoint{IP: addr("10.0.0.2"), Labels: []string{"reserved:host"}}, api0, 8080),
			want: summary{Outcome: Allowed, Src: "host node-2", Dst: "pod api/api-0 (Pod)"},
		},
		"remote node is not exempt": {
			flow: tcp(flows.Endpoint{IP: addr("10.0.0.1"), Labels: []string{"reserved:remote-node"}}, api0, 8080),
			want: summary{Outcome: Denied, WouldDrop: true, Src: "host node-1", Dst: "pod api/api-0 (Pod)"},
		},
		"host-network pod is its node": {
			flow: tcp(pod("api", "agent-0", "10.0.0.2"), api0, 8080),
			want: summary{Outcome: Allowed, Src: "host node-2", Dst: "pod api/api-0 (Pod)"},
		},
		"world is external and needs an allowance": {
			flow: tcp(flows.Endpoint{IP: addr("198.51.100.7"), Labels: []string{"reserved:world"}}, api0, 8080),
			want: summary{Outcome: Denied, WouldDrop: true, Src: "external 198.51.100.7", Dst: "pod api/api-0 (Pod)"},
		},
		"pod missing from the snapshot resolved through Hubble's workloads": {
			flow: tcp(flows.Endpoint{Namespace: "api", PodName: "worker-5d9c-abcde", IP: addr("10.1.2.99"),
				Workloads: []flows.Workload{{Name: "worker", Kind: "Deployment"}}}, api0, 8080),
			want: summary{Outcome: Denied, WouldDrop: true, Src: "pod api/worker (Deployment)", Dst: "pod api/api-0 (Pod)"},
		},
		"pod missing from the snapshot resolved through Hubble's labels": {
			flow: tcp(flows.Endpoint{Namespace: "web", PodName: "web-new", IP: addr("10.1.1.99"),
				Labels: []string{"k8s:app=web", "k8s:io.kubernetes.pod.namespace=web"}}, api0, 8080),
			// The compiled peer selects app=web pods: the newcomer passes as web-0 would.
			want: summary{Outcome: Allowed, Src: "pod web/web-new (Pod)", Dst: "pod api/api-0 (Pod)"},
		},
		"workload-level observation judged on the server's ports": {
			flow: &flows.Flow{WorkloadLevel: true,
				Source:      flows.Endpoint{Namespace: "web", Workloads: []flows.Workload{{Name: "web-0", Kind: "Pod"}}},
				Destination: flows.Endpoint{Namespace: "api", Workloads: []flows.Workload{{Name: "api-0", Kind: "Pod"}}}},
			want: summary{Outcome: Allowed, Src: "pod web/web-0 (Pod)", Dst: "pod api/api-0 (Pod)"},
		},
		"workload-level observation of an unknown workload": {
			flow: &flows.Flow{WorkloadLevel: true,
				Source:      flows.Endpoint{Namespace: "web", Workloads: []flows.Workload{{Name: "ghost", Kind: "Deployment"}}},
				Destination: flows.Endpoint{Namespace: "api", Workloads: []flows.Workload{{Name: "api-0", Kind: "Pod"}}}},
			want: summary{Outcome: Skipped, Reason: SkipUnresolvedSource},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sim := newTestSimulator(t, "api")
			got := summarize(sim.Judge(tc.flow, 1))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("judgement (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNothingEnforcedNothingDrops(t *testing.T) {
	sim := newTestSimulator(t)
	j := sim.Judge(tcp(batch0, api0, 8080), 1)
	if j.Outcome != Allowed || j.WouldDrop {
		t.Errorf("with no enforced namespace: outcome %s wouldDrop %t, want allowed and false", j.Outcome, j.WouldDrop)
	}
}

func TestReportAccounting(t *testing.T) {
	sim := newTestSimulator(t, "api")
	yes := true
	events := []flows.Event{
		{Kind: flows.KindFlow, Line: 1, Flow: tcp(web0, api0, 8080)},
		{Kind: flows.KindFlow, Line: 2, Flow: tcp(batch0, api0, 8080)},
		{Kind: flows.KindFlow, Line: 3, Flow: tcp(batch0, api0, 8080, func(f *flows.Flow) { f.Time = f.Time.Add(time.Hour) })},
		{Kind: flows.KindFlow, Line: 4, Flow: tcp(api0, batch0, 40000, func(f *flows.Flow) { f.IsReply = &yes })},
		{Kind: flows.KindFlow, Line: 5, Flow: tcp(flows.Endpoint{IP: addr("198.51.100.7"), Labels: []string{"reserved:world"}}, api0, 8080)},
		{Kind: flows.KindFlow, Line: 6, Flow: tcp(flows.Endpoint{IP: addr("198.51.100.200"), Labels: []string{"reserved:world"}}, api0, 8080)},
		{Kind: flows.KindMalformed, Line: 7, Reason: "invalid-json", Detail: "unexpected end"},
		{Kind: flows.KindLost, Line: 8, Lost: &flows.Lost{NumEvents: 5}},
		{Kind: flows.KindNodeStatus, Line: 9, NodeStatus: &flows.NodeStatus{State: "NODE_UNAVAILABLE"}},
	}
	for _, ev := range events {
		sim.Observe(ev)
	}
	r := sim.Report()
	wantFlows := FlowCounts{
		Read: 9, Evaluated: 5,
		Skipped:        map[string]int64{SkipReply: 1},
		Malformed:      map[string]int64{"invalid-json": 1},
		MalformedLines: []MalformedLine{{Line: 7, Reason: "invalid-json", Detail: "unexpected end"}},
		LostEvents:     5, LostEventLines: 1, NodeStatusLines: 1,
	}
	if diff := cmp.Diff(wantFlows, r.Flows); diff != "" {
		t.Errorf("flow counts (-want +got):\n%s", diff)
	}
	wantNS := []NamespaceReport{{Namespace: "api", Enforced: true, Connections: 5, WouldDrop: 4, UncoveredEdges: 2}}
	if diff := cmp.Diff(wantNS, r.Namespaces); diff != "" {
		t.Errorf("namespaces (-want +got):\n%s", diff)
	}
	type edge struct {
		Src, Dst    Peer
		Count       int64
		First, Last time.Time
	}
	var got []edge
	for _, e := range r.Uncovered {
		got = append(got, edge{e.Source, e.Destination, e.Count, e.FirstSeen, e.LastSeen})
	}
	t0 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	api := Peer{Namespace: "api", Workload: "api-0", Kind: "Pod"}
	want := []edge{
		{Peer{Namespace: "api", Workload: "batch-0", Kind: "Pod"}, api, 2, t0, t0.Add(time.Hour)},
		// Two external clients in one /24 are one edge.
		{Peer{Kind: KindExternal, CIDR: "198.51.100.0/24"}, api, 2, t0, t0},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("uncovered edges (-want +got):\n%s", diff)
	}
	if !r.WouldDrop() {
		t.Error("WouldDrop() = false with uncovered edges")
	}
	statuses := map[string]EdgeStatus{}
	for _, e := range r.Edges {
		statuses[e.Source.String()] = e.Status
	}
	for _, e := range r.Edges {
		if e.Source.Workload != "web-0" {
			continue
		}
		want := []compile.IntentRef{{ClientIntents: "web/web", Target: "api-0.api"}}
		if diff := cmp.Diff(want, e.Intents); diff != "" {
			t.Errorf("intents behind the covered edge (-want +got):\n%s", diff)
		}
	}
	wantStatus := map[string]EdgeStatus{"web/web-0": StatusCovered, "api/batch-0": StatusWouldDrop, "external 198.51.100.0/24": StatusWouldDrop}
	if diff := cmp.Diff(wantStatus, statuses); diff != "" {
		t.Errorf("edge statuses (-want +got):\n%s", diff)
	}
}

package hubbletest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const waitTimeout = 10 * time.Second

var spec = FlowSpec{
	UUID:        "f",
	Node:        "node-1",
	Source:      Endpoint{Namespace: "shop", Pod: "cart-1", IP: "10.0.1.1"},
	Destination: Endpoint{Namespace: "shop", Pod: "redis-0", IP: "10.0.2.2"},
	DestPort:    6379,
}

func dial(t *testing.T, srv *Server) observerpb.ObserverClient {
	t.Helper()
	conn, err := grpc.NewClient(srv.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return observerpb.NewObserverClient(conn)
}

// stream opens GetFlows; it is canceled when the test ends.
func stream(t *testing.T, c observerpb.ObserverClient, req *observerpb.GetFlowsRequest) grpc.ServerStreamingClient[observerpb.GetFlowsResponse] {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	s, err := c.GetFlows(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recv reads n responses and names each: the flow's uuid, "lost N SOURCE", or
// "node-status STATE [nodes]".
func recv(t *testing.T, s grpc.ServerStreamingClient[observerpb.GetFlowsResponse], n int) []string {
	t.Helper()
	var out []string
	for range n {
		resp, err := s.Recv()
		if err != nil {
			t.Fatalf("Recv after %v: %v", out, err)
		}
		out = append(out, name(resp))
	}
	return out
}

func name(resp *observerpb.GetFlowsResponse) string {
	switch {
	case resp.GetFlow() != nil:
		return resp.GetFlow().GetUuid()
	case resp.GetLostEvents() != nil:
		return fmt.Sprintf("lost %d %s", resp.GetLostEvents().GetNumEventsLost(), resp.GetLostEvents().GetSource())
	case resp.GetNodeStatus() != nil:
		return fmt.Sprintf("node-status %s %v", resp.GetNodeStatus().GetStateChange(), resp.GetNodeStatus().GetNodeNames())
	}
	return "empty"
}

func uuids(fs []*flowpb.Flow) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.GetUuid()
	}
	return out
}

func waitFor(t *testing.T, srv *Server, what string, cond func(Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestSince(t *testing.T) {
	history := Series(10, t0, time.Second, spec) // f-0 at t0 ... f-9 at t0+9s
	lost := &flowpb.LostEvent{Source: flowpb.LostEventSource_HUBBLE_RING_BUFFER, NumEventsLost: 3, Last: timestamppb.New(t0)}
	cases := map[string]struct {
		since *timestamppb.Timestamp
		want  []string
	}{
		// Inclusive, and the lost-events notice comes whatever since says, as Hubble's ring
		// reader sends it.
		"since a flow's time includes it":                         {since: timestamppb.New(t0.Add(7 * time.Second)), want: []string{"f-7", "f-8", "f-9", "lost 3 HUBBLE_RING_BUFFER", "live"}},
		"since before everything replays everything":              {since: timestamppb.New(t0.Add(-time.Hour)), want: append(uuids(history), "lost 3 HUBBLE_RING_BUFFER", "live")},
		"since in the future skips even live flows older than it": {since: timestamppb.New(t0.Add(time.Hour)), want: []string{"lost 3 HUBBLE_RING_BUFFER", "late"}},
		"no since starts at the live end":                         {want: []string{"live"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := Start(t, Scenario{History: history, Streams: [][]Step{{SendLost("node-1", lost)}}})
			// The lost notice is published by the first stream's script; the stream under
			// test is the second.
			first := stream(t, dial(t, srv), &observerpb.GetFlowsRequest{Follow: true})
			recv(t, first, 1)
			s := stream(t, dial(t, srv), &observerpb.GetFlowsRequest{Follow: true, Since: tc.since})
			waitFor(t, srv, "second stream", func(s Stats) bool { return s.Requests == 2 })
			live := spec
			live.UUID, live.Time = "live", t0.Add(10*time.Second)
			late := spec
			late.UUID, late.Time = "late", t0.Add(2*time.Hour)
			srv.Append(live.Proto(), late.Proto())
			got := recv(t, s, len(tc.want))
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("responses (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	flow := func(uuid, srcNS, srcPod, dstNS, dstPod string, v flowpb.Verdict) *flowpb.Flow {
		s := spec
		s.UUID, s.Time, s.Verdict = uuid, t0, v
		s.Source.Namespace, s.Source.Pod = srcNS, srcPod
		s.Destination.Namespace, s.Destination.Pod = dstNS, dstPod
		return s.Proto()
	}
	fs := []*flowpb.Flow{
		flow("shop/cart->shop/redis", "shop", "cart-1", "shop", "redis-0", flowpb.Verdict_FORWARDED),
		flow("web/front->shop/cart", "web", "front-1", "shop", "cart-1", flowpb.Verdict_DROPPED),
		flow("default/cart->world", "default", "cart-9", "", "", flowpb.Verdict_FORWARDED),
		flow("world->web/front", "", "", "web", "front-1", flowpb.Verdict_DROPPED),
		flow("shopping/x->web/front", "shopping", "x-1", "web", "front-1", flowpb.Verdict_AUDIT),
	}
	cases := map[string]struct {
		white, black []*flowpb.FlowFilter
		want         []string
	}{
		"no filter":                    {want: uuids(fs)},
		"namespace matches it exactly": {white: []*flowpb.FlowFilter{{SourcePod: []string{"shop/"}}}, want: []string{"shop/cart->shop/redis"}},
		"source or destination takes two filters": {
			white: []*flowpb.FlowFilter{{SourcePod: []string{"shop/"}}, {DestinationPod: []string{"shop/"}}},
			want:  []string{"shop/cart->shop/redis", "web/front->shop/cart"},
		},
		"fields of one filter all apply": {
			white: []*flowpb.FlowFilter{{DestinationPod: []string{"shop/"}, Verdict: []flowpb.Verdict{flowpb.Verdict_DROPPED}}},
			want:  []string{"web/front->shop/cart"},
		},
		"pod prefix in any namespace":               {white: []*flowpb.FlowFilter{{SourcePod: []string{"/cart-"}}}, want: []string{"shop/cart->shop/redis", "default/cart->world"}},
		"bare pod name means the default namespace": {white: []*flowpb.FlowFilter{{SourcePod: []string{"cart"}}}, want: []string{"default/cart->world"}},
		"an endpoint outside the cluster matches no pod filter": {
			white: []*flowpb.FlowFilter{{SourcePod: []string{"/"}}},
			want:  []string{"shop/cart->shop/redis", "web/front->shop/cart", "default/cart->world", "shopping/x->web/front"},
		},
		"blacklist removes from the whitelist": {
			white: []*flowpb.FlowFilter{{DestinationPod: []string{"web/"}}},
			black: []*flowpb.FlowFilter{{Verdict: []flowpb.Verdict{flowpb.Verdict_AUDIT}}},
			want:  []string{"world->web/front"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			m, err := newMatcher(tc.white, tc.black)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				if m.keep(f) {
					got = append(got, f.GetUuid())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("kept (-want +got):\n%s", diff)
			}
		})
	}

	// Over gRPC: the stream sends in ring order, so a flow wrongly let through would show
	// up before the marker that ends the expected list.
	marker := flow("marker", "web", "front-1", "shop", "cart-9", flowpb.Verdict_FORWARDED)
	srv := Start(t, Scenario{History: append(fs, marker)})
	s := stream(t, dial(t, srv), &observerpb.GetFlowsRequest{
		Follow: true, Since: timestamppb.New(t0),
		Whitelist: []*flowpb.FlowFilter{{SourcePod: []string{"shop/"}}, {DestinationPod: []string{"shop/"}}},
	})
	want := []string{"shop/cart->shop/redis", "web/front->shop/cart", "marker"}
	if diff := cmp.Diff(want, recv(t, s, len(want))); diff != "" {
		t.Errorf("streamed (-want +got):\n%s", diff)
	}
}

func TestRejectedRequests(t *testing.T) {
	cases := map[string]struct {
		req  *observerpb.GetFlowsRequest
		want string
	}{
		"unsupported filter field": {
			req:  &observerpb.GetFlowsRequest{Follow: true, Whitelist: []*flowpb.FlowFilter{{SourcePod: []string{"a/"}, SourceLabel: []string{"app=x"}, HttpMethod: []string{"GET"}}}},
			want: "whitelist[0]: hubbletest does not evaluate http_method, source_label",
		},
		"unsupported blacklist field": {
			req:  &observerpb.GetFlowsRequest{Follow: true, Blacklist: []*flowpb.FlowFilter{{}, {DestinationIp: []string{"10.0.0.1"}}}},
			want: "blacklist[1]: hubbletest does not evaluate destination_ip",
		},
		"empty pod name": {
			req:  &observerpb.GetFlowsRequest{Follow: true, Whitelist: []*flowpb.FlowFilter{{DestinationPod: []string{""}}}},
			want: "whitelist[0].destination_pod: invalid filter, name must not be empty",
		},
		"not following": {req: &observerpb.GetFlowsRequest{}, want: "follow requests only"},
		"last N flows":  {req: &observerpb.GetFlowsRequest{Follow: true, Number: 20}, want: "supports follow, since, whitelist and blacklist only"},
		"invalid since": {req: &observerpb.GetFlowsRequest{Follow: true, Since: &timestamppb.Timestamp{Nanos: -1}}, want: "out-of-range nanos"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := Start(t, Scenario{})
			_, err := stream(t, dial(t, srv), tc.req).Recv()
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Recv = %v, want InvalidArgument containing %q", err, tc.want)
			}
		})
	}
}

// TestScripts: each GetFlows call takes the next script; steps run in order, data reaches
// every following stream, CloseStream ends one with its status, Stall holds one until
// Release, and streams beyond the scripts only follow.
func TestScripts(t *testing.T) {
	a := Series(3, t0, time.Millisecond, spec)
	bSpec := spec
	bSpec.UUID = "b"
	b := Series(2, t0.Add(time.Second), time.Millisecond, bSpec)
	srv := Start(t, Scenario{Streams: [][]Step{
		{SendFlows(a...), Stall(), NodeUnavailable(t0, "node-2"), CloseStream(codes.Unavailable, "going away")},
		{SendFlows(b...)},
	}})
	c := dial(t, srv)

	first := stream(t, c, &observerpb.GetFlowsRequest{Follow: true})
	if diff := cmp.Diff(uuids(a), recv(t, first, len(a))); diff != "" {
		t.Errorf("first stream (-want +got):\n%s", diff)
	}
	waitFor(t, srv, "stall", func(s Stats) bool { return s.Stalled == 1 })

	second := stream(t, c, &observerpb.GetFlowsRequest{Follow: true})
	if diff := cmp.Diff(uuids(b), recv(t, second, len(b))); diff != "" {
		t.Errorf("second stream (-want +got):\n%s", diff)
	}
	// The stalled stream holds b until released.
	waitFor(t, srv, "second stream's sends counted", func(s Stats) bool { return s.Sent >= len(a)+len(b) })
	if st := srv.Stats(); st.Sent != len(a)+len(b) || st.Stalled != 1 {
		t.Errorf("before the release: %+v, want %d sent and 1 stream stalled", st, len(a)+len(b))
	}
	srv.Release()
	want := append(uuids(b), "node-status NODE_UNAVAILABLE [node-2]")
	if diff := cmp.Diff(want, recv(t, first, len(want))); diff != "" {
		t.Errorf("first stream after release (-want +got):\n%s", diff)
	}
	if _, err := first.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "going away") {
		t.Errorf("first stream ended with %v, want Unavailable: going away", err)
	}
	if diff := cmp.Diff([]string{"node-status NODE_UNAVAILABLE [node-2]"}, recv(t, second, 1)); diff != "" {
		t.Errorf("second stream (-want +got):\n%s", diff)
	}

	third := stream(t, c, &observerpb.GetFlowsRequest{Follow: true})
	waitFor(t, srv, "third stream", func(s Stats) bool { return s.Requests == 3 && s.ScriptsLeft == 0 })
	live := spec
	live.UUID = "live"
	srv.Append(live.Proto())
	if diff := cmp.Diff([]string{"live"}, recv(t, third, 1)); diff != "" {
		t.Errorf("third stream (-want +got):\n%s", diff)
	}
}

func TestGenerateFlows(t *testing.T) {
	const n = 1000
	srv := Start(t, Scenario{Streams: [][]Step{{GenerateFlows(n, func(i int) *flowpb.Flow { return spec.Nth(i, t0, time.Microsecond) })}}},
		RingCapacity(generateBatch))
	s := stream(t, dial(t, srv), &observerpb.GetFlowsRequest{Follow: true})
	want := uuids(Series(n, t0, time.Microsecond, spec))
	if diff := cmp.Diff(want, recv(t, s, n)); diff != "" {
		t.Errorf("generated flows (-want +got):\n%s", diff)
	}
}

// TestRingWraps: a ring of 4 keeps the newest 4; a replay from before them starts at the
// oldest kept, silently; a reader lapped by a writer is told how many it missed.
func TestRingWraps(t *testing.T) {
	fs := Series(10, t0, time.Second, spec)
	srv := Start(t, Scenario{}, RingCapacity(4))
	c := dial(t, srv)
	follower := stream(t, c, &observerpb.GetFlowsRequest{Follow: true})
	waitFor(t, srv, "follower", func(s Stats) bool { return s.Streams == 1 })
	srv.Append(fs...)

	if diff := cmp.Diff([]string{"lost 6 HUBBLE_RING_BUFFER", "f-6", "f-7", "f-8", "f-9"}, recv(t, follower, 5)); diff != "" {
		t.Errorf("lapped follower (-want +got):\n%s", diff)
	}
	replay := stream(t, c, &observerpb.GetFlowsRequest{Follow: true, Since: timestamppb.New(t0)})
	if diff := cmp.Diff([]string{"f-6", "f-7", "f-8", "f-9"}, recv(t, replay, 4)); diff != "" {
		t.Errorf("replay (-want +got):\n%s", diff)
	}
}

func TestServerStatus(t *testing.T) {
	srv := Start(t, Scenario{
		History:     Series(3, t0, time.Second, spec),
		Nodes:       []string{"node-1", "node-2", "node-3"},
		Unavailable: []string{"node-3"},
	}, RingCapacity(100))
	c := dial(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()

	got, err := c.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &observerpb.ServerStatusResponse{
		NumFlows: 3, MaxFlows: 100, SeenFlows: 3,
		NumConnectedNodes: wrapperspb.UInt32(2), NumUnavailableNodes: wrapperspb.UInt32(1),
		UnavailableNodes: []string{"node-3"}, Version: "hubbletest",
	}
	if diff := cmp.Diff(want, got, protocmp.Transform(), protocmp.IgnoreFields(&observerpb.ServerStatusResponse{}, "uptime_ns")); diff != "" {
		t.Errorf("ServerStatus (-want +got):\n%s", diff)
	}

	srv.SetUnavailable()
	got, err = c.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetNumUnavailableNodes().GetValue() != 0 || got.GetNumConnectedNodes().GetValue() != 3 {
		t.Errorf("after SetUnavailable(): %v, want 3 connected and none unavailable", got)
	}
	if st := srv.Stats(); st.StatusCalls != 2 {
		t.Errorf("StatusCalls = %d, want 2", st.StatusCalls)
	}

	if _, err := c.GetNodes(ctx, &observerpb.GetNodesRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("GetNodes = %v, want Unimplemented", err)
	}
}

// TestNodeSteps: node steps reach the stream as node_status events and change what
// ServerStatus reports.
func TestNodeSteps(t *testing.T) {
	srv := Start(t, Scenario{Nodes: []string{"node-1", "node-2", "node-3"}, Streams: [][]Step{{
		NodeUnavailable(t0, "node-2"),
		SendNodeStatus(t0, &relaypb.NodeStatusEvent{StateChange: relaypb.NodeState_NODE_GONE, NodeNames: []string{"node-3"}}),
		Stall(),
		NodeConnected(t0.Add(time.Second), "node-2"),
	}}})
	c := dial(t, srv)
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	unavailable := func() []string {
		t.Helper()
		st, err := c.ServerStatus(ctx, &observerpb.ServerStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return st.GetUnavailableNodes()
	}

	s := stream(t, c, &observerpb.GetFlowsRequest{Follow: true})
	want := []string{"node-status NODE_UNAVAILABLE [node-2]", "node-status NODE_GONE [node-3]"}
	if diff := cmp.Diff(want, recv(t, s, 2)); diff != "" {
		t.Errorf("stream (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"node-2"}, unavailable()); diff != "" {
		t.Errorf("unavailable while node-2 is down (-want +got):\n%s", diff)
	}
	waitFor(t, srv, "stall", func(s Stats) bool { return s.Stalled == 1 })
	srv.Release()
	if diff := cmp.Diff([]string{"node-status NODE_CONNECTED [node-2]"}, recv(t, s, 1)); diff != "" {
		t.Errorf("stream after release (-want +got):\n%s", diff)
	}
	if got := unavailable(); len(got) != 0 {
		t.Errorf("unavailable after NodeConnected = %v, want none", got)
	}
}

// TestStop ends the streams of a stopped server with Unavailable, and a restart on the
// same address serves again.
func TestStop(t *testing.T) {
	srv := Start(t, Scenario{})
	c := dial(t, srv)
	s := stream(t, c, &observerpb.GetFlowsRequest{Follow: true})
	waitFor(t, srv, "stream", func(s Stats) bool { return s.Streams == 1 })
	srv.Stop()
	if _, err := s.Recv(); status.Code(err) != codes.Unavailable && !errors.Is(err, io.EOF) {
		t.Errorf("Recv after Stop = %v, want Unavailable", err)
	}
	srv.Stop() // idempotent

	again := Start(t, Scenario{Streams: [][]Step{{SendFlows(spec.Nth(0, t0, 0))}}}, ListenAddress(srv.Addr()))
	s = stream(t, dial(t, again), &observerpb.GetFlowsRequest{Follow: true})
	if diff := cmp.Diff([]string{"f-0"}, recv(t, s, 1)); diff != "" {
		t.Errorf("after restart (-want +got):\n%s", diff)
	}
}

// TestSendEncoded: marshaled responses reach the stream as they are, in order, after
// what the ring held for it, without passing through the ring or its filters.
func TestSendEncoded(t *testing.T) {
	fs := Series(3, t0, time.Second, spec)
	var msgs [][]byte
	for _, f := range fs[1:] {
		b, err := proto.Marshal(flowEvent(f))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	srv := Start(t, Scenario{Streams: [][]Step{{SendFlows(fs[0]), SendEncoded(msgs), SendFlows(fs[0])}}})
	// A filter that keeps nothing: the encoded responses bypass it.
	s := stream(t, dial(t, srv), &observerpb.GetFlowsRequest{Follow: true, Whitelist: []*flowpb.FlowFilter{{SourcePod: []string{"elsewhere/"}}}})
	if diff := cmp.Diff([]string{"f-1", "f-2"}, recv(t, s, 2)); diff != "" {
		t.Errorf("responses (-want +got):\n%s", diff)
	}
	waitFor(t, srv, "both counted", func(st Stats) bool { return st.Sent == 2 })
	if got := len(srv.Requests()); got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestNewServerErrors(t *testing.T) {
	cases := map[string]struct {
		opts []Option
		want string
	}{
		"ring capacity":    {opts: []Option{RingCapacity(0)}, want: "hubbletest: RingCapacity 0, want at least 1"},
		"mTLS without TLS": {opts: []Option{WithClientCAs(x509.NewCertPool())}, want: "hubbletest: WithClientCAs needs WithTLS"},
		"bad address":      {opts: []Option{ListenAddress("256.0.0.1:0")}, want: "hubbletest: listen on 256.0.0.1:0"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv, err := NewServer(Scenario{}, tc.opts...)
			if err == nil {
				srv.Stop()
				t.Fatalf("NewServer succeeded, want %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

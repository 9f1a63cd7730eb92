package hubbletest

import (
	"fmt"
	"net/netip"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Scenario is what a Server plays: the history its ring buffer holds when it starts, and
// a script per GetFlows stream.
//
// The ring is shared by every stream, as a Hubble server's is: data a script publishes is
// appended to it and reaches every following stream (filtered per stream), and a later
// stream asking for since replays it. Streams[i] is the script of the i-th GetFlows call;
// calls beyond len(Streams) only follow the ring. A stream whose script ends keeps
// following until the client goes away.
type Scenario struct {
	// History is in the ring before any client connects. A stream without since starts
	// after it, as `hubble observe --follow` does.
	History []*flowpb.Flow
	// Streams holds one script per GetFlows call, in call order.
	Streams [][]Step
	// Nodes is the cluster the server pretends to front; ServerStatus reports those not
	// unavailable as connected. Empty means one node.
	Nodes []string
	// Unavailable are the nodes ServerStatus reports unavailable from the start.
	Unavailable []string
}

type stepKind int

const (
	stepPublish stepKind = iota + 1
	stepGenerate
	stepClose
	stepStall
	stepUnavailable
	stepEncoded
)

// Step is one instruction of a stream's script. Build steps with SendFlows, SendLost,
// SendNodeStatus, GenerateFlows, NodeUnavailable, NodeConnected, CloseStream and Stall.
type Step struct {
	kind   stepKind
	events []*observerpb.GetFlowsResponse
	n      int
	gen    func(i int) *flowpb.Flow
	offset int // of the next generated flow, for a GenerateFlows step run in parts
	code   codes.Code
	msg    string
	nodes  []string
	// encoded are marshaled GetFlowsResponses, for SendEncoded, each as the mem.Buffer
	// the codec hands to gRPC: made here, before any measurement starts, so that sending
	// one costs the server no allocation of its own.
	encoded []mem.Buffer
}

// String names the step, for test failure messages.
func (s Step) String() string {
	switch s.kind {
	case stepPublish:
		return fmt.Sprintf("publish %d events", len(s.events))
	case stepGenerate:
		return fmt.Sprintf("generate %d flows", s.n)
	case stepClose:
		return fmt.Sprintf("close stream with %v: %s", s.code, s.msg)
	case stepStall:
		return "stall until released"
	case stepUnavailable:
		return fmt.Sprintf("unavailable nodes %v", s.nodes)
	case stepEncoded:
		return fmt.Sprintf("send %d encoded responses", len(s.encoded))
	}
	return "invalid step"
}

// SendFlows publishes flows to the ring; each stream receives those its filters and since
// let through. A flow's envelope takes its time and node_name.
func SendFlows(fs ...*flowpb.Flow) Step {
	evs := make([]*observerpb.GetFlowsResponse, len(fs))
	for i, f := range fs {
		evs[i] = flowEvent(f)
	}
	return Step{kind: stepPublish, events: evs}
}

// SendLost publishes a lost-events notice from node. Like Hubble, the server sends it to
// every stream whatever its filters and since say, replays included.
func SendLost(node string, lost *flowpb.LostEvent) Step {
	return Step{kind: stepPublish, events: []*observerpb.GetFlowsResponse{lostEvent(node, lost)}}
}

// SendNodeStatus publishes a relay node status event stamped t.
func SendNodeStatus(t time.Time, st *relaypb.NodeStatusEvent) Step {
	return Step{kind: stepPublish, events: []*observerpb.GetFlowsResponse{nodeStatusEvent(t, st)}}
}

// GenerateFlows publishes n flows made by gen(0) ... gen(n-1), in batches the stream
// delivers before the next is made, so a benchmark can stream more flows than fit in
// memory or in the ring.
func GenerateFlows(n int, gen func(i int) *flowpb.Flow) Step {
	return Step{kind: stepGenerate, n: n, gen: gen}
}

// SendEncoded sends msgs, each a marshaled GetFlowsResponse, to this stream as they are:
// not through the ring, so they are not filtered, not replayed to a later stream and not
// seen by other streams. Throughput benchmarks use it so that the server's own
// marshaling is not counted as the client's cost. The server does not check the bytes.
func SendEncoded(msgs [][]byte) Step {
	bufs := make([]mem.Buffer, len(msgs))
	for i, b := range msgs {
		bufs[i] = mem.SliceBuffer(b)
	}
	return Step{kind: stepEncoded, encoded: bufs}
}

// NodeUnavailable marks nodes unavailable in ServerStatus and sends the NODE_UNAVAILABLE
// node status event a relay sends when it loses a node, stamped t.
func NodeUnavailable(t time.Time, nodes ...string) Step {
	return Step{
		kind:  stepUnavailable,
		nodes: nodes,
		events: []*observerpb.GetFlowsResponse{nodeStatusEvent(t, &relaypb.NodeStatusEvent{
			StateChange: relaypb.NodeState_NODE_UNAVAILABLE,
			NodeNames:   nodes,
			Message:     "hubbletest: node unavailable",
		})},
	}
}

// NodeConnected makes every node available again and sends NODE_CONNECTED for nodes.
func NodeConnected(t time.Time, nodes ...string) Step {
	return Step{
		kind:  stepUnavailable,
		nodes: []string{},
		events: []*observerpb.GetFlowsResponse{nodeStatusEvent(t, &relaypb.NodeStatusEvent{
			StateChange: relaypb.NodeState_NODE_CONNECTED,
			NodeNames:   nodes,
		})},
	}
}

// CloseStream ends the stream with a gRPC status, after everything published before it
// has been sent; codes.OK ends it cleanly (the client reads io.EOF). As the first step of
// a script it makes the stream fail before sending anything.
func CloseStream(code codes.Code, msg string) Step {
	return Step{kind: stepClose, code: code, msg: msg}
}

// Stall stops the stream, without closing it, until Server.Release; flows published
// meanwhile are sent after the release.
func Stall() Step { return Step{kind: stepStall} }

// Steady is a server that streams fs to its first client and then follows.
func Steady(fs []*flowpb.Flow) Scenario {
	return Scenario{Streams: [][]Step{{SendFlows(fs...)}}}
}

// Disconnect is a relay that streams before, breaks the stream with Unavailable, and
// streams after on the next one. A client reconnecting with since is replayed what it
// asks for from before, then gets after.
func Disconnect(before, after []*flowpb.Flow) Scenario {
	return Scenario{Streams: [][]Step{
		{SendFlows(before...), CloseStream(codes.Unavailable, "hubbletest: relay restarting")},
		{SendFlows(after...)},
	}}
}

// LostEvents is a server that streams before, reports lost events of node, then streams
// after.
func LostEvents(before []*flowpb.Flow, node string, lost *flowpb.LostEvent, after []*flowpb.Flow) Scenario {
	return Scenario{Streams: [][]Step{{SendFlows(before...), SendLost(node, lost), SendFlows(after...)}}}
}

// UnavailableNode is a relay fronting nodes that loses node at t, after streaming before,
// and streams after from the others.
func UnavailableNode(nodes []string, node string, t time.Time, before, after []*flowpb.Flow) Scenario {
	return Scenario{
		Nodes:   nodes,
		Streams: [][]Step{{SendFlows(before...), NodeUnavailable(t, node), SendFlows(after...)}},
	}
}

// Stalling is a server whose first stream sends before and then stalls until released or
// abandoned; the next stream sends after.
func Stalling(before, after []*flowpb.Flow) Scenario {
	return Scenario{Streams: [][]Step{
		{SendFlows(before...), Stall()},
		{SendFlows(after...)},
	}}
}

// Endpoint is one side of a FlowSpec.
type Endpoint struct {
	Namespace string
	Pod       string
	IP        string
	// Labels in Hubble's form, e.g. "k8s:app=cart".
	Labels   []string
	Identity uint32
}

// FlowSpec describes a flow for tests; Proto builds it.
type FlowSpec struct {
	Time time.Time
	// UUID, when empty, leaves the flow without one, as older Hubble versions send.
	UUID                     string
	Node                     string
	Source, Destination      Endpoint
	Protocol                 string // "TCP" (the default) or "UDP"
	SourcePort, DestPort     uint32
	Verdict                  flowpb.Verdict          // FORWARDED when unset
	Direction                flowpb.TrafficDirection // INGRESS when unset
	DropReason               flowpb.DropReason
	IsReply                  bool
	TCPFlagsSYN, TCPFlagsACK bool
}

// Proto returns the Hubble flow s describes. It panics on an unparsable IP: specs are
// test data.
func (s FlowSpec) Proto() *flowpb.Flow {
	src, dst := netip.MustParseAddr(s.Source.IP), netip.MustParseAddr(s.Destination.IP)
	ipVersion := flowpb.IPVersion_IPv4
	if src.Is6() {
		ipVersion = flowpb.IPVersion_IPv6
	}
	verdict := s.Verdict
	if verdict == flowpb.Verdict_VERDICT_UNKNOWN {
		verdict = flowpb.Verdict_FORWARDED
	}
	direction := s.Direction
	if direction == flowpb.TrafficDirection_TRAFFIC_DIRECTION_UNKNOWN {
		direction = flowpb.TrafficDirection_INGRESS
	}
	f := &flowpb.Flow{
		Time:             timestamppb.New(s.Time),
		Uuid:             s.UUID,
		NodeName:         s.Node,
		Verdict:          verdict,
		DropReasonDesc:   s.DropReason,
		Type:             flowpb.FlowType_L3_L4,
		TrafficDirection: direction,
		IsReply:          wrapperspb.Bool(s.IsReply),
		IP:               &flowpb.IP{Source: src.String(), Destination: dst.String(), IpVersion: ipVersion},
		Source:           endpointProto(s.Source),
		Destination:      endpointProto(s.Destination),
	}
	switch s.Protocol {
	case "", "TCP":
		f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_TCP{TCP: &flowpb.TCP{
			SourcePort: s.SourcePort, DestinationPort: s.DestPort,
			Flags: &flowpb.TCPFlags{SYN: s.TCPFlagsSYN, ACK: s.TCPFlagsACK},
		}}}
	case "UDP":
		f.L4 = &flowpb.Layer4{Protocol: &flowpb.Layer4_UDP{UDP: &flowpb.UDP{SourcePort: s.SourcePort, DestinationPort: s.DestPort}}}
	default:
		panic(fmt.Sprintf("hubbletest: FlowSpec.Protocol %q, want TCP or UDP", s.Protocol))
	}
	return f
}

func endpointProto(e Endpoint) *flowpb.Endpoint {
	return &flowpb.Endpoint{
		Namespace: e.Namespace,
		PodName:   e.Pod,
		Labels:    e.Labels,
		Identity:  e.Identity,
	}
}

// Series returns n flows like spec, the i-th stamped start+i*every with UUID
// "<spec.UUID>-<i>" (none when spec.UUID is empty) and source port spec.SourcePort+i
// (from 32768 when zero, wrapping within the Linux ephemeral range 32768-60999), so that
// each is a distinct connection.
func Series(n int, start time.Time, every time.Duration, spec FlowSpec) []*flowpb.Flow {
	out := make([]*flowpb.Flow, n)
	for i := range out {
		out[i] = spec.Nth(i, start, every)
	}
	return out
}

// Nth is the i-th flow of Series(_, start, every, s), for generators.
func (s FlowSpec) Nth(i int, start time.Time, every time.Duration) *flowpb.Flow {
	const lo, hi = 32768, 61000
	f := s
	f.Time = start.Add(time.Duration(i) * every)
	if s.UUID != "" {
		f.UUID = fmt.Sprintf("%s-%d", s.UUID, i)
	}
	port := int(s.SourcePort)
	if port == 0 {
		port = lo
	}
	if port += i; port >= hi {
		port = lo + (port-lo)%(hi-lo)
	}
	f.SourcePort = uint32(port)
	return f.Proto()
}

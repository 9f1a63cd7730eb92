// Package hubbletest is an in-process Hubble server for tests: it implements the real
// cilium observer.ObserverServer over gRPC on a loopback TCP port, and plays a Scenario
// so that a client can be run against steady streams, broken streams, lost events,
// unavailable nodes, stalls, and TLS or mutual TLS with a CA made at run time.
//
// What it implements, with Hubble's semantics:
//
//   - GetFlows with follow, since (inclusive; flows older are skipped, lost-events notices
//     are sent regardless, as Hubble's ring reader does), and whitelist/blacklist filters
//     on source_pod, destination_pod and verdict. Any other request field or filter field
//     is rejected with InvalidArgument: a test cannot pass on a filter it ignored.
//   - A ring buffer of Option RingCapacity entries: a since older than the oldest entry
//     replays from the oldest, silently, as Hubble does; a stream lapped by writers gets
//     a HUBBLE_RING_BUFFER lost-events notice for what it missed.
//   - ServerStatus with relay-style num_connected_nodes, num_unavailable_nodes and
//     unavailable_nodes.
//
// Every other method answers Unimplemented.
//
// Start is for tests; NewServer, which returns an error instead of failing a test, is for
// programs such as `shadowgate bench run`, which with SendEncoded streams messages
// marshaled beforehand at the rate the client takes them.
package hubbletest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	observerpb "github.com/cilium/cilium/api/v1/observer"
	relaypb "github.com/cilium/cilium/api/v1/relay"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// DefaultRingCapacity is the ring size when RingCapacity is not given: large enough that
// test scenarios never wrap unless they ask to.
const DefaultRingCapacity = 1 << 16

// errEndStream ends a stream without an error: CloseStream with codes.OK.
var errEndStream = errors.New("hubbletest: end of stream")

// generateBatch bounds how many generated flows are made before the stream sends them.
const generateBatch = 256

// Option configures a Server.
type Option func(*options)

type options struct {
	addr      string
	cert      *tls.Certificate
	clientCAs *x509.CertPool
	capacity  int
}

// WithTLS serves TLS with cert (see CA.IssueServer).
func WithTLS(cert tls.Certificate) Option {
	return func(o *options) { o.cert = &cert }
}

// WithClientCAs requires clients to present a certificate signed by one of pool: mutual
// TLS, as Hubble Relay can require. It needs WithTLS.
func WithClientCAs(pool *x509.CertPool) Option {
	return func(o *options) { o.clientCAs = pool }
}

// RingCapacity sets how many events the ring holds before the oldest are overwritten.
func RingCapacity(n int) Option {
	return func(o *options) { o.capacity = n }
}

// ListenAddress makes the server listen on addr instead of 127.0.0.1:0; a test restarts a
// "relay" on the address of the one it stopped this way.
func ListenAddress(addr string) Option {
	return func(o *options) { o.addr = addr }
}

// Stats is what a Server has done so far.
type Stats struct {
	// Requests counts GetFlows calls, including rejected ones.
	Requests int
	// StatusCalls counts ServerStatus calls.
	StatusCalls int
	// Sent counts GetFlows responses sent, over every stream.
	Sent int
	// Streams is the number of GetFlows streams in progress.
	Streams int
	// Stalled is the number of streams stopped at a Stall step.
	Stalled int
	// ScriptsLeft is the number of stream scripts no GetFlows call has taken yet.
	ScriptsLeft int
}

// Server is a running test Hubble server. Its methods are safe for concurrent use.
type Server struct {
	lis     net.Listener
	grpc    *grpc.Server
	started time.Time
	done    chan struct{}

	mu       sync.Mutex
	ring     []*observerpb.GetFlowsResponse
	base     int // absolute index of ring[0]; a stream's cursor is absolute
	capacity int
	seen     uint64 // flows ever published
	// changed is closed, and replaced, on every change a waiter may care about.
	changed     chan struct{}
	release     chan struct{} // closed, and replaced, by Release
	scripts     [][]Step
	requests    []*observerpb.GetFlowsRequest
	stats       Stats
	nodes       []string
	unavailable []string
}

// Start serves sc on 127.0.0.1 (see ListenAddress) until the test ends or Stop.
func Start(tb testing.TB, sc Scenario, opts ...Option) *Server {
	tb.Helper()
	s, err := NewServer(sc, opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// NewServer serves sc on 127.0.0.1 (see ListenAddress) until Stop, which the caller
// must call. It is Start for programs that are not tests, such as benchmarks run from
// the command line.
func NewServer(sc Scenario, opts ...Option) (*Server, error) {
	o := options{addr: "127.0.0.1:0", capacity: DefaultRingCapacity}
	for _, opt := range opts {
		opt(&o)
	}
	if o.capacity < 1 {
		return nil, fmt.Errorf("hubbletest: RingCapacity %d, want at least 1", o.capacity)
	}
	if o.clientCAs != nil && o.cert == nil {
		return nil, errors.New("hubbletest: WithClientCAs needs WithTLS")
	}
	lis, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("hubbletest: listen on %s: %w", o.addr, err)
	}

	// Clients may ping as often as gRPC lets them: keepalive tests must not be cut short
	// by the default enforcement, which Hubble servers keep and Config documents.
	serverOpts := []grpc.ServerOption{
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}),
		grpc.ForceServerCodecV2(serverCodec{}),
		// Fewer, larger writes when streaming at rate, as a relay's are.
		grpc.WriteBufferSize(256 << 10),
	}
	if o.cert != nil {
		conf := &tls.Config{Certificates: []tls.Certificate{*o.cert}, MinVersion: tls.VersionTLS12}
		if o.clientCAs != nil {
			conf.ClientCAs = o.clientCAs
			conf.ClientAuth = tls.RequireAndVerifyClientCert
		}
		serverOpts = append(serverOpts, grpc.Creds(credentials.NewTLS(conf)))
	}

	s := &Server{
		lis:         lis,
		grpc:        grpc.NewServer(serverOpts...),
		started:     time.Now(),
		done:        make(chan struct{}),
		capacity:    o.capacity,
		changed:     make(chan struct{}),
		release:     make(chan struct{}),
		scripts:     slices.Clone(sc.Streams),
		nodes:       slices.Clone(sc.Nodes),
		unavailable: slices.Clone(sc.Unavailable),
	}
	if len(s.nodes) == 0 {
		s.nodes = []string{"node-1"}
	}
	s.stats.ScriptsLeft = len(s.scripts)
	evs := make([]*observerpb.GetFlowsResponse, len(sc.History))
	for i, f := range sc.History {
		evs[i] = flowEvent(f)
	}
	s.publish(evs)

	observerpb.RegisterObserverServer(s.grpc, observer{s: s})
	go func() {
		defer close(s.done)
		// Serve returns nil after Stop; anything else is a broken listener, which the
		// client under test will report.
		_ = s.grpc.Serve(lis)
	}()
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Stop closes the listener and every connection, ending all streams, and waits for the
// server to finish. It may be called more than once.
func (s *Server) Stop() {
	s.grpc.Stop()
	<-s.done
}

// Append publishes flows to the ring, as a script's SendFlows does, for tests that keep
// feeding a running server.
func (s *Server) Append(fs ...*flowpb.Flow) {
	evs := make([]*observerpb.GetFlowsResponse, len(fs))
	for i, f := range fs {
		evs[i] = flowEvent(f)
	}
	s.publish(evs)
}

// Release resumes every stream stopped at a Stall step. Use WaitFor to know one is.
func (s *Server) Release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.release)
	s.release = make(chan struct{})
}

// SetUnavailable replaces the nodes ServerStatus reports unavailable.
func (s *Server) SetUnavailable(nodes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unavailable = slices.Clone(nodes)
	s.notifyLocked()
}

// Requests returns copies of the GetFlows requests received, in order.
func (s *Server) Requests() []*observerpb.GetFlowsRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*observerpb.GetFlowsRequest, len(s.requests))
	for i, r := range s.requests {
		out[i] = proto.CloneOf(r)
	}
	return out
}

// Stats returns the server's counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// WaitFor blocks until cond holds for the server's Stats or ctx ends; cond is evaluated
// on every change, under the server's lock, so it must not call the Server.
func (s *Server) WaitFor(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		ok, changed, st := cond(s.stats), s.changed, s.stats
		s.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return errors.Join(ctx.Err(), errors.New("hubbletest: condition not met; last stats: "+formatStats(st)))
		}
	}
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *Server) update(f func(*Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
	s.notifyLocked()
}

// publish appends evs to the ring, overwriting the oldest beyond capacity.
func (s *Server) publish(evs []*observerpb.GetFlowsResponse) {
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range evs {
		if ev.GetFlow() != nil {
			s.seen++
		}
	}
	s.ring = append(s.ring, evs...)
	if over := len(s.ring) - s.capacity; over > 0 {
		clear(s.ring[:over])
		s.ring = s.ring[over:]
		s.base += over
	}
	s.notifyLocked()
}

// read returns the events from cursor on, how many before them were overwritten, the
// next cursor, and the channel closed on the next change.
func (s *Server) read(cursor int) (evs []*observerpb.GetFlowsResponse, lost, next int, changed <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cursor < s.base {
		lost, cursor = s.base-cursor, s.base
	}
	// The ring is append-only and entries are never modified: the slice stays valid
	// after the lock is released.
	evs = s.ring[cursor-s.base:]
	return evs, lost, s.base + len(s.ring), s.changed
}

// observer is the gRPC face of a Server; the methods it does not implement answer
// Unimplemented.
type observer struct {
	observerpb.UnimplementedObserverServer
	s *Server
}

func (o observer) GetFlows(req *observerpb.GetFlowsRequest, stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	return o.s.getFlows(req, stream)
}

func (o observer) ServerStatus(ctx context.Context, req *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	return o.s.serverStatus(ctx, req)
}

func (s *Server) getFlows(req *observerpb.GetFlowsRequest, stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse]) error {
	s.mu.Lock()
	s.requests = append(s.requests, proto.CloneOf(req))
	s.stats.Requests++
	var script []Step
	if len(s.scripts) > 0 {
		script, s.scripts = s.scripts[0], s.scripts[1:]
		s.stats.ScriptsLeft = len(s.scripts)
	}
	// Without since a stream starts at the live end; with since, at the oldest entry,
	// skipping what is older than since.
	cursor := s.base + len(s.ring)
	if req.GetSince() != nil {
		cursor = s.base
	}
	s.stats.Streams++
	s.notifyLocked()
	s.mu.Unlock()
	defer s.update(func(st *Stats) { st.Streams-- })

	m, err := checkRequest(req)
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	var since time.Time
	if req.GetSince() != nil {
		since = req.GetSince().AsTime()
	}

	ctx := stream.Context()
	for {
		evs, lost, next, changed := s.read(cursor)
		if lost > 0 {
			if err := s.send(stream, ringLost(lost)); err != nil {
				return err
			}
		}
		for _, ev := range evs {
			if f := ev.GetFlow(); f != nil && (f.GetTime().AsTime().Before(since) || !m.keep(f)) {
				continue
			}
			if err := s.send(stream, ev); err != nil {
				return err
			}
		}
		cursor = next

		if len(script) > 0 {
			step := script[0]
			script = script[1:]
			if step.kind == stepEncoded {
				if err := s.sendEncoded(stream, step.encoded); err != nil {
					return err
				}
				continue
			}
			rest, err := s.do(ctx, step)
			if errors.Is(err, errEndStream) {
				return nil
			}
			if err != nil {
				return err
			}
			if rest != nil {
				script = append([]Step{*rest}, script...)
			}
			continue
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
}

// do runs one step. rest is what remains of a step run in parts.
func (s *Server) do(ctx context.Context, step Step) (rest *Step, err error) {
	switch step.kind {
	case stepPublish:
		s.publish(step.events)
	case stepUnavailable:
		s.SetUnavailable(step.nodes...)
		s.publish(step.events)
	case stepGenerate:
		n := min(step.n, generateBatch)
		evs := make([]*observerpb.GetFlowsResponse, n)
		for i := range evs {
			evs[i] = flowEvent(step.gen(step.offset + i))
		}
		s.publish(evs)
		if step.n > n {
			rest = &Step{kind: stepGenerate, n: step.n - n, gen: step.gen, offset: step.offset + n}
		}
	case stepClose:
		if step.code == codes.OK {
			return nil, errEndStream
		}
		return nil, status.Error(step.code, step.msg)
	case stepStall:
		s.mu.Lock()
		release := s.release
		s.stats.Stalled++
		s.notifyLocked()
		s.mu.Unlock()
		defer s.update(func(st *Stats) { st.Stalled-- })
		select {
		case <-release:
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		}
	default:
		return nil, status.Errorf(codes.Internal, "hubbletest: invalid step %v", step)
	}
	return rest, nil
}

func (s *Server) send(stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse], ev *observerpb.GetFlowsResponse) error {
	if err := stream.Send(ev); err != nil {
		return err
	}
	s.update(func(st *Stats) { st.Sent++ })
	return nil
}

// sendEncoded sends msgs as they are, counting them in Stats.Sent every so often rather
// than one by one: a stats update wakes every waiter.
func (s *Server) sendEncoded(stream grpc.ServerStreamingServer[observerpb.GetFlowsResponse], msgs []mem.Buffer) error {
	const statsEvery = 1024
	// Reusing e is safe: SendMsg marshals it before returning, and the buffers, which the
	// transport may hold longer, are never modified (gRPC only reads and reslices a
	// BufferSlice, and freeing a SliceBuffer does nothing).
	e := &encodedMessage{}
	sent := 0
	defer func() { s.update(func(st *Stats) { st.Sent += sent }) }()
	for i := range msgs {
		e.data = msgs[i : i+1 : i+1]
		if err := stream.SendMsg(e); err != nil {
			return err
		}
		if sent++; (i+1)%statsEvery == 0 {
			s.update(func(st *Stats) { st.Sent += sent })
			sent = 0
		}
	}
	return nil
}

// checkRequest rejects what the server does not implement, and compiles the filters.
func checkRequest(req *observerpb.GetFlowsRequest) (matcher, error) {
	switch {
	case !req.GetFollow():
		return matcher{}, errors.New("hubbletest serves follow requests only")
	case req.GetNumber() != 0, req.GetFirst(), req.GetUntil() != nil, req.GetFieldMask() != nil,
		req.GetExperimental() != nil, req.GetExtensions() != nil:
		return matcher{}, errors.New("hubbletest supports follow, since, whitelist and blacklist only")
	}
	if since := req.GetSince(); since != nil {
		if err := since.CheckValid(); err != nil {
			return matcher{}, err
		}
	}
	return newMatcher(req.GetWhitelist(), req.GetBlacklist())
}

// serverStatus answers as a relay does.
func (s *Server) serverStatus(context.Context, *observerpb.ServerStatusRequest) (*observerpb.ServerStatusResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.StatusCalls++
	s.notifyLocked()
	numFlows := 0
	for _, ev := range s.ring {
		if ev.GetFlow() != nil {
			numFlows++
		}
	}
	connected := 0
	for _, n := range s.nodes {
		if !slices.Contains(s.unavailable, n) {
			connected++
		}
	}
	return &observerpb.ServerStatusResponse{
		NumFlows:            uint64(numFlows),
		MaxFlows:            uint64(s.capacity),
		SeenFlows:           s.seen,
		UptimeNs:            uint64(time.Since(s.started)),
		NumConnectedNodes:   wrapperspb.UInt32(uint32(connected)),
		NumUnavailableNodes: wrapperspb.UInt32(uint32(len(s.unavailable))),
		UnavailableNodes:    slices.Clone(s.unavailable),
		Version:             "hubbletest",
	}, nil
}

func flowEvent(f *flowpb.Flow) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{
		Time:          f.GetTime(),
		NodeName:      f.GetNodeName(),
		ResponseTypes: &observerpb.GetFlowsResponse_Flow{Flow: f},
	}
}

func lostEvent(node string, l *flowpb.LostEvent) *observerpb.GetFlowsResponse {
	t := l.GetLast()
	if t == nil {
		t = l.GetFirst()
	}
	return &observerpb.GetFlowsResponse{
		Time:          t,
		NodeName:      node,
		ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: l},
	}
}

func nodeStatusEvent(t time.Time, st *relaypb.NodeStatusEvent) *observerpb.GetFlowsResponse {
	return &observerpb.GetFlowsResponse{
		Time:          timestamppb.New(t),
		ResponseTypes: &observerpb.GetFlowsResponse_NodeStatus{NodeStatus: st},
	}
}

// ringLost is the notice Hubble sends a reader the ring's writers lapped.
func ringLost(n int) *observerpb.GetFlowsResponse {
	now := timestamppb.Now()
	return &observerpb.GetFlowsResponse{
		Time: now,
		ResponseTypes: &observerpb.GetFlowsResponse_LostEvents{LostEvents: &flowpb.LostEvent{
			Source:        flowpb.LostEventSource_HUBBLE_RING_BUFFER,
			NumEventsLost: uint64(n),
			First:         now,
			Last:          now,
		}},
	}
}

func formatStats(st Stats) string { return fmt.Sprintf("%+v", st) }

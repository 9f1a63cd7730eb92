package hubble

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	observerpb "github.com/cilium/cilium/api/v1/observer"
	"google.golang.org/grpc"
	grpcbackoff "google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/utils/clock"

	"github.com/shadowgate/shadowgate/flows"
)

const (
	// statusTimeout bounds one ServerStatus call; a relay that takes longer is treated as
	// having answered nothing this round.
	statusTimeout = 10 * time.Second
	// maxClockSkew is how far ahead of our clock a flow's timestamp may be and still move
	// the replay point. A node with a wild clock would otherwise push since into the
	// future, and a Hubble server drops every flow older than since, live ones included.
	maxClockSkew = time.Minute
	// minConnectTimeout is the time gRPC gives one TCP+TLS connection attempt.
	minConnectTimeout = 20 * time.Second
	// readBufferSize is the connection's read buffer; gRPC's default is 32 KiB.
	readBufferSize = 256 << 10
)

// Stats counts what a Source has done. The counters only grow.
type Stats struct {
	// Connects is the number of GetFlows streams established.
	Connects uint64
	// Responses is the number of GetFlows responses received, duplicates included.
	Responses uint64
	// Duplicates is the number of replayed flows and lost-events notices dropped because
	// they had already been delivered.
	Duplicates uint64
	// StatusErrors is the number of ServerStatus polls that failed. They are not health
	// events: the stream itself reports whether the server is reachable.
	StatusErrors uint64
}

// Source follows a Hubble server. It is a flows.Source: Next never returns io.EOF, and
// returns ctx.Err() when ctx ends. Like any Source, Next is not safe for concurrent use;
// Close may be called from any goroutine.
type Source struct {
	cfg    Config
	clock  clock.Clock
	conn   *grpc.ClientConn
	client observerpb.ObserverClient
	out    *outbox
	closed chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error

	connects, responses, duplicates, statusErrors atomic.Uint64

	// certRequested is set by a TLS handshake in which the server asked for a client
	// certificate that the configuration does not have.
	certRequested *atomic.Bool

	// Owned by the run goroutine.
	request   *observerpb.GetFlowsRequest // template; since is set per attempt
	backoff   backoff
	dedup     *dedup
	connected bool
	// resume: every flow stamped before it has been delivered, or predates our coverage.
	// It is the newest flow's time, in the server's clock that since is compared with;
	// until a flow arrives, the time the first stream was established. Zero before that.
	resume         time.Time
	resumeFromFlow bool
	// outage is when the current outage began, zero when there is none: a replay's
	// CaughtUp closes the gap from here.
	outage       time.Time
	lastReported string // the last Disconnected message, to report a steady outage once
	waited       bool   // emit had to wait for the consumer
	dec          *wireDecoder
	pending      []flows.Event // emitted, not yet handed to the consumer (see flush)

	// Owned by the consumer (Next): the batch taken from out, and how much of it was read.
	batch []flows.Event
	pos   int
}

var _ flows.Source = (*Source)(nil)

// New validates cfg, reads its TLS files, and starts following the server. Connection
// failures are not errors of New: they are reported as Disconnected events and retried
// until Close. clk drives backoff, stall and catch-up timing and stamps health events;
// nil means the real clock.
func New(cfg Config, clk clock.Clock) (*Source, error) {
	return newSource(cfg, clk, rand.Float64)
}

func newSource(cfg Config, clk clock.Clock, rnd func() float64) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("hubble config: %w", err)
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	certRequested := new(atomic.Bool)
	tlsConf, err := cfg.tlsConfig(func() { certRequested.Store(true) })
	if err != nil {
		return nil, fmt.Errorf("hubble config: %w", err)
	}
	creds := insecure.NewCredentials()
	if tlsConf != nil {
		creds = credentials.NewTLS(tlsConf)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithUserAgent("shadowgate"),
		// A relay streams a flow of about 1 KB per message, hundreds of thousands a
		// second: a larger read buffer takes fewer system calls for them.
		grpc.WithReadBufferSize(readBufferSize),
		// gRPC's own reconnect schedule follows ours, so that a stream attempt after our
		// backoff is not answered with a transport failure cached for up to two minutes.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: grpcbackoff.Config{
				BaseDelay:  cfg.BackoffInitial,
				Multiplier: 2,
				Jitter:     cfg.BackoffJitter,
				MaxDelay:   cfg.BackoffMax,
			},
			MinConnectTimeout: minConnectTimeout,
		}),
	}
	if cfg.KeepaliveTime > 0 {
		opts = append(opts, grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:    cfg.KeepaliveTime,
			Timeout: cfg.KeepaliveTimeout,
		}))
	}
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("hubble %s: %w", cfg.Address, err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{
		cfg:     cfg,
		clock:   clk,
		conn:    conn,
		client:  observerpb.NewObserverClient(conn),
		out:     newOutbox(cfg.BufferSize),
		closed:  make(chan struct{}),
		cancel:  cancel,
		request: &observerpb.GetFlowsRequest{Follow: true, Whitelist: cfg.whitelist()},
		backoff: backoff{
			initial: cfg.BackoffInitial,
			max:     cfg.BackoffMax,
			jitter:  cfg.BackoffJitter,
			rand:    rnd,
		},
		dedup:         newDedup(cfg.DedupWindow),
		dec:           newWireDecoder(),
		certRequested: certRequested,
	}
	s.wg.Add(1)
	go s.run(ctx)
	return s, nil
}

// Next returns the next event: a flow, lost events, a node status or a health event.
// After Close it returns an error wrapping os.ErrClosed.
func (s *Source) Next(ctx context.Context) (flows.Event, error) {
	// Checked first so that a canceled ctx or a closed source wins over a ready event.
	if err := ctx.Err(); err != nil {
		return flows.Event{}, err
	}
	select {
	case <-s.closed:
		return flows.Event{}, s.errClosed()
	default:
	}
	for s.pos == len(s.batch) {
		if s.batch, s.pos = s.out.take(s.batch), 0; len(s.batch) > 0 {
			break
		}
		select {
		case <-s.out.ready:
		case <-ctx.Done():
			return flows.Event{}, ctx.Err()
		case <-s.closed:
			return flows.Event{}, s.errClosed()
		}
	}
	s.pos++
	return s.batch[s.pos-1], nil
}

func (s *Source) errClosed() error {
	return fmt.Errorf("hubble %s: %w", s.cfg.Address, os.ErrClosed)
}

// Close stops following, waits for every goroutine of the source to end, and closes the
// connection. Events not yet read are discarded.
func (s *Source) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.cancel()
		s.wg.Wait()
		s.closeErr = s.conn.Close()
	})
	return s.closeErr
}

// Stats returns the source's counters.
func (s *Source) Stats() Stats {
	return Stats{
		Connects:     s.connects.Load(),
		Responses:    s.responses.Load(),
		Duplicates:   s.duplicates.Load(),
		StatusErrors: s.statusErrors.Load(),
	}
}

func (s *Source) run(ctx context.Context) {
	defer s.wg.Done()
	for {
		gotData, err := s.follow(ctx)
		if ctx.Err() != nil {
			return
		}
		if gotData {
			s.backoff.reset()
		}
		if !s.reportDown(ctx, err) {
			return
		}
		t := s.clock.NewTimer(s.backoff.next())
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// reportDown emits Disconnected when a stream ended, or when an attempt failed with an
// error other than the one last reported. It returns false when ctx ended.
func (s *Source) reportDown(ctx context.Context, err error) bool {
	msg := fmt.Sprintf("hubble %s: %v", s.cfg.Address, err)
	// gRPC's own words do not say what to change for the two usual TLS mistakes.
	switch {
	case s.certRequested.Swap(false):
		msg += " (the server asked for a client certificate and none is configured: set CertFile and KeyFile for mutual TLS)"
	case !s.cfg.TLSEnabled() && strings.Contains(msg, "error reading server preface"):
		msg += " (the server closed the connection before speaking plaintext HTTP/2: if it serves TLS, set TLS or CAFile)"
	}
	if !s.connected && msg == s.lastReported {
		return true
	}
	now := s.clock.Now()
	if s.connected && s.outage.IsZero() {
		s.outage = now
	}
	s.connected = false
	s.lastReported = msg
	return s.emitHealth(ctx, flows.Health{Time: now, State: flows.Disconnected, Message: msg})
}

type statusResult struct {
	resp *observerpb.ServerStatusResponse
	err  error
}

// conn is the state of one GetFlows stream.
type conn struct {
	connectedAt   time.Time
	since         time.Time // zero when the stream does not replay
	lastRecv      time.Time
	catchingUp    bool
	degraded      bool
	degradedNodes []string // as last reported, sorted
}

// follow runs one GetFlows stream until it fails, stalls or ctx ends. gotData reports
// whether the server sent anything, which is what resets the backoff: a server that
// accepts streams and fails them at once must not be retried at full speed.
func (s *Source) follow(ctx context.Context) (gotData bool, err error) {
	req := s.request
	c := &conn{}
	if !s.resume.IsZero() {
		c.since = s.dedup.since(s.resume.Add(-s.cfg.ReplayOverlap))
		req = &observerpb.GetFlowsRequest{Follow: true, Whitelist: s.request.Whitelist, Since: timestamppb.New(c.since)}
	}

	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// Runs after every stream goroutine has been told to stop: none outlives follow.
	defer wg.Wait()
	defer cancel()

	stream, err := s.client.GetFlows(sctx, req, grpc.ForceCodecV2(streamCodec{}))
	if err != nil {
		return false, fmt.Errorf("GetFlows: %w", err)
	}
	c.connectedAt = s.clock.Now()
	c.lastRecv = c.connectedAt
	c.catchingUp = !c.since.IsZero()
	if s.resume.IsZero() {
		s.resume = c.connectedAt
	}
	s.connected = true
	s.lastReported = ""
	s.certRequested.Store(false) // whatever the server asked for, it accepted us
	s.connects.Add(1)
	msg := "GetFlows stream established"
	if c.catchingUp {
		msg += ", replaying from " + c.since.UTC().Format(time.RFC3339Nano)
	}
	if !s.emitHealth(ctx, flows.Health{Time: c.connectedAt, State: flows.Connected, Message: msg}) {
		return false, ctx.Err()
	}

	// Responses are received and decoded on their own goroutine and taken from in in
	// batches: whatever arrived while the previous batch was handled.
	in := newInbox(min(s.cfg.BufferSize, maxInboxBatch))
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := &recvTarget{dec: s.dec}
		for {
			err := stream.RecvMsg(t)
			if !in.put(sctx, t.ev, err) || err != nil {
				return
			}
			t.ev = flows.Event{}
		}
	}()
	var batch []flows.Event

	var statusCh chan statusResult
	if s.cfg.ServerStatusInterval > 0 {
		statusCh = make(chan statusResult)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.pollStatus(sctx, statusCh)
		}()
	}

	// Timers are armed once and re-armed only when they fire early: resetting them on
	// every response would cost more than the response.
	var stallC, catchC <-chan time.Time
	var stallT, catchT clock.Timer
	if s.cfg.StallTimeout > 0 {
		stallT = s.clock.NewTimer(s.cfg.StallTimeout)
		defer stallT.Stop()
		stallC = stallT.C()
	}
	if c.catchingUp {
		catchT = s.clock.NewTimer(s.cfg.CatchUpIdle)
		defer catchT.Stop()
		catchC = catchT.C()
	}

	for {
		select {
		case <-ctx.Done():
			return gotData, ctx.Err()

		case <-in.ready:
			var rerr error
			batch, rerr = in.take(batch)
			if len(batch) > 0 {
				gotData = true
				c.lastRecv = s.clock.Now()
				s.responses.Add(uint64(len(batch)))
				for _, ev := range batch {
					if !s.handle(ctx, c, ev) {
						return gotData, ctx.Err()
					}
				}
				if !s.flush(ctx) {
					return gotData, ctx.Err()
				}
				if !c.catchingUp {
					catchC = nil
				}
				// Time spent waiting for a slow consumer is not server silence.
				if s.waited {
					s.waited = false
					c.lastRecv = s.clock.Now()
				}
			}
			if errors.Is(rerr, io.EOF) {
				return gotData, errors.New("GetFlows stream: the server ended the stream")
			}
			if rerr != nil {
				return gotData, fmt.Errorf("GetFlows stream: %w", rerr)
			}

		case <-stallC:
			idle := s.clock.Since(c.lastRecv)
			if idle < s.cfg.StallTimeout {
				stallT.Reset(s.cfg.StallTimeout - idle)
				continue
			}
			now := s.clock.Now()
			msg := fmt.Sprintf("no response from the server for %v", idle)
			if !s.emitHealth(ctx, flows.Health{Time: now, State: flows.Stalled, Message: msg}) {
				return gotData, ctx.Err()
			}
			return gotData, errors.New("stalled: " + msg)

		case <-catchC:
			idle := s.clock.Since(c.lastRecv)
			if idle < s.cfg.CatchUpIdle {
				catchT.Reset(s.cfg.CatchUpIdle - idle)
				continue
			}
			catchC = nil
			if !s.caughtUp(ctx, c, fmt.Sprintf("replay idle for %v", idle)) {
				return gotData, ctx.Err()
			}

		case st := <-statusCh:
			if !s.handleStatus(ctx, c, st) {
				return gotData, ctx.Err()
			}
		}
	}
}

// handle turns one response, decoded, into events. It returns false when ctx ended.
func (s *Source) handle(ctx context.Context, c *conn, ev flows.Event) bool {
	cutoff := s.resume.Add(-s.cfg.ReplayOverlap)
	switch ev.Kind {
	case flows.KindFlow:
		f := ev.Flow
		if !s.dedup.add(flowKey(f), f.Time, cutoff) {
			s.duplicates.Add(1)
			return true
		}
		if !f.Time.IsZero() && (!s.resumeFromFlow || f.Time.After(s.resume)) && !f.Time.After(c.lastRecv.Add(maxClockSkew)) {
			s.resume, s.resumeFromFlow = f.Time, true
		}
		if c.catchingUp && !f.Time.Before(c.connectedAt) {
			if !s.caughtUp(ctx, c, "replay reached a flow stamped "+f.Time.UTC().Format(time.RFC3339Nano)) {
				return false
			}
		}
	case flows.KindLost:
		l := ev.Lost
		// Hubble sends the lost-events notices of its ring buffer whatever since says, so
		// a replay repeats every one still in the ring. Those older than since were
		// received while we followed: we delivered them then.
		if !c.since.IsZero() && l.Time.Before(c.since) {
			s.duplicates.Add(1)
			return true
		}
		if !s.dedup.add(lostKey(l), l.Time, cutoff) {
			s.duplicates.Add(1)
			return true
		}
	}
	return s.emit(ctx, ev)
}

// caughtUp ends a replay: the gap the outage opened is covered from its start to now.
func (s *Source) caughtUp(ctx context.Context, c *conn, why string) bool {
	c.catchingUp = false
	since := s.outage
	s.outage = time.Time{}
	return s.emitHealth(ctx, flows.Health{Time: s.clock.Now(), State: flows.CaughtUp, Since: since, Message: why})
}

// pollStatus calls ServerStatus now and every ServerStatusInterval until ctx ends. A
// server without ServerStatus is not polled again on this stream.
func (s *Source) pollStatus(ctx context.Context, out chan<- statusResult) {
	for {
		rctx, cancel := context.WithTimeout(ctx, statusTimeout)
		resp, err := s.client.ServerStatus(rctx, &observerpb.ServerStatusRequest{})
		cancel()
		if ctx.Err() != nil {
			return
		}
		if status.Code(err) == codes.Unimplemented {
			return
		}
		select {
		case out <- statusResult{resp, err}:
		case <-ctx.Done():
			return
		}
		t := s.clock.NewTimer(s.cfg.ServerStatusInterval)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// handleStatus reports a change in the relay's unavailable nodes: Degraded when some are
// (again, or others), Connected when all are back.
func (s *Source) handleStatus(ctx context.Context, c *conn, st statusResult) bool {
	if st.err != nil {
		s.statusErrors.Add(1)
		return true
	}
	n := st.resp.GetNumUnavailableNodes().GetValue()
	if n == 0 {
		if !c.degraded {
			return true
		}
		c.degraded, c.degradedNodes = false, nil
		return s.emitHealth(ctx, flows.Health{Time: s.clock.Now(), State: flows.Connected, Message: "every node is available again"})
	}
	nodes := slices.Clone(st.resp.GetUnavailableNodes())
	slices.Sort(nodes)
	if c.degraded && slices.Equal(c.degradedNodes, nodes) {
		return true
	}
	c.degraded, c.degradedNodes = true, nodes
	// The relay's list "may not be exhaustive": say how many it named.
	msg := fmt.Sprintf("%d of %d nodes unavailable", n, n+st.resp.GetNumConnectedNodes().GetValue())
	if int(n) > len(nodes) {
		msg += fmt.Sprintf(" (%d named)", len(nodes))
	}
	return s.emitHealth(ctx, flows.Health{Time: s.clock.Now(), State: flows.Degraded, Nodes: nodes, Message: msg})
}

// emitHealth hands h, after everything emitted before it, to the consumer.
func (s *Source) emitHealth(ctx context.Context, h flows.Health) bool {
	h.Source = SourceName
	s.emit(ctx, flows.Event{Kind: flows.KindHealth, Health: &h})
	return s.flush(ctx)
}

// emit queues ev for the consumer; flush hands it over. The stream loop flushes after
// each batch of responses, so that the consumer is woken once per batch rather than
// once per flow. It returns false when ctx ended.
func (s *Source) emit(_ context.Context, ev flows.Event) bool {
	s.pending = append(s.pending, ev)
	return true
}

// flush hands the pending events to the consumer, waiting while the buffer is full. It
// returns false when ctx ended first.
func (s *Source) flush(ctx context.Context) bool {
	p := s.pending
	for len(p) > 0 {
		n := s.out.put(p)
		p = p[n:]
		if len(p) == 0 {
			break
		}
		s.waited = true
		select {
		case <-s.out.space:
		case <-ctx.Done():
			return false
		}
	}
	clear(s.pending)
	s.pending = s.pending[:0]
	return true
}

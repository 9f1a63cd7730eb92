package hubble

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	flowpb "github.com/cilium/cilium/api/v1/flow"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/timestamppb"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
)

var cmpOpts = []cmp.Option{cmpopts.EquateComparable(netip.Addr{})}

// t0 is the fake clock's start; flows are stamped around it.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// waitTimeout bounds every wait on the source or the server: a hung test fails in
// seconds rather than at the go test deadline.
const waitTimeout = 10 * time.Second

var cartToRedis = hubbletest.FlowSpec{
	UUID:        "f",
	Node:        "node-1",
	Source:      hubbletest.Endpoint{Namespace: "shop", Pod: "cart-7d9f6c5b8-x2kqp", IP: "10.0.1.12", Labels: []string{"k8s:app=cart"}},
	Destination: hubbletest.Endpoint{Namespace: "shop", Pod: "redis-0", IP: "10.0.2.33", Labels: []string{"k8s:app=redis"}},
	DestPort:    6379,
}

// testConfig turns off every timer a test does not drive explicitly, so that the fake
// clock's waiters are exactly the ones the test expects.
func testConfig(addr string) Config {
	c := Default()
	c.Address = addr
	c.KeepaliveTime = 0
	c.ServerStatusInterval = 0
	c.StallTimeout = 0
	c.BackoffInitial = 100 * time.Millisecond
	c.BackoffMax = time.Second
	return c
}

// start runs a source with the jitter draw fixed at 0.5, closed when the test ends.
func start(t *testing.T, cfg Config, clk *clocktesting.FakeClock) *Source {
	t.Helper()
	src, err := newSource(cfg, clk, func() float64 { return 0.5 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := src.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return src
}

func next(t *testing.T, src *Source) flows.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	ev, err := src.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

func read(t *testing.T, src *Source, n int) []flows.Event {
	t.Helper()
	evs := make([]flows.Event, n)
	for i := range evs {
		evs[i] = next(t, src)
	}
	return evs
}

// summary names an event compactly, so that a sequence of them reads as a script.
func summary(ev flows.Event) string {
	switch ev.Kind {
	case flows.KindFlow:
		if ev.Flow.UUID == "" {
			return fmt.Sprintf("flow :%d", ev.Flow.SourcePort)
		}
		return "flow " + ev.Flow.UUID
	case flows.KindLost:
		return fmt.Sprintf("lost %d %s on %s", ev.Lost.NumEvents, ev.Lost.Source, ev.Lost.NodeName)
	case flows.KindNodeStatus:
		return fmt.Sprintf("node-status %s %v", ev.NodeStatus.State, ev.NodeStatus.NodeNames)
	case flows.KindHealth:
		if len(ev.Health.Nodes) > 0 {
			return fmt.Sprintf("%s %v", ev.Health.State, ev.Health.Nodes)
		}
		return string(ev.Health.State)
	case flows.KindMalformed:
		return "malformed " + ev.Reason + ": " + ev.Detail
	}
	return "unknown kind " + ev.Kind.String()
}

func summaries(evs []flows.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = summary(ev)
	}
	return out
}

func flowSummaries(fs []*flowpb.Flow) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		if f.GetUuid() == "" {
			out[i] = fmt.Sprintf("flow :%d", f.GetL4().GetTCP().GetSourcePort())
		} else {
			out[i] = "flow " + f.GetUuid()
		}
	}
	return out
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// waitWaiters waits until n timers are pending on clk: the source has reached the wait
// the test is about to end by stepping the clock.
func waitWaiters(t *testing.T, clk *clocktesting.FakeClock, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for clk.Waiters() != n {
		if time.Now().After(deadline) {
			t.Fatalf("fake clock has %d waiters, want %d", clk.Waiters(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitServer(t *testing.T, srv *hubbletest.Server, what string, cond func(hubbletest.Stats) bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	if err := srv.WaitFor(ctx, cond); err != nil {
		t.Fatalf("waiting for the server: %s: %v", what, err)
	}
}

func waitSource(t *testing.T, src *Source, what string, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond(src.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for the source: %s; stats %+v", what, src.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSteadyStreamDeliversEveryFlowInOrder(t *testing.T) {
	fs := hubbletest.Series(500, t0.Add(-time.Minute), time.Millisecond, cartToRedis)
	srv := hubbletest.Start(t, hubbletest.Steady(fs))
	src := start(t, testConfig(srv.Addr()), clocktesting.NewFakeClock(t0))

	got := read(t, src, 1+len(fs))
	want := concat([]string{"connected"}, flowSummaries(fs))
	if diff := cmp.Diff(want, summaries(got)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	// The stream carries Hubble's messages unchanged: each event is what FromResponse
	// makes of the flow, the same normalization as a jsonpb capture.
	wantFirst, err := flows.FromProto(fs[0])
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantFirst, got[1].Flow, cmpOpts...); diff != "" {
		t.Errorf("first flow (-want +got):\n%s", diff)
	}
	wantHealth := &flows.Health{Time: t0, Source: SourceName, State: flows.Connected, Message: "GetFlows stream established"}
	if diff := cmp.Diff(wantHealth, got[0].Health); diff != "" {
		t.Errorf("connected event (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Stats{Connects: 1, Responses: 500}, src.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
}

// TestReconnectDeliversEveryFlowOnce breaks the stream after the first flows: the
// reconnect asks for since = newest flow - ReplayOverlap, the server replays the overlap,
// and the source drops what it already delivered, by uuid or by tuple.
func TestReconnectDeliversEveryFlowOnce(t *testing.T) {
	withUUID := cartToRedis
	withoutUUID := cartToRedis
	withoutUUID.UUID = ""
	cases := map[string]struct {
		spec    hubbletest.FlowSpec
		overlap time.Duration
		// wantDups is how many replayed events the source must drop.
		wantDups uint64
	}{
		// before spans t0-10s .. t0-9.01s: a 5s overlap replays all of it, and the
		// lost-events notice again.
		"uuid, overlap covering everything":    {spec: withUUID, overlap: 5 * time.Second, wantDups: 101},
		"no uuid, overlap covering everything": {spec: withoutUUID, overlap: 5 * time.Second, wantDups: 101},
		// 100ms before the newest flow: the last 11 flows; the notice, older than since,
		// is resent by Hubble's ring reader anyway and dropped for its age.
		"uuid, short overlap": {spec: withUUID, overlap: 100 * time.Millisecond, wantDups: 12},
		"no overlap":          {spec: withUUID, overlap: 0, wantDups: 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			before := hubbletest.Series(100, t0.Add(-10*time.Second), 10*time.Millisecond, tc.spec)
			afterSpec := tc.spec
			if afterSpec.UUID != "" {
				afterSpec.UUID = "g"
			}
			afterSpec.SourcePort = 50000
			after := hubbletest.Series(100, t0.Add(2*time.Second), 10*time.Millisecond, afterSpec)
			lost := &flowpb.LostEvent{
				Source:        flowpb.LostEventSource_PERF_EVENT_RING_BUFFER,
				NumEventsLost: 7,
				Last:          timestamppb.New(t0.Add(-9500 * time.Millisecond)),
			}
			srv := hubbletest.Start(t, hubbletest.Scenario{Streams: [][]hubbletest.Step{
				{
					hubbletest.SendFlows(before[:50]...),
					hubbletest.SendLost("node-1", lost),
					hubbletest.SendFlows(before[50:]...),
					hubbletest.CloseStream(codes.Unavailable, "relay restarting"),
				},
				{hubbletest.SendFlows(after...)},
			}})
			clk := clocktesting.NewFakeClock(t0)
			cfg := testConfig(srv.Addr())
			cfg.ReplayOverlap = tc.overlap
			src := start(t, cfg, clk)

			first := read(t, src, 1+len(before)+1+1)
			waitWaiters(t, clk, 1) // the backoff
			clk.Step(cfg.BackoffMax)
			second := read(t, src, 1+1+len(after))

			want := concat(
				[]string{"connected"}, flowSummaries(before[:50]), []string{"lost 7 PERF_EVENT_RING_BUFFER on node-1"},
				flowSummaries(before[50:]), []string{"disconnected"},
				[]string{"connected", "caught-up"}, flowSummaries(after),
			)
			if diff := cmp.Diff(want, summaries(append(first, second...))); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}

			disconnected := first[len(first)-1].Health
			if !strings.Contains(disconnected.Message, "code = Unavailable desc = relay restarting") || !disconnected.Time.Equal(t0) {
				t.Errorf("disconnected = %+v, want the server's status at t0", disconnected)
			}
			reconnectedAt := t0.Add(cfg.BackoffMax)
			caughtUp := second[1].Health
			wantCaughtUp := &flows.Health{
				Time: reconnectedAt, Source: SourceName, State: flows.CaughtUp, Since: t0,
				Message: "replay reached a flow stamped " + after[0].GetTime().AsTime().Format(time.RFC3339Nano),
			}
			if diff := cmp.Diff(wantCaughtUp, caughtUp); diff != "" {
				t.Errorf("caught-up (-want +got):\n%s", diff)
			}

			reqs := srv.Requests()
			if len(reqs) != 2 {
				t.Fatalf("server got %d requests, want 2", len(reqs))
			}
			wantSince := timestamppb.New(before[len(before)-1].GetTime().AsTime().Add(-tc.overlap))
			if diff := cmp.Diff(wantSince, reqs[1].GetSince(), protocmp.Transform()); diff != "" {
				t.Errorf("reconnect since (-want +got):\n%s", diff)
			}
			if reqs[0].GetSince() != nil || !reqs[0].GetFollow() || !reqs[1].GetFollow() {
				t.Errorf("requests = %v, want follow on both and since only on the reconnect", reqs)
			}
			if got := src.Stats().Duplicates; got != tc.wantDups {
				t.Errorf("duplicates dropped = %d, want %d", got, tc.wantDups)
			}
		})
	}
}

// TestCatchUpOnIdleReplay reconnects to a server with nothing new: no flow reaches the
// present, so the replay ends when the stream has been idle for CatchUpIdle.
func TestCatchUpOnIdleReplay(t *testing.T) {
	before := hubbletest.Series(20, t0.Add(-time.Second), 10*time.Millisecond, cartToRedis)
	srv := hubbletest.Start(t, hubbletest.Disconnect(before, nil))
	clk := clocktesting.NewFakeClock(t0)
	cfg := testConfig(srv.Addr())
	src := start(t, cfg, clk)

	read(t, src, 1+len(before)+1)
	waitWaiters(t, clk, 1)
	clk.Step(cfg.BackoffMax)
	if got := summary(next(t, src)); got != "connected" {
		t.Fatalf("after the backoff got %q, want connected", got)
	}
	// Every replayed flow has been judged a duplicate: the stream is now idle.
	waitSource(t, src, "the replay is dropped", func(s Stats) bool { return s.Duplicates == uint64(len(before)) })
	clk.Step(cfg.CatchUpIdle - time.Nanosecond)
	clk.Step(time.Nanosecond)
	got := next(t, src).Health
	want := &flows.Health{
		Time: t0.Add(cfg.BackoffMax + cfg.CatchUpIdle), Source: SourceName, State: flows.CaughtUp, Since: t0,
		Message: "replay idle for " + cfg.CatchUpIdle.String(),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("caught-up (-want +got):\n%s", diff)
	}
}

func TestLostEventsSurface(t *testing.T) {
	before := hubbletest.Series(3, t0, time.Millisecond, cartToRedis)
	afterSpec := cartToRedis
	afterSpec.UUID = "g"
	after := hubbletest.Series(2, t0.Add(time.Second), time.Millisecond, afterSpec)
	lost := &flowpb.LostEvent{
		Source:        flowpb.LostEventSource_OBSERVER_EVENTS_QUEUE,
		NumEventsLost: 1234,
		First:         timestamppb.New(t0.Add(100 * time.Millisecond)),
		Last:          timestamppb.New(t0.Add(200 * time.Millisecond)),
	}
	srv := hubbletest.Start(t, hubbletest.LostEvents(before, "node-2", lost, after))
	src := start(t, testConfig(srv.Addr()), clocktesting.NewFakeClock(t0))

	got := read(t, src, 1+len(before)+1+len(after))
	want := concat([]string{"connected"}, flowSummaries(before), []string{"lost 1234 OBSERVER_EVENTS_QUEUE on node-2"}, flowSummaries(after))
	if diff := cmp.Diff(want, summaries(got)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	wantLost := &flows.Lost{Time: t0.Add(200 * time.Millisecond), Source: "OBSERVER_EVENTS_QUEUE", NumEvents: 1234, NodeName: "node-2"}
	if diff := cmp.Diff(wantLost, got[1+len(before)].Lost); diff != "" {
		t.Errorf("lost (-want +got):\n%s", diff)
	}
}

// TestUnavailableNode: the relay loses a node; the stream carries its node_status and
// ServerStatus polls report Degraded until it is back.
func TestUnavailableNode(t *testing.T) {
	nodes := []string{"node-1", "node-2", "node-3"}
	before := hubbletest.Series(3, t0, time.Millisecond, cartToRedis)
	afterSpec := cartToRedis
	afterSpec.UUID = "g"
	after := hubbletest.Series(3, t0.Add(time.Second), time.Millisecond, afterSpec)
	sc := hubbletest.UnavailableNode(nodes, "node-2", t0.Add(500*time.Millisecond), before, after)
	// Unavailable from the start as well, so that the poll made on connecting sees it
	// whatever the stream's progress.
	sc.Unavailable = []string{"node-2"}
	srv := hubbletest.Start(t, sc)
	clk := clocktesting.NewFakeClock(t0)
	cfg := testConfig(srv.Addr())
	cfg.ServerStatusInterval = 10 * time.Second
	src := start(t, cfg, clk)

	evs := read(t, src, 1+len(before)+1+len(after)+1)
	// The poll runs beside the stream: Degraded may come anywhere after Connected.
	var stream []flows.Event
	var degraded *flows.Health
	for _, ev := range evs {
		if ev.Kind == flows.KindHealth && ev.Health.State == flows.Degraded {
			degraded = ev.Health
			continue
		}
		stream = append(stream, ev)
	}
	want := concat([]string{"connected"}, flowSummaries(before), []string{"node-status NODE_UNAVAILABLE [node-2]"}, flowSummaries(after))
	if diff := cmp.Diff(want, summaries(stream)); diff != "" {
		t.Errorf("stream events (-want +got):\n%s", diff)
	}
	wantStatus := &flows.NodeStatus{Time: t0.Add(500 * time.Millisecond), State: "NODE_UNAVAILABLE", NodeNames: []string{"node-2"}, Message: "hubbletest: node unavailable"}
	if diff := cmp.Diff(wantStatus, stream[1+len(before)].NodeStatus); diff != "" {
		t.Errorf("node status (-want +got):\n%s", diff)
	}
	wantDegraded := &flows.Health{Time: t0, Source: SourceName, State: flows.Degraded, Nodes: []string{"node-2"}, Message: "1 of 3 nodes unavailable"}
	if diff := cmp.Diff(wantDegraded, degraded); diff != "" {
		t.Errorf("degraded (-want +got):\n%s", diff)
	}

	// A poll that finds the same node down says nothing; one that finds all back says
	// Connected: coverage is whole again.
	srv.SetUnavailable()
	waitWaiters(t, clk, 1)
	clk.Step(cfg.ServerStatusInterval)
	got := next(t, src).Health
	wantBack := &flows.Health{Time: t0.Add(cfg.ServerStatusInterval), Source: SourceName, State: flows.Connected, Message: "every node is available again"}
	if diff := cmp.Diff(wantBack, got); diff != "" {
		t.Errorf("recovery (-want +got):\n%s", diff)
	}
	if st := srv.Stats(); st.StatusCalls != 2 {
		t.Errorf("ServerStatus called %d times, want 2 (on connect and after one interval)", st.StatusCalls)
	}
}

// TestStalledServer: the first stream goes silent without closing; after StallTimeout the
// source reports it, abandons the stream and replays from where it was.
func TestStalledServer(t *testing.T) {
	before := hubbletest.Series(5, t0.Add(-time.Second), time.Millisecond, cartToRedis)
	clk := clocktesting.NewFakeClock(t0)
	cfg := testConfig("")
	cfg.StallTimeout = 30 * time.Second
	// Stamped after the reconnect, so that the first of them ends the replay.
	reconnectAt := t0.Add(cfg.StallTimeout + cfg.BackoffInitial)
	afterSpec := cartToRedis
	afterSpec.UUID = "g"
	after := hubbletest.Series(5, reconnectAt, time.Millisecond, afterSpec)
	srv := hubbletest.Start(t, hubbletest.Stalling(before, after))
	cfg.Address = srv.Addr()
	src := start(t, cfg, clk)

	got := read(t, src, 1+len(before))
	waitServer(t, srv, "first stream stalled", func(s hubbletest.Stats) bool { return s.Stalled == 1 })
	clk.Step(cfg.StallTimeout - time.Nanosecond)
	clk.Step(time.Nanosecond)
	got = append(got, read(t, src, 2)...)
	// The abandoned stream ends on the server too.
	waitServer(t, srv, "stalled stream ended", func(s hubbletest.Stats) bool { return s.Stalled == 0 && s.Streams == 0 })
	waitWaiters(t, clk, 1)
	// The stream had delivered flows, so the backoff starts over: 100ms less 10% jitter.
	clk.Step(cfg.BackoffInitial * 9 / 10)
	got = append(got, read(t, src, 2+len(after))...)

	want := concat([]string{"connected"}, flowSummaries(before), []string{"stalled", "disconnected", "connected", "caught-up"}, flowSummaries(after))
	if diff := cmp.Diff(want, summaries(got)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	stalled := got[1+len(before)].Health
	wantStalled := &flows.Health{Time: t0.Add(cfg.StallTimeout), Source: SourceName, State: flows.Stalled, Message: "no response from the server for 30s"}
	if diff := cmp.Diff(wantStalled, stalled); diff != "" {
		t.Errorf("stalled (-want +got):\n%s", diff)
	}
	if caughtUp := got[len(got)-len(after)-1].Health; !caughtUp.Since.Equal(t0.Add(cfg.StallTimeout)) {
		t.Errorf("caught-up since %v, want the stall at %v", caughtUp.Since, t0.Add(cfg.StallTimeout))
	}
	if got := src.Stats().Duplicates; got != uint64(len(before)) {
		t.Errorf("duplicates = %d, want the %d replayed flows", got, len(before))
	}
}

// TestStallTimerCountsOnlyServerSilence: flows that keep arriving postpone the stall, and
// time the source spent waiting for its consumer is not silence.
func TestStallTimerCountsOnlyServerSilence(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	srv := hubbletest.Start(t, hubbletest.Scenario{})
	cfg := testConfig(srv.Addr())
	cfg.StallTimeout = 30 * time.Second
	cfg.BufferSize = 1
	src := start(t, cfg, clk)
	if got := summary(next(t, src)); got != "connected" {
		t.Fatalf("first event %q, want connected", got)
	}

	// A stream without since starts at the live end: append only once it exists.
	waitServer(t, srv, "stream open", func(s hubbletest.Stats) bool { return s.Streams == 1 })
	// 20s in, a flow arrives: the timer, armed for 30s, must re-arm for 20s more.
	clk.Step(20 * time.Second)
	srv.Append(cartToRedis.Nth(0, t0, 0))
	if got := summary(next(t, src)); got != "flow f-0" {
		t.Fatalf("got %q, want flow f-0", got)
	}
	clk.Step(10 * time.Second)
	waitWaiters(t, clk, 1) // re-armed, not fired
	// The consumer stops reading with the buffer (1) full: the source waits on it for 40s
	// of fake time, then the stall timer measures from the end of that wait.
	srv.Append(cartToRedis.Nth(1, t0, 0), cartToRedis.Nth(2, t0, 0))
	waitServer(t, srv, "both flows sent", func(s hubbletest.Stats) bool { return s.Sent == 3 })
	waitSource(t, src, "both flows received", func(s Stats) bool { return s.Responses == 3 })
	clk.Step(40 * time.Second)
	read(t, src, 2)
	// The timer fired during the wait; it is re-armed from the end of the wait.
	waitWaiters(t, clk, 1)
	clk.Step(cfg.StallTimeout - time.Nanosecond)
	clk.Step(time.Nanosecond)
	got := next(t, src).Health
	want := &flows.Health{Time: t0.Add(100 * time.Second), Source: SourceName, State: flows.Stalled, Message: "no response from the server for 30s"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stalled (-want +got):\n%s", diff)
	}
}

func TestNamespaceAndVerdictFiltersReachTheServer(t *testing.T) {
	spec := func(uuid, srcNS, dstNS string, v flowpb.Verdict) *flowpb.Flow {
		s := cartToRedis
		s.UUID, s.Source.Namespace, s.Destination.Namespace, s.Verdict, s.Time = uuid, srcNS, dstNS, v, t0
		return s.Proto()
	}
	fs := []*flowpb.Flow{
		spec("shop-to-shop-dropped", "shop", "shop", flowpb.Verdict_DROPPED),
		spec("shop-to-shop-forwarded", "shop", "shop", flowpb.Verdict_FORWARDED),
		spec("web-to-billing-dropped", "web", "billing", flowpb.Verdict_DROPPED),
		spec("billing-to-world-dropped", "billing", "", flowpb.Verdict_DROPPED),
		spec("web-to-web-dropped", "web", "web", flowpb.Verdict_DROPPED),
		spec("shopping-to-web-dropped", "shopping", "web", flowpb.Verdict_DROPPED),
		spec("web-to-shop-audit", "web", "shop", flowpb.Verdict_AUDIT),
	}
	srv := hubbletest.Start(t, hubbletest.Steady(fs))
	cfg := testConfig(srv.Addr())
	cfg.Namespaces = []string{"shop", "billing"}
	cfg.Verdicts = []string{"DROPPED", "AUDIT"}
	src := start(t, cfg, clocktesting.NewFakeClock(t0))

	got := read(t, src, 5)
	want := []string{"connected", "flow shop-to-shop-dropped", "flow web-to-billing-dropped", "flow billing-to-world-dropped", "flow web-to-shop-audit"}
	if diff := cmp.Diff(want, summaries(got)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	verdicts := []flowpb.Verdict{flowpb.Verdict_DROPPED, flowpb.Verdict_AUDIT}
	wantFilters := []*flowpb.FlowFilter{
		{SourcePod: []string{"shop/", "billing/"}, Verdict: verdicts},
		{DestinationPod: []string{"shop/", "billing/"}, Verdict: verdicts},
	}
	if diff := cmp.Diff(wantFilters, srv.Requests()[0].GetWhitelist(), protocmp.Transform()); diff != "" {
		t.Errorf("whitelist sent (-want +got):\n%s", diff)
	}
}

// TestBackoffGrowsWithJitter: a server that accepts streams and fails them at once is
// retried after 90ms, 180ms, 360ms, 720ms, 900ms, 900ms (doubling from 100ms to the 1s
// cap, less the fixed 0.5 draw of 20% jitter), each wait ending not a nanosecond early.
func TestBackoffGrowsWithJitter(t *testing.T) {
	want := []time.Duration{90e6, 180e6, 360e6, 720e6, 900e6, 900e6}
	var scripts [][]hubbletest.Step
	for range want {
		scripts = append(scripts, []hubbletest.Step{hubbletest.CloseStream(codes.Unavailable, "node draining")})
	}
	srv := hubbletest.Start(t, hubbletest.Scenario{Streams: scripts})
	clk := clocktesting.NewFakeClock(t0)
	cfg := testConfig(srv.Addr())
	cfg.BackoffJitter = 0.2
	src := start(t, cfg, clk)

	for i, d := range want {
		if got := summaries(read(t, src, 2)); !cmp.Equal(got, []string{"connected", "disconnected"}) {
			t.Fatalf("attempt %d: events %q, want connected, disconnected", i, got)
		}
		waitWaiters(t, clk, 1)
		clk.Step(d - time.Nanosecond)
		if n := clk.Waiters(); n != 1 {
			t.Fatalf("attempt %d: backoff ended before %v", i, d)
		}
		if reqs := srv.Stats().Requests; reqs != i+1 {
			t.Fatalf("attempt %d: server saw %d requests before the backoff ended", i, reqs)
		}
		clk.Step(time.Nanosecond)
		waitServer(t, srv, fmt.Sprintf("attempt %d", i+2), func(s hubbletest.Stats) bool { return s.Requests == i+2 })
	}
}

// TestSteadyOutageReportedOnce: a server that cannot be reached yields one Disconnected,
// not one per retry, and no Connected.
func TestSteadyOutageReportedOnce(t *testing.T) {
	srv := hubbletest.Start(t, hubbletest.Scenario{})
	addr := srv.Addr()
	srv.Stop()
	clk := clocktesting.NewFakeClock(t0)
	cfg := testConfig(addr)
	src := start(t, cfg, clk)

	first := next(t, src)
	if first.Kind != flows.KindHealth || first.Health.State != flows.Disconnected || !strings.Contains(first.Health.Message, "connection refused") {
		t.Fatalf("first event %s %+v, want disconnected: connection refused", summary(first), first.Health)
	}
	for range 3 {
		waitWaiters(t, clk, 1)
		clk.Step(cfg.BackoffMax)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if ev, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("after three more failed attempts Next = %s, %v; want nothing", summary(ev), err)
	}
}

func TestNextHonoursContextAndClose(t *testing.T) {
	srv := hubbletest.Start(t, hubbletest.Scenario{})
	src := start(t, testConfig(srv.Addr()), clocktesting.NewFakeClock(t0))
	next(t, src) // connected; nothing follows

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := src.Next(canceled); !errors.Is(err, context.Canceled) {
		t.Errorf("Next(canceled) = %v, want context.Canceled", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := src.Next(ctx)
		errc <- err
	}()
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("blocked Next after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Next did not return after its context was canceled")
	}

	if err := src.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := src.Next(t.Context()); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Next after Close = %v, want os.ErrClosed", err)
	}
}

// TestCloseLeavesNoGoroutines closes sources in every state: streaming with a full
// buffer, stalled, polling, and backing off from a dead server.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	fs := hubbletest.Series(200, t0, time.Millisecond, cartToRedis)
	live := hubbletest.Start(t, hubbletest.Steady(fs))
	stalled := hubbletest.Start(t, hubbletest.Stalling(fs[:1], nil))
	dead := hubbletest.Start(t, hubbletest.Scenario{})
	deadAddr := dead.Addr()
	dead.Stop()

	baseline := runtime.NumGoroutine()
	for _, addr := range []string{live.Addr(), stalled.Addr(), deadAddr} {
		cfg := testConfig(addr)
		cfg.BufferSize = 4
		cfg.ServerStatusInterval = time.Second
		cfg.StallTimeout = time.Minute
		src, err := New(cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		next(t, src)
		if err := src.Close(); err != nil {
			t.Errorf("Close %s: %v", addr, err)
		}
	}
	// Close waits for the source's goroutines; gRPC's own wind down asynchronously.
	deadline := time.Now().Add(waitTimeout)
	for runtime.NumGoroutine() > baseline {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Close, %d before:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestStreamEndIsReported(t *testing.T) {
	cases := map[string]struct {
		end  hubbletest.Step
		want string
	}{
		"clean end":      {end: hubbletest.CloseStream(codes.OK, ""), want: ": GetFlows stream: the server ended the stream"},
		"status error":   {end: hubbletest.CloseStream(codes.PermissionDenied, "not allowed"), want: ": GetFlows stream: rpc error: code = PermissionDenied desc = not allowed"},
		"resource limit": {end: hubbletest.CloseStream(codes.ResourceExhausted, "too many streams"), want: "code = ResourceExhausted desc = too many streams"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			srv := hubbletest.Start(t, hubbletest.Scenario{Streams: [][]hubbletest.Step{{tc.end}}})
			src := start(t, testConfig(srv.Addr()), clocktesting.NewFakeClock(t0))
			evs := read(t, src, 2)
			if diff := cmp.Diff([]string{"connected", "disconnected"}, summaries(evs)); diff != "" {
				t.Fatalf("events (-want +got):\n%s", diff)
			}
			if msg := evs[1].Health.Message; !strings.Contains(msg, tc.want) {
				t.Errorf("disconnected: %s\nwant it to contain %q", msg, tc.want)
			}
		})
	}
}

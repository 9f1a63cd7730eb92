package simulate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"k8s.io/utils/clock"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/evaluator/intents"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/flows/hubble"
	"github.com/shadowgate/shadowgate/flows/hubble/hubbletest"
	"github.com/shadowgate/shadowgate/flows/mapper"
	"github.com/shadowgate/shadowgate/flows/mapper/mappertest"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

var t0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

func liveGate() soak.GateConfig {
	g := soak.DefaultGateConfig()
	g.Window, g.MinConnections, g.MaxGap = time.Hour, 10, 10*time.Minute
	return g
}

func newLive(t *testing.T, snap *cluster.Snapshot, clk clock.Clock, state string) *Live {
	t.Helper()
	opts := DefaultOptions()
	opts.Compile.Namespaces = []string{"api"}
	sim, err := New(snap, opts)
	if err != nil {
		t.Fatal(err)
	}
	sopts := soak.DefaultOptions()
	sopts.Window = time.Hour
	l, warnings, err := NewLive(sim, sopts, LiveConfig{Gate: liveGate(), Clock: clk, StatePath: state})
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Logf("warnings: %v", warnings)
	}
	return l
}

func loadTestSnapshot(t *testing.T) *cluster.Snapshot {
	t.Helper()
	snap, err := cluster.Load("testdata/cluster")
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// waitFor polls cond in real time, bounded: the sources run on their own goroutines.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func gateCodes(t *testing.T, l *Live, ns string) []string {
	t.Helper()
	res, err := l.Gate(ns)
	if err != nil {
		t.Fatal(err)
	}
	codes := []string{}
	for _, r := range res.Reasons {
		codes = append(codes, r.Code)
	}
	return codes
}

func specs(n int, start time.Time, src, dst hubbletest.Endpoint, uuid string) []hubbletest.FlowSpec {
	return []hubbletest.FlowSpec{{Time: start, UUID: uuid, Node: "node-2", Source: src, Destination: dst, DestPort: 8080, TCPFlagsSYN: true}}
}

// TestLiveHubbleSoakThenIntentAdded follows a real Hubble observer over loopback: the
// namespace soaks, is blocked only by the uncovered caller, and passes the moment the
// missing intent is added, without restarting the soak.
func TestLiveHubbleSoakThenIntentAdded(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	snap := loadTestSnapshot(t)
	l := newLive(t, snap, clk, "")
	stop := soakWithUncoveredBatch(t, l, clk)
	defer stop()
	rep := l.Report()
	if len(rep.Uncovered) != 1 || rep.Uncovered[0].Source.Workload != "batch-0" || rep.Uncovered[0].Count != 3 {
		t.Fatalf("uncovered = %+v, want batch-0 x3", rep.Uncovered)
	}

	// The batch team adds its intent: the stored edge is re-judged at once.
	next, _ := compile.ReplaceIntents(snap, []*intents.ClientIntents{batchIntents()}, nil)
	opts := DefaultOptions()
	opts.Compile.Namespaces = []string{"api"}
	sim, err := New(next, opts)
	if err != nil {
		t.Fatal(err)
	}
	l.Swap(sim)
	if codes := gateCodes(t, l, "api"); len(codes) != 0 {
		t.Fatalf("gate after the intent was added: %v, want pass", codes)
	}
}

// batchIntents is the intent batch-0 is missing in testdata/cluster.
func batchIntents() *intents.ClientIntents {
	return &intents.ClientIntents{Namespace: "api", Name: "batch", Client: intents.Workload{Name: "batch-0", Kind: "Pod"},
		Targets: []intents.Target{{Type: intents.TargetWorkload, Name: "api-0", Namespace: "api", Kind: "Pod", Raw: "api-0"}}}
}

// soakWithUncoveredBatch runs l on a real Hubble observer serving an hour of web-0 calling
// api-0 (covered) and batch-0 calling it (uncovered), and leaves the clock after the soak
// window with the api gate blocked only by the uncovered edge. stop ends the run.
func soakWithUncoveredBatch(t *testing.T, l *Live, clk *clocktesting.FakeClock) (stop func()) {
	t.Helper()
	web := hubbletest.Endpoint{Namespace: "web", Pod: "web-0", IP: "10.1.1.10"}
	api := hubbletest.Endpoint{Namespace: "api", Pod: "api-0", IP: "10.1.2.10"}
	batch := hubbletest.Endpoint{Namespace: "api", Pod: "batch-0", IP: "10.1.2.20"}
	covered := hubbletest.Series(20, t0.Add(time.Minute), time.Minute, specs(1, t0, web, api, "web")[0])
	uncovered := hubbletest.Series(3, t0.Add(90*time.Second), 5*time.Minute, specs(1, t0, batch, api, "batch")[0])
	srv := hubbletest.Start(t, hubbletest.Steady(append(covered, uncovered...)))

	cfg := hubble.Default()
	cfg.Address = srv.Addr()
	src, err := hubble.New(cfg, clk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, NamedSource{Name: "hubble", Source: src}) }()
	stop = func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("run: %v", err)
		}
		src.Close()
	}
	waitFor(t, "23 evaluated flows", func() bool { return l.Report().Flows.Evaluated == 23 })

	clk.SetTime(t0.Add(61 * time.Minute))
	if diff := cmp.Diff([]string{"uncovered"}, gateCodes(t, l, "api")); diff != "" {
		stop()
		t.Fatalf("gate reasons before the intent (-want +got):\n%s", diff)
	}
	return stop
}

// TestLiveDisconnectIsAGap: a source that drops its connection opens a gap that fails the
// gate until the replay catches up.
func TestLiveDisconnectIsAGap(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	l := newLive(t, loadTestSnapshot(t), clk, "")
	l.Observe("hubble", flows.Event{Kind: flows.KindHealth, Health: &flows.Health{Time: t0, State: flows.Connected}})
	for i := 0; i < 12; i++ {
		f := tcp(web0, api0, 8080, func(f *flows.Flow) { f.Time = t0.Add(time.Duration(i) * time.Minute) })
		l.Observe("hubble", flows.Event{Kind: flows.KindFlow, Flow: f})
	}
	l.Observe("hubble", flows.Event{Kind: flows.KindHealth, Health: &flows.Health{Time: t0.Add(20 * time.Minute), State: flows.Disconnected, Message: "EOF"}})
	clk.SetTime(t0.Add(70 * time.Minute))
	if diff := cmp.Diff([]string{"gap"}, gateCodes(t, l, "api")); diff != "" {
		t.Errorf("gate while disconnected (-want +got):\n%s", diff)
	}
	l.Observe("hubble", flows.Event{Kind: flows.KindHealth, Health: &flows.Health{Time: t0.Add(70 * time.Minute), State: flows.Connected}})
	l.Observe("hubble", flows.Event{Kind: flows.KindHealth, Health: &flows.Health{Time: t0.Add(70 * time.Minute), State: flows.CaughtUp, Since: t0.Add(20 * time.Minute)}})
	if codes := gateCodes(t, l, "api"); len(codes) != 0 {
		t.Errorf("gate after the replay caught up: %v, want pass", codes)
	}
}

// TestLiveMapperEdges: the network-mapper's workload-level edges are judged as "may the
// client reach the server at all", and an unreachable mapper is a gap.
func TestLiveMapperEdges(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	l := newLive(t, loadTestSnapshot(t), clk, "")
	srv := mappertest.New(t)
	srv.Discover(
		mappertest.Intent{Client: mappertest.Identity{Name: "web-0", Namespace: "web", Kind: "Pod"}, Server: mappertest.Identity{Name: "api-0", Namespace: "api", Kind: "Pod"}},
		mappertest.Intent{Client: mappertest.Identity{Name: "batch-0", Namespace: "api", Kind: "Pod"}, Server: mappertest.Identity{Name: "api-0", Namespace: "api", Kind: "Pod"}},
	)
	cfg := mapper.Default()
	cfg.URL = srv.URL()
	src, err := mapper.New(cfg, mapper.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = l.Run(ctx, NamedSource{Name: "mapper", Source: src}) }()
	waitFor(t, "two mapper edges", func() bool { return l.Report().Flows.Evaluated == 2 })
	rep := l.Report()
	if len(rep.Uncovered) != 1 || rep.Uncovered[0].Source.Workload != "batch-0" || rep.Uncovered[0].Port != 0 {
		t.Fatalf("uncovered = %+v, want batch-0 -> api-0 with no port", rep.Uncovered)
	}
}

// TestLiveStateSurvivesRestart: the store and the read position are persisted; a restart
// resumes without counting anything twice, and the downtime is a gap.
func TestLiveStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	clk := clocktesting.NewFakeClock(t0)
	l := newLive(t, loadTestSnapshot(t), clk, state)
	lines := func(from, to int, l *Live) {
		for i := from; i <= to; i++ {
			f := tcp(batch0, api0, 8080, func(f *flows.Flow) { f.Time = t0.Add(time.Duration(i) * time.Second) })
			l.Observe("file", flows.Event{Kind: flows.KindFlow, Line: i, Flow: f})
		}
	}
	lines(1, 10, l)
	if err := l.Save(); err != nil {
		t.Fatal(err)
	}
	clk.Step(5 * time.Minute)
	restarted := newLive(t, loadTestSnapshot(t), clk, state)
	lines(1, 15, restarted) // a file replay starts again from line 1
	sum, ok := restarted.Store().Summary("api", clk.Now())
	if !ok {
		t.Fatal("api not tracked after restart")
	}
	if sum.Connections != 15 {
		t.Errorf("connections after restart = %d, want 15 (nothing counted twice)", sum.Connections)
	}
	if len(sum.Gaps) != 1 || sum.Gaps[0].Seconds < 299 {
		t.Errorf("gaps after restart = %+v, want the 5m downtime", sum.Gaps)
	}

	// A corrupt state is moved aside; the fresh soak remembers the loss.
	if err := os.WriteFile(state, []byte("not a snapshot"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := newLive(t, loadTestSnapshot(t), clk, state)
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("corrupt state still at %s (err %v), want it moved aside", state, err)
	}
	clk.Step(2 * time.Hour)
	if codes := gateCodes(t, fresh, "api"); !containsCode(codes, "connections") {
		t.Errorf("gate on a fresh store after a lost state: %v, want it blocked", codes)
	}
}

func containsCode(codes []string, c string) bool {
	for _, x := range codes {
		if x == c {
			return true
		}
	}
	return false
}

package rollout

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/flows"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// TestRefreshUpdatesJudgesInPlace: after a model change, ingestion moves each governed
// namespace's judge to the new cluster in place (one compile and two engines per
// namespace are not rebuilt on every event) and re-judges only what the change can have
// moved, and its stores end up as those of a controller that rebuilt every judge and
// re-judged every edge.
func TestRefreshUpdatesJudgesInPlace(t *testing.T) {
	w := bench.Generate(bench.ProfileS, 2)
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var lines bytes.Buffer
	if err := w.WriteFlows(&lines, 20_000); err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	governedNS := compile.TargetedNamespaces(snap)
	if len(governedNS) < 2 {
		t.Fatalf("the world targets %v: want namespaces to govern", governedNS)
	}

	rev := uint64(1)
	cur := newModel(&Snapshot{Snapshot: snap, Rev: rev}, cfg)
	newIngest := func() (*Ingest, *Soaks) {
		s := governing(t, cfg, clk, governedNS, true)
		return NewIngest(nil, s, newDropCounter(), func() *model { return cur }, clk, logrDiscard(), func(string) {}), s
	}
	inPlace, inPlaceSoaks := newIngest()
	rebuilt, rebuiltSoaks := newIngest()
	feed(t, lines.Bytes(), inPlace, rebuilt)
	// A re-judged edge keeps no explanation when it is covered, where an observed one
	// keeps its flow's: start from stores both re-judged, so that what is compared below
	// is which edges each way re-judges, and how.
	rev++
	cur = newModel(&Snapshot{Snapshot: snap, Rev: rev}, cfg)
	for _, in := range []*Ingest{inPlace, rebuilt} {
		clear(in.sims)
		in.refresh()
	}
	assertSameSoaks(t, inPlaceSoaks, rebuiltSoaks, governedNS, clk.Now(), "before any change")
	judges := maps2(inPlace.sims)

	changes := []struct {
		name string
		next func(*cluster.Snapshot) *cluster.Snapshot
	}{
		{"a ClientIntents removed", func(s *cluster.Snapshot) *cluster.Snapshot {
			next, _ := compile.ReplaceIntents(s, nil, []string{s.Intents[0].Namespace + "/" + s.Intents[0].Name})
			return next
		}},
		{"a cluster policy opened to every namespace", func(s *cluster.Snapshot) *cluster.Snapshot {
			next := *s
			next.NetworkPolicies = slices.Clone(s.NetworkPolicies)
			p := next.NetworkPolicies[0].DeepCopy()
			p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
				NamespaceSelector: &metav1.LabelSelector{},
			}}})
			next.NetworkPolicies[0] = p
			return &next
		}},
		{"another ClientIntents removed", func(s *cluster.Snapshot) *cluster.Snapshot {
			next, _ := compile.ReplaceIntents(s, nil, []string{s.Intents[len(s.Intents)-1].Namespace + "/" + s.Intents[len(s.Intents)-1].Name})
			return next
		}},
	}
	for _, c := range changes {
		snap = c.next(snap)
		rev++
		cur = newModel(&Snapshot{Snapshot: snap, Rev: rev}, cfg)
		clear(rebuilt.sims) // the old way: a new judge for every namespace, every edge re-judged
		rebuilt.refresh()
		inPlace.refresh()
		assertSameSoaks(t, inPlaceSoaks, rebuiltSoaks, governedNS, clk.Now(), c.name)
		if diff := cmp.Diff(judges, maps2(inPlace.sims)); diff != "" {
			t.Errorf("%s: judges rebuilt instead of updated in place (-before +after):\n%s", c.name, diff)
		}
	}
}

// maps2 is the namespaces' judges by address.
func maps2(sims map[string]*simulate.Simulator) map[string]string {
	out := map[string]string{}
	for ns, s := range sims {
		out[ns] = fmtPtr(s)
	}
	return out
}

func assertSameSoaks(t *testing.T, got, want *Soaks, namespaces []string, now time.Time, what string) {
	t.Helper()
	edges := 0
	for _, ns := range namespaces {
		g, w := got.entries[ns].store.Edges(ns, now), want.entries[ns].store.Edges(ns, now)
		if diff := cmp.Diff(w, g); diff != "" {
			t.Fatalf("%s: edges of %s (-rebuilt +in place):\n%s", what, ns, diff)
		}
		edges += len(w)
	}
	if edges == 0 {
		t.Fatalf("%s: no stored edges to compare", what)
	}
}

func fmtPtr(p any) string { return fmt.Sprintf("%p", p) }

// BenchmarkRefreshPodEvent is what ingestion does after a model rebuild for one pod
// deleted from profile M, with governed namespaces of their own soak stores: judge=in-place
// moves each namespace's judge to the new snapshot (Simulator.UpdateStore),
// judge=rebuild builds it anew, as the controller did before (compile and two engines
// per namespace). Every stored edge is re-judged either way (pods changed). The new
// snapshot shares the unchanged objects with the old one (Snapshot.ReuseUnchanged), as
// the Snapshotter's are. ns/op is per event (wall time), the model's rebuild from the
// objects not included.
func BenchmarkRefreshPodEvent(b *testing.B) {
	w := bench.Generate(bench.ProfileM, 1)
	objs := w.Objects()
	snap, err := cluster.Build(objs)
	if err != nil {
		b.Fatal(err)
	}
	cfg := Default()
	clk := clocktesting.NewFakeClock(time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC))
	governedNS := compile.TargetedNamespaces(snap)[:10]
	var lines bytes.Buffer
	if err := w.WriteFlows(&lines, 200_000); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"in-place", "rebuild"} {
		b.Run("judge="+mode, func(b *testing.B) {
			rev := uint64(1)
			cur := newModel(&Snapshot{Snapshot: snap, Rev: rev}, cfg)
			s := governing(b, cfg, clk, governedNS, false)
			in := NewIngest(nil, s, newDropCounter(), func() *model { return cur }, clk, logrDiscard(), func(string) {})
			feed(b, lines.Bytes(), in)
			edges := 0
			for _, ns := range governedNS {
				edges += s.entries[ns].store.Usage().Edges
			}
			pods := slices.Clone(objs.Pods)
			b.ReportMetric(float64(edges), "stored-edges")
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				next := *objs
				next.Pods = slices.Delete(slices.Clone(pods), i%len(pods), i%len(pods)+1)
				ns, err := cluster.Build(&next)
				if err != nil {
					b.Fatal(err)
				}
				ns.ReuseUnchanged(cur.snap.Snapshot) // as the Snapshotter does
				rev++
				cur = newModel(&Snapshot{Snapshot: ns, Rev: rev}, cfg)
				if mode == "rebuild" {
					clear(in.sims)
				}
				b.StartTimer()
				in.refresh()
			}
		})
	}
}

// governing returns Soaks governing namespaces, each with a store of its own that tracks
// it since two days before now (every other one enforcing egress too, with mixEgress).
func governing(tb testing.TB, cfg Config, clk *clocktesting.FakeClock, namespaces []string, mixEgress bool) *Soaks {
	tb.Helper()
	s := NewSoaks(cfg, clk, nil, nil, logrDiscard(), nil)
	s.entries = map[string]*soakEntry{}
	for i, ns := range namespaces {
		st, err := soak.New(s.storeOptions(), clk)
		if err != nil {
			tb.Fatal(err)
		}
		st.Track(ns, clk.Now().Add(-48*time.Hour))
		s.entries[ns] = &soakEntry{store: st, gov: governed{namespace: ns, egress: mixEgress && i%2 == 1}}
	}
	s.version.Add(1)
	return s
}

// feed hands every flow line to each ingestion, as its goroutine does: refresh, then the
// event.
func feed(tb testing.TB, lines []byte, ins ...*Ingest) {
	tb.Helper()
	src := flows.NewReader("flows", bytes.NewReader(lines))
	defer src.Close()
	for {
		ev, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			tb.Fatal(err)
		}
		for _, in := range ins {
			in.refresh()
			in.handle(ev)
		}
	}
}

// TestDropJudgeFollowsTheModelInPlace: the judge that tells a policy drop caused by an
// enforcing namespace's own policies from one the cluster's other policies would make
// anyway is moved to each new model in place (not built anew after every rebuild, which
// cost two engines per namespace on the first drop after it), and judges by the new
// model at once.
func TestDropJudgeFollowsTheModelInPlace(t *testing.T) {
	base, err := cluster.Load("testdata/shop")
	if err != nil {
		t.Fatal(err)
	}
	denyAll := &networkingv1.NetworkPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: "deny-all", Namespace: "shop"},
		Spec:       networkingv1.NetworkPolicySpec{PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}},
	}
	withDenyAll := *base
	withDenyAll.NetworkPolicies = append(slices.Clone(base.NetworkPolicies), denyAll)

	cfg := Default()
	t0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(t0)
	s := governing(t, cfg, clk, []string{"shop"}, false)
	s.entries["shop"].enforcing = true
	rev := uint64(0)
	var cur *model
	in := NewIngest(nil, s, newDropCounter(), func() *model { return cur }, clk, logrDiscard(), func(string) {})
	in.drops.Arm("shop", 100, time.Hour, t0.Add(-time.Hour))
	// web (front) calls cart (shop), which no ClientIntents allows: shop's own policies
	// drop it, the cluster's others (none, then a deny-all) would not, then would.
	drop := &flows.Flow{Time: t0, NodeName: "node-1", Verdict: "DROPPED", DropReason: "POLICY_DENIED", Type: "L3_L4",
		TrafficDirection: "INGRESS", Protocol: "TCP", SourcePort: 40000, DestinationPort: 8080,
		Source:      flows.Endpoint{IP: netip.MustParseAddr("10.0.2.10"), Namespace: "front", PodName: "web-6b7c8d9f4-a1s2d"},
		Destination: flows.Endpoint{IP: netip.MustParseAddr("10.0.1.10"), Namespace: "shop", PodName: "cart-7c9d8f6b5-x2k4p"},
	}
	var judge *simulate.Simulator
	for i, step := range []struct {
		snap    *cluster.Snapshot
		counted bool
	}{
		{base, true},
		{&withDenyAll, false},
		{base, true},
	} {
		rev++
		cur = newModel(&Snapshot{Snapshot: step.snap, Rev: rev}, cfg)
		in.refresh()
		before := in.Stats.CountedDrops.Load()
		in.handle(flows.Event{Kind: flows.KindFlow, Flow: drop})
		if got := in.Stats.CountedDrops.Load() - before; got != map[bool]int64{true: 1, false: 0}[step.counted] {
			t.Errorf("model %d: the drop counted %d times, want counted %v", i+1, got, step.counted)
		}
		if judge == nil {
			judge = in.unmanaged["shop"]
		}
		if in.unmanaged["shop"] != judge || judge == nil {
			t.Errorf("model %d: the drop judge was built anew", i+1)
		}
	}
}

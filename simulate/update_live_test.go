package simulate_test

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
	"github.com/shadowgate/shadowgate/simulate/soak"
)

// TestLiveUpdateRejudgesAsSwap holds Live.Update, which re-judges only the stored edges
// with a peer in a namespace whose policies changed, to Live.Swap of a Simulator built
// anew, which re-judges every edge: after each ClientIntents event and each change of a
// cluster policy, the two stores must hold the same edges with the same verdicts and
// reasons.
func TestLiveUpdateRejudgesAsSwap(t *testing.T) {
	cases := map[string]struct {
		profile bench.Profile
		egress  bool
		events  int
	}{
		"tiny":              {profile: tinyWorld, events: 20},
		"tiny, egress":      {profile: tinyWorld, egress: true, events: 20},
		"profile S":         {profile: bench.ProfileS, events: 6},
		"profile S, egress": {profile: bench.ProfileS, egress: true, events: 6},
	}
	for name, tc := range cases {
		if (updateRace || testing.Short()) && tc.profile.Name != tinyWorld.Name {
			continue
		}
		t.Run(name, func(t *testing.T) {
			w := bench.Generate(tc.profile, 1)
			snap, err := w.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			opts := simulate.DefaultOptions()
			opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
			opts.Compile.Egress = tc.egress
			clk := clocktesting.NewFakeClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
			newLive := func() (*simulate.Live, *simulate.Simulator) {
				sim, err := simulate.New(snap, opts)
				if err != nil {
					t.Fatal(err)
				}
				l, _, err := simulate.NewLive(sim, soak.DefaultOptions(), simulate.LiveConfig{Gate: soak.DefaultGateConfig(), Clock: clk})
				if err != nil {
					t.Fatal(err)
				}
				return l, sim
			}
			updated, simU := newLive()
			swapped, simS := newLive()
			for _, ev := range worldFlows(t, w, 3000) {
				updated.Observe("file", ev)
				swapped.Observe("file", ev)
			}
			// A re-judged edge is judged by a stand-in for each peer, whose explanation
			// may differ from the flows' (an external peer is its CIDR's first address,
			// not the address it was seen at): start from re-judged stores, so that what
			// is compared below is which edges each way re-judges.
			updated.Swap(simU)
			swapped.Swap(simS)
			assertSameStores(t, updated, swapped, "before any event")

			rng := rand.New(rand.NewPCG(5, 6))
			cur := snap
			for i := range tc.events {
				var next *cluster.Snapshot
				var what string
				if i%4 == 3 {
					next, what = changePolicy(t, cur, i)
				} else {
					upsert, remove, w := randomIntentChange(rng, cur, i)
					next, _ = compile.ReplaceIntents(cur, upsert, remove)
					what = w
				}
				clk.Step(time.Minute)
				if _, err := updated.Update(next, opts); err != nil {
					t.Fatalf("event %d (%s): Update: %v", i, what, err)
				}
				sim, err := simulate.New(next, opts)
				if err != nil {
					t.Fatal(err)
				}
				swapped.Swap(sim)
				assertSameStores(t, updated, swapped, fmt.Sprintf("event %d (%s)", i, what))
				cur = next
			}
		})
	}
}

// changePolicy returns s with its i-th cluster NetworkPolicy (cyclically) admitting one
// more peer, everything else shared.
func changePolicy(t *testing.T, s *cluster.Snapshot, i int) (*cluster.Snapshot, string) {
	t.Helper()
	next := *s
	next.NetworkPolicies = slices.Clone(s.NetworkPolicies)
	if len(next.NetworkPolicies) == 0 {
		t.Fatal("the world has no cluster policies")
	}
	k := i % len(next.NetworkPolicies)
	p := next.NetworkPolicies[k].DeepCopy()
	p.Spec.Ingress = append(p.Spec.Ingress, networkingv1.NetworkPolicyIngressRule{From: []networkingv1.NetworkPolicyPeer{{
		NamespaceSelector: &metav1.LabelSelector{},
	}}})
	next.NetworkPolicies[k] = p
	return &next, "open policy " + p.Namespace + "/" + p.Name + " to every namespace"
}

func assertSameStores(t *testing.T, got, want *simulate.Live, what string) {
	t.Helper()
	gs, ws := got.Store(), want.Store()
	if diff := cmp.Diff(ws.Tracked(), gs.Tracked()); diff != "" {
		t.Fatalf("%s: tracked namespaces (-swapped +updated):\n%s", what, diff)
	}
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	edges := 0
	for _, ns := range ws.Tracked() {
		if diff := cmp.Diff(ws.Edges(ns, now), gs.Edges(ns, now)); diff != "" {
			t.Fatalf("%s: edges of %s (-swapped +updated):\n%s", what, ns, diff)
		}
		edges += len(ws.Edges(ns, now))
	}
	if edges == 0 {
		t.Fatalf("%s: no stored edges to compare", what)
	}
}

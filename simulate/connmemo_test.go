package simulate_test

import (
	"slices"
	"testing"

	"github.com/shadowgate/shadowgate/evaluator/cluster"
	"github.com/shadowgate/shadowgate/evaluator/compile"
	"github.com/shadowgate/shadowgate/simulate"
	"github.com/shadowgate/shadowgate/simulate/bench"
)

// TestConnMemoFollowsUpdates: the Simulator remembers whole judgements per connection
// class, and an update must not leave one behind. Each step changes the verdicts of some
// of the flows the Simulator has just judged (so a stale memo would show), then requires
// every judgement of a Simulator built anew.
func TestConnMemoFollowsUpdates(t *testing.T) {
	w := bench.Generate(bench.ProfileS, 1)
	snap, err := w.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	evs := worldFlows(t, w, 3000)
	opts := simulate.DefaultOptions()
	opts.Compile.Namespaces = compile.TargetedNamespaces(snap)
	opts.Compile.Egress = true
	sim, err := simulate.New(snap, opts)
	if err != nil {
		t.Fatal(err)
	}

	relabelled := func(s *cluster.Snapshot) *cluster.Snapshot {
		objs := *w.Objects()
		objs.Namespaces = slices.Clone(objs.Namespaces)
		for i, ns := range objs.Namespaces {
			ns = ns.DeepCopy()
			ns.Labels = map[string]string{"relabelled": "yes"}
			objs.Namespaces[i] = ns
		}
		next, err := cluster.Build(&objs)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	var allIntents []string
	for _, ci := range snap.Intents {
		allIntents = append(allIntents, ci.Key())
	}
	steps := []struct {
		name  string
		apply func() (*cluster.Snapshot, error)
	}{
		{"every ClientIntents removed", func() (*cluster.Snapshot, error) {
			next, _ := compile.ReplaceIntents(snap, nil, allIntents)
			return next, sim.UpdateIntents(nil, allIntents)
		}},
		{"every ClientIntents back", func() (*cluster.Snapshot, error) {
			return snap, sim.UpdateIntents(snap.Intents, nil)
		}},
		{"every namespace relabelled", func() (*cluster.Snapshot, error) {
			next := relabelled(snap)
			return next, sim.Update(next, opts)
		}},
		{"labels back", func() (*cluster.Snapshot, error) {
			return snap, sim.Update(snap, opts)
		}},
	}
	for _, step := range steps {
		// Warm: every flow's judgement is in the memo.
		before := make([]simulate.Judgement, len(evs))
		for i, ev := range evs {
			before[i] = sim.Observe(ev)
		}
		next, err := step.apply()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		fresh, err := simulate.New(next, opts)
		if err != nil {
			t.Fatal(err)
		}
		changed := 0
		for i, ev := range evs {
			if j := fresh.Judge(ev.Flow, ev.Line); j.Reason != before[i].Reason || j.Outcome != before[i].Outcome {
				changed++
			}
		}
		if changed == 0 {
			t.Fatalf("%s: no judgement changes, so the step cannot tell a stale memo", step.name)
		}
		assertSameAsNew(t, sim, next, opts, evs, step.name)
	}
}
